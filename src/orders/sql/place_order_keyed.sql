-- requires: place_order, idempotency_key_free, write_idempotency_key
--
-- place_order_keyed(p_key, …): a checkout with an Idempotency-Key in one statement (issue 26): the
-- key is claimed, the order placed (place_order, the same arguments) and the outcome stored with the
-- key, all in the caller's transaction, so that they commit together or not at all (API.md §4).
-- Called by PlacementsRepository.placeAtOnce and by place_orders for a keyed checkout of a batch.
--
-- The key is checked first and never waited for (idempotency_key_free with p_wait false): the
-- statement may hold product locks (a batch), and the key's holder may be waiting for them. A key
-- in flight, live already (a retry: a replay) or over the caller's bound of live keys answers
-- {"key": false} with nothing written; so does a checkout place_order did not place (its answer
-- {"refused"…}). The service then runs the usual keyed path (IdempotencyService.run: waits for the
-- key in flight, replays, or explains the refusal and stores it). Placed, the key is written once,
-- with its outcome: the key's lock, taken by the check, keeps it free until then.
--
-- What is stored is place_order's answer itself, {placed, requestId, role}: the service renders the
-- first response from the answer and a replay from the stored copy with the same function
-- (OrdersController), so the replay is the first response byte for byte.
--
-- p_key: {"key", "fingerprint", "method", "path", "ttlHours", "maxLive", "requestId", "role"}.
CREATE OR REPLACE FUNCTION place_order_keyed(
  p_key json,
  p_user uuid,
  p_ids uuid[],
  p_quantities integer[],
  p_hold_seconds integer,
  p_event_id uuid,
  p_owner_actions text[],
  p_traceparent text,
  p_code text,
  p_expected bigint
) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  v_key text := p_key->>'key';
  v_answer json;
BEGIN
  -- Free now, and kept free by the key's lock until this transaction ends.
  IF NOT coalesce(idempotency_key_free(p_user, v_key, (p_key->>'maxLive')::integer, false), false) THEN
    RETURN json_build_object('key', false);
  END IF;
  v_answer := place_order(p_user, p_ids, p_quantities, p_hold_seconds, p_event_id, p_owner_actions,
                          p_traceparent, p_code, p_expected);
  IF v_answer->'order' IS NULL THEN
    RETURN json_build_object('key', false);
  END IF;
  -- The key and its outcome in one write.
  PERFORM write_idempotency_key(p_user, v_key, p_key->>'fingerprint', p_key->>'method',
            p_key->>'path', (p_key->>'ttlHours')::integer,
            jsonb_build_object('placed', v_answer, 'requestId', p_key->>'requestId',
                               'role', p_key->>'role'));
  RETURN v_answer;
END $$;
