-- requires: outbox_append, iso_utc
--
-- place_order_locked(…): the checkout that locks first (issue 15). Locks the products in id order,
-- checks every line, decrements, inserts the order, its lines, its history entry and its
-- order.created event (with a delivery per matching webhook subscription). When any check fails it
-- changes nothing, releases its locks (the block is a subtransaction) and returns what it read
-- instead ('refused'): the products as they were under the lock, and whether overdue holds sit on
-- them ('overdue'). place_order calls it when its own attempt is refused or a product moved; the
-- service explains the refusal from its answer, or, when overdue holds could cover it, takes its
-- step-by-step path that expires them first.
-- The event's order carries the payment fields (issue 22: unpaid at placement).
-- The joins of the lines to products say `p.id = ANY(p_ids)` too, as place_order's do (see there):
-- the products by their primary key, never a scan of the catalogue under the locks.
--
-- With a promotion code or an expected total (issue 23, API.md §11), in the contract's order, all
-- under locks: the products (id order) are vetted; then the code's row is locked (after the
-- products: the lock order of every path) and the first reason it cannot be used decided from it,
-- the customer's live orders with the code counted by a statement of its own after that lock (so
-- it sees every order committed by whoever held it before); the discount and the total follow, the
-- expected total is compared, and the stock. Placed, the use is counted by the guarded write. A
-- refusal (or a total of 0, which the service pays at placement) answers 'refused' with, besides
-- the products, 'promotion': the reason (or null), the terms, and whether overdue holds hold uses
-- of the code ('overdue'), so that the service explains it as its step-by-step path would, or
-- takes that path when overdue holds could change the answer.
DROP FUNCTION IF EXISTS place_order_locked(uuid, uuid[], integer[], integer, uuid, text[], text);
CREATE OR REPLACE FUNCTION place_order_locked(
  p_user uuid,
  p_ids uuid[],          -- one per product, in the client's line order
  p_quantities integer[],
  p_hold_seconds integer,
  p_event_id uuid,
  p_owner_actions text[], -- allowedTransitions of a pending order for its owner (the table's)
  p_traceparent text,
  p_code text,           -- the promotion code as the client sent it, or null
  p_expected bigint      -- expectedTotalCents, or null
) RETURNS json LANGUAGE plpgsql AS $$
      DECLARE
        v_found integer;
        v_currencies integer;
        v_currency char(3);
        v_total bigint;
        v_ok boolean;
        v_order orders%ROWTYPE;
        v_items json;
        v_at timestamptz;
        v_products json;
        v_active boolean;
        v_promo promotions%ROWTYPE;
        v_reason text;
        v_discount bigint := 0;
        v_held integer;
      BEGIN
        BEGIN
          -- Locked in id order, so two orders over the same products can never deadlock.
          PERFORM 1 FROM products WHERE id = ANY(p_ids) ORDER BY id FOR UPDATE;
          SELECT count(*), count(DISTINCT p.currency), min(p.currency),
                 sum(p.price_cents::bigint * w.qty), bool_and(p.active AND p.stock >= w.qty),
                 bool_and(p.active)
            INTO v_found, v_currencies, v_currency, v_total, v_ok, v_active
            FROM unnest(p_ids, p_quantities) AS w(id, qty) JOIN products p ON p.id = w.id
           WHERE p.id = ANY(p_ids);
          IF p_code IS NOT NULL AND v_found = cardinality(p_ids) AND v_currencies = 1
             AND v_active THEN
            -- The code's row, locked after the products; its first reason, in §11's order.
            SELECT * INTO v_promo FROM promotions WHERE code = upper(btrim(p_code))
               FOR NO KEY UPDATE;
            v_reason := CASE
              WHEN NOT FOUND THEN 'unknown'
              WHEN NOT v_promo.active THEN 'inactive'
              WHEN coalesce(v_promo.starts_at > clock_timestamp(), false) THEN 'not_started'
              WHEN coalesce(v_promo.ends_at <= clock_timestamp(), false) THEN 'ended'
              WHEN v_promo.amount_off_cents IS NOT NULL AND v_promo.currency <> v_currency
                THEN 'currency' END;
            IF v_reason IS NULL AND v_promo.per_customer_limit IS NOT NULL THEN
              -- A statement of its own, after the lock: see the header.
              SELECT count(*) INTO v_held FROM orders
               WHERE promotion_id = v_promo.id AND user_id = p_user
                 AND status NOT IN ('cancelled', 'expired');
              IF v_held >= v_promo.per_customer_limit THEN
                v_reason := 'customer_limit';
              END IF;
            END IF;
            IF v_reason IS NULL AND v_promo.usage_limit IS NOT NULL
               AND v_promo.times_used >= v_promo.usage_limit THEN
              v_reason := 'exhausted';
            END IF;
            IF v_reason IS NULL THEN
              v_discount := CASE WHEN v_promo.percent_off IS NOT NULL
                                 THEN v_total * v_promo.percent_off / 100
                                 ELSE least(v_total, v_promo.amount_off_cents) END;
            END IF;
          END IF;
          IF v_found <> cardinality(p_ids) OR v_currencies <> 1 OR NOT v_ok
             OR v_reason IS NOT NULL
             OR v_total - v_discount = 0
             OR ((p_code IS NOT NULL OR p_expected IS NOT NULL)
                 AND v_total - v_discount <> coalesce(p_expected, v_total - v_discount)) THEN
            SELECT json_agg(json_build_object('id', p.id, 'sku', p.sku, 'name', p.name,
                     'price_cents', p.price_cents, 'currency', p.currency, 'stock', p.stock,
                     'active', p.active) ORDER BY p.id)
              INTO v_products FROM products p WHERE p.id = ANY(p_ids);
            RAISE EXCEPTION USING ERRCODE = 'OSNOT'; -- caught below: nothing happened
          END IF;
          -- Still conditional under the lock: the database has the last word.
          UPDATE products p SET stock = p.stock - w.qty
            FROM unnest(p_ids, p_quantities) AS w(id, qty)
           WHERE p.id = ANY(p_ids) AND p.id = w.id AND p.stock >= w.qty;
          INSERT INTO orders (user_id, status, total_cents, currency, expires_at, discount_cents,
                              promotion_id, promotion_code, promotion_percent_off,
                              promotion_amount_off_cents)
          VALUES (p_user, 'pending', v_total - v_discount, v_currency,
                  clock_timestamp() + make_interval(secs => p_hold_seconds), v_discount,
                  v_promo.id, v_promo.code, v_promo.percent_off, v_promo.amount_off_cents)
          RETURNING * INTO v_order;
          IF p_code IS NOT NULL THEN
            -- The use: the guarded write, under the lock its checks were decided under.
            UPDATE promotions SET times_used = times_used + 1
             WHERE id = v_promo.id AND (usage_limit IS NULL OR times_used < usage_limit);
            IF NOT FOUND THEN
              RAISE EXCEPTION 'place_order_locked: promotion % ran out under its own lock', v_promo.id;
            END IF;
          END IF;
          INSERT INTO order_items (order_id, line_no, product_id, sku, name, unit_price_cents, quantity)
          SELECT v_order.id, w.n, p.id, p.sku, p.name, p.price_cents, w.qty
            FROM unnest(p_ids, p_quantities) WITH ORDINALITY AS w(id, qty, n)
            JOIN products p ON p.id = w.id
           WHERE p.id = ANY(p_ids);
          INSERT INTO order_history (order_id, action, from_status, to_status, actor_id)
          VALUES (v_order.id, 'place', NULL, 'pending', p_user);
          SELECT json_agg(row_to_json(i) ORDER BY i.line_no) INTO v_items
            FROM order_items i WHERE i.order_id = v_order.id;
          v_at := clock_timestamp();
          -- The order at version 1 as its owner sees it: OrderDto's members, in its order.
          PERFORM outbox_append(p_event_id, 'order.created', v_order.id, v_order.version,
            json_build_object(
              'id', p_event_id, 'type', 'order.created', 'occurredAt', iso_utc(v_at),
              'data', json_build_object('order', json_build_object(
                'id', v_order.id, 'userId', v_order.user_id, 'status', v_order.status,
                'allowedTransitions', to_json(p_owner_actions),
                'items', (SELECT json_agg(json_build_object(
                    'productId', i.product_id, 'sku', i.sku, 'name', i.name,
                    'unitPriceCents', i.unit_price_cents, 'quantity', i.quantity) ORDER BY i.line_no)
                  FROM order_items i WHERE i.order_id = v_order.id),
                'subtotalCents', v_order.subtotal_cents, 'discountCents', v_order.discount_cents,
                'promotionCode', v_order.promotion_code,
                'totalCents', v_order.total_cents, 'currency', v_order.currency,
                'paymentStatus', 'unpaid', 'paidCents', v_order.paid_cents,
                'refundedCents', v_order.refunded_cents,
                'expiresAt', iso_utc(v_order.expires_at), 'version', v_order.version,
                'createdAt', iso_utc(v_order.created_at), 'updatedAt', iso_utc(v_order.updated_at)
              ))
            )::text,
            p_traceparent, v_at);
          RETURN json_build_object('order', row_to_json(v_order), 'items', v_items);
        EXCEPTION WHEN SQLSTATE 'OSNOT' THEN
          -- The block's row locks go with it; what it read stays, to explain the refusal.
          RETURN json_build_object(
            'refused', coalesce(v_products, '[]'::json),
            'overdue', EXISTS (
              SELECT 1 FROM order_items i JOIN orders o ON o.id = i.order_id
               WHERE i.product_id = ANY(p_ids) AND o.status = 'pending'
                 AND o.expires_at <= clock_timestamp()),
            'promotion', CASE WHEN v_promo.id IS NOT NULL OR v_reason IS NOT NULL THEN
              json_build_object('reason', v_reason, 'percentOff', v_promo.percent_off,
                'amountOffCents', v_promo.amount_off_cents,
                'overdue', v_promo.id IS NOT NULL AND EXISTS (
                  SELECT 1 FROM orders o
                   WHERE o.promotion_id = v_promo.id AND o.status = 'pending'
                     AND o.expires_at <= clock_timestamp())) END);
        END;
      END $$;
