import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { sql } from '../common/database/sql';

/** An event as the outbox stores it: its body is sent as is, by every relay, on every attempt. */
export interface OutboxEvent {
  id: string;
  type: string;
  orderId: string;
  orderVersion: number;
  occurredAt: string;
  body: string;
  traceparent?: string;
}

/** Writes events into the outbox, inside the caller's (the change's) transaction. */
@Injectable()
export class OutboxRepository {
  /**
   * One statement (the SQL function outbox_append, which place_order uses too): the event row, and a
   * pending delivery for every webhook subscription whose event list names its type (or `*`).
   * Subscriptions made later do not receive earlier events.
   */
  async append(m: EntityManager, event: OutboxEvent): Promise<void> {
    await sql(m, 'SELECT outbox_append($1, $2, $3, $4, $5, $6, $7)', [
      event.id,
      event.type,
      event.orderId,
      event.orderVersion,
      event.body,
      event.traceparent ?? null,
      event.occurredAt,
    ]);
  }

  /**
   * Deletes up to `limit` delivered webhook deliveries settled more than `hours` ago, oldest first.
   * A failed one stays listed until it is redelivered (API.md §8), and keeps its event. SKIP LOCKED: a
   * row another transaction holds is left for next time.
   */
  async purgeSettledDeliveries(m: EntityManager, hours: number, limit: number): Promise<number> {
    const { affected } = await sql(
      m,
      `DELETE FROM webhook_deliveries WHERE id IN (
         SELECT id FROM webhook_deliveries
          WHERE status = 'delivered' AND settled_at < clock_timestamp() - make_interval(hours => $1)
          ORDER BY settled_at
          LIMIT $2
            FOR UPDATE SKIP LOCKED)`,
      [hours, limit],
    );
    return affected;
  }

  /**
   * Deletes up to `limit` payment provider events (the ids of notifications applied, so that each is
   * applied once: API.md §9) received more than `days` ago; `days` is at least 30.
   */
  async purgeProviderEvents(m: EntityManager, days: number, limit: number): Promise<number> {
    const { affected } = await sql(
      m,
      `DELETE FROM payment_provider_events WHERE (provider, event_id) IN (
         SELECT provider, event_id FROM payment_provider_events
          WHERE received_at < clock_timestamp() - make_interval(days => $1)
          ORDER BY received_at LIMIT $2
            FOR UPDATE SKIP LOCKED)`,
      [Math.max(30, days), limit],
    );
    return affected;
  }

  /**
   * Deletes up to `limit` events that occurred more than `hours` ago and that nothing waits for: no
   * webhook delivery left (pending ones, and settled ones still within retention, keep their event),
   * and published to NATS, or before the NATS relay's start (outbox_relays), or `withoutNats` (this
   * instance runs without NATS_URL). SKIP LOCKED: an event a NATS relay is publishing is left alone.
   */
  async purgeHandledEvents(
    m: EntityManager,
    hours: number,
    limit: number,
    withoutNats: boolean,
  ): Promise<number> {
    const { affected } = await sql(
      m,
      `DELETE FROM outbox_events WHERE id IN (
         SELECT e.id FROM outbox_events e
          WHERE e.occurred_at < clock_timestamp() - make_interval(hours => $1)
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)
            AND ($3 OR e.nats_published_at IS NOT NULL
                 OR e.seq <= (SELECT since_seq FROM outbox_relays WHERE name = 'nats'))
          ORDER BY e.occurred_at
          LIMIT $2
            FOR UPDATE OF e SKIP LOCKED)`,
      [hours, limit, withoutNats],
    );
    return affected;
  }
}
