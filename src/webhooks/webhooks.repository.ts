import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { pageOfRows, sql } from '../common/database/sql';

export interface SubscriptionRow {
  id: string;
  url: string;
  events: string[];
  created_at: Date;
}

export interface DeliveryRow {
  id: string;
  event_id: string;
  type: string;
  order_id: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  next_attempt_at: Date;
}

/** A delivery a relay has claimed: what it needs to make one attempt. */
export interface ClaimedDelivery {
  id: string;
  subscription_id: string;
  event_id: string;
  attempts: number;
  url: string;
  secret: string;
  body: string;
  type: string;
  traceparent: string | null;
}

const SUBSCRIPTION_COLUMNS = 'id, url, events, created_at';

/** Every SQL statement on webhook subscriptions and deliveries. */
@Injectable()
export class WebhooksRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  private get m(): EntityManager {
    return this.dataSource.manager;
  }

  async insert(url: string, events: string[], secret: string, createdBy: string) {
    const { rows } = await sql<SubscriptionRow>(
      this.m,
      `INSERT INTO webhook_subscriptions (url, events, secret, created_by) VALUES ($1, $2, $3, $4)
       RETURNING ${SUBSCRIPTION_COLUMNS}`,
      [url, events, secret, createdBy],
    );
    return rows[0];
  }

  /** A page of subscriptions, oldest first, and how many there are. */
  list(limit: number, offset: number): Promise<{ rows: SubscriptionRow[]; total: number }> {
    return pageOfRows<SubscriptionRow>(this.m, {
      columns: SUBSCRIPTION_COLUMNS,
      from: 'FROM webhook_subscriptions',
      orderBy: 'created_at, id',
      limit,
      offset,
    });
  }

  async find(id: string): Promise<SubscriptionRow | undefined> {
    return (
      await sql<SubscriptionRow>(
        this.m,
        `SELECT ${SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1`,
        [id],
      )
    ).rows[0];
  }

  async delete(id: string): Promise<boolean> {
    return (
      (await sql(this.m, 'DELETE FROM webhook_subscriptions WHERE id = $1', [id])).affected > 0
    );
  }

  /** A page of a subscription's deliveries, oldest first, and how many it has in all. */
  deliveries(subscriptionId: string, limit: number, offset: number) {
    return pageOfRows<DeliveryRow>(this.m, {
      columns: `d.id, d.event_id, e.type, d.order_id, d.status, d.attempts, d.last_status,
                d.last_error, d.next_attempt_at`,
      from: `FROM webhook_deliveries d JOIN outbox_events e ON e.id = d.event_id
        WHERE d.subscription_id = $1`,
      orderBy: 'd.seq',
      parameters: [subscriptionId],
      limit,
      offset,
    });
  }

  async findDelivery(subscriptionId: string, deliveryId: string) {
    return (
      await sql<{ status: DeliveryRow['status'] }>(
        this.m,
        'SELECT status FROM webhook_deliveries WHERE id = $1 AND subscription_id = $2',
        [deliveryId, subscriptionId],
      )
    ).rows[0];
  }

  /** A failed delivery back in the queue, due now, with a fresh budget of attempts. */
  async requeueFailed(subscriptionId: string, deliveryId: string): Promise<boolean> {
    const { affected } = await sql(
      this.m,
      `UPDATE webhook_deliveries
          SET status = 'pending', attempts = 0, next_attempt_at = clock_timestamp(),
              settled_at = NULL, lease_token = NULL, lease_until = NULL
        WHERE id = $1 AND subscription_id = $2 AND status = 'failed'`,
      [deliveryId, subscriptionId],
    );
    return affected > 0;
  }

  /**
   * Claims up to `limit` due deliveries for one attempt each, in one statement: pending, due, not
   * leased by a live relay, and the earliest pending one of its (subscription, order), so an order's
   * next event waits until the previous one is delivered or failed. SKIP LOCKED keeps relays on
   * several instances off each other's rows; the lease keeps the claim for `leaseSeconds`, after
   * which a crashed relay's claim is due again. The attempt is counted now. `skipSubscriptions`: those
   * the caller has at its cap of attempts in flight.
   */
  async claim(
    limit: number,
    leaseToken: string,
    leaseSeconds: number,
    skipSubscriptions: string[] = [],
  ): Promise<ClaimedDelivery[]> {
    const { rows } = await sql<ClaimedDelivery>(
      this.m,
      `WITH due AS (
         SELECT d.id FROM webhook_deliveries d
          WHERE d.status = 'pending' AND d.next_attempt_at <= clock_timestamp()
            AND (d.lease_until IS NULL OR d.lease_until < clock_timestamp())
            AND d.subscription_id <> ALL($4::uuid[])
            AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries p
               WHERE p.subscription_id = d.subscription_id AND p.order_id = d.order_id
                 AND p.status = 'pending' AND p.seq < d.seq)
          ORDER BY d.next_attempt_at, d.seq
          LIMIT $1
          FOR UPDATE SKIP LOCKED)
       UPDATE webhook_deliveries d
          SET lease_token = $2, lease_until = clock_timestamp() + make_interval(secs => $3),
              attempts = d.attempts + 1
         FROM due, webhook_subscriptions s, outbox_events e
        WHERE d.id = due.id AND s.id = d.subscription_id AND e.id = d.event_id
        RETURNING d.id, d.subscription_id, d.event_id, d.attempts, s.url, s.secret, e.body, e.type,
                  e.traceparent`,
      [limit, leaseToken, leaseSeconds, skipSubscriptions],
    );
    return rows;
  }

  /** The outcome of an attempt, written only while the claim is still this relay's. */
  async settle(
    id: string,
    leaseToken: string,
    outcome:
      | { kind: 'delivered'; status: number }
      | { kind: 'retry'; status: number | null; error: string; delaySeconds: number }
      | { kind: 'failed'; status: number | null; error: string },
  ): Promise<void> {
    if (outcome.kind === 'delivered') {
      await sql(
        this.m,
        `UPDATE webhook_deliveries
            SET status = 'delivered', delivered_at = clock_timestamp(),
                settled_at = clock_timestamp(), last_status = $3,
                last_error = NULL, lease_token = NULL, lease_until = NULL
          WHERE id = $1 AND lease_token = $2`,
        [id, leaseToken, outcome.status],
      );
      return;
    }
    await sql(
      this.m,
      `UPDATE webhook_deliveries
          SET status = $3, last_status = $4, last_error = $5,
              next_attempt_at = clock_timestamp() + make_interval(secs => $6),
              settled_at = CASE WHEN $3 = 'failed' THEN clock_timestamp() END,
              lease_token = NULL, lease_until = NULL
        WHERE id = $1 AND lease_token = $2`,
      [
        id,
        leaseToken,
        outcome.kind === 'retry' ? 'pending' : 'failed',
        outcome.status,
        outcome.error.slice(0, 500),
        outcome.kind === 'retry' ? outcome.delaySeconds : 0,
      ],
    );
  }

  /** Seconds since the oldest event that still has a delivery pending (0: none). */
  async oldestUndeliveredSeconds(): Promise<number> {
    const { rows } = await sql<{ seconds: number | null }>(
      this.m,
      `SELECT extract(epoch FROM clock_timestamp() - min(e.occurred_at))::float8 AS seconds
         FROM webhook_deliveries d JOIN outbox_events e ON e.id = d.event_id
        WHERE d.status = 'pending'`,
    );
    return rows[0]?.seconds ?? 0;
  }

  get manager(): EntityManager {
    return this.m;
  }
}
