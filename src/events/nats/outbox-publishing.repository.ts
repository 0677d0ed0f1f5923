import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { sql } from '../../common/database/sql';

/** An outbox event claimed for publishing to NATS. */
export interface ClaimedEvent {
  id: string;
  /** bigint: kept as the string PostgreSQL sends. */
  seq: string;
  type: string;
  orderId: string;
  body: string;
  traceparent: string | null;
  /**
   * False when an earlier event of the same order is still unpublished outside this claim (another
   * relay holds it): publishing this one now could overtake it, so it waits for a later claim.
   */
  ready: boolean;
}

interface RawClaimedEvent {
  id: string;
  seq: string;
  type: string;
  order_id: string;
  body: string;
  traceparent: string | null;
  ready: boolean;
}

/** Every SQL statement of the NATS relay on `outbox_events` (the outbox's writes are OutboxRepository's). */
@Injectable()
export class OutboxPublishingRepository {
  /**
   * Locks the first `limit` unpublished events in commit order that no other relay holds (SKIP
   * LOCKED: relays on several instances never wait for or take each other's rows). The locks last
   * until the caller's transaction ends, so an event is published by one relay at a time, and a relay
   * that dies before committing leaves its events unpublished for the next claim.
   *
   * SKIP LOCKED alone would let a relay overtake another on one order: A holds `order.created` (seq
   * 7), B skips it and claims `order.paid` (seq 8) of the same order, and B's publish may land first.
   * So an event is `ready` only when no earlier event of its order is unpublished outside this claim.
   * Per order, seq order is commit order (every change of an order locks its row, and the creating
   * transaction is the only one that sees a new order), so no earlier event can still appear later.
   * The scan of earlier unpublished events stays within the unpublished backlog (the partial index).
   *
   * Only events after the relay's start (markStart) are claimed: without that row, none.
   */
  async claim(m: EntityManager, limit: number): Promise<ClaimedEvent[]> {
    const { rows } = await sql<RawClaimedEvent>(
      m,
      `WITH claimed AS MATERIALIZED (
         SELECT id, seq, type, order_id, body, traceparent
           FROM outbox_events
          WHERE nats_published_at IS NULL
            AND seq > (SELECT since_seq FROM outbox_relays WHERE name = 'nats')
          ORDER BY seq
          LIMIT $1
            FOR UPDATE SKIP LOCKED)
       SELECT c.id, c.seq, c.type, c.order_id, c.body, c.traceparent,
              NOT EXISTS (
                SELECT 1 FROM outbox_events e
                 WHERE e.nats_published_at IS NULL
                   AND e.seq < c.seq
                   AND e.seq > (SELECT since_seq FROM outbox_relays WHERE name = 'nats')
                   AND e.order_id = c.order_id
                   AND e.id NOT IN (SELECT id FROM claimed)) AS ready
         FROM claimed c
        ORDER BY c.seq`,
      [limit],
    );
    return rows.map((r) => ({
      id: r.id,
      seq: r.seq,
      type: r.type,
      orderId: r.order_id,
      body: r.body,
      traceparent: r.traceparent,
      ready: r.ready,
    }));
  }

  /** Whether where publishing starts is written already (markStart). */
  async startMarked(m: EntityManager): Promise<boolean> {
    const { rows } = await sql(m, `SELECT 1 FROM outbox_relays WHERE name = 'nats'`);
    return rows.length > 0;
  }

  /**
   * Where publishing starts, written once, by the first relay ever started (later starts, on any
   * instance, keep it): after the outbox's newest event. Turning NATS on publishes the events
   * committed from then on, not the history the outbox kept while NATS was off. `m` is a
   * transaction: the SHARE lock waits for every transaction still writing events (an event can
   * take a lower `seq` than one already committed and commit after it) and holds new ones back
   * until the mark is written, so no event commits below the mark after it was taken.
   */
  async markStart(m: EntityManager): Promise<void> {
    await sql(m, 'LOCK TABLE outbox_events IN SHARE MODE');
    await sql(
      m,
      `INSERT INTO outbox_relays (name, since_seq)
       SELECT 'nats', coalesce(max(seq), 0) FROM outbox_events
       ON CONFLICT (name) DO NOTHING`,
    );
  }

  /** Marks events JetStream acknowledged (stored or already stored) as published. */
  async markPublished(m: EntityManager, ids: string[]): Promise<number> {
    if (!ids.length) return 0;
    const { affected } = await sql(
      m,
      `UPDATE outbox_events SET nats_published_at = clock_timestamp()
        WHERE id = ANY($1::uuid[]) AND nats_published_at IS NULL`,
      [ids],
    );
    return affected;
  }
}
