-- requires: place_order, place_order_keyed
--
-- place_orders(…): several checkouts of the same products in one statement and one transaction
-- (issue 15, the hot product). The service queues the checkouts of exactly the same products that
-- arrive while one of them is in the database (src/orders/placement-queue.ts) and sends the queue as
-- one call (PlacementsRepository.placeTogether): each order is placed with place_order, in the order they
-- queued, and decided on its own (its stock check, its refusal and explanation, its event). The
-- products are locked once, in id order, by the first order of the batch. An error in any one order
-- aborts the whole call; the service then places every order of that batch again on its own.
--
-- Locks: a member refused after others were placed asks place_order_locked, which locks the same
-- rows FOR UPDATE: an upgrade of a lock this transaction holds, which waits only for other
-- transactions' KEY SHARE locks, and every path that inserts lines (the only KEY SHARE takers on
-- products) takes a stronger product lock first, in id order. Keep it so.
--
-- The arrays hold one element per order; p_ids and p_quantities are two-dimensional, one row per
-- order (the orders of a batch name the same products, so the rows have the same length).
--
-- Promotion codes (issue 23): p_codes and p_expected hold each order's code and expected total (or
-- nulls). The service batches the checkouts of one code together whatever their products (the
-- code's row is the hot row they would otherwise queue on, one commit each), and checkouts without
-- a code by their products. A batch with a code first locks every product of its orders, in id
-- order, then its members take that one promotion: products, then the promotion, as every path
-- does; never two promotions. Its orders may have different numbers of lines: the rows of p_ids
-- and p_quantities are padded with NULLs, which are dropped.
--
-- Idempotency-Keys (issue 26): p_keys holds each order's key as place_order_keyed takes it, or null
-- for a checkout without one; a keyed order is placed by place_order_keyed, which claims its key
-- without ever waiting for it (this statement holds product locks) and stores its outcome.
DROP FUNCTION IF EXISTS place_orders(uuid[], uuid[], integer[], integer, uuid[], text[], text[]);
DROP FUNCTION IF EXISTS place_orders(uuid[], uuid[], integer[], integer, uuid[], text[], text[],
                                     text[], bigint[]);
CREATE OR REPLACE FUNCTION place_orders(
  p_users uuid[],
  p_ids uuid[],          -- [order][line]: the products, in each client's line order
  p_quantities integer[], -- [order][line]
  p_hold_seconds integer,
  p_event_ids uuid[],
  p_owner_actions text[],
  p_traceparents text[],
  p_codes text[],
  p_expected bigint[],
  p_keys json[]
) RETURNS json LANGUAGE plpgsql AS $$
      DECLARE
        v_answers json[] := '{}';
        v_ids uuid[];
        v_quantities integer[];
      BEGIN
        IF array_ndims(p_ids) <> 2 OR array_ndims(p_quantities) <> 2
           OR array_length(p_ids, 1) <> cardinality(p_users)
           OR array_length(p_quantities, 1) <> cardinality(p_users)
           OR cardinality(p_event_ids) <> cardinality(p_users)
           OR cardinality(p_traceparents) <> cardinality(p_users)
           OR cardinality(p_codes) <> cardinality(p_users)
           OR cardinality(p_expected) <> cardinality(p_users)
           OR cardinality(p_keys) <> cardinality(p_users) THEN
          RAISE EXCEPTION 'place_orders: one row of products, quantities, event id, traceparent, code, expected total and key per order';
        END IF;
        IF EXISTS (SELECT 1 FROM unnest(p_codes) AS c WHERE c IS NOT NULL) THEN
          PERFORM 1 FROM products WHERE id IN (SELECT unnest(p_ids)) ORDER BY id FOR NO KEY UPDATE;
        END IF;
        FOR i IN 1 .. cardinality(p_users) LOOP
          v_ids := ARRAY(SELECT x FROM unnest(p_ids[i:i][:]) WITH ORDINALITY AS u(x, n)
                          WHERE x IS NOT NULL ORDER BY n);
          v_quantities := ARRAY(SELECT x FROM unnest(p_quantities[i:i][:]) WITH ORDINALITY AS u(x, n)
                                 WHERE x IS NOT NULL ORDER BY n);
          IF p_keys[i] IS NULL THEN
            v_answers := v_answers || place_order(
              p_users[i], v_ids, v_quantities, p_hold_seconds, p_event_ids[i], p_owner_actions,
              p_traceparents[i], p_codes[i], p_expected[i]);
          ELSE
            v_answers := v_answers || place_order_keyed(p_keys[i],
              p_users[i], v_ids, v_quantities, p_hold_seconds, p_event_ids[i], p_owner_actions,
              p_traceparents[i], p_codes[i], p_expected[i]);
          END IF;
        END LOOP;
        RETURN array_to_json(v_answers);
      END $$;
