import { randomBytes } from 'node:crypto';
import type { Account } from './http';
import type { TestApp } from './test-app';

export interface ProductInput {
  sku: string;
  slug: string;
  name: string;
  priceCents: number;
  currency: string;
  stock: number;
  active?: boolean;
  description?: string;
}

export function productInput(overrides: Partial<ProductInput> = {}): ProductInput {
  const tag = randomBytes(4).toString('hex');
  return {
    sku: `SKU-${tag}`,
    slug: `product-${tag}`,
    name: `Product ${tag}`,
    priceCents: 1250,
    currency: 'EUR',
    stock: 10,
    ...overrides,
  };
}

/** Creates a product through the API and returns its body and ETag. */
export async function createProduct(
  t: TestApp,
  admin: Account,
  overrides: Partial<ProductInput> = {},
): Promise<{ id: string; etag: string; body: Record<string, any> }> {
  const res = await t
    .http()
    .post('/api/v1/products')
    .set(admin.auth)
    .send(productInput(overrides))
    .expect(201);
  return { id: res.body.id, etag: res.headers.etag, body: res.body };
}

export async function productRow(t: TestApp, id: string): Promise<Record<string, any> | undefined> {
  const rows = await t.db.query('SELECT * FROM products WHERE id = $1', [id]);
  return rows[0];
}

export type Line = { productId: string; quantity: number };

export const placeOrder = (t: TestApp, who: Account, items: Line[], key?: string) => {
  const req = t.http().post('/api/v1/orders').set(who.auth);
  return (key ? req.set('Idempotency-Key', key) : req).send({ items });
};

export const act = (t: TestApp, who: Account, orderId: string, action: string) =>
  t.http().post(`/api/v1/orders/${orderId}/${action}`).set(who.auth).send();

export async function stockOf(t: TestApp, productId: string): Promise<number> {
  return (await productRow(t, productId))!.stock as number;
}

export async function orderCount(t: TestApp, userId?: string): Promise<number> {
  const [{ n }] = await t.db.query(
    userId
      ? 'SELECT count(*)::int AS n FROM orders WHERE user_id = $1'
      : 'SELECT count(*)::int AS n FROM orders',
    userId ? [userId] : [],
  );
  return n;
}
