-- requires: outbox_append, iso_utc
--
-- apply_payment_succeeded(…): a provider's verified "payment succeeded" for an open payment of a
-- live pending order, applied in one round trip (issue 26, API.md §9): the order's row locked first
-- (every writer of an order), then the payment's; the decision taken from what was read under those
-- locks, at one instant of the database's clock (v_now): the payment still open, the order still
-- pending with its hold not over, the money exactly the order's total in its currency. Only then the
-- event id is recorded (its primary key: a delivery applied before, on any instance, finds it and
-- changes nothing: {duplicate}), the payment moves to succeeded with what was captured (its client
-- secret forgotten), the order to paid by the same guarded write as OrdersRepository.moveStatus
-- (pending, hold live, at v_now: it cannot fail under the lock), its history entry `pay`, and the
-- events order.paid and payment.succeeded (OrderDto's and PaymentDto's members, in their order, as
-- the owner sees them; the order after the change in both), each with its webhook deliveries.
--
-- Anything else (no such payment, a payment not open, an order not pending, a hold over, money
-- that does not match): NULL, with nothing written, and NotificationApplying takes the full path
-- in a transaction of its own, which decides again under the same locks (a duplicate, the money
-- owed back, a revival after the hold).
CREATE OR REPLACE FUNCTION apply_payment_succeeded(
  p_provider text,
  p_event_id text,
  p_payment_id uuid,             -- metadata.paymentId, when it is a UUID
  p_provider_payment_id text,
  p_cents bigint,                -- amount_received
  p_currency text,               -- upper case
  p_owner_actions text[],        -- allowedTransitions of a paid order for its owner (the table's)
  p_traceparent text,
  p_order_event_id uuid,
  p_payment_event_id uuid
) RETURNS json LANGUAGE plpgsql AS $$
      DECLARE
        v_known payments%ROWTYPE;
        v_payment payments%ROWTYPE;
        v_order orders%ROWTYPE;
        v_now timestamptz;
        v_items json;
        v_order_json json;
        v_recorded integer;
      BEGIN
        SELECT * INTO v_known FROM payments WHERE id = p_payment_id AND provider = p_provider;
        IF NOT FOUND THEN
          SELECT * INTO v_known FROM payments
           WHERE provider = p_provider AND provider_payment_id = p_provider_payment_id;
          IF NOT FOUND THEN
            RETURN NULL;
          END IF;
        END IF;
        -- The order's row first, then the payment's: the lock order of every writer.
        SELECT * INTO v_order FROM orders WHERE id = v_known.order_id FOR UPDATE;
        SELECT * INTO v_payment FROM payments WHERE id = v_known.id FOR UPDATE;
        v_now := clock_timestamp();
        IF v_payment.status NOT IN ('requires_action', 'processing')
           OR v_order.status <> 'pending' OR v_order.expires_at <= v_now
           OR p_cents <> v_order.total_cents OR p_currency <> upper(v_order.currency) THEN
          RETURN NULL;
        END IF;
        INSERT INTO payment_provider_events (provider, event_id) VALUES (p_provider, p_event_id)
          ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS v_recorded = ROW_COUNT;
        IF v_recorded = 0 THEN
          RETURN json_build_object('duplicate', row_to_json(v_known));
        END IF;
        UPDATE payments
           SET status = 'succeeded', captured_cents = p_cents, captured_currency = p_currency,
               client_secret = NULL, updated_at = clock_timestamp()
         WHERE id = v_payment.id
        RETURNING * INTO v_payment;
        UPDATE orders o
           SET status = 'paid', expires_at = NULL, payment_id = v_payment.id, paid_cents = p_cents
         WHERE o.id = v_order.id AND o.status = 'pending' AND o.expires_at > v_now
        RETURNING * INTO v_order;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'apply_payment_succeeded: order % moved under its lock', v_known.order_id;
        END IF;
        INSERT INTO order_history (order_id, action, from_status, to_status, actor_id)
        VALUES (v_order.id, 'pay', 'pending', 'paid', NULL);
        SELECT json_agg(json_build_object(
                 'productId', i.product_id, 'sku', i.sku, 'name', i.name,
                 'unitPriceCents', i.unit_price_cents, 'quantity', i.quantity) ORDER BY i.line_no)
          INTO v_items FROM order_items i WHERE i.order_id = v_order.id;
        -- The order after the change as its owner sees it: OrderDto's members, in its order.
        v_order_json := json_build_object(
          'id', v_order.id, 'userId', v_order.user_id, 'status', v_order.status,
          'allowedTransitions', to_json(p_owner_actions),
          'items', coalesce(v_items, '[]'::json),
          'subtotalCents', v_order.subtotal_cents, 'discountCents', v_order.discount_cents,
          'promotionCode', v_order.promotion_code,
          'totalCents', v_order.total_cents, 'currency', v_order.currency,
          'paymentStatus', CASE WHEN v_order.paid_cents = 0 THEN 'unpaid'
                                WHEN v_order.refunded_cents = 0 THEN 'paid'
                                WHEN v_order.refunded_cents >= v_order.paid_cents THEN 'refunded'
                                ELSE 'partially_refunded' END,
          'paidCents', v_order.paid_cents, 'refundedCents', v_order.refunded_cents,
          'expiresAt', iso_utc(v_order.expires_at), 'version', v_order.version,
          'createdAt', iso_utc(v_order.created_at), 'updatedAt', iso_utc(v_order.updated_at));
        v_now := clock_timestamp();
        PERFORM outbox_append(p_order_event_id, 'order.paid', v_order.id, v_order.version,
          json_build_object('id', p_order_event_id, 'type', 'order.paid',
            'occurredAt', iso_utc(v_now), 'data', json_build_object('order', v_order_json))::text,
          p_traceparent, v_now);
        v_now := clock_timestamp();
        -- PaymentDto's members, in its order, never with the client secret.
        PERFORM outbox_append(p_payment_event_id, 'payment.succeeded', v_order.id, v_order.version,
          json_build_object('id', p_payment_event_id, 'type', 'payment.succeeded',
            'occurredAt', iso_utc(v_now), 'data', json_build_object('order', v_order_json,
              'payment', json_build_object(
                'id', v_payment.id, 'orderId', v_payment.order_id, 'provider', v_payment.provider,
                'providerPaymentId', v_payment.provider_payment_id, 'status', v_payment.status,
                'amountCents', v_payment.amount_cents, 'currency', v_payment.currency,
                'clientSecret', NULL, 'failureReason', v_payment.failure_reason,
                'reference', v_payment.reference, 'createdAt', iso_utc(v_payment.created_at),
                'updatedAt', iso_utc(v_payment.updated_at))))::text,
          p_traceparent, v_now);
        RETURN json_build_object('payment', row_to_json(v_payment));
      END $$;
