import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The outbox is purged (issue 20): delivered and failed webhook deliveries, and events nothing waits
 * for any more, are deleted once older than OUTBOX_RETENTION_HOURS (src/events/outbox-retention.ts).
 *
 * - `webhook_deliveries.settled_at`: when a delivery became `delivered` or `failed` (NULL while
 *   pending); what retention measures a settled delivery's age by. Existing settled rows take their
 *   delivery time, or for failed ones the time of their last attempt (`next_attempt_at`, which the
 *   final settle set to that moment).
 * - `outbox_relays`: from which event on a bus relay publishes. The NATS relay writes its row when it
 *   first starts, at the outbox's newest event: turning NATS on publishes the events committed from
 *   then on, not the whole history. Where events were already published (NATS was on before this
 *   migration), the row starts at 0, so nothing unpublished is skipped.
 */
export class OutboxRetention1763791000000 implements MigrationInterface {
  name = 'OutboxRetention1763791000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE webhook_deliveries ADD COLUMN settled_at timestamptz`);
    await q.query(`
      UPDATE webhook_deliveries SET settled_at = coalesce(delivered_at, next_attempt_at)
       WHERE status <> 'pending'`);
    await q.query(`
      ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_settled_at_check
        CHECK ((status = 'pending') = (settled_at IS NULL))`);
    // Retention finds old settled deliveries…
    await q.query(
      `CREATE INDEX webhook_deliveries_settled_idx ON webhook_deliveries (settled_at)
         WHERE status <> 'pending'`,
    );
    // …and events with no delivery left (also what deleting an event cascades through)…
    await q.query(`CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id)`);
    // …oldest first.
    await q.query(`CREATE INDEX outbox_events_occurred_idx ON outbox_events (occurred_at)`);

    await q.query(`
      CREATE TABLE outbox_relays (
        name       text        NOT NULL,
        -- Events with a greater seq are this relay's to publish.
        since_seq  bigint      NOT NULL,
        started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        CONSTRAINT outbox_relays_pkey PRIMARY KEY (name),
        CONSTRAINT outbox_relays_name_check CHECK (name IN ('nats'))
      )`);
    await q.query(`
      INSERT INTO outbox_relays (name, since_seq)
      SELECT 'nats', 0 WHERE EXISTS (SELECT 1 FROM outbox_events WHERE nats_published_at IS NOT NULL)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE outbox_relays`);
    await q.query(`DROP INDEX outbox_events_occurred_idx`);
    await q.query(`DROP INDEX webhook_deliveries_event_idx`);
    await q.query(`DROP INDEX webhook_deliveries_settled_idx`);
    await q.query(
      `ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_settled_at_check`,
    );
    await q.query(`ALTER TABLE webhook_deliveries DROP COLUMN settled_at`);
  }
}
