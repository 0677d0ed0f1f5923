-- requires: idempotency_key_free, write_idempotency_key
--
-- claim_idempotency_key(…): claims an Idempotency-Key for a request about to run (API.md §4), in the
-- caller's transaction, so that the key commits with the work and its stored outcome or not at all
-- (IdempotencyService.run; the outcome is stored later by an UPDATE). Inserts the key, or re-claims
-- an expired one; false when a live record already exists, or when the caller already holds
-- p_max_live live keys (then nothing is written). Waits for a key another transaction holds (see
-- idempotency_key_free), for at most the caller's lock_timeout.
CREATE OR REPLACE FUNCTION claim_idempotency_key(
  p_user uuid,
  p_key text,
  p_fingerprint text,
  p_method text,
  p_path text,
  p_ttl_hours integer,
  p_max_live integer
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF NOT idempotency_key_free(p_user, p_key, p_max_live, true) THEN
    RETURN false;
  END IF;
  PERFORM write_idempotency_key(p_user, p_key, p_fingerprint, p_method, p_path, p_ttl_hours, NULL);
  RETURN true;
END $$;
