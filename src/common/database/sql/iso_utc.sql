-- iso_utc(ts): a timestamp as the API writes it (ISO 8601, UTC, milliseconds), for JSON built in
-- SQL (the events of place_order).
-- The body keeps, byte for byte, the text (and indentation) it had in its migration, so that
-- databases migrated before this file existed hold exactly this definition.
CREATE OR REPLACE FUNCTION iso_utc(ts timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
        SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
      $$;
