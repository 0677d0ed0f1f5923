import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Promotion codes (issue 23, API.md §11).
 *
 * - `promotions`: a versioned resource (touch_version). The code is stored trimmed and upper-case and
 *   is unique (promotions_code_key); exactly one of `percent_off` (1–100) and `amount_off_cents` with
 *   `currency`. `times_used` counts the orders currently holding a use: a checkout takes one with a
 *   single guarded UPDATE (`times_used < usage_limit`), a cancelled or expired order gives it back.
 * - `orders.promotion_id` (ON DELETE RESTRICT: a code that orders reference cannot be deleted, 409
 *   RESOURCE_IN_USE), `promotion_code` (the code as stored when placed), the terms as they were at
 *   placement (`promotion_percent_off`, `promotion_amount_off_cents`: an edit reapplies them),
 *   `discount_cents`, and `subtotal_cents` = total + discount (generated, so every writer of
 *   `total_cents` stays consistent; existing orders: subtotal = total, discount 0).
 */
export class Promotions1763791300000 implements MigrationInterface {
  name = 'Promotions1763791300000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE promotions (
        id                  uuid        NOT NULL DEFAULT gen_random_uuid(),
        code                text        NOT NULL,
        percent_off         smallint,
        amount_off_cents    bigint,
        currency            char(3),
        starts_at           timestamptz,
        ends_at             timestamptz,
        usage_limit         integer,
        per_customer_limit  integer,
        active              boolean     NOT NULL DEFAULT true,
        times_used          integer     NOT NULL DEFAULT 0,
        version             integer     NOT NULL DEFAULT 1,
        created_at          timestamptz NOT NULL DEFAULT now(),
        updated_at          timestamptz NOT NULL DEFAULT now(),
        previous_updated_at timestamptz,
        CONSTRAINT promotions_pkey PRIMARY KEY (id),
        CONSTRAINT promotions_code_format
          CHECK (code = upper(btrim(code)) AND code ~ '^[A-Z0-9][A-Z0-9._-]{0,63}$'),
        CONSTRAINT promotions_one_discount CHECK (
          (percent_off IS NOT NULL AND amount_off_cents IS NULL AND currency IS NULL)
          OR (percent_off IS NULL AND amount_off_cents IS NOT NULL AND currency IS NOT NULL)),
        CONSTRAINT promotions_percent_off_range CHECK (percent_off BETWEEN 1 AND 100),
        CONSTRAINT promotions_amount_off_positive CHECK (amount_off_cents > 0),
        CONSTRAINT promotions_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
        CONSTRAINT promotions_period_order CHECK (starts_at < ends_at),
        CONSTRAINT promotions_usage_limit_nonnegative CHECK (usage_limit >= 0),
        CONSTRAINT promotions_per_customer_limit_positive CHECK (per_customer_limit >= 1),
        CONSTRAINT promotions_times_used_nonnegative CHECK (times_used >= 0),
        CONSTRAINT promotions_version_positive CHECK (version > 0)
      )`);
    await q.query(`CREATE UNIQUE INDEX promotions_code_key ON promotions (code)`);
    await q.query(`CREATE INDEX promotions_created_at_idx ON promotions (created_at, id)`);
    await q.query(
      `CREATE TRIGGER promotions_touch_version BEFORE UPDATE ON promotions
         FOR EACH ROW EXECUTE FUNCTION touch_version()`,
    );

    await q.query(`
      ALTER TABLE orders
        ADD COLUMN promotion_id uuid,
        ADD COLUMN promotion_code text,
        ADD COLUMN promotion_percent_off smallint,
        ADD COLUMN promotion_amount_off_cents bigint,
        ADD COLUMN discount_cents bigint NOT NULL DEFAULT 0,
        ADD COLUMN subtotal_cents bigint GENERATED ALWAYS AS (total_cents + discount_cents) STORED,
        ADD CONSTRAINT orders_promotion_id_fkey
          FOREIGN KEY (promotion_id) REFERENCES promotions (id) ON DELETE RESTRICT,
        ADD CONSTRAINT orders_discount_nonnegative CHECK (discount_cents >= 0),
        ADD CONSTRAINT orders_promotion_terms CHECK (
          (promotion_id IS NULL AND promotion_code IS NULL AND promotion_percent_off IS NULL
             AND promotion_amount_off_cents IS NULL AND discount_cents = 0)
          OR (promotion_code IS NOT NULL
             AND (promotion_percent_off IS NULL) <> (promotion_amount_off_cents IS NULL)))`);
    // The per-customer count and "which holds hold a use of this code" (API.md §11).
    await q.query(`
      CREATE INDEX orders_promotion_user_idx ON orders (promotion_id, user_id)
        WHERE promotion_id IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX orders_promotion_user_idx`);
    await q.query(`
      ALTER TABLE orders
        DROP CONSTRAINT orders_promotion_terms,
        DROP CONSTRAINT orders_discount_nonnegative,
        DROP CONSTRAINT orders_promotion_id_fkey,
        DROP COLUMN subtotal_cents,
        DROP COLUMN discount_cents,
        DROP COLUMN promotion_amount_off_cents,
        DROP COLUMN promotion_percent_off,
        DROP COLUMN promotion_code,
        DROP COLUMN promotion_id`);
    await q.query(`DROP TABLE promotions`);
  }
}
