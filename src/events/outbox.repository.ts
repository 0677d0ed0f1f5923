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
}
