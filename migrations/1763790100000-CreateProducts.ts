import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateProducts1763790100000 implements MigrationInterface {
  name = 'CreateProducts1763790100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE products (
        id          uuid        NOT NULL DEFAULT gen_random_uuid(),
        sku         text        NOT NULL,
        slug        text        NOT NULL,
        name        text        NOT NULL,
        description text        NOT NULL DEFAULT '',
        price_cents integer     NOT NULL,
        currency    char(3)     NOT NULL,
        stock       integer     NOT NULL DEFAULT 0,
        active      boolean     NOT NULL DEFAULT true,
        version     integer     NOT NULL DEFAULT 1,
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT products_pkey PRIMARY KEY (id),
        CONSTRAINT products_price_nonnegative CHECK (price_cents >= 0),
        -- The last line of defence against overselling: no code path can take stock below zero.
        CONSTRAINT products_stock_nonnegative CHECK (stock >= 0),
        CONSTRAINT products_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
        CONSTRAINT products_sku_trimmed CHECK (sku = btrim(sku) AND sku <> ''),
        CONSTRAINT products_slug_format CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
        CONSTRAINT products_version_positive CHECK (version > 0)
      )`);
    // SKUs are one identity whatever their case or surrounding spaces.
    await q.query(`CREATE UNIQUE INDEX products_sku_upper_key ON products (upper(btrim(sku)))`);
    await q.query(`CREATE UNIQUE INDEX products_slug_key ON products (slug)`);
    await q.query(`CREATE INDEX products_created_at_idx ON products (created_at, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE products`);
  }
}
