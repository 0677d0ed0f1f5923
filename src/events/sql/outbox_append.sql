-- outbox_append(…): the one statement that writes an event into the outbox and a delivery per
-- matching webhook subscription; used by place_order, place_order_locked, apply_payment_succeeded
-- and OutboxRepository alike.
-- LANGUAGE plpgsql, not sql, for its plan: PL/pgSQL prepares the statement once per connection and
-- keeps the plan, where PostgreSQL before 18 parses, analyses and plans a LANGUAGE sql body that it
-- cannot inline (this one writes) on every call. The statement is the one the sql body held, so a
-- delivery is still written for exactly the subscriptions visible to it. Measured on PostgreSQL 15
-- (a scratch database, place_order called in a loop, the backend's CPU time from
-- /proc/self/schedstat): ~17% less CPU per place_order. On 18, which keeps the plans of sql
-- functions too, no difference beyond the noise.
CREATE OR REPLACE FUNCTION outbox_append(
  p_id uuid, p_type text, p_order_id uuid, p_order_version integer, p_body text,
  p_traceparent text, p_occurred_at timestamptz
) RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        WITH e AS (
          INSERT INTO outbox_events (id, type, order_id, order_version, body, traceparent, occurred_at)
          VALUES (p_id, p_type, p_order_id, p_order_version, p_body, p_traceparent, p_occurred_at)
          RETURNING id, type, order_id)
        INSERT INTO webhook_deliveries (subscription_id, event_id, order_id)
        SELECT s.id, e.id, e.order_id FROM e JOIN webhook_subscriptions s
            ON e.type = ANY(s.events) OR '*' = ANY(s.events)
         ORDER BY s.id;
      END $$;
