import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Order events leave through a transactional outbox (issue 13): an event row is written in the same
 * transaction as the change, with one delivery row per matching webhook subscription; relays on every
 * instance claim due deliveries (FOR UPDATE SKIP LOCKED, with a lease) and, with NATS_URL, publish
 * events to JetStream (`nats_published_at`).
 */
export class Outbox1763790600000 implements MigrationInterface {
  name = 'Outbox1763790600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE outbox_events (
        id                uuid        NOT NULL,
        -- Commit order, for relays that read the outbox in order.
        seq               bigint      GENERATED ALWAYS AS IDENTITY,
        type              text        NOT NULL,
        order_id          uuid        NOT NULL,
        order_version     integer     NOT NULL,
        -- The event exactly as it is sent ({id, type, occurredAt, data: {order}}): every attempt and
        -- every bus gets the same bytes, so signatures and deduplication hold.
        body              text        NOT NULL,
        -- The W3C traceparent of the request that caused the event, carried to its deliveries.
        traceparent       text,
        occurred_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
        nats_published_at timestamptz,
        CONSTRAINT outbox_events_pkey PRIMARY KEY (id),
        CONSTRAINT outbox_events_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE,
        CONSTRAINT outbox_events_type_check CHECK (type IN ('order.created', 'order.edited',
          'order.paid', 'order.shipped', 'order.delivered', 'order.cancelled', 'order.expired'))
      )`);
    await q.query(
      `CREATE INDEX outbox_events_unpublished_idx ON outbox_events (seq) WHERE nats_published_at IS NULL`,
    );

    await q.query(`
      CREATE TABLE webhook_subscriptions (
        id         uuid        NOT NULL DEFAULT gen_random_uuid(),
        url        text        NOT NULL,
        events     text[]      NOT NULL,
        -- Needed to sign; never returned after creation and never logged.
        secret     text        NOT NULL,
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT webhook_subscriptions_pkey PRIMARY KEY (id),
        CONSTRAINT webhook_subscriptions_events_nonempty CHECK (cardinality(events) > 0)
      )`);

    await q.query(`
      CREATE TABLE webhook_deliveries (
        id              uuid        NOT NULL DEFAULT gen_random_uuid(),
        seq             bigint      GENERATED ALWAYS AS IDENTITY,
        subscription_id uuid        NOT NULL,
        event_id        uuid        NOT NULL,
        order_id        uuid        NOT NULL,
        status          text        NOT NULL DEFAULT 'pending',
        attempts        integer     NOT NULL DEFAULT 0,
        last_status     integer,
        last_error      text,
        next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        -- An attempt in flight: which relay holds it, until when (a crashed relay's lease runs out).
        lease_token     uuid,
        lease_until     timestamptz,
        delivered_at    timestamptz,
        created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
        CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id),
        CONSTRAINT webhook_deliveries_subscription_id_fkey FOREIGN KEY (subscription_id)
          REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
        CONSTRAINT webhook_deliveries_event_id_fkey FOREIGN KEY (event_id)
          REFERENCES outbox_events (id) ON DELETE CASCADE,
        CONSTRAINT webhook_deliveries_once_per_subscription UNIQUE (subscription_id, event_id),
        CONSTRAINT webhook_deliveries_status_check CHECK (status IN ('pending', 'delivered', 'failed')),
        CONSTRAINT webhook_deliveries_attempts_nonnegative CHECK (attempts >= 0)
      )`);
    // What relays claim: due pending deliveries, oldest first…
    await q.query(
      `CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at, seq)
         WHERE status = 'pending'`,
    );
    // …each only once the previous one of its (subscription, order) is settled.
    await q.query(
      `CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (subscription_id, order_id, seq)
         WHERE status = 'pending'`,
    );
    await q.query(
      `CREATE INDEX webhook_deliveries_listing_idx ON webhook_deliveries (subscription_id, seq)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE webhook_deliveries`);
    await q.query(`DROP TABLE webhook_subscriptions`);
    await q.query(`DROP TABLE outbox_events`);
  }
}
