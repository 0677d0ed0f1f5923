import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { MetricsService } from '../observability/metrics.service';
import { PaymentEvents } from './payment-events';
import { type Payment, PaymentsRepository } from './payments.repository';
import {
  RefundsRepository,
  type AttemptOutcome,
  type Refund,
  type RefundStatus,
} from './refunds.repository';

/**
 * How a refund ends, whoever learns it (the relay from the provider's answer, a provider
 * notification, an admin completing a manual refund): the refund's status, the payment's balance,
 * the order's `refundedCents` (and so its version) and the `refund.*` event, in the caller's
 * transaction, under the order's row lock the caller took first.
 */
@Injectable()
export class RefundSettlement {
  constructor(
    private readonly payments: PaymentsRepository,
    private readonly refunds: RefundsRepository,
    private readonly events: PaymentEvents,
    private readonly metrics: MetricsService,
  ) {}

  /** pending → succeeded (or, when the provider says so after we gave up, failed → succeeded). */
  async succeed(
    m: EntityManager,
    refund: Refund,
    change: { providerRefundId?: string | null; lastKey?: string; lease?: string } = {},
  ): Promise<Refund | null> {
    // The provider's own failure is final there: a `succeeded` arriving after it is stale (Stripe does
    // not deliver in order), never money leaving again.
    if (refund.status === 'failed' && refund.lastOutcome === 'provider_failed') return null;
    if (refund.status === 'failed') {
      // The provider carried out a refund we had given up on: its money left, so it counts again.
      const guard = await this.refunds.reserveRefund(m, refund.paymentId, refund.amountCents);
      if (!guard.reserved) return null;
    }
    const from: RefundStatus[] = refund.status === 'failed' ? ['failed'] : ['pending'];
    const done = await this.refunds.settleRefund(m, refund.id, from, {
      status: 'succeeded',
      providerRefundId: change.providerRefundId,
      lastKey: change.lastKey,
      lease: change.lease,
    });
    if (!done) return null;
    await this.refunds.addRefunded(m, done.orderId, done.paymentId, done.amountCents);
    await this.events.emit(m, 'refund.succeeded', { refund: done });
    this.metrics.refund(await this.providerOf(m, done), 'succeeded');
    return done;
  }

  /**
   * pending (or succeeded: a provider may fail a refund later, a closed card) → failed: the balance
   * reopens, the order's refunded sum goes down if it had counted it, `refund.failed`.
   */
  async fail(
    m: EntityManager,
    refund: Refund,
    change: { error: string; lastKey?: string; lastOutcome?: AttemptOutcome; lease?: string },
  ): Promise<Refund | null> {
    if (refund.status === 'failed') return null;
    const done = await this.refunds.settleRefund(m, refund.id, [refund.status], {
      status: 'failed',
      lastError: change.error.slice(0, 1000),
      lastKey: change.lastKey,
      lastOutcome: change.lastOutcome,
      lease: change.lease,
    });
    if (!done) return null;
    await this.refunds.releaseRefund(m, done.paymentId, done.amountCents);
    if (refund.status === 'succeeded') {
      await this.refunds.addRefunded(m, done.orderId, done.paymentId, -done.amountCents);
    }
    await this.events.emit(m, 'refund.failed', { refund: done });
    this.metrics.refund(await this.providerOf(m, done), 'failed');
    return done;
  }

  private async providerOf(m: EntityManager, refund: Refund): Promise<Payment['provider']> {
    return (await this.payments.findPayment(m, refund.paymentId))?.provider ?? 'manual';
  }
}
