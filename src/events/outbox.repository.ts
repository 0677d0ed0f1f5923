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
   * One statement: the event row, and a pending delivery for every webhook subscription whose event
   * list names its type (or `*`). Subscriptions made later do not receive earlier events.
   */
  async append(m: EntityManager, event: OutboxEvent): Promise<void> {
    await sql(
      m,
      `WITH e AS (
         INSERT INTO outbox_events (id, type, order_id, order_version, body, traceparent, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, type, order_id)
       INSERT INTO webhook_deliveries (subscription_id, event_id, order_id)
       SELECT s.id, e.id, e.order_id FROM e JOIN webhook_subscriptions s
           ON e.type = ANY(s.events) OR '*' = ANY(s.events)
        ORDER BY s.id`,
      [
        event.id,
        event.type,
        event.orderId,
        event.orderVersion,
        event.body,
        event.traceparent ?? null,
        event.occurredAt,
      ],
    );
  }
}
