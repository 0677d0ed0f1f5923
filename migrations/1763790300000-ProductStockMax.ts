import type { MigrationInterface, QueryRunner } from 'typeorm';

/** An upper bound on stock, so that adjustments and restocks can never overflow the integer. */
export class ProductStockMax1763790300000 implements MigrationInterface {
  name = 'ProductStockMax1763790300000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE products ADD CONSTRAINT products_stock_max CHECK (stock <= 1000000000)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE products DROP CONSTRAINT products_stock_max`);
  }
}
