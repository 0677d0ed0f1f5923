-- touch_product_version(): the BEFORE UPDATE trigger of products (migrations/1763791500000-StockApart.ts),
-- in place of touch_version. A product row holds two resources (API.md §13): the product (its own
-- fields) and its stock, each with its own version and timestamps. An UPDATE that moves `stock` (or
-- names `stock_version`, as a stock-take does) is a write of the stock: only the stock's version moves.
-- An UPDATE that changes the product's own fields, or changes nothing (a PATCH of `{}`, as before), is
-- a write of the product: only the product's version moves. A sale therefore never makes a merchant's
-- If-Match stale, and a price edit never makes a stock-take's stale.
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
      END $$;
