-- outbox_append(…): the one statement that writes an event into the outbox and a delivery per
-- matching webhook subscription; used by place_order and by OutboxRepository alike.
-- The body keeps, byte for byte, the text (and indentation) it had in its migration, so that
-- databases migrated before this file existed hold exactly this definition.
CREATE OR REPLACE FUNCTION outbox_append(
  p_id uuid, p_type text, p_order_id uuid, p_order_version integer, p_body text,
  p_traceparent text, p_occurred_at timestamptz
) RETURNS void LANGUAGE sql AS $$
        WITH e AS (
          INSERT INTO outbox_events (id, type, order_id, order_version, body, traceparent, occurred_at)
          VALUES (p_id, p_type, p_order_id, p_order_version, p_body, p_traceparent, p_occurred_at)
          RETURNING id, type, order_id)
        INSERT INTO webhook_deliveries (subscription_id, event_id, order_id)
        SELECT s.id, e.id, e.order_id FROM e JOIN webhook_subscriptions s
            ON e.type = ANY(s.events) OR '*' = ANY(s.events)
         ORDER BY s.id
      $$;
