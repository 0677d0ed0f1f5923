import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Money that is real (issue 22, API.md §9, §10): payments confirmed by their provider, refunds carried
 * out after the commit exactly once, provider events applied at most once.
 *
 * - `orders.paid_cents`, `refunded_cents`, `payment_id`: the payment that paid the order, its amount
 *   and the sum of its succeeded refunds (columns, so that a change raises the order's version through
 *   touch_version like every other change of its representation).
 * - `payments`: one row per payment, committed before the provider is asked to create it; at most one
 *   open (`requires_action`, `processing`) per order. `captured_cents` is what the provider said it
 *   received; `refund_reserved_cents` the sum of its refunds that are not `failed`: the balance guard
 *   is one conditional UPDATE of it, and a CHECK holds it between 0 and `captured_cents` whatever the
 *   code does.
 * - `refunds`: recorded `pending` in the deciding transaction and carried out by the refund relay
 *   (lease, SKIP LOCKED, backoff); per refund the attempts, the last idempotency key and how the last
 *   attempt ended (API.md §10).
 * - `payment_provider_events`: each provider event applied once (kept 30 days, OutboxRetention).
 * - history action `revive`; outbox events `payment.*`, `refund.*`.
 */
export class Payments1763791200000 implements MigrationInterface {
  name = 'Payments1763791200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE orders
        ADD COLUMN paid_cents bigint NOT NULL DEFAULT 0,
        ADD COLUMN refunded_cents bigint NOT NULL DEFAULT 0,
        ADD COLUMN payment_id uuid,
        ADD CONSTRAINT orders_paid_nonnegative CHECK (paid_cents >= 0),
        ADD CONSTRAINT orders_refunded_within_paid
          CHECK (refunded_cents >= 0 AND refunded_cents <= paid_cents)`);

    await q.query(`
      CREATE TABLE payments (
        id                    uuid        NOT NULL DEFAULT gen_random_uuid(),
        order_id              uuid        NOT NULL,
        provider              text        NOT NULL,
        provider_payment_id   text,
        status                text        NOT NULL DEFAULT 'requires_action',
        amount_cents          bigint      NOT NULL,
        currency              char(3)     NOT NULL,
        -- Only while open, only for its owner; never in events.
        client_secret         text,
        failure_reason        text,
        -- A manual payment's reference (bank transfer id, receipt number).
        reference             text,
        created_by            uuid,
        -- What the provider said it captured, and in which currency (NULL until it succeeded).
        captured_cents        bigint,
        captured_currency     char(3),
        refund_reserved_cents bigint      NOT NULL DEFAULT 0,
        created_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
        CONSTRAINT payments_pkey PRIMARY KEY (id),
        CONSTRAINT payments_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE,
        CONSTRAINT payments_provider_check CHECK (provider IN ('stripe', 'test', 'manual')),
        CONSTRAINT payments_status_check
          CHECK (status IN ('requires_action', 'processing', 'succeeded', 'failed', 'canceled')),
        CONSTRAINT payments_amount_positive CHECK (amount_cents > 0),
        CONSTRAINT payments_captured_when_succeeded
          CHECK ((status = 'succeeded') = (captured_cents IS NOT NULL AND captured_currency IS NOT NULL)),
        CONSTRAINT payments_refunds_within_captured
          CHECK (refund_reserved_cents >= 0 AND refund_reserved_cents <= coalesce(captured_cents, 0)),
        CONSTRAINT payments_provider_payment_key UNIQUE (provider, provider_payment_id)
      )`);
    await q.query(`
      CREATE UNIQUE INDEX payments_one_open_per_order ON payments (order_id)
        WHERE status IN ('requires_action', 'processing')`);
    await q.query(`CREATE INDEX payments_order_idx ON payments (order_id, created_at)`);
    await q.query(`
      ALTER TABLE orders ADD CONSTRAINT orders_payment_id_fkey
        FOREIGN KEY (payment_id) REFERENCES payments (id)`);

    await q.query(`
      CREATE TABLE refunds (
        id                uuid        NOT NULL DEFAULT gen_random_uuid(),
        order_id          uuid        NOT NULL,
        payment_id        uuid        NOT NULL,
        amount_cents      bigint      NOT NULL,
        currency          char(3)     NOT NULL,
        reason            text        NOT NULL,
        status            text        NOT NULL DEFAULT 'pending',
        provider_refund_id text,
        attempts          integer     NOT NULL DEFAULT 0,
        -- The idempotency key the last attempt used, and how it ended (API.md §10).
        last_key          text,
        last_outcome      text        NOT NULL DEFAULT 'none',
        last_error        text,
        next_attempt_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
        -- The provider accepted it and will say how it ends (a notification): the relay is done.
        submitted_at      timestamptz,
        lease_token       uuid,
        lease_until       timestamptz,
        created_by        uuid,
        created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
        CONSTRAINT refunds_pkey PRIMARY KEY (id),
        CONSTRAINT refunds_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE,
        CONSTRAINT refunds_payment_id_fkey FOREIGN KEY (payment_id) REFERENCES payments (id) ON DELETE CASCADE,
        CONSTRAINT refunds_amount_positive CHECK (amount_cents > 0),
        CONSTRAINT refunds_reason_length CHECK (char_length(reason) BETWEEN 1 AND 500),
        CONSTRAINT refunds_status_check CHECK (status IN ('pending', 'succeeded', 'failed')),
        CONSTRAINT refunds_last_outcome_check
          CHECK (last_outcome IN ('none', 'error_answer', 'no_answer', 'provider_failed')),
        CONSTRAINT refunds_attempts_nonnegative CHECK (attempts >= 0),
        CONSTRAINT refunds_provider_refund_key UNIQUE (provider_refund_id)
      )`);
    await q.query(`CREATE INDEX refunds_payment_idx ON refunds (payment_id, created_at)`);
    await q.query(`CREATE INDEX refunds_order_idx ON refunds (order_id, created_at)`);
    await q.query(`
      CREATE INDEX refunds_due_idx ON refunds (next_attempt_at)
        WHERE status = 'pending' AND submitted_at IS NULL`);

    await q.query(`
      CREATE TABLE payment_provider_events (
        provider    text        NOT NULL,
        event_id    text        NOT NULL,
        received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        CONSTRAINT payment_provider_events_pkey PRIMARY KEY (provider, event_id)
      )`);
    await q.query(
      `CREATE INDEX payment_provider_events_received_idx ON payment_provider_events (received_at)`,
    );

    await q.query(`ALTER TABLE order_history DROP CONSTRAINT order_history_action_check`);
    await q.query(`
      ALTER TABLE order_history ADD CONSTRAINT order_history_action_check
        CHECK (action IN ('place', 'pay', 'ship', 'deliver', 'cancel', 'expire', 'revive', 'edit'))`);
    await q.query(`ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_type_check`);
    await q.query(`
      ALTER TABLE outbox_events ADD CONSTRAINT outbox_events_type_check CHECK (type IN (
        'order.created', 'order.edited', 'order.paid', 'order.shipped', 'order.delivered',
        'order.cancelled', 'order.expired',
        'payment.succeeded', 'payment.failed', 'refund.succeeded', 'refund.failed'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM outbox_events WHERE type LIKE 'payment.%' OR type LIKE 'refund.%'`);
    await q.query(`ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_type_check`);
    await q.query(`
      ALTER TABLE outbox_events ADD CONSTRAINT outbox_events_type_check CHECK (type IN ('order.created', 'order.edited',
          'order.paid', 'order.shipped', 'order.delivered', 'order.cancelled', 'order.expired'))`);
    await q.query(`UPDATE order_history SET action = 'pay' WHERE action = 'revive'`);
    await q.query(`ALTER TABLE order_history DROP CONSTRAINT order_history_action_check`);
    await q.query(`
      ALTER TABLE order_history ADD CONSTRAINT order_history_action_check
         CHECK (action IN ('place', 'pay', 'ship', 'deliver', 'cancel', 'expire', 'edit'))`);
    await q.query(`DROP TABLE payment_provider_events`);
    await q.query(`DROP TABLE refunds`);
    await q.query(`ALTER TABLE orders DROP CONSTRAINT orders_payment_id_fkey`);
    await q.query(`DROP TABLE payments`);
    await q.query(`
      ALTER TABLE orders DROP CONSTRAINT orders_refunded_within_paid,
        DROP CONSTRAINT orders_paid_nonnegative,
        DROP COLUMN payment_id, DROP COLUMN refunded_cents, DROP COLUMN paid_cents`);
  }
}
