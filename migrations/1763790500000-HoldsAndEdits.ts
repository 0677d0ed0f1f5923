import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Checkout holds that expire, and editable orders (issue 12): a pending order holds its units until
 * `expires_at` (NULL once it is no longer pending); `expired` is a final status reached by the
 * service's own `expire` action (no actor); `edit` is recorded in the history.
 */
export class HoldsAndEdits1763790500000 implements MigrationInterface {
  name = 'HoldsAndEdits1763790500000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orders ADD COLUMN expires_at timestamptz`);
    // Orders already pending get the default hold from now: nobody loses units at the upgrade.
    await q.query(
      `UPDATE orders SET expires_at = now() + interval '30 minutes' WHERE status = 'pending'`,
    );
    await q.query(`ALTER TABLE orders DROP CONSTRAINT orders_status_check`);
    await q.query(
      `ALTER TABLE orders ADD CONSTRAINT orders_status_check
         CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'expired'))`,
    );
    await q.query(
      `ALTER TABLE orders ADD CONSTRAINT orders_expires_at_while_pending
         CHECK ((status = 'pending') = (expires_at IS NOT NULL))`,
    );
    // What the sweeper reads: the due holds, oldest first.
    await q.query(
      `CREATE INDEX orders_pending_expires_at_idx ON orders (expires_at) WHERE status = 'pending'`,
    );
    await q.query(`ALTER TABLE order_history DROP CONSTRAINT order_history_action_check`);
    await q.query(
      `ALTER TABLE order_history ADD CONSTRAINT order_history_action_check
         CHECK (action IN ('place', 'pay', 'ship', 'deliver', 'cancel', 'expire', 'edit'))`,
    );
    // The service's own actions (expire) have no actor.
    await q.query(`ALTER TABLE order_history ALTER COLUMN actor_id DROP NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM order_history WHERE action IN ('expire', 'edit')`);
    await q.query(`UPDATE order_history SET actor_id = order_id WHERE actor_id IS NULL`);
    await q.query(`ALTER TABLE order_history ALTER COLUMN actor_id SET NOT NULL`);
    await q.query(`ALTER TABLE order_history DROP CONSTRAINT order_history_action_check`);
    await q.query(
      `ALTER TABLE order_history ADD CONSTRAINT order_history_action_check
         CHECK (action IN ('place', 'pay', 'ship', 'deliver', 'cancel'))`,
    );
    await q.query(`DROP INDEX orders_pending_expires_at_idx`);
    await q.query(`ALTER TABLE orders DROP CONSTRAINT orders_expires_at_while_pending`);
    await q.query(`UPDATE orders SET status = 'cancelled' WHERE status = 'expired'`);
    await q.query(`ALTER TABLE orders DROP CONSTRAINT orders_status_check`);
    await q.query(
      `ALTER TABLE orders ADD CONSTRAINT orders_status_check
         CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled'))`,
    );
    await q.query(`ALTER TABLE orders DROP COLUMN expires_at`);
  }
}
