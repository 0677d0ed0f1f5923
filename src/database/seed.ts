import type { DataSource } from 'typeorm';
import { hashPassword } from '../auth/passwords';

/** Demo accounts. The passwords are public on purpose: this data only goes into demo databases. */
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

export const DEMO_PRODUCTS = [
  {
    sku: 'TSHIRT-RED-M',
    slug: 'red-t-shirt-m',
    name: 'Red T-shirt (M)',
    description: 'Organic cotton, medium.',
    priceCents: 1999,
    stock: 50,
  },
  {
    sku: 'TSHIRT-BLUE-L',
    slug: 'blue-t-shirt-l',
    name: 'Blue T-shirt (L)',
    description: 'Organic cotton, large.',
    priceCents: 1999,
    stock: 40,
  },
  {
    sku: 'MUG-LOGO',
    slug: 'logo-mug',
    name: 'Logo mug',
    description: 'Stoneware, 350 ml.',
    priceCents: 1250,
    stock: 25,
  },
  {
    sku: 'POSTER-A2',
    slug: 'a2-poster',
    name: 'A2 poster',
    description: 'Matte print.',
    priceCents: 900,
    stock: 10,
  },
  {
    sku: 'STICKER-PACK',
    slug: 'sticker-pack',
    name: 'Sticker pack',
    description: 'Ten vinyl stickers.',
    priceCents: 499,
    stock: 200,
  },
  {
    sku: 'LAST-ONE',
    slug: 'limited-print',
    name: 'Limited print',
    description: 'Only one left: try buying it twice at once.',
    priceCents: 4900,
    stock: 1,
  },
] as const;

/**
 * Seeds the demo catalogue and accounts; existing rows are left alone, so it is safe on every start.
 * Returns true when it created the accounts (first start).
 */
export async function seedDemo(dataSource: DataSource): Promise<boolean> {
  let created = false;
  for (const a of DEMO_ACCOUNTS) {
    const rows: unknown[] = await dataSource.query(
      `INSERT INTO users (email, name, password_hash, role) VALUES ($1, $2, $3, $4)
       ON CONFLICT ((lower(email))) DO NOTHING RETURNING id`,
      [a.email, a.name, await hashPassword(a.password), a.role],
    );
    created ||= rows.length > 0;
  }
  const hasProducts: unknown[] = await dataSource.query(
    `SELECT 1 FROM information_schema.tables WHERE table_name = 'products'`,
  );
  if (hasProducts.length) {
    for (const p of DEMO_PRODUCTS) {
      await dataSource.query(
        `INSERT INTO products (sku, slug, name, description, price_cents, currency, stock, active)
         VALUES ($1, $2, $3, $4, $5, 'EUR', $6, true) ON CONFLICT DO NOTHING`,
        [p.sku, p.slug, p.name, p.description, p.priceCents, p.stock],
      );
    }
  }
  return created;
}
