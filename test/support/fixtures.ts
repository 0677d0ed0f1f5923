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

/** The product's stock, read as a storefront does: `GET /products/{id}/stock` (API.md §13). */
export async function stockOf(t: TestApp, productId: string): Promise<number> {
  const res = await t.http().get(`/api/v1/products/${productId}/stock`);
  if (res.status !== 200) {
    throw new Error(`GET stock of ${productId}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body.stock as number;
}

/** `GET /products/{id}/stock`: the stock's representation and its own ETag. */
export async function stockResource(
  t: TestApp,
  productId: string,
): Promise<{ body: Record<string, any>; etag: string }> {
  const res = await t.http().get(`/api/v1/products/${productId}/stock`).expect(200);
  return { body: res.body, etag: res.headers.etag };
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

export interface Answer {
  status: number;
  body: Record<string, any>;
  headers: Record<string, string>;
}

/** `POST /orders/{id}/payments` with the `test` provider (API.md §9), as the order's owner. */
export const openPayment = (t: TestApp, who: Account, orderId: string, key?: string) => {
  const req = t.http().post(`/api/v1/orders/${orderId}/payments`).set(who.auth);
  return (key ? req.set('Idempotency-Key', key) : req).send({ provider: 'test' });
};

/** The `test` provider's confirmation: the owner "pays" at the provider, which notifies the service. */
export const completePayment = (
  t: TestApp,
  who: Account,
  paymentId: string,
  outcome: 'succeeded' | 'failed' = 'succeeded',
  amountCents?: number,
) =>
  t
    .http()
    .post(`/api/v1/payments/test/${paymentId}/complete`)
    .set(who.auth)
    .send(amountCents === undefined ? { outcome } : { outcome, amountCents });

/**
 * Pays an order the way a storefront does since issue 22: opens a `test` payment and completes it.
 * Answers as `POST /orders/{id}/pay` used to: 200 with the order when this payment paid it; the
 * opening's problem when it could not open (409 ILLEGAL_STATE_TRANSITION for an order no longer
 * pending); 409 with the order's `currentStatus` when the money came too late (it is owed back).
 */
export async function pay(t: TestApp, who: Account, orderId: string): Promise<Answer> {
  const opened = await openPayment(t, who, orderId);
  if (opened.status !== 201) return opened;
  const done = await completePayment(t, who, String(opened.body.id));
  if (done.status !== 200) return done;
  const order = await t.http().get(`/api/v1/orders/${orderId}`).set(who.auth);
  if (order.status === 200 && order.body.paidCents > 0) return order;
  return {
    status: 409,
    headers: order.headers,
    body: { code: 'ILLEGAL_STATE_TRANSITION', currentStatus: order.body.status, order: order.body },
  };
}

/** Pays and expects it to work: the paid order. */
export async function paid(t: TestApp, who: Account, orderId: string): Promise<Answer> {
  const res = await pay(t, who, orderId);
  if (res.status !== 200)
    throw new Error(`pay ${orderId}: ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}
