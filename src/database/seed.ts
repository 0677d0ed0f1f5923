import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { sql } from '../common/database/sql';
import { hashPassword } from '../users/passwords';
import type { Env } from '../config/env';

/**
 * Demo accounts. The passwords are published (README, client/demo) on purpose, so they are only ever
 * given outside production: see seedDemo.
 */
export const DEMO_ACCOUNTS = [
  {
    email: 'admin@example.com',
    name: 'Demo Admin',
    password: 'admin-demo-password',
    role: 'admin',
  },
  {
    email: 'customer@example.com',
    name: 'Demo Customer',
    password: 'customer-demo-password',
    role: 'customer',
  },
] as const;

/**
 * The demo catalogue. Ids are fixed, so that examples (the Swagger UI's order body) name a product
 * that exists on every fresh demo database.
 */
export const DEMO_PRODUCTS = [
  {
    id: '8d5b6a3e-1f0c-4b7e-9a61-2c4f0e9d7a11',
    sku: 'TSHIRT-RED-M',
    slug: 'red-t-shirt-m',
    name: 'Red T-shirt (M)',
    description: 'Organic cotton, medium.',
    priceCents: 1999,
    stock: 50,
  },
  {
    id: '8d5b6a3e-1f0c-4b7e-9a61-2c4f0e9d7a12',
    sku: 'TSHIRT-BLUE-L',
    slug: 'blue-t-shirt-l',
    name: 'Blue T-shirt (L)',
    description: 'Organic cotton, large.',
    priceCents: 1999,
    stock: 40,
  },
  {
    id: '8d5b6a3e-1f0c-4b7e-9a61-2c4f0e9d7a13',
    sku: 'MUG-LOGO',
    slug: 'logo-mug',
    name: 'Logo mug',
    description: 'Stoneware, 350 ml.',
    priceCents: 1250,
    stock: 25,
  },
  {
    id: '8d5b6a3e-1f0c-4b7e-9a61-2c4f0e9d7a14',
    sku: 'POSTER-A2',
    slug: 'a2-poster',
    name: 'A2 poster',
    description: 'Matte print.',
    priceCents: 900,
    stock: 10,
  },
  {
    id: '8d5b6a3e-1f0c-4b7e-9a61-2c4f0e9d7a15',
    sku: 'STICKER-PACK',
    slug: 'sticker-pack',
    name: 'Sticker pack',
    description: 'Ten vinyl stickers.',
    priceCents: 499,
    stock: 200,
  },
  {
    id: '8d5b6a3e-1f0c-4b7e-9a61-2c4f0e9d7a16',
    sku: 'LAST-ONE',
    slug: 'limited-print',
    name: 'Limited print',
    description: 'Only one left: try buying it twice at once.',
    priceCents: 4900,
    stock: 1,
  },
] as const;

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
