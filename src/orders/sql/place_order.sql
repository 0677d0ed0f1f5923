-- requires: outbox_append, iso_utc, place_order_locked
--
-- place_order(…): the checkout in one round trip, holding its product locks as briefly as it can
-- (issue 15). Reads the products without a lock, writes the order, its history entry and its
-- order.created event, and only then locks the products (in id order, so two orders can never
-- deadlock) and decrements, on the condition that each product still has the stock and still says
-- what the order copied (price, currency, SKU, name, active). The lines go in last, under the lock,
-- so that their foreign-key checks find rows this transaction already holds. When the first read
-- refuses, or anything moved between that read and the lock, the attempt rolls back (a
-- subtransaction) and place_order_locked decides under its locks and explains a refusal.
-- Called by OrdersRepository.placeAtOnce, and by place_orders for each order of a batch.
-- The event's order carries the payment fields (issue 22: unpaid at placement).
-- Every statement that joins the lines to products also says `p.id = ANY(p_ids)`, which changes
-- nothing of what it finds: PL/pgSQL's generic plans guess 10 rows for unnest() and 100 for
-- json_to_recordset(), and with those guesses PostgreSQL read (and, for the UPDATE, hash-joined)
-- every row of a catalogue of a few hundred or thousand products on every checkout. With the
-- condition the products are found through their primary key. Measured on PostgreSQL 18 with 200
-- products (place_order in a loop, the backend's CPU from /proc/self/schedstat): ~5-10% less CPU
-- per call; more on a larger catalogue, until the planner guesses otherwise.
--
-- With a promotion code or an expected total (issue 23, API.md §11): the code's row is read
-- without a lock with the products, the discount computed from the subtotal (floor of the percent;
-- an amount off never above the subtotal, in the order's currency only) and the total compared
-- with the expected one. The use is counted LAST, after the products' locks and decrements, by one
-- guarded UPDATE of the promotion's row (active, within its dates, its terms as read, under its
-- usageLimit), so that its row lock is held for the shortest time and every path locks orders,
-- then products, then the promotion. perCustomerLimit is checked by the statement after that
-- UPDATE: it starts after the row lock was granted, so its snapshot holds every order committed by
-- whoever held the lock before (every taker of a use holds it to its commit); the customer's live
-- orders with the code other than this one, against the limit read under the lock. Any refusal, a
-- moved product or promotion, or a total of 0 (paid at placement by the service) goes, like a plain
-- checkout's, to place_order_locked, which decides under locks and says why.
DROP FUNCTION IF EXISTS place_order(uuid, uuid[], integer[], integer, uuid, text[], text);
CREATE OR REPLACE FUNCTION place_order(
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
        v_lines json;
        v_order orders%ROWTYPE;
        v_items json;
        v_at timestamptz;
        v_taken integer;
        v_terms boolean := p_code IS NOT NULL OR p_expected IS NOT NULL;
        v_promo promotions%ROWTYPE;
        v_discount bigint := 0;
        v_per_customer integer;
        v_held integer;
      BEGIN
        -- What the order will copy, read without a lock: almost always still true at the lock.
        SELECT count(*), count(DISTINCT p.currency), min(p.currency),
               sum(p.price_cents::bigint * w.qty), bool_and(p.active AND p.stock >= w.qty),
               json_agg(json_build_object('line_no', w.n, 'product_id', p.id, 'sku', p.sku,
                 'name', p.name, 'unit_price_cents', p.price_cents, 'quantity', w.qty) ORDER BY w.n)
          INTO v_found, v_currencies, v_currency, v_total, v_ok, v_lines
          FROM unnest(p_ids, p_quantities) WITH ORDINALITY AS w(id, qty, n)
          JOIN products p ON p.id = w.id
         WHERE p.id = ANY(p_ids); -- an index scan, never a scan of the catalogue: see the header
        IF p_code IS NOT NULL AND v_ok THEN
          -- The code as it is now, without a lock: usable at first sight, or explained.
          SELECT * INTO v_promo FROM promotions WHERE code = upper(btrim(p_code));
          v_ok := FOUND AND v_promo.active
            AND coalesce(v_promo.starts_at <= clock_timestamp(), true)
            AND coalesce(v_promo.ends_at > clock_timestamp(), true)
            AND (v_promo.amount_off_cents IS NULL OR v_promo.currency = v_currency)
            AND (v_promo.usage_limit IS NULL OR v_promo.times_used < v_promo.usage_limit);
          IF v_ok THEN
            v_discount := CASE WHEN v_promo.percent_off IS NOT NULL
                               THEN v_total * v_promo.percent_off / 100
                               ELSE least(v_total, v_promo.amount_off_cents) END;
          END IF;
        END IF;
        -- A total other than the one expected, or nothing owed (paid at placement, with or without
        -- terms): decided under locks.
        IF v_ok AND (v_total - v_discount = 0
                     OR (v_terms AND v_total - v_discount <> coalesce(p_expected, v_total - v_discount))) THEN
          v_ok := false;
        END IF;
        IF v_found = cardinality(p_ids) AND v_currencies = 1 AND v_ok THEN
          BEGIN
            INSERT INTO orders (user_id, status, total_cents, currency, expires_at, discount_cents,
                                promotion_id, promotion_code, promotion_percent_off,
                                promotion_amount_off_cents)
            VALUES (p_user, 'pending', v_total - v_discount, v_currency,
                    clock_timestamp() + make_interval(secs => p_hold_seconds), v_discount,
                    v_promo.id, v_promo.code, v_promo.percent_off, v_promo.amount_off_cents)
            RETURNING * INTO v_order;
            INSERT INTO order_history (order_id, action, from_status, to_status, actor_id)
            VALUES (v_order.id, 'place', NULL, 'pending', p_user);
            v_at := clock_timestamp();
            -- The order at version 1 as its owner sees it: OrderDto's members, in its order.
            PERFORM outbox_append(p_event_id, 'order.created', v_order.id, v_order.version,
              json_build_object(
                'id', p_event_id, 'type', 'order.created', 'occurredAt', iso_utc(v_at),
                'data', json_build_object('order', json_build_object(
                  'id', v_order.id, 'userId', v_order.user_id, 'status', v_order.status,
                  'allowedTransitions', to_json(p_owner_actions),
                  'items', (SELECT json_agg(json_build_object(
                      'productId', l.product_id, 'sku', l.sku, 'name', l.name,
                      'unitPriceCents', l.unit_price_cents, 'quantity', l.quantity)
                      ORDER BY l.line_no)
                    FROM json_to_recordset(v_lines) AS l(line_no integer, product_id uuid,
                      sku text, name text, unit_price_cents integer, quantity integer)),
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
            -- Only now the locks, in id order (so two orders can never deadlock), and the
            -- decrement, conditional on the stock and on everything the order copied.
            IF cardinality(p_ids) > 1 THEN
              PERFORM 1 FROM products WHERE id = ANY(p_ids) ORDER BY id FOR NO KEY UPDATE;
            END IF;
            UPDATE products p SET stock = p.stock - l.quantity
              FROM json_to_recordset(v_lines) AS l(product_id uuid, sku text, name text,
                unit_price_cents integer, quantity integer)
             WHERE p.id = ANY(p_ids) AND p.id = l.product_id AND p.stock >= l.quantity AND p.active
               AND p.price_cents = l.unit_price_cents AND p.currency = v_currency
               AND p.sku = l.sku AND p.name = l.name;
            GET DIAGNOSTICS v_taken = ROW_COUNT;
            IF v_taken = cardinality(p_ids) AND p_code IS NOT NULL THEN
              -- The use, last: one guarded write, on the terms the order copied.
              UPDATE promotions SET times_used = times_used + 1
               WHERE id = v_promo.id AND code = v_promo.code AND active
                 AND coalesce(starts_at <= clock_timestamp(), true)
                 AND coalesce(ends_at > clock_timestamp(), true)
                 AND percent_off IS NOT DISTINCT FROM v_promo.percent_off
                 AND amount_off_cents IS NOT DISTINCT FROM v_promo.amount_off_cents
                 AND currency IS NOT DISTINCT FROM v_promo.currency
                 AND (usage_limit IS NULL OR times_used < usage_limit)
              RETURNING per_customer_limit INTO v_per_customer;
              IF NOT FOUND THEN
                v_taken := -1;
              ELSIF v_per_customer IS NOT NULL THEN
                -- A statement of its own, after the lock: see the header.
                SELECT count(*) INTO v_held FROM orders
                 WHERE promotion_id = v_promo.id AND user_id = p_user AND id <> v_order.id
                   AND status NOT IN ('cancelled', 'expired');
                IF v_held >= v_per_customer THEN
                  v_taken := -1;
                END IF;
              END IF;
            END IF;
            IF v_taken = cardinality(p_ids) THEN
              WITH i AS (
                INSERT INTO order_items
                       (order_id, line_no, product_id, sku, name, unit_price_cents, quantity)
                SELECT v_order.id, l.line_no, l.product_id, l.sku, l.name, l.unit_price_cents,
                       l.quantity
                  FROM json_to_recordset(v_lines) AS l(line_no integer, product_id uuid,
                    sku text, name text, unit_price_cents integer, quantity integer)
                RETURNING *)
              SELECT json_agg(row_to_json(i) ORDER BY i.line_no) INTO v_items FROM i;
              RETURN json_build_object('order', row_to_json(v_order), 'items', v_items);
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'OSRTY'; -- caught below: nothing of it stays
          EXCEPTION WHEN SQLSTATE 'OSRTY' THEN
            NULL; -- a product moved between the read and the lock
          END;
        END IF;
        -- Refused at first sight, or moved since: the locked way decides, and explains a refusal.
        RETURN place_order_locked(p_user, p_ids, p_quantities, p_hold_seconds, p_event_id,
                                  p_owner_actions, p_traceparent, p_code, p_expected);
      END $$;
