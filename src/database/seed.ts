import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { sql } from '../common/database/sql';
import { hashPassword } from '../users/passwords';
import type { Env } from '../config/env';
import { DEMO_ACCOUNTS, DEMO_PRODUCTS } from '../common/demo-data';

/** An account the seed created, with the password it was given (for the start-up log, once). */
export interface SeededAccount {
  email: string;
  role: (typeof DEMO_ACCOUNTS)[number]['role'];
  password: string;
}

/**
 * Seeds the demo catalogue and accounts; existing rows are left alone, so it is safe on every start.
 *
 * In production the accounts get fresh random passwords instead of the published ones: a demo on a
 * reachable host must not let in whoever read the README. They still get created (rather than
 * skipped) so that `SEED_DEMO=true` on a production build (docker compose) is a usable demo without
 * another step; the caller prints the passwords once, and only the run that created them knows them.
 *
 * Returns the accounts created by this call: empty on every later start.
 */
export async function seedDemo(
  dataSource: DataSource,
  nodeEnv: Env['NODE_ENV'],
): Promise<SeededAccount[]> {
  const created: SeededAccount[] = [];
  for (const a of DEMO_ACCOUNTS) {
    const password = nodeEnv === 'production' ? randomBytes(18).toString('base64url') : a.password;
    const { rows } = await sql(
      dataSource.manager,
      `INSERT INTO users (email, name, password_hash, role) VALUES ($1, $2, $3, $4)
       ON CONFLICT ((lower(email))) DO NOTHING RETURNING id`,
      [a.email, a.name, await hashPassword(password), a.role],
    );
    if (rows.length > 0) created.push({ email: a.email, role: a.role, password });
  }
  const { rows: hasProducts } = await sql(
    dataSource.manager,
    `SELECT 1 FROM information_schema.tables WHERE table_name = 'products'`,
  );
  if (hasProducts.length) {
    for (const p of DEMO_PRODUCTS) {
      await sql(
        dataSource.manager,
        `INSERT INTO products (id, sku, slug, name, description, price_cents, currency, stock, active)
         VALUES ($1, $2, $3, $4, $5, $6, 'EUR', $7, true) ON CONFLICT DO NOTHING`,
        [p.id, p.sku, p.slug, p.name, p.description, p.priceCents, p.stock],
      );
    }
  }
  return created;
}
