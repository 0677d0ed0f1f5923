import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateOrders1763790200000 implements MigrationInterface {
  name = 'CreateOrders1763790200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE orders (
        id          uuid        NOT NULL DEFAULT gen_random_uuid(),
        user_id     uuid        NOT NULL,
        status      text        NOT NULL DEFAULT 'pending',
        total_cents bigint      NOT NULL,
        currency    char(3)     NOT NULL,
        version     integer     NOT NULL DEFAULT 1,
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT orders_pkey PRIMARY KEY (id),
        -- An account with orders cannot be deleted: its orders are history.
        CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE RESTRICT,
        CONSTRAINT orders_status_check
          CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
        CONSTRAINT orders_total_nonnegative CHECK (total_cents >= 0),
        CONSTRAINT orders_version_positive CHECK (version > 0)
      )`);
    await q.query(`CREATE INDEX orders_user_id_created_at_idx ON orders (user_id, created_at, id)`);
    await q.query(`CREATE INDEX orders_created_at_idx ON orders (created_at, id)`);

    await q.query(`
      CREATE TABLE order_items (
        order_id         uuid     NOT NULL,
        line_no          smallint NOT NULL,
        product_id       uuid     NOT NULL,
        sku              text     NOT NULL,
        name             text     NOT NULL,
        unit_price_cents integer  NOT NULL,
        quantity         integer  NOT NULL,
        CONSTRAINT order_items_pkey PRIMARY KEY (order_id, line_no),
        CONSTRAINT order_items_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE,
        -- A product that orders reference cannot be deleted (deactivate it instead).
        CONSTRAINT order_items_product_id_fkey FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE RESTRICT,
        CONSTRAINT order_items_one_line_per_product UNIQUE (order_id, product_id),
        CONSTRAINT order_items_quantity_positive CHECK (quantity > 0),
        CONSTRAINT order_items_price_nonnegative CHECK (unit_price_cents >= 0)
      )`);
    await q.query(`CREATE INDEX order_items_product_id_idx ON order_items (product_id)`);

    await q.query(`
      CREATE TABLE order_events (
        id          bigint      GENERATED ALWAYS AS IDENTITY,
        order_id    uuid        NOT NULL,
        from_status text,
        to_status   text        NOT NULL,
        -- No foreign key: the audit trail keeps the actor's id even if that account goes away.
        actor_id    uuid        NOT NULL,
        at          timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT order_events_pkey PRIMARY KEY (id),
        CONSTRAINT order_events_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX order_events_order_id_idx ON order_events (order_id, id)`);

    await q.query(`
      CREATE TABLE idempotency_keys (
        user_id          uuid        NOT NULL,
        key              text        NOT NULL,
        fingerprint      text        NOT NULL,
        method           text        NOT NULL,
        path             text        NOT NULL,
        -- NULL until the outcome is stored, which happens in the same transaction as the effect.
        response         jsonb,
        created_at       timestamptz NOT NULL DEFAULT now(),
        expires_at       timestamptz NOT NULL,
        CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, key),
        CONSTRAINT idempotency_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE idempotency_keys`);
    await q.query(`DROP TABLE order_events`);
    await q.query(`DROP TABLE order_items`);
    await q.query(`DROP TABLE orders`);
  }
}
