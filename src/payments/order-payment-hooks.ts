import { Injectable, type OnModuleInit } from '@nestjs/common';
import { ProblemError } from '../common/problems/problem.error';
import { OrderHooks } from '../orders/order-hooks';
import { RefundsRepository } from './refunds.repository';
import { PaymentsRepository } from './payments.repository';

/**
 * What payments add to the orders' use cases (API.md §9, §10), registered with OrderHooks at
 * start-up: cancelling a paid order owes its full refund in the cancel's own transaction (the
 * table's `refundPayment` effect), and an order with an open payment cannot be edited (409
 * PAYMENT_IN_PROGRESS, checked under the order's row lock, which opening a payment takes too).
 */
@Injectable()
export class OrderPaymentHooks implements OnModuleInit {
  constructor(
    private readonly hooks: OrderHooks,
    private readonly payments: PaymentsRepository,
    private readonly refunds: RefundsRepository,
  ) {}

  onModuleInit(): void {
    this.hooks.onEffect('refundPayment', async (m, { order }, actorId) => {
      if (order.paymentId) {
        await this.refunds.oweFullRefund(m, order.paymentId, 'order_cancelled', actorId);
      }
    });
    this.hooks.onEdit(async (m, { order }) => {
      const open = await this.payments.openPaymentOf(m, order.id);
      if (open) {
        throw new ProblemError(
          'PAYMENT_IN_PROGRESS',
          `Order ${order.id} has an open payment ${open.id} (${open.status}); it cannot be edited until that payment is finished or cancelled. Nothing was changed.`,
          { paymentId: open.id },
        );
      }
    });
  }
}
