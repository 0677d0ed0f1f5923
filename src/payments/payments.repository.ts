import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { prepared, sql } from '../common/database/sql';
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

/** A payment's success applied in one statement when it pays a live order (sql/apply_payment_succeeded.sql). */
const APPLY_SUCCEEDED = prepared(
  'apply_payment_succeeded',
  'SELECT apply_payment_succeeded($1, $2, $3::uuid, $4, $5::bigint, $6, $7::text[], $8, $9::uuid, $10::uuid) AS answer',
);

/** What apply_payment_succeeded answers; null: not the common case, nothing written. */
export type SucceededAtOnce = { applied: Payment } | { duplicate: Payment } | null;

/** A payment row as row_to_json writes it: timestamps as text. */
type RawJsonPayment = Omit<RawPayment, 'created_at' | 'updated_at'> & {
  created_at: string;
  updated_at: string;
};
const paymentOfJson = (r: RawJsonPayment): Payment =>
  paymentOf({ ...r, created_at: new Date(r.created_at), updated_at: new Date(r.updated_at) });

/**
 * Every SQL statement on `payments` and `payment_provider_events` (refunds: RefundsRepository). The callers hold the
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

  /**
   * A provider's "succeeded" for an open payment of a live pending order, in one statement and one
   * round trip: locks, decision, event id, payment, order, history and both events
   * (sql/apply_payment_succeeded.sql). Null when it is not that case: nothing was written, the full
   * path decides.
   */
  async applySucceededAtOnce(
    m: EntityManager,
    provider: ProviderName,
    n: {
      eventId: string;
      paymentId: string | null;
      providerPaymentId: string;
      cents: number;
      currency: string;
    },
    ownerActions: readonly string[],
    traceparent: string | null,
    eventIds: { order: string; payment: string },
  ): Promise<SucceededAtOnce> {
    const { rows } = await sql<{ answer: Record<string, RawJsonPayment> | null }>(
      m,
      APPLY_SUCCEEDED,
      [
        provider,
        n.eventId,
        n.paymentId,
        n.providerPaymentId,
        n.cents,
        n.currency,
        ownerActions,
        traceparent,
        eventIds.order,
        eventIds.payment,
      ],
    );
    const answer = rows[0]?.answer;
    if (!answer) return null;
    if (answer.duplicate) return { duplicate: paymentOfJson(answer.duplicate) };
    return { applied: paymentOfJson(answer.payment) };
  }
}
