import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Stock is its own resource (issue 25, API.md §13). It stays a column of `products`, so that a sale
 * still decrements it and checks the price, SKU and name it snapshots under one row lock in one
 * statement (place_order*.sql), but it gets its own version and timestamps:
 * - `stock_version`, `stock_updated_at` and `stock_previous_updated_at` (If-Unmodified-Since on the
 *   stock, as §3 has it for products); existing rows start at stock version 1, as of their last two
 *   changes (the product's updated_at and previous_updated_at);
 * - the products' BEFORE UPDATE trigger becomes touch_product_version() (its current text is
 *   src/products/sql/touch_product_version.sql): an UPDATE that moves the stock moves only the stock's
 *   version, one that changes the product's own fields moves only the product's. A checkout, a cancel
 *   or an expiry no longer makes a merchant's `If-Match` stale.
 */
export class StockApart1763791500000 implements MigrationInterface {
  name = 'StockApart1763791500000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER products_touch_version ON products`);
    await q.query(`
      ALTER TABLE products
        ADD COLUMN stock_version integer NOT NULL DEFAULT 1,
        ADD COLUMN stock_updated_at timestamptz NOT NULL DEFAULT now(),
        ADD COLUMN stock_previous_updated_at timestamptz,
        ADD CONSTRAINT products_stock_version_positive CHECK (stock_version > 0)`);
    // The stock was part of the product until now: its history is the product's, the last two
    // changes included (If-Unmodified-Since tells two versions in one second from one).
    await q.query(
      `UPDATE products SET stock_updated_at = updated_at, stock_previous_updated_at = previous_updated_at`,
    );
    // The text the repeatable migration applies afterwards (the trigger needs the function now).
    await q.query(`
CREATE OR REPLACE FUNCTION touch_product_version() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        stock_write boolean := NEW.stock IS DISTINCT FROM OLD.stock
          OR NEW.stock_version IS DISTINCT FROM OLD.stock_version;
        own_write boolean := (NEW.sku, NEW.slug, NEW.name, NEW.description, NEW.price_cents,
          NEW.currency, NEW.active) IS DISTINCT FROM (OLD.sku, OLD.slug, OLD.name, OLD.description,
          OLD.price_cents, OLD.currency, OLD.active);
      BEGIN
        IF stock_write THEN
          NEW.stock_version := OLD.stock_version + 1;
          NEW.stock_previous_updated_at := OLD.stock_updated_at;
          NEW.stock_updated_at :=
            greatest(clock_timestamp(), OLD.stock_updated_at + interval '1 microsecond');
        ELSE
          NEW.stock_version := OLD.stock_version;
          NEW.stock_previous_updated_at := OLD.stock_previous_updated_at;
          NEW.stock_updated_at := OLD.stock_updated_at;
        END IF;
        IF own_write OR NOT stock_write THEN
          NEW.version := OLD.version + 1;
          NEW.previous_updated_at := OLD.updated_at;
          NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at + interval '1 microsecond');
        ELSE
          NEW.version := OLD.version;
          NEW.previous_updated_at := OLD.previous_updated_at;
          NEW.updated_at := OLD.updated_at;
        END IF;
        RETURN NEW;
      END $$`);
    await q.query(
      `CREATE TRIGGER products_touch_version BEFORE UPDATE ON products
         FOR EACH ROW EXECUTE FUNCTION touch_product_version()`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER products_touch_version ON products`);
    await q.query(`DROP FUNCTION touch_product_version()`);
    await q.query(`DELETE FROM repeatable_migrations WHERE name = 'touch_product_version'`);
    await q.query(`
      ALTER TABLE products
        DROP CONSTRAINT products_stock_version_positive,
        DROP COLUMN stock_previous_updated_at,
        DROP COLUMN stock_updated_at,
        DROP COLUMN stock_version`);
    await q.query(
      `CREATE TRIGGER products_touch_version BEFORE UPDATE ON products
         FOR EACH ROW EXECUTE FUNCTION touch_version()`,
    );
  }
}
