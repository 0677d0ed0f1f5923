import { Injectable } from '@nestjs/common';
import type { Caller } from '../common/access';
import type { Page } from '../common/http/pagination';
import { notFound } from '../common/problems/problem.error';
import { capacities, OrderReads } from '../orders/order-reads';
import { PaymentDto, RefundDto } from './dto/payment.dto';
import { RefundsRepository } from './refunds.repository';
import { PaymentsRepository } from './payments.repository';

/** An order's payments and refunds, for its owner and admins (others: 404 for the order). */
@Injectable()
export class PaymentReads {
  constructor(
    private readonly reads: OrderReads,
    private readonly payments: PaymentsRepository,
    private readonly refunds: RefundsRepository,
  ) {}

  async listPayments(
    caller: Caller,
    orderId: string,
    page: { limit: number; offset: number },
  ): Promise<Page<PaymentDto>> {
    const { order } = await this.reads.findVisible(orderId, caller);
    const owner = capacities(order, caller).includes('owner');
    const all = await this.payments.listPayments(this.payments.manager, order.id);
    return pageOf(
      all.map((p) => PaymentDto.from(p, owner)),
      page,
    );
  }

  async payment(caller: Caller, orderId: string, paymentId: string): Promise<PaymentDto> {
    const { order } = await this.reads.findVisible(orderId, caller);
    const p = await this.payments.findPayment(this.payments.manager, paymentId);
    if (!p || p.orderId !== order.id) throw notFound(`Payment ${paymentId}`);
    return PaymentDto.from(p, capacities(order, caller).includes('owner'));
  }

  async listRefunds(
    caller: Caller,
    orderId: string,
    page: { limit: number; offset: number },
  ): Promise<Page<RefundDto>> {
    const { order } = await this.reads.findVisible(orderId, caller);
    const all = await this.refunds.listRefunds(this.payments.manager, order.id);
    return pageOf(
      all.map((r) => RefundDto.from(r, caller.role === 'admin')),
      page,
    );
  }
}

function pageOf<T>(all: T[], { limit, offset }: { limit: number; offset: number }): Page<T> {
  return { items: all.slice(offset, offset + limit), total: all.length, limit, offset };
}
