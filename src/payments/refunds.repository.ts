import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { sql } from '../common/database/sql';
import { PaymentsRepository } from './payments.repository';
import type { ProviderName } from './providers/payment-provider';

export const REFUND_STATUSES = ['pending', 'succeeded', 'failed'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];
/**
 * How a refund's last attempt ended: not yet, an error answer, no answer at all, or the provider's
 * own refund reported `failed`/`canceled` (final at the provider: a later `succeeded` is stale).
 */
export type AttemptOutcome = 'none' | 'error_answer' | 'no_answer' | 'provider_failed';

export interface Refund {
  id: string;
  orderId: string;
  paymentId: string;
  amountCents: number;
  currency: string;
  reason: string;
  status: RefundStatus;
  providerRefundId: string | null;
  attempts: number;
  lastKey: string | null;
  lastOutcome: AttemptOutcome;
  lastError: string | null;
  nextAttemptAt: Date;
  submittedAt: Date | null;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A refund the relay claimed, with what the provider needs. */
export interface ClaimedRefund extends Refund {
  provider: ProviderName;
  providerPaymentId: string;
}

interface RawRefund {
  id: string;
  order_id: string;
  payment_id: string;
  amount_cents: number;
  currency: string;
  reason: string;
  status: RefundStatus;
  provider_refund_id: string | null;
  attempts: number;
  last_key: string | null;
  last_outcome: AttemptOutcome;
  last_error: string | null;
  next_attempt_at: Date;
  submitted_at: Date | null;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

export const refundOf = (r: RawRefund): Refund => ({
  id: r.id,
  orderId: r.order_id,
  paymentId: r.payment_id,
  amountCents: r.amount_cents,
  currency: r.currency,
  reason: r.reason,
  status: r.status,
  providerRefundId: r.provider_refund_id,
  attempts: r.attempts,
  lastKey: r.last_key,
  lastOutcome: r.last_outcome,
  lastError: r.last_error,
  nextAttemptAt: r.next_attempt_at,
  submittedAt: r.submitted_at,
  createdBy: r.created_by,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/**
 * Every SQL statement on `refunds`, and the payment's refund balance (its reserved sum, the guard)
 * and the order's refunded sum that move with them. The callers hold the order's row lock (every
 * writer of an order locks it first); the balance guard is nevertheless one conditional UPDATE,
 * and the schema's CHECKs hold the sums whatever the code does.
 */
@Injectable()
export class RefundsRepository {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly payments: PaymentsRepository,
  ) {}

  get manager(): EntityManager {
    return this.dataSource.manager;
  }

  /**
   * The balance guard, one conditional write: reserves `cents` of the payment's captured amount for a
   * refund only if that many are left (captured − refunds not failed). Of concurrent refunds whose
   * sum exceeds the balance, exactly those that fit get through. Returns what is left after it, or
   * null (nothing reserved) with what was refundable.
   */
  async reserveRefund(
    m: EntityManager,
    paymentId: string,
    cents: number,
  ): Promise<{ reserved: true } | { reserved: false; refundableCents: number }> {
    const { rows } = await sql(
      m,
      `UPDATE payments SET refund_reserved_cents = refund_reserved_cents + $2,
                           updated_at = clock_timestamp()
        WHERE id = $1 AND status = 'succeeded' AND refund_reserved_cents + $2 <= captured_cents
        RETURNING id`,
      [paymentId, cents],
    );
    if (rows.length) return { reserved: true };
    const { rows: left } = await sql<{ refundable: number | null }>(
      m,
      'SELECT captured_cents - refund_reserved_cents AS refundable FROM payments WHERE id = $1',
      [paymentId],
    );
    return { reserved: false, refundableCents: Math.max(0, left[0]?.refundable ?? 0) };
  }
  /** A refund that failed gives its amount back to the balance. */
  async releaseRefund(m: EntityManager, paymentId: string, cents: number): Promise<void> {
    await sql(
      m,
      `UPDATE payments SET refund_reserved_cents = refund_reserved_cents - $2,
                           updated_at = clock_timestamp()
        WHERE id = $1`,
      [paymentId, cents],
    );
  }
  async insertRefund(
    m: EntityManager,
    r: {
      orderId: string;
      paymentId: string;
      amountCents: number;
      currency: string;
      reason: string;
      createdBy: string | null;
      status?: RefundStatus;
      providerRefundId?: string | null;
      submitted?: boolean;
    },
  ): Promise<Refund> {
    const { rows } = await sql<RawRefund>(
      m,
      `INSERT INTO refunds (order_id, payment_id, amount_cents, currency, reason, created_by, status,
                            provider_refund_id, submitted_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN clock_timestamp() END)
       RETURNING *`,
      [
        r.orderId,
        r.paymentId,
        r.amountCents,
        r.currency,
        r.reason,
        r.createdBy,
        r.status ?? 'pending',
        r.providerRefundId ?? null,
        r.submitted ?? false,
      ],
    );
    return refundOf(rows[0]);
  }
  /**
   * Owes the whole remaining balance of a payment back (a cancelled paid order, unwanted money): one
   * `pending` refund, carried out after the commit by the refund relay. Nothing when nothing is left.
   * The caller holds the order's row lock; the payment's row is locked here.
   */
  async oweFullRefund(
    m: EntityManager,
    paymentId: string,
    reason: string,
    actorId: string | null,
  ): Promise<Refund | null> {
    const payment = await this.payments.findPayment(m, paymentId, { lock: true });
    if (!payment || payment.status !== 'succeeded') return null;
    const owed = payment.capturedCents! - payment.refundReservedCents;
    if (owed <= 0) return null;
    const guard = await this.reserveRefund(m, paymentId, owed);
    if (!guard.reserved) return null;
    return this.insertRefund(m, {
      orderId: payment.orderId,
      paymentId,
      amountCents: owed,
      currency: payment.capturedCurrency!,
      reason,
      createdBy: actorId,
    });
  }
  async findRefund(
    m: EntityManager,
    id: string,
    { lock = false }: { lock?: boolean } = {},
  ): Promise<Refund | null> {
    const { rows } = await sql<RawRefund>(
      m,
      `SELECT * FROM refunds WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
      [id],
    );
    return rows.length ? refundOf(rows[0]) : null;
  }
  async findRefundByProviderId(m: EntityManager, providerRefundId: string): Promise<Refund | null> {
    const { rows } = await sql<RawRefund>(
      m,
      'SELECT * FROM refunds WHERE provider_refund_id = $1',
      [providerRefundId],
    );
    return rows.length ? refundOf(rows[0]) : null;
  }
  async listRefunds(m: EntityManager, orderId: string): Promise<Refund[]> {
    const { rows } = await sql<RawRefund>(
      m,
      'SELECT * FROM refunds WHERE order_id = $1 ORDER BY created_at, id',
      [orderId],
    );
    return rows.map(refundOf);
  }
  /** Settles a refund, guarded by its status (and the relay's lease, when given); null if lost. */
  async settleRefund(
    m: EntityManager,
    id: string,
    from: readonly RefundStatus[],
    change: {
      status: RefundStatus;
      providerRefundId?: string | null;
      lastKey?: string | null;
      lastOutcome?: AttemptOutcome;
      lastError?: string | null;
      submitted?: boolean;
      nextAttemptAt?: Date;
      lease?: string;
    },
  ): Promise<Refund | null> {
    const { rows } = await sql<RawRefund>(
      m,
      `UPDATE refunds
          SET status = $2,
              provider_refund_id = coalesce($4, provider_refund_id),
              last_key = coalesce($5, last_key),
              last_outcome = coalesce($6, last_outcome),
              last_error = CASE WHEN $2 = 'succeeded' THEN NULL ELSE coalesce($7, last_error) END,
              submitted_at = CASE WHEN $8 THEN coalesce(submitted_at, clock_timestamp())
                                  ELSE submitted_at END,
              next_attempt_at = coalesce($9, next_attempt_at),
              lease_token = NULL, lease_until = NULL,
              updated_at = clock_timestamp()
        WHERE id = $1 AND status = ANY($3::text[]) AND ($10::uuid IS NULL OR lease_token = $10)
        RETURNING *`,
      [
        id,
        change.status,
        from,
        change.providerRefundId ?? null,
        change.lastKey ?? null,
        change.lastOutcome ?? null,
        change.lastError ?? null,
        change.submitted ?? false,
        change.nextAttemptAt ?? null,
        change.lease ?? null,
      ],
    );
    return rows.length ? refundOf(rows[0]) : null;
  }
  /** `retry` of a failed refund: pending again, attempts reset, due now. */
  async resetRefund(m: EntityManager, id: string): Promise<Refund | null> {
    const { rows } = await sql<RawRefund>(
      m,
      `UPDATE refunds
          SET status = 'pending', attempts = 0, last_error = NULL, submitted_at = NULL,
              -- Anything sent before: list first and take a new key, never replay an old answer.
              last_outcome = CASE WHEN last_key IS NULL THEN 'none' ELSE 'error_answer' END,
              next_attempt_at = clock_timestamp(), lease_token = NULL, lease_until = NULL,
              updated_at = clock_timestamp()
        WHERE id = $1 AND status = 'failed'
        RETURNING *`,
      [id],
    );
    return rows.length ? refundOf(rows[0]) : null;
  }
  /**
   * Claims due refunds for one relay attempt each (SKIP LOCKED: one instance per attempt; the lease
   * brings a crashed relay's claim back once it runs out). The attempt is counted here, so a relay
   * that keeps dying on one refund still ends it `failed`.
   */
  async claimDue(lease: string, leaseSeconds: number, limit: number): Promise<ClaimedRefund[]> {
    const { rows } = await sql<RawRefund & { provider: ProviderName; provider_payment_id: string }>(
      this.manager,
      `UPDATE refunds r
          SET attempts = r.attempts + 1, lease_token = $1,
              lease_until = clock_timestamp() + make_interval(secs => $2),
              updated_at = clock_timestamp()
         FROM payments p
        WHERE p.id = r.payment_id
          AND r.id IN (
            SELECT d.id FROM refunds d JOIN payments dp ON dp.id = d.payment_id
             WHERE d.status = 'pending' AND d.submitted_at IS NULL
               AND dp.provider <> 'manual'
               AND d.next_attempt_at <= clock_timestamp()
               AND (d.lease_until IS NULL OR d.lease_until < clock_timestamp())
             ORDER BY d.next_attempt_at
             LIMIT $3
               FOR UPDATE OF d SKIP LOCKED)
        RETURNING r.*, p.provider, p.provider_payment_id`,
      [lease, leaseSeconds, limit],
    );
    return rows.map((r) => ({
      ...refundOf(r),
      provider: r.provider,
      providerPaymentId: r.provider_payment_id,
    }));
  }
  /** Refunds waiting (pending) and given up (failed): the operator's gauge. */
  async refundCounts(): Promise<{ pending: number; failed: number }> {
    const { rows } = await sql<{ pending: number; failed: number }>(
      this.manager,
      `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
              count(*) FILTER (WHERE status = 'failed')::int AS failed
         FROM refunds WHERE status <> 'succeeded'`,
    );
    return rows[0] ?? { pending: 0, failed: 0 };
  }
  /** The order's refunded sum moves with its paying payment's succeeded refunds (its version too). */
  async addRefunded(m: EntityManager, orderId: string, paymentId: string, cents: number) {
    const { rows } = await sql(
      m,
      `UPDATE orders SET refunded_cents = refunded_cents + $3
        WHERE id = $1 AND payment_id = $2 RETURNING id`,
      [orderId, paymentId, cents],
    );
    return rows.length > 0;
  }
}
