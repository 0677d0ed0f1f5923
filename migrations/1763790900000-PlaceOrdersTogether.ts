import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Several checkouts of the same products in one statement and one transaction (issue 15, the hot
 * product).
 *
 * On one product every order waits for the previous one's row lock and its commit, so a hot product
 * sells one order per lock hand-over, however fast each placement is. The service queues the
 * checkouts of exactly the same products that arrive while one of them is in the database
 * (src/orders/placement-queue.ts) and sends the queue as one call of `place_orders`: the function
 * places each order with `place_order`, unchanged, in the order they queued. Every order is decided
 * on its own (its stock check, its refusal and explanation, its event), and the products are locked
 * once, in id order, by the first order of the batch: the same locks in the same order as a single
 * checkout takes, so batches cannot deadlock with each other or with anything else.
 *
 * An error in any one order (its account deleted meanwhile: a foreign-key violation) aborts the
 * whole call; the service then places every order of that batch again on its own, which is safe
 * because nothing of the call committed.
 *
 * Orders placed together share a transaction, and `now()` is the transaction's start: the orders'
 * `created_at`, `updated_at` and their history's `at` now default to `clock_timestamp()`, the moment
 * each row is written, so that every order says when it was placed and its hold
 * (`expires_at - created_at`) is ORDER_HOLD_SECONDS to the microsecond, alone or in a batch. Updates
 * stay monotonic: touch_version already moves `updated_at` to at least a microsecond past the old one.
 *
 * Locks: a batch locks exactly the products one of its checkouts locks, in id order, once (the
 * first order placed takes them; the next find them held). A member refused after others were
 * placed asks place_order_locked, which locks the same rows FOR UPDATE: an upgrade of a lock this
 * transaction holds, which waits only for other transactions' KEY SHARE locks, and every path that
 * inserts lines (the only KEY SHARE takers on products) takes a stronger product lock first, in id
 * order. Keep it so.
 *
 * The arrays hold one element per order; `p_ids` and `p_quantities` are two-dimensional, one row
 * per order (the orders of a batch name the same products, so the rows have the same length).
 */
export class PlaceOrdersTogether1763790900000 implements MigrationInterface {
  name = 'PlaceOrdersTogether1763790900000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orders ALTER COLUMN created_at SET DEFAULT clock_timestamp(),
                                      ALTER COLUMN updated_at SET DEFAULT clock_timestamp()`);
    await q.query(`ALTER TABLE order_history ALTER COLUMN at SET DEFAULT clock_timestamp()`);
    await q.query(`
      CREATE FUNCTION place_orders(
        p_users uuid[],
        p_ids uuid[],          -- [order][line]: the products, in each client's line order
        p_quantities integer[], -- [order][line]
        p_hold_seconds integer,
        p_event_ids uuid[],
        p_owner_actions text[],
        p_traceparents text[]
      ) RETURNS json LANGUAGE plpgsql AS $$
      DECLARE
        v_answers json[] := '{}';
      BEGIN
        IF array_ndims(p_ids) <> 2 OR array_ndims(p_quantities) <> 2
           OR array_length(p_ids, 1) <> cardinality(p_users)
           OR array_length(p_quantities, 1) <> cardinality(p_users)
           OR cardinality(p_event_ids) <> cardinality(p_users)
           OR cardinality(p_traceparents) <> cardinality(p_users) THEN
          RAISE EXCEPTION 'place_orders: one row of products, quantities, event id and traceparent per order';
        END IF;
        FOR i IN 1 .. cardinality(p_users) LOOP
          v_answers := v_answers || place_order(
            p_users[i],
            ARRAY(SELECT x FROM unnest(p_ids[i:i][:]) WITH ORDINALITY AS u(x, n) ORDER BY n),
            ARRAY(SELECT x FROM unnest(p_quantities[i:i][:]) WITH ORDINALITY AS u(x, n) ORDER BY n),
            p_hold_seconds, p_event_ids[i], p_owner_actions, p_traceparents[i]);
        END LOOP;
        RETURN array_to_json(v_answers);
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE order_history ALTER COLUMN at SET DEFAULT now()`);
    await q.query(`ALTER TABLE orders ALTER COLUMN created_at SET DEFAULT now(),
                                      ALTER COLUMN updated_at SET DEFAULT now()`);
    await q.query(
      'DROP FUNCTION place_orders(uuid[], uuid[], integer[], integer, uuid[], text[], text[])',
    );
  }
}
