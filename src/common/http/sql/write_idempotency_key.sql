-- write_idempotency_key(…): writes a claimed Idempotency-Key (API.md §4), with its outcome when the
-- work is already done (place_order_keyed), else NULL until IdempotencyService stores it. Only after
-- idempotency_key_free said true in this transaction: its lock keeps the key free until the end,
-- so a row of this key, if any, has expired (the purge may be deleting it: then this waits for it).
CREATE OR REPLACE FUNCTION write_idempotency_key(
  p_user uuid,
  p_key text,
  p_fingerprint text,
  p_method text,
  p_path text,
  p_ttl_hours integer,
  p_response jsonb
) RETURNS void LANGUAGE sql AS $$
  INSERT INTO idempotency_keys (user_id, key, fingerprint, method, path, response, expires_at)
  VALUES (p_user, p_key, p_fingerprint, p_method, p_path, p_response,
          now() + make_interval(hours => p_ttl_hours))
  ON CONFLICT (user_id, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, method = EXCLUDED.method, path = EXCLUDED.path,
        response = EXCLUDED.response, created_at = now(), expires_at = EXCLUDED.expires_at
$$;
