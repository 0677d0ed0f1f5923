import { randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { sql } from '../common/database/sql';
import { isRetryableConflict } from '../common/database/database-errors';
import { inTransaction } from '../common/database/transaction';
import { ProblemError } from '../common/problems/problem.error';
import { MetricsService } from '../observability/metrics.service';
import { HoldExpiry } from '../orders/hold-expiry';
import { OrderChanges, traceparent } from '../orders/order-changes';
import { allowedTransitions } from '../orders/order-state';
import { OrdersRepository, type OrderWithItems } from '../orders/orders.repository';
import { PaymentEvents } from './payment-events';
import {
  OPEN_PAYMENT_STATUSES,
  type Payment,
  type PaymentStatus,
  PaymentsRepository,
} from './payments.repository';
import { RefundsRepository, type Refund } from './refunds.repository';
import type { ProviderName, ProviderNotification } from './providers/payment-provider';
import { PaymentProviders } from './providers/providers';
import { RefundRelay } from './refund-relay';
import { RefundSettlement } from './refund-settlement';

/** What the owner of a paid order may do: the order in the events of a payment that paid it. */
const PAID_OWNER_ACTIONS = allowedTransitions('paid', ['owner']);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Why money that arrived is given back (API.md §9). */
export type UnwantedReason =
  'order_cancelled' | 'duplicate_payment' | 'amount_mismatch' | 'hold_expired';

export interface Applied {
  /** `duplicate`: this event id was applied before; `unknown`: not a payment of ours (logged). */
  outcome: 'applied' | 'duplicate' | 'unknown' | 'ignored';
  payment?: Payment;
  refund?: Refund;
}

/**
 * A provider's verified notification applied to the service (API.md §9, §10), at most once and in one
 * transaction: the order's row locked first, the provider's event id recorded (unique: a repeated
 * delivery, on any instance, finds it and changes nothing), the payment's or refund's status, the
 * order's transition with its history entry, the refunds unwanted money is owed, and the events.
 * Late, repeated or out-of-order notifications never move a payment backwards (a success applies from
 * every status; nothing leaves `succeeded`) nor count money twice.
 */
@Injectable()
export class NotificationApplying {
  private readonly logger = new Logger('PaymentNotifications');

  constructor(
    private readonly orders: OrdersRepository,
    private readonly changes: OrderChanges,
    private readonly holds: HoldExpiry,
    private readonly payments: PaymentsRepository,
    private readonly refunds: RefundsRepository,
    private readonly events: PaymentEvents,
    private readonly settlement: RefundSettlement,
    private readonly providers: PaymentProviders,
    private readonly relay: RefundRelay,
    private readonly metrics: MetricsService,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  /**
   * `onlyOpen`: the `test` provider's complete route: a payment no longer open is 409
   * PAYMENT_NOT_OPEN, nothing changed.
   */
  async apply(
    provider: ProviderName,
    n: ProviderNotification,
    { onlyOpen = false }: { onlyOpen?: boolean } = {},
  ): Promise<Applied> {
    if (n.kind === 'ignored') return { outcome: 'ignored' };
    if (n.kind === 'payment' && n.status === 'succeeded') {
      const atOnce = await this.succeededAtOnce(provider, n);
      if (atOnce) return atOnce;
    }
    let failedAtProvider: Payment | undefined;
    const applied = await inTransaction(this.dataSource, async (m) => {
      if (n.kind === 'refund') return this.applyRefund(m, provider, n);
      const result = await this.applyPayment(m, provider, n, onlyOpen);
      if (result.payment?.status === 'failed' && n.status === 'failed') {
        failedAtProvider = result.payment;
      }
      return result;
    });
    if (applied.outcome === 'unknown') {
      this.logger.warn(
        { provider, eventId: n.eventId, kind: n.kind },
        'Notification about a payment unknown here: acknowledged, not recorded',
      );
    }
    // A failed PaymentIntent is cancelled at the provider, so that it cannot be confirmed again.
    if (failedAtProvider?.providerPaymentId && applied.outcome === 'applied') {
      await this.providers
        .get(provider)
        ?.cancel(failedAtProvider.providerPaymentId)
        .catch((err: unknown) =>
          this.logger.warn(
            { provider, paymentId: failedAtProvider!.id, err: String(err) },
            'Could not cancel a failed payment at its provider',
          ),
        );
    }
    if (applied.refund?.status === 'pending') this.relay.kick();
    return applied;
  }

  /**
   * The common success, an open payment paying its live pending order with exactly its total, in
   * one statement (sql/apply_payment_succeeded.sql): the same locks, checks, writes and events as
   * applyPayment's path, in one round trip instead of a transaction of fifteen. Undefined when it is
   * not that case (nothing written; also after a deadlock or serialization failure, which the full
   * path's transaction retries): applyPayment decides.
   */
  private async succeededAtOnce(
    provider: ProviderName,
    n: Extract<ProviderNotification, { kind: 'payment' }>,
  ): Promise<Applied | undefined> {
    let answer;
    try {
      answer = await this.payments.applySucceededAtOnce(
        this.dataSource.manager,
        provider,
        {
          eventId: n.eventId,
          paymentId: n.paymentId && UUID.test(n.paymentId) ? n.paymentId : null,
          providerPaymentId: n.providerPaymentId,
          cents: n.amountReceivedCents,
          currency: n.currency.toUpperCase(),
        },
        PAID_OWNER_ACTIONS,
        traceparent() ?? null,
        { order: randomUUID(), payment: randomUUID() },
      );
    } catch (err) {
      if (isRetryableConflict(err)) return undefined;
      throw err;
    }
    if (!answer) return undefined;
    if ('duplicate' in answer) return { outcome: 'duplicate', payment: answer.duplicate };
    this.metrics.payment(provider, 'succeeded');
    return { outcome: 'applied', payment: answer.applied };
  }

  private async applyPayment(
    m: EntityManager,
    provider: ProviderName,
    n: Extract<ProviderNotification, { kind: 'payment' }>,
    onlyOpen: boolean,
  ): Promise<Applied> {
    const byId =
      n.paymentId && UUID.test(n.paymentId)
        ? await this.payments.findPayment(m, n.paymentId)
        : null;
    const known =
      byId?.provider === provider
        ? byId
        : await this.payments.findByProviderId(m, provider, n.providerPaymentId);
    if (!known) return { outcome: 'unknown' };
    // The order's row first (every writer of an order), then the event id, then the payment's row.
    await this.orders.findById(known.orderId, m, true);
    if (!(await this.payments.recordProviderEvent(m, provider, n.eventId))) {
      return { outcome: 'duplicate', payment: known };
    }
    const payment = (await this.payments.findPayment(m, known.id, { lock: true }))!;
    if (onlyOpen && !OPEN_PAYMENT_STATUSES.includes(payment.status)) {
      throw new ProblemError(
        'PAYMENT_NOT_OPEN',
        `Payment ${payment.id} is ${payment.status}; only an open payment can be completed. Nothing was changed.`,
        { paymentStatus: payment.status },
      );
    }
    const move = (to: PaymentStatus, from: readonly PaymentStatus[], extra = {}) =>
      this.payments.setStatus(m, payment.id, to, from, extra);
    switch (n.status) {
      case 'processing':
        return {
          outcome: 'applied',
          payment: (await move('processing', ['requires_action'])) ?? payment,
        };
      case 'canceled': {
        const canceled = await move('canceled', OPEN_PAYMENT_STATUSES);
        if (canceled) this.metrics.payment(provider, 'canceled');
        return { outcome: 'applied', payment: canceled ?? payment };
      }
      case 'failed': {
        const failed = await move('failed', OPEN_PAYMENT_STATUSES, {
          failureReason: n.failureReason ?? 'the provider reported the payment failed',
        });
        if (!failed) return { outcome: 'applied', payment };
        await this.events.emit(m, 'payment.failed', { payment: failed });
        this.metrics.payment(provider, 'failed');
        return { outcome: 'applied', payment: failed };
      }
      case 'succeeded':
        return this.succeeded(m, payment, n);
    }
  }

  /**
   * Money captured. From every status but `succeeded` (money is never ignored): the order is paid,
   * or revived, or, when the money is unwanted, owed a full refund of it.
   */
  private async succeeded(
    m: EntityManager,
    payment: Payment,
    n: Extract<ProviderNotification, { kind: 'payment' }>,
  ): Promise<Applied> {
    if (payment.status === 'succeeded') return { outcome: 'applied', payment };
    const currency = n.currency.toUpperCase();
    const captured = (await this.payments.setStatus(
      m,
      payment.id,
      'succeeded',
      ['requires_action', 'processing', 'failed', 'canceled'],
      { capturedCents: n.amountReceivedCents, capturedCurrency: currency },
    ))!;
    const unwanted = await this.payOrder(m, captured, n.amountReceivedCents, currency);
    let refund: Refund | undefined;
    if (unwanted) {
      refund = (await this.refunds.oweFullRefund(m, captured.id, unwanted, null)) ?? undefined;
    }
    await this.events.emit(m, 'payment.succeeded', { payment: captured });
    this.metrics.payment(captured.provider, 'succeeded');
    return { outcome: 'applied', payment: captured, refund };
  }

  /** Pays (or revives) the order with this payment; else says why the money is unwanted. */
  private async payOrder(
    m: EntityManager,
    payment: Payment,
    cents: number,
    currency: string,
  ): Promise<UnwantedReason | null> {
    let current = await this.current(m, payment.orderId);
    const { order } = current;
    if (order.status === 'cancelled') return 'order_cancelled';
    if (order.status !== 'pending' && order.status !== 'expired') return 'duplicate_payment';
    if (cents !== order.totalCents || currency !== order.currency.toUpperCase()) {
      return 'amount_mismatch';
    }
    const paidBy = { paymentId: payment.id, cents };
    // The hold's deadline is the database's: the guarded write fails once it is over.
    if (
      order.status === 'pending' &&
      (await this.changes.move(m, current, 'pay', null, undefined, paidBy))
    ) {
      return null;
    }
    if (current.order.status === 'pending') {
      // Money after the hold: expire it first (history `expire`, units returned)…
      await this.holds.expireOverdue(m, { orderIds: [order.id] });
      current = await this.current(m, order.id);
      if (current.order.status !== 'expired') return 'hold_expired';
    }
    // …then take its units again, all lines or none, at the snapshotted prices (`revive`).
    await sql(m, 'SAVEPOINT revive');
    try {
      if (await this.changes.move(m, current, 'revive', null, undefined, paidBy)) return null;
    } catch (err) {
      // Its units or its promotion use gone meanwhile: not revived, the money is refunded.
      const taken = ['INSUFFICIENT_STOCK', 'PROMOTION_NOT_APPLICABLE'];
      if (!(err instanceof ProblemError && taken.includes(err.code))) throw err;
    }
    await sql(m, 'ROLLBACK TO SAVEPOINT revive');
    return 'hold_expired';
  }

  private async current(m: EntityManager, orderId: string): Promise<OrderWithItems> {
    const found = (await this.orders.findById(orderId, m))!;
    return { order: found.order, items: await this.orders.items(orderId, m) };
  }

  /**
   * A Refund object's news (API.md §10): matched by the provider's refund id, then by our id in its
   * metadata; no match is a refund made at the provider (its dashboard), recorded once as `external`.
   */
  private async applyRefund(
    m: EntityManager,
    provider: ProviderName,
    n: Extract<ProviderNotification, { kind: 'refund' }>,
  ): Promise<Applied> {
    let refund =
      (await this.refunds.findRefundByProviderId(m, n.providerRefundId)) ??
      (n.refundId && UUID.test(n.refundId) ? await this.refunds.findRefund(m, n.refundId) : null);
    const payment = refund
      ? await this.payments.findPayment(m, refund.paymentId)
      : await this.payments.findByProviderId(m, provider, n.providerPaymentId);
    if (!payment || payment.provider !== provider) return { outcome: 'unknown' };
    await this.orders.findById(payment.orderId, m, true);
    if (!(await this.payments.recordProviderEvent(m, provider, n.eventId))) {
      return { outcome: 'duplicate' };
    }
    // Matched again under the order's lock: two events of one refund made at the provider, applied
    // at once, must find the refund the first recorded, not both record it.
    const matched =
      (await this.refunds.findRefundByProviderId(m, n.providerRefundId)) ??
      (n.refundId && UUID.test(n.refundId) ? await this.refunds.findRefund(m, n.refundId) : null);
    if (!matched) return this.external(m, payment, n);
    refund = (await this.refunds.findRefund(m, matched.id, { lock: true }))!;
    switch (n.status) {
      case 'succeeded':
        if (refund.status === 'succeeded') return { outcome: 'applied', refund };
        return {
          outcome: 'applied',
          refund:
            (await this.settlement.succeed(m, refund, { providerRefundId: n.providerRefundId })) ??
            refund,
        };
      case 'failed':
      case 'canceled':
        return {
          outcome: 'applied',
          refund:
            (await this.settlement.fail(m, refund, {
              error: `the provider reported the refund ${n.status}`,
              lastOutcome: 'provider_failed',
            })) ?? refund,
        };
      case 'pending':
        return {
          outcome: 'applied',
          refund:
            (refund.status === 'pending'
              ? await this.refunds.settleRefund(m, refund.id, ['pending'], {
                  status: 'pending',
                  providerRefundId: n.providerRefundId,
                  submitted: true,
                })
              : null) ?? refund,
        };
    }
  }

  /** A refund made at the provider: recorded once per provider refund id, `reason: "external"`. */
  private async external(
    m: EntityManager,
    payment: Payment,
    n: Extract<ProviderNotification, { kind: 'refund' }>,
  ): Promise<Applied> {
    // A refund that never moved money is nothing to record.
    if (n.status === 'failed' || n.status === 'canceled') return { outcome: 'applied' };
    const guard = await this.refunds.reserveRefund(m, payment.id, n.amountCents);
    if (!guard.reserved) {
      this.logger.error(
        { paymentId: payment.id, providerRefundId: n.providerRefundId },
        'A refund made at the provider exceeds the balance recorded here; not recorded',
      );
      return { outcome: 'applied' };
    }
    const recorded = await this.refunds.insertRefund(m, {
      orderId: payment.orderId,
      paymentId: payment.id,
      amountCents: n.amountCents,
      currency: n.currency.toUpperCase(),
      reason: 'external',
      createdBy: null,
      providerRefundId: n.providerRefundId,
      submitted: true,
    });
    if (n.status !== 'succeeded') return { outcome: 'applied', refund: recorded };
    return {
      outcome: 'applied',
      refund: (await this.settlement.succeed(m, recorded)) ?? recorded,
    };
  }
}
