import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The hardening round (issue 10):
 * - versions and timestamps move in the database, on every update of a versioned row: +1 on the
 *   version, `updated_at` from the clock (never the transaction's start, and never backwards), and
 *   `previous_updated_at` kept so that If-Unmodified-Since can tell when one second held two versions;
 * - stock is bigint without the 1e9 cap, so that returning held units to stock always succeeds (the
 *   cap on what an admin may set stays in validation);
 * - the history records the action, and is named for what it is (the outbox comes later).
 */
export class Hardening1763790400000 implements MigrationInterface {
  name = 'Hardening1763790400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION touch_version() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        NEW.version := OLD.version + 1;
        NEW.previous_updated_at := OLD.updated_at;
        NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at + interval '1 microsecond');
        RETURN NEW;
      END $$`);
    for (const table of ['users', 'products', 'orders']) {
      await q.query(`ALTER TABLE ${table} ADD COLUMN previous_updated_at timestamptz`);
      await q.query(
        `CREATE TRIGGER ${table}_touch_version BEFORE UPDATE ON ${table}
           FOR EACH ROW EXECUTE FUNCTION touch_version()`,
      );
    }

    await q.query(`ALTER TABLE products DROP CONSTRAINT products_stock_max`);
    await q.query(`ALTER TABLE products ALTER COLUMN stock TYPE bigint`);

    await q.query(`ALTER TABLE order_events RENAME TO order_history`);
    await q.query(`ALTER SEQUENCE order_events_id_seq RENAME TO order_history_id_seq`);
    await q.query(
      `ALTER TABLE order_history RENAME CONSTRAINT order_events_pkey TO order_history_pkey`,
    );
    await q.query(
      `ALTER TABLE order_history RENAME CONSTRAINT order_events_order_id_fkey TO order_history_order_id_fkey`,
    );
    await q.query(`ALTER INDEX order_events_order_id_idx RENAME TO order_history_order_id_idx`);
    await q.query(`ALTER TABLE order_history ADD COLUMN action text`);
    await q.query(`
      UPDATE order_history SET action = CASE
        WHEN from_status IS NULL THEN 'place'
        WHEN to_status = 'paid' THEN 'pay'
        WHEN to_status = 'shipped' THEN 'ship'
        WHEN to_status = 'delivered' THEN 'deliver'
        ELSE 'cancel' END`);
    await q.query(`ALTER TABLE order_history ALTER COLUMN action SET NOT NULL`);
    await q.query(
      `ALTER TABLE order_history ADD CONSTRAINT order_history_action_check
         CHECK (action IN ('place', 'pay', 'ship', 'deliver', 'cancel'))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE order_history DROP CONSTRAINT order_history_action_check`);
    await q.query(`ALTER TABLE order_history DROP COLUMN action`);
    await q.query(`ALTER INDEX order_history_order_id_idx RENAME TO order_events_order_id_idx`);
    await q.query(
      `ALTER TABLE order_history RENAME CONSTRAINT order_history_order_id_fkey TO order_events_order_id_fkey`,
    );
    await q.query(
      `ALTER TABLE order_history RENAME CONSTRAINT order_history_pkey TO order_events_pkey`,
    );
    await q.query(`ALTER SEQUENCE order_history_id_seq RENAME TO order_events_id_seq`);
    await q.query(`ALTER TABLE order_history RENAME TO order_events`);
    await q.query(`ALTER TABLE products ALTER COLUMN stock TYPE integer`);
    await q.query(
      `ALTER TABLE products ADD CONSTRAINT products_stock_max CHECK (stock <= 1000000000)`,
    );
    for (const table of ['users', 'products', 'orders']) {
      await q.query(`DROP TRIGGER ${table}_touch_version ON ${table}`);
      await q.query(`ALTER TABLE ${table} DROP COLUMN previous_updated_at`);
    }
    await q.query(`DROP FUNCTION touch_version()`);
  }
}
