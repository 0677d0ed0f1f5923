-- idempotency_key_free(…): whether the caller may claim this Idempotency-Key now (API.md §4): no
-- live record of it, and fewer than p_max_live live keys of the caller's. NULL when p_wait is false
-- and another transaction holds the key.
--
-- Every claimant first takes the key's advisory lock (transaction-scoped; a 64-bit hash of the
-- caller and the key, seeded 727002), and decides and writes only under it: so the answer stays
-- true until this transaction ends. A request that waits for a key in flight waits on that lock
-- (bounded by the caller's lock_timeout; IdempotencyService sets 5 s), and one that must never wait
-- (the keyed checkout inside a placement statement, which holds product locks: place_order_keyed)
-- asks with p_wait false. Two keys sharing the hash (one chance in 2^64) would only make one wait
-- for the other's transaction, or take the usual path. The bound is checked under the key's lock
-- only: a caller racing with itself over many keys can overshoot it by its number of concurrent
-- requests.
CREATE OR REPLACE FUNCTION idempotency_key_free(
  p_user uuid,
  p_key text,
  p_max_live integer,
  p_wait boolean
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_lock bigint := hashtextextended(p_user::text || ' ' || p_key, 727002);
BEGIN
  IF p_wait THEN
    PERFORM pg_advisory_xact_lock(v_lock);
  ELSIF NOT pg_try_advisory_xact_lock(v_lock) THEN
    RETURN NULL;
  END IF;
  RETURN NOT EXISTS (SELECT 1 FROM idempotency_keys
                      WHERE user_id = p_user AND key = p_key AND expires_at > now())
     AND (SELECT count(*) FROM idempotency_keys
           WHERE user_id = p_user AND expires_at > now()) < p_max_live;
END $$;
