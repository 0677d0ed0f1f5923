import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { Caller } from '../common/access';
import { notFound, ProblemError } from '../common/problems/problem.error';
import { OrderReads } from '../orders/order-reads';
import type { CreateRefundDto } from './dto/payment.dto';
import { PaymentsRepository } from './payments.repository';
import { RefundsRepository, type Refund } from './refunds.repository';
import { RefundSettlement } from './refund-settlement';

/**
 * An admin's refunds (API.md §10): `POST /orders/{id}/refunds`, `…/{refundId}/retry`,
 * `…/{refundId}/complete`. Each under the order's row lock, the balance guarded by one conditional
 * write of the payment's reserved sum. A refund is recorded `pending` here and carried out by the
 * refund relay after the commit; one on a `manual` payment is `succeeded` at once (the admin returns
 * the money and says so by asking).
 */
@Injectable()
export class RefundRequests {
  constructor(
    private readonly reads: OrderReads,
    private readonly payments: PaymentsRepository,
    private readonly refunds: RefundsRepository,
    private readonly settlement: RefundSettlement,
  ) {}

  async create(
    m: EntityManager,
    caller: Caller,
    orderId: string,
    dto: CreateRefundDto,
  ): Promise<Refund> {
    const current = await this.reads.findVisible(orderId, caller, m, { lock: true });
    adminOnly(caller, 'refund');
    const paymentId = dto.paymentId?.toLowerCase() ?? current.order.paymentId;
    const payment = paymentId
      ? await this.payments.findPayment(m, paymentId, { lock: true })
      : null;
    if (dto.paymentId && (!payment || payment.orderId !== current.order.id)) {
      throw notFound(`Payment ${dto.paymentId}`);
    }
    const exceeds = (refundableCents: number) =>
      new ProblemError(
        'REFUND_EXCEEDS_BALANCE',
        payment
          ? `Payment ${payment.id} has ${refundableCents} left to refund (captured minus refunds not failed); ${dto.amountCents} were asked. Nothing was recorded.`
          : `Order ${orderId} has no payment that paid it: nothing to refund. Name a payment with paymentId.`,
        { requestedCents: dto.amountCents, refundableCents },
      );
    if (!payment || payment.status !== 'succeeded') throw exceeds(0);
    const guard = await this.refunds.reserveRefund(m, payment.id, dto.amountCents);
    if (!guard.reserved) throw exceeds(guard.refundableCents);
    const refund = await this.refunds.insertRefund(m, {
      orderId: current.order.id,
      paymentId: payment.id,
      amountCents: dto.amountCents,
      currency: payment.capturedCurrency!,
      reason: dto.reason,
      createdBy: caller.id,
    });
    if (payment.provider !== 'manual') return refund;
    return (await this.settlement.succeed(m, refund))!;
  }

  /** A `failed` refund pending again, attempts reset; the balance guard applies again. */
  async retry(
    m: EntityManager,
    caller: Caller,
    orderId: string,
    refundId: string,
  ): Promise<Refund> {
    const refund = await this.lockedRefund(m, caller, orderId, refundId);
    adminOnly(caller, 'retry a refund');
    if (refund.status !== 'failed') {
      throw new ProblemError(
        'REFUND_NOT_FAILED',
        `Refund ${refundId} is ${refund.status}; only a failed refund can be retried.`,
        { refundStatus: refund.status },
      );
    }
    const guard = await this.refunds.reserveRefund(m, refund.paymentId, refund.amountCents);
    if (!guard.reserved) {
      throw new ProblemError(
        'REFUND_EXCEEDS_BALANCE',
        `Payment ${refund.paymentId} has ${guard.refundableCents} left to refund; this refund is for ${refund.amountCents}. Nothing was changed.`,
        { requestedCents: refund.amountCents, refundableCents: guard.refundableCents },
      );
    }
    return (await this.refunds.resetRefund(m, refundId))!;
  }

  /** An admin says the money of a `pending` refund of a manual payment went back. */
  async complete(
    m: EntityManager,
    caller: Caller,
    orderId: string,
    refundId: string,
  ): Promise<Refund> {
    const refund = await this.lockedRefund(m, caller, orderId, refundId);
    adminOnly(caller, 'complete a refund');
    const payment = (await this.payments.findPayment(m, refund.paymentId))!;
    if (payment.provider !== 'manual' || refund.status !== 'pending') {
      throw new ProblemError(
        'ILLEGAL_STATE_TRANSITION',
        `Refund ${refundId} is ${refund.status} on a ${payment.provider} payment; only a pending refund of a manual payment is completed by an admin.`,
        { currentStatus: refund.status, attemptedTransition: 'complete', allowedTransitions: [] },
      );
    }
    return (await this.settlement.succeed(m, refund))!;
  }

  private async lockedRefund(
    m: EntityManager,
    caller: Caller,
    orderId: string,
    refundId: string,
  ): Promise<Refund> {
    const current = await this.reads.findVisible(orderId, caller, m, { lock: true });
    const refund = await this.refunds.findRefund(m, refundId, { lock: true });
    if (!refund || refund.orderId !== current.order.id) throw notFound(`Refund ${refundId}`);
    return refund;
  }
}

function adminOnly(caller: Caller, what: string): void {
  if (caller.role !== 'admin') throw new ProblemError('FORBIDDEN', `Only an admin may ${what}.`);
}
