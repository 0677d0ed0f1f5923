import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { sql } from '../common/database/sql';
import type { ProviderName } from './providers/payment-provider';

export const PAYMENT_STATUSES = [
  'requires_action',
  'processing',
  'succeeded',
  'failed',
  'canceled',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];
/** A payment the customer may still confirm: at most one per order. */
export const OPEN_PAYMENT_STATUSES: readonly PaymentStatus[] = ['requires_action', 'processing'];

export const REFUND_STATUSES = ['pending', 'succeeded', 'failed'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];
/**
 * How a refund's last attempt ended: not yet, an error answer, no answer at all, or the provider's
 * own refund reported `failed`/`canceled` (final at the provider: a later `succeeded` is stale).
 */
export type AttemptOutcome = 'none' | 'error_answer' | 'no_answer' | 'provider_failed';

export interface Payment {
  id: string;
  orderId: string;
  provider: ProviderName;
  providerPaymentId: string | null;
  status: PaymentStatus;
  amountCents: number;
  currency: string;
  clientSecret: string | null;
  failureReason: string | null;
  reference: string | null;
  createdBy: string | null;
  capturedCents: number | null;
  capturedCurrency: string | null;
  refundReservedCents: number;
  createdAt: Date;
  updatedAt: Date;
}

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

interface RawPayment {
  id: string;
  order_id: string;
  provider: ProviderName;
  provider_payment_id: string | null;
  status: PaymentStatus;
  amount_cents: number;
  currency: string;
  client_secret: string | null;
  failure_reason: string | null;
  reference: string | null;
  created_by: string | null;
  captured_cents: number | null;
  captured_currency: string | null;
  refund_reserved_cents: number;
  created_at: Date;
  updated_at: Date;
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

export const paymentOf = (r: RawPayment): Payment => ({
  id: r.id,
  orderId: r.order_id,
  provider: r.provider,
  providerPaymentId: r.provider_payment_id,
  status: r.status,
  amountCents: r.amount_cents,
  currency: r.currency,
  clientSecret: r.client_secret,
  failureReason: r.failure_reason,
  reference: r.reference,
  createdBy: r.created_by,
  capturedCents: r.captured_cents,
  capturedCurrency: r.captured_currency,
  refundReservedCents: r.refund_reserved_cents,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

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
 * Every SQL statement on `payments`, `refunds` and `payment_provider_events`. The callers hold the
 * order's row lock (every writer of an order locks it first), so these statements never decide alone
 * between two writers of one order; the balance guard is nevertheless one conditional UPDATE, and the
 * schema's CHECKs hold the sums whatever the code does.
 */
@Injectable()
export class PaymentsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  get manager(): EntityManager {
    return this.dataSource.manager;
  }

  async openPaymentOf(
    m: EntityManager,
    orderId: string,
  ): Promise<{ id: string; status: PaymentStatus } | null> {
    const { rows } = await sql<{ id: string; status: PaymentStatus }>(
      m,
      `SELECT id, status FROM payments
        WHERE order_id = $1 AND status IN ('requires_action', 'processing')`,
      [orderId],
    );
    return rows[0] ?? null;
  }

  async insertPayment(
    m: EntityManager,
    p: {
      orderId: string;
      provider: ProviderName;
      status: PaymentStatus;
      amountCents: number;
      currency: string;
      reference?: string | null;
      createdBy: string | null;
      providerPaymentId?: string | null;
    },
  ): Promise<Payment> {
    const succeeded = p.status === 'succeeded';
    const { rows } = await sql<RawPayment>(
      m,
      `INSERT INTO payments (order_id, provider, status, amount_cents, currency, reference, created_by,
                             provider_payment_id, captured_cents, captured_currency)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
      [
        p.orderId,
        p.provider,
        p.status,
        p.amountCents,
        p.currency,
        p.reference ?? null,
        p.createdBy,
        p.providerPaymentId ?? null,
        succeeded ? p.amountCents : null,
        succeeded ? p.currency : null,
      ],
    );
    return paymentOf(rows[0]);
  }

  async findPayment(
    m: EntityManager,
    id: string,
    { lock = false }: { lock?: boolean } = {},
  ): Promise<Payment | null> {
    const { rows } = await sql<RawPayment>(
      m,
      `SELECT * FROM payments WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
      [id],
    );
    return rows.length ? paymentOf(rows[0]) : null;
  }

  async findByProviderId(
    m: EntityManager,
    provider: ProviderName,
    providerPaymentId: string,
  ): Promise<Payment | null> {
    const { rows } = await sql<RawPayment>(
      m,
      'SELECT * FROM payments WHERE provider = $1 AND provider_payment_id = $2',
      [provider, providerPaymentId],
    );
    return rows.length ? paymentOf(rows[0]) : null;
  }

  async listPayments(m: EntityManager, orderId: string): Promise<Payment[]> {
    const { rows } = await sql<RawPayment>(
      m,
      'SELECT * FROM payments WHERE order_id = $1 ORDER BY created_at, id',
      [orderId],
    );
    return rows.map(paymentOf);
  }

  /** What the provider answered when asked to create the payment. */
  async setOpened(
    m: EntityManager,
    id: string,
    opened: { providerPaymentId: string; clientSecret: string | null },
  ): Promise<Payment> {
    const { rows } = await sql<RawPayment>(
      m,
      `UPDATE payments SET provider_payment_id = $2, client_secret = $3, updated_at = clock_timestamp()
        WHERE id = $1 RETURNING *`,
      [id, opened.providerPaymentId, opened.clientSecret],
    );
    return paymentOf(rows[0]);
  }

  /**
   * Moves a payment's status, guarded by where it may come from; null when the guard fails. Leaving
   * the open statuses forgets the client secret. `succeeded` records what was captured.
   */
  async setStatus(
    m: EntityManager,
    id: string,
    to: PaymentStatus,
    from: readonly PaymentStatus[],
    extra: {
      failureReason?: string | null;
      capturedCents?: number;
      capturedCurrency?: string;
    } = {},
  ): Promise<Payment | null> {
    const { rows } = await sql<RawPayment>(
      m,
      `UPDATE payments
          SET status = $2,
              failure_reason = coalesce($4, failure_reason),
              captured_cents = coalesce($5, captured_cents),
              captured_currency = coalesce($6, captured_currency),
              client_secret = CASE WHEN $2 IN ('requires_action', 'processing') THEN client_secret END,
              updated_at = clock_timestamp()
        WHERE id = $1 AND status = ANY($3::text[])
        RETURNING *`,
      [
        id,
        to,
        from,
        extra.failureReason ?? null,
        extra.capturedCents ?? null,
        extra.capturedCurrency ?? null,
      ],
    );
    return rows.length ? paymentOf(rows[0]) : null;
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
    const payment = await this.findPayment(m, paymentId, { lock: true });
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

  /** Records a provider event; false when it was recorded before (applied at most once). */
  async recordProviderEvent(
    m: EntityManager,
    provider: ProviderName,
    eventId: string,
  ): Promise<boolean> {
    const { affected } = await sql(
      m,
      `INSERT INTO payment_provider_events (provider, event_id) VALUES ($1, $2)
       ON CONFLICT DO NOTHING`,
      [provider, eventId],
    );
    return affected === 1;
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
