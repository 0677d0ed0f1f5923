-- touch_version(): the BEFORE UPDATE trigger of users, products and orders (the triggers themselves
-- are in migrations/1763790400000-Hardening.ts). Every update of a versioned row moves its version by
-- one, its updated_at to the clock (never the transaction's start, never backwards) and keeps the
-- previous updated_at, so that If-Unmodified-Since can tell when one second held two versions.
-- The body keeps, byte for byte, the text (and indentation) it had in its migration, so that
-- databases migrated before this file existed hold exactly this definition.
CREATE OR REPLACE FUNCTION touch_version() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        NEW.version := OLD.version + 1;
        NEW.previous_updated_at := OLD.updated_at;
        NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at + interval '1 microsecond');
        RETURN NEW;
      END $$;
