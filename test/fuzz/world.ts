import { createHmac, randomUUID } from 'node:crypto';
import { ConfigService } from '@nestjs/config';
import { act, createProduct, placeOrder } from '../support/fixtures';
import { account } from '../support/http';
import { createTestApp } from '../support/test-app';
import type { SpecialToken, Who, World } from './harness';

export const PRODUCTS = [
  'plentiful',
  'scarce',
  'inactive',
  'usd',
  'referenced',
  'disposable',
] as const;
export type ProductName = (typeof PRODUCTS)[number];

export const ORDERS = [
  'pending',
  'paid',
  'shipped',
  'delivered',
  'cancelled',
  'othersPending',
] as const;
export type OrderName = (typeof ORDERS)[number];

export const PROMOTIONS = ['disposable', 'held'] as const;
export type PromotionName = (typeof PROMOTIONS)[number];

export interface FuzzWorld extends World {
  products: Record<ProductName, { id: string; etag: string; sku: string; slug: string }>;
  orders: Record<OrderName, string>;
  /** The paid order's manual payment, and a failed test payment of the pending order. */
  payments: { manual: string; failed: string };
  /** A succeeded refund of the paid order. */
  refunds: { succeeded: string };
  /** Promotion codes: one to patch and delete, one an order holds (its delete is 409). */
  promotions: Record<PromotionName, { id: string; etag: string; code: string }>;
  /** ETags as first read (they go stale as the fuzzing changes things, which is useful too). */
  etags: {
    users: string[];
    products: string[];
    /** The products' stock ETags (API.md §13). */
    stock: string[];
    orders: string[];
    promotions: string[];
  };
  close: () => Promise<void>;
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function jwt(payload: Record<string, unknown>, secret: string, alg = 'HS256'): string {
  const unsigned = `${b64({ alg, typ: 'JWT' })}.${b64(payload)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

/**
 * One app on its own database, with accounts, products in every interesting condition, orders in
 * every status, and tokens that must all be refused.
 */
export async function createWorld(): Promise<FuzzWorld> {
  const t = await createTestApp();
  const admin = await account(t, 'admin');
  const customer = await account(t);
  const other = await account(t);
  const victim = await account(t);
  const accounts: Record<Who, typeof admin> = { admin, customer, other, victim };

  const created = {
    plentiful: await createProduct(t, admin, { stock: 1_000_000 }),
    scarce: await createProduct(t, admin, { stock: 2 }),
    inactive: await createProduct(t, admin, { active: false }),
    usd: await createProduct(t, admin, { currency: 'USD', stock: 100 }),
    referenced: await createProduct(t, admin, { stock: 100 }),
    disposable: await createProduct(t, admin, { stock: 5 }),
  };
  const products = Object.fromEntries(
    PRODUCTS.map((name) => {
      const p = created[name];
      return [name, { id: p.id, etag: p.etag, sku: p.body.sku, slug: p.body.slug }];
    }),
  ) as FuzzWorld['products'];

  const order = async (who: typeof admin, ...actions: [typeof admin, string][]) => {
    const lines = [
      { productId: products.plentiful.id, quantity: 1 },
      { productId: products.referenced.id, quantity: 1 },
    ];
    const id = (await placeOrder(t, who, lines).expect(201)).body.id as string;
    for (const [actor, action] of actions) {
      // Paid by an admin's manual payment (API.md §9): no provider, no relay behind the fuzzing.
      if (action === 'pay') {
        const total = (await t.http().get(`/api/v1/orders/${id}`).set(actor.auth).expect(200)).body
          .totalCents as number;
        await t
          .http()
          .post(`/api/v1/orders/${id}/payments`)
          .set(admin.auth)
          .send({ provider: 'manual', amountCents: total, reference: 'fuzz world' })
          .expect(201);
      } else await act(t, actor, id, action).expect(200);
    }
    return id;
  };
  const orders: Record<OrderName, string> = {
    pending: await order(customer),
    paid: await order(customer, [customer, 'pay']),
    shipped: await order(customer, [customer, 'pay'], [admin, 'ship']),
    delivered: await order(customer, [customer, 'pay'], [admin, 'ship'], [admin, 'deliver']),
    cancelled: await order(customer, [customer, 'cancel']),
    othersPending: await order(other),
  };
  // The victim has an order, so that deleting it is refused (409) rather than done.
  await order(victim);

  const [{ id: manual }] = await t.db.query<{ id: string }[]>(
    'SELECT id FROM payments WHERE order_id = $1',
    [orders.paid],
  );
  const opened = await t
    .http()
    .post(`/api/v1/orders/${orders.pending}/payments`)
    .set(customer.auth)
    .send({ provider: 'test' })
    .expect(201);
  await t
    .http()
    .post(`/api/v1/payments/test/${opened.body.id}/complete`)
    .set(customer.auth)
    .send({ outcome: 'failed' })
    .expect(200);
  const refund = await t
    .http()
    .post(`/api/v1/orders/${orders.paid}/refunds`)
    .set(admin.auth)
    .send({ amountCents: 1, reason: 'fuzz world' })
    .expect(201);
  const payments = { manual, failed: opened.body.id as string };
  const refunds = { succeeded: refund.body.id as string };

  const promotion = async (terms: Record<string, unknown>) => {
    const res = await t
      .http()
      .post('/api/v1/promotions')
      .set(admin.auth)
      .send({ code: `FZ-${randomUUID().slice(0, 8)}`, ...terms })
      .expect(201);
    return { id: res.body.id as string, etag: res.headers.etag, code: res.body.code };
  };
  const promotions: FuzzWorld['promotions'] = {
    disposable: await promotion({ percentOff: 10 }),
    held: await promotion({ amountOffCents: 100, currency: 'EUR', usageLimit: 1_000_000 }),
  };
  await t
    .http()
    .post('/api/v1/orders')
    .set(customer.auth)
    .send({
      items: [{ productId: products.plentiful.id, quantity: 1 }],
      promotionCode: promotions.held.code,
    })
    .expect(201);
  promotions.held.etag = (
    await t.http().get(`/api/v1/promotions/${promotions.held.id}`).set(admin.auth).expect(200)
  ).headers.etag;

  const etagOf = async (path: string, who: typeof admin) =>
    (await t.http().get(path).set(who.auth).expect(200)).headers.etag;
  const etags = {
    users: [
      await etagOf(`/api/v1/users/${victim.id}`, admin),
      await etagOf(`/api/v1/users/${customer.id}`, customer),
    ],
    products: PRODUCTS.map((name) => products[name].etag),
    stock: await Promise.all(
      PRODUCTS.map(async (name) => etagOf(`/api/v1/products/${products[name].id}/stock`, admin)),
    ),
    promotions: [promotions.disposable.etag, promotions.held.etag],
    orders: [
      await etagOf(`/api/v1/orders/${orders.pending}`, customer),
      await etagOf(`/api/v1/orders/${orders.paid}`, admin),
      await etagOf(`/api/v1/orders/${orders.shipped}`, admin),
    ],
  };

  const secret = t.app.get(ConfigService).get<string>('JWT_SECRET')!;
  const now = Math.floor(Date.now() / 1000);
  const [header, , signature] = customer.token.split('.');
  const tokens: Partial<Record<SpecialToken, string>> = {
    expired: jwt({ sub: admin.id, role: 'admin', iat: now - 7200, exp: now - 3600 }, secret),
    ghost: jwt({ sub: randomUUID(), role: 'admin', iat: now, exp: now + 3600 }, secret),
    wrongSecret: jwt({ sub: admin.id, role: 'admin', iat: now, exp: now + 3600 }, 'not-the-secret'),
    algNone: `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: admin.id, role: 'admin' })}.AAAA`,
    tampered: `${header}.${b64({ sub: admin.id, role: 'admin', iat: now, exp: now + 3600 })}.${signature}`,
  };
  const bearer = Object.fromEntries(
    Object.entries(tokens).map(([name, token]) => [name, `Bearer ${token}`]),
  ) as Record<SpecialToken, string>;
  bearer.lowercaseScheme = `bearer ${customer.token}`;
  bearer.trailingGarbage = `Bearer ${customer.token}.x`;
  bearer.basic = `Basic ${Buffer.from(`${admin.email}:${admin.password}`).toString('base64')}`;

  return {
    t,
    accounts,
    payments,
    refunds,
    tokens: bearer,
    products,
    promotions,
    orders,
    etags,
    close: () => t.close(),
  };
}
