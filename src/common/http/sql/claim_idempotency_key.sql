-- claim_idempotency_key(…): claims an Idempotency-Key for a request about to run (API.md §4), in the
-- caller's transaction, so that the key commits with the work and its stored outcome or not at all.
-- Inserts the key, or re-claims an expired one; false when a live record already exists, or when the
-- caller already holds p_max_live live keys (then nothing is inserted: the bound is checked in the
-- same statement; callers racing with themselves can overshoot it by at most their number of
-- concurrent requests).
--
-- Every claimant first takes the key's advisory lock (transaction-scoped, in its own lock space
-- 727002 so it never meets the migration lock), and only then touches the row: a request that waits
-- for a key in flight waits on that lock (bounded by the caller's lock_timeout; IdempotencyService
-- sets 5 s), and one that must never wait (the keyed checkout inside a placement statement, which
-- holds product locks: place_order_keyed) asks with p_wait false and gets NULL when the key is held.
-- Two keys sharing a hash only make one wait for the other's transaction, or take the slow path.
CREATE OR REPLACE FUNCTION claim_idempotency_key(
  p_user uuid,
  p_key text,
  p_fingerprint text,
  p_method text,
  p_path text,
  p_ttl_hours integer,
  p_max_live integer,
  p_wait boolean DEFAULT true
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_lock integer := hashtext(p_user::text || ' ' || p_key);
BEGIN
  IF p_wait THEN
    PERFORM pg_advisory_xact_lock(727002, v_lock);
  ELSIF NOT pg_try_advisory_xact_lock(727002, v_lock) THEN
    RETURN NULL; -- another transaction has this key (or one of its hash) in flight
  END IF;
  INSERT INTO idempotency_keys (user_id, key, fingerprint, method, path, expires_at)
  SELECT p_user, p_key, p_fingerprint, p_method, p_path, now() + make_interval(hours => p_ttl_hours)
   WHERE (SELECT count(*) FROM idempotency_keys
           WHERE user_id = p_user AND expires_at > now()) < p_max_live
  ON CONFLICT (user_id, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, method = EXCLUDED.method, path = EXCLUDED.path,
        response = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
    WHERE idempotency_keys.expires_at <= now();
  RETURN FOUND;
END $$;
