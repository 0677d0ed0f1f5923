import { randomUUID } from 'node:crypto';
import { IdempotencyService } from '../../src/common/http/idempotency.service';
import { CALLER_ACTIONS, type OrderAction } from '../../src/orders/order-state';
import { type Account, account, expectProblem } from '../support/http';
import {
  act,
  openPayment,
  paid,
  createProduct,
  orderCount,
  placeOrder,
  productRow,
  stockOf,
} from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

describe('orders', () => {
  let t: TestApp;
  let admin: Account;
  let alice: Account;
  let bob: Account;
  beforeAll(async () => {
    t = await createTestApp();
    admin = await account(t, 'admin');
    alice = await account(t);
    bob = await account(t);
  });
  afterAll(() => t.close());

  describe('placing', () => {
    it('reserves stock, snapshots prices and computes the total on the server', async () => {
      const a = await createProduct(t, admin, { stock: 5, priceCents: 1000 });
      const b = await createProduct(t, admin, { stock: 5, priceCents: 250 });
      const res = await placeOrder(t, alice, [
        { productId: a.id, quantity: 2 },
        { productId: b.id, quantity: 1 },
        { productId: a.id, quantity: 1 },
      ]).expect(201);
      expect(res.body).toMatchObject({
        userId: alice.id,
        status: 'pending',
        allowedTransitions: ['cancel'],
        totalCents: 3250,
        currency: 'EUR',
        version: 1,
        items: [
          {
            productId: a.id,
            sku: a.body.sku,
            name: a.body.name,
            unitPriceCents: 1000,
            quantity: 3,
          },
          { productId: b.id, sku: b.body.sku, unitPriceCents: 250, quantity: 1 },
        ],
      });
      expect(res.headers.location).toBe(`/api/v1/orders/${res.body.id}`);
      expect(res.headers.etag).toMatch(/^"/);
      expect(await stockOf(t, a.id)).toBe(2);
      expect(await stockOf(t, b.id)).toBe(4);
      // Later price changes do not touch the order. (The sale did not move the product's version:
      // stock is its own resource, API.md §13.)
      await t
        .http()
        .patch(`/api/v1/products/${a.id}`)
        .set(admin.auth)
        .send({ priceCents: 1, version: 1 })
        .expect(200);
      const again = await t.http().get(`/api/v1/orders/${res.body.id}`).set(alice.auth).expect(200);
      expect(again.body.totalCents).toBe(3250);
    });

    it('answers 409 INSUFFICIENT_STOCK listing every short line, reserving nothing', async () => {
      const a = await createProduct(t, admin, { stock: 1 });
      const b = await createProduct(t, admin, { stock: 2 });
      const c = await createProduct(t, admin, { stock: 9 });
      const before = await orderCount(t, alice.id);
      const res = await placeOrder(t, alice, [
        { productId: c.id, quantity: 1 },
        { productId: a.id, quantity: 2 },
        { productId: b.id, quantity: 3 },
      ]);
      expectProblem(res, 'INSUFFICIENT_STOCK');
      expect(res.body.items).toEqual(
        expect.arrayContaining([
          { productId: a.id, sku: a.body.sku, requested: 2, available: 1 },
          { productId: b.id, sku: b.body.sku, requested: 3, available: 2 },
        ]),
      );
      expect(res.body.items).toHaveLength(2);
      expect([await stockOf(t, a.id), await stockOf(t, b.id), await stockOf(t, c.id)]).toEqual([
        1, 2, 9,
      ]);
      expect(await orderCount(t, alice.id)).toBe(before);
    });

    it('checks merged quantities: two lines of 1 on stock 1 are short', async () => {
      const a = await createProduct(t, admin, { stock: 1 });
      const res = await placeOrder(t, alice, [
        { productId: a.id, quantity: 1 },
        { productId: a.id, quantity: 1 },
      ]);
      expectProblem(res, 'INSUFFICIENT_STOCK');
      expect(res.body.items).toEqual([
        { productId: a.id, sku: a.body.sku, requested: 2, available: 1 },
      ]);
    });

    it('answers 409 PRODUCT_UNAVAILABLE for an inactive product and 422 UNKNOWN_PRODUCT for a missing one', async () => {
      const inactive = await createProduct(t, admin, { active: false, stock: 5 });
      const res = await placeOrder(t, alice, [{ productId: inactive.id, quantity: 1 }]);
      expectProblem(res, 'PRODUCT_UNAVAILABLE');
      expect(res.body.items).toEqual([{ productId: inactive.id, sku: inactive.body.sku }]);
      const ghost = randomUUID();
      const missing = await placeOrder(t, alice, [{ productId: ghost, quantity: 1 }]);
      expectProblem(missing, 'UNKNOWN_PRODUCT');
      expect(missing.body.items).toEqual([{ productId: ghost }]);
      expect(await stockOf(t, inactive.id)).toBe(5);
    });

    it.each([
      [{ items: [] }, 'items'],
      [{ items: [{ productId: 'nope', quantity: 1 }] }, 'items[0].productId'],
      [{ items: [{ productId: randomUUID(), quantity: 0 }] }, 'items[0].quantity'],
      [{ items: [{ productId: randomUUID(), quantity: 1001 }] }, 'items[0].quantity'],
      [{ items: [{ productId: randomUUID(), quantity: 1.5 }] }, 'items[0].quantity'],
      [
        { items: Array.from({ length: 101 }, () => ({ productId: randomUUID(), quantity: 1 })) },
        'items',
      ],
      [{ items: [{ productId: randomUUID(), quantity: 1 }], totalCents: 1 }, 'totalCents'],
    ])('answers 400 VALIDATION_FAILED for %j naming %s', async (body, field) => {
      const res = await t.http().post('/api/v1/orders').set(alice.auth).send(body);
      expectProblem(res, 'VALIDATION_FAILED');
      expect((res.body.errors as { field: string }[]).map((e) => e.field)).toContain(field);
    });

    it('requires authentication', async () => {
      expectProblem(await t.http().post('/api/v1/orders').send({ items: [] }), 'UNAUTHENTICATED');
    });
  });

  describe('reading', () => {
    it('shows customers their own orders only; admins see all', async () => {
      const p = await createProduct(t, admin, { stock: 10 });
      const mine = (await placeOrder(t, bob, [{ productId: p.id, quantity: 1 }]).expect(201)).body;
      expectProblem(await t.http().get(`/api/v1/orders/${mine.id}`).set(alice.auth), 'NOT_FOUND');
      expectProblem(await act(t, alice, mine.id, 'cancel'), 'NOT_FOUND');
      const list = await t
        .http()
        .get('/api/v1/orders')
        .set(bob.auth)
        .query({ limit: 100 })
        .expect(200);
      expect(list.body.items.every((o: { userId: string }) => o.userId === bob.id)).toBe(true);
      const all = await t
        .http()
        .get('/api/v1/orders')
        .set(admin.auth)
        .query({ limit: 100 })
        .expect(200);
      expect(all.body.items.map((o: { id: string }) => o.id)).toContain(mine.id);
      const adminView = await t.http().get(`/api/v1/orders/${mine.id}`).set(admin.auth).expect(200);
      expect(adminView.body.allowedTransitions).toEqual(['cancel']);
      const ownerView = await t.http().get(`/api/v1/orders/${mine.id}`).set(bob.auth).expect(200);
      expect(ownerView.headers.etag).not.toBe(adminView.headers.etag);
      const cached = await t
        .http()
        .get(`/api/v1/orders/${mine.id}`)
        .set(bob.auth)
        .set('If-None-Match', ownerView.headers.etag);
      expect(cached.status).toBe(304);
    });
  });

  describe('the state machine over HTTP', () => {
    const placed = async (
      who: Account,
      stock = 5,
    ): Promise<{ orderId: string; productId: string }> => {
      const p = await createProduct(t, admin, { stock });
      const o = await placeOrder(t, who, [{ productId: p.id, quantity: 2 }]).expect(201);
      return { orderId: o.body.id, productId: p.id };
    };
    /** Brings a fresh order of alice's to the given status through the API. */
    const inStatus = async (status: string): Promise<{ orderId: string; productId: string }> => {
      const o = await placed(alice);
      // `pay` is the payment flow's (API.md §9): a test payment, opened and completed.
      const path: Record<string, [Account, OrderAction][]> = {
        pending: [],
        paid: [[alice, 'pay']],
        shipped: [
          [alice, 'pay'],
          [admin, 'ship'],
        ],
        delivered: [
          [alice, 'pay'],
          [admin, 'ship'],
          [admin, 'deliver'],
        ],
        cancelled: [[alice, 'cancel']],
      };
      for (const [who, action] of path[status]) {
        if (action === 'pay') await paid(t, who, o.orderId);
        else await act(t, who, o.orderId, action).expect(200);
      }
      return o;
    };

    const expected: Record<string, Partial<Record<OrderAction, string>>> = {
      pending: { cancel: 'cancelled' },
      paid: { ship: 'shipped', cancel: 'cancelled' },
      shipped: { deliver: 'delivered' },
      delivered: {},
      cancelled: {},
    };
    const roles: Record<Exclude<OrderAction, 'expire' | 'pay' | 'revive'>, 'owner' | 'admin'> = {
      ship: 'admin',
      deliver: 'admin',
      cancel: 'owner',
    };

    const cases = Object.keys(expected).flatMap((status) =>
      CALLER_ACTIONS.map((action) => [status, action as keyof typeof roles] as const),
    );
    it.each(cases)(
      'from %s, %s by the right role: legal → 200, illegal → 409 with allowedTransitions',
      async (status, action) => {
        const o = await inStatus(status);
        const who = roles[action] === 'owner' ? alice : admin;
        const res = await act(t, who, o.orderId, action);
        const target = expected[status][action];
        if (target) {
          expect(res.status).toBe(200);
          expect(res.body.status).toBe(target);
        } else {
          expectProblem(res, 'ILLEGAL_STATE_TRANSITION');
          expect(res.body).toMatchObject({ currentStatus: status, attemptedTransition: action });
          expect(Array.isArray(res.body.allowedTransitions)).toBe(true);
          const [row] = await t.db.query('SELECT status, version FROM orders WHERE id = $1', [
            o.orderId,
          ]);
          expect(row.status).toBe(status);
        }
      },
    );

    it.each<[OrderAction, 'customer' | 'admin']>([
      ['ship', 'customer'],
      ['deliver', 'customer'],
      ['pay', 'admin'],
      ['pay', 'customer'],
      ['revive', 'admin'],
    ])('answers 403 to %s by a %s, whatever the state', async (action, role) => {
      const o = await inStatus(
        action === 'deliver' ? 'shipped' : action === 'ship' ? 'paid' : 'pending',
      );
      const res = await act(t, role === 'admin' ? admin : alice, o.orderId, action);
      expectProblem(res, 'FORBIDDEN');
    });

    it('answers a shipped order’s cancel with 409 naming the allowed transitions', async () => {
      const o = await inStatus('shipped');
      const res = await act(t, admin, o.orderId, 'cancel');
      expectProblem(res, 'ILLEGAL_STATE_TRANSITION');
      expect(res.body).toMatchObject({
        currentStatus: 'shipped',
        attemptedTransition: 'cancel',
        allowedTransitions: ['deliver'],
      });
      expect(res.body.detail).toContain('shipped');
    });

    it('returns the stock on cancel, from pending and from paid, and never twice', async () => {
      const pending = await placed(alice, 5);
      await act(t, alice, pending.orderId, 'cancel').expect(200);
      expect(await stockOf(t, pending.productId)).toBe(5);
      expectProblem(await act(t, alice, pending.orderId, 'cancel'), 'ILLEGAL_STATE_TRANSITION');
      expect(await stockOf(t, pending.productId)).toBe(5);
      const paid = await inStatus('paid');
      await act(t, admin, paid.orderId, 'cancel').expect(200);
      expect(await stockOf(t, paid.productId)).toBe(5);
    });

    it('records every transition in the history with its actor', async () => {
      const o = await inStatus('delivered');
      const res = await t
        .http()
        .get(`/api/v1/orders/${o.orderId}/history`)
        .set(alice.auth)
        .expect(200);
      expect(
        res.body.items.map((e: { from: string | null; to: string; actorId: string }) => [
          e.from,
          e.to,
          e.actorId,
        ]),
      ).toEqual([
        [null, 'pending', alice.id],
        // A provider's confirmation: the service's own action (API.md §9).
        ['pending', 'paid', null],
        ['paid', 'shipped', admin.id],
        ['shipped', 'delivered', admin.id],
      ]);
      expectProblem(
        await t.http().get(`/api/v1/orders/${o.orderId}/history`).set(bob.auth),
        'NOT_FOUND',
      );
    });

    it('honours If-Match on a transition: stale → 412, nothing changed', async () => {
      const o = await inStatus('pending');
      const { headers } = await t
        .http()
        .get(`/api/v1/orders/${o.orderId}`)
        .set(alice.auth)
        .expect(200);
      await paid(t, alice, o.orderId);
      const res = await t
        .http()
        .post(`/api/v1/orders/${o.orderId}/cancel`)
        .set(alice.auth)
        .set('If-Match', headers.etag);
      expectProblem(res, 'PRECONDITION_FAILED');
      expect(res.body.current).toMatchObject({ status: 'paid', version: 2 });
      const [row] = await t.db.query('SELECT status FROM orders WHERE id = $1', [o.orderId]);
      expect(row.status).toBe('paid');
    });
  });

  describe('idempotency', () => {
    it('replays a retried checkout with the same key: one order, one decrement', async () => {
      const p = await createProduct(t, admin, { stock: 10 });
      const key = `checkout-${randomUUID()}`;
      const first = await placeOrder(t, alice, [{ productId: p.id, quantity: 3 }], key).expect(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      const retry = await placeOrder(t, alice, [{ productId: p.id, quantity: 3 }], key).expect(201);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.body).toEqual(first.body);
      expect(retry.headers.location).toBe(first.headers.location);
      expect(await stockOf(t, p.id)).toBe(7);
    });

    it('answers 422 IDEMPOTENCY_KEY_REUSED for the same key with another body', async () => {
      const p = await createProduct(t, admin, { stock: 10 });
      const key = randomUUID();
      await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }], key).expect(201);
      expectProblem(
        await placeOrder(t, alice, [{ productId: p.id, quantity: 2 }], key),
        'IDEMPOTENCY_KEY_REUSED',
      );
      expect(await stockOf(t, p.id)).toBe(9);
    });

    it('scopes keys per caller: another user with the same key gets a new order', async () => {
      const p = await createProduct(t, admin, { stock: 10 });
      const key = randomUUID();
      const a = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }], key).expect(201);
      const b = await placeOrder(t, bob, [{ productId: p.id, quantity: 1 }], key).expect(201);
      expect(b.body.id).not.toBe(a.body.id);
      expect(b.headers['idempotent-replayed']).toBeUndefined();
      expect(await stockOf(t, p.id)).toBe(8);
    });

    it('stores and replays a business 409, even after stock came back', async () => {
      const p = await createProduct(t, admin, { stock: 1 });
      const key = randomUUID();
      const first = await placeOrder(t, alice, [{ productId: p.id, quantity: 2 }], key);
      expectProblem(first, 'INSUFFICIENT_STOCK');
      await t
        .http()
        .post(`/api/v1/products/${p.id}/stock-adjustments`)
        .set(admin.auth)
        .send({ delta: 5, reason: 'restock' })
        .expect(200);
      const replay = await placeOrder(t, alice, [{ productId: p.id, quantity: 2 }], key);
      expectProblem(replay, 'INSUFFICIENT_STOCK');
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.body.items).toEqual(first.body.items);
      expect(await stockOf(t, p.id)).toBe(6);
    });

    it('does not store validation failures: the key stays free', async () => {
      const p = await createProduct(t, admin, { stock: 3 });
      const key = randomUUID();
      expectProblem(
        await placeOrder(t, alice, [{ productId: p.id, quantity: 0 }], key),
        'VALIDATION_FAILED',
      );
      await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }], key).expect(201);
    });

    it('rejects a malformed key with 400', async () => {
      const p = await createProduct(t, admin);
      for (const key of ['x'.repeat(256), 'x'.repeat(10_000), 'caf\u00e9']) {
        const res = await t
          .http()
          .post('/api/v1/orders')
          .set(alice.auth)
          .set('Idempotency-Key', key)
          .send({ items: [{ productId: p.id, quantity: 1 }] });
        expectProblem(res, 'VALIDATION_FAILED');
        expect(res.body.errors[0].field).toBe('Idempotency-Key');
      }
      expect(await stockOf(t, p.id)).toBe(10);
    });

    it('makes opening a payment idempotent: a retry replays 201 instead of 409 PAYMENT_IN_PROGRESS', async () => {
      const p = await createProduct(t, admin);
      const o = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
      const key = randomUUID();
      const first = await openPayment(t, alice, o.body.id, key).expect(201);
      const retry = await openPayment(t, alice, o.body.id, key).expect(201);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.headers.location).toBe(first.headers.location);
      expect(retry.body).toEqual(first.body);
      expectProblem(await openPayment(t, alice, o.body.id), 'PAYMENT_IN_PROGRESS');
      const [{ n }] = await t.db.query(
        'SELECT count(*)::int AS n FROM payments WHERE order_id = $1',
        [o.body.id],
      );
      expect(n).toBe(1);
    });

    it('treats an equivalent URL as the same request (upper-case id on payments)', async () => {
      const p = await createProduct(t, admin);
      const o = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
      const key = randomUUID();
      await openPayment(t, alice, o.body.id, key).expect(201);
      const retry = await openPayment(t, alice, o.body.id.toUpperCase(), key).expect(201);
      expect(retry.headers['idempotent-replayed']).toBe('true');
    });

    it('does not store a mixed-currency refusal: the corrected retry with the key succeeds', async () => {
      const eur = await createProduct(t, admin, { currency: 'EUR' });
      const usd = await createProduct(t, admin, { currency: 'USD' });
      const key = randomUUID();
      const mixed = await placeOrder(
        t,
        alice,
        [
          { productId: eur.id, quantity: 1 },
          { productId: usd.id, quantity: 1 },
        ],
        key,
      );
      expectProblem(mixed, 'VALIDATION_FAILED');
      expect(await t.db.query('SELECT 1 FROM idempotency_keys WHERE key = $1', [key])).toHaveLength(
        0,
      );
      expect(await stockOf(t, eur.id)).toBe(10);
    });

    it('expires keys after the TTL and purges them', async () => {
      const p = await createProduct(t, admin, { stock: 10 });
      const key = randomUUID();
      await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }], key).expect(201);
      await t.db.query(
        `UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = $1`,
        [key],
      );
      const again = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }], key).expect(201);
      expect(again.headers['idempotent-replayed']).toBeUndefined();
      expect(await stockOf(t, p.id)).toBe(8);
      await t.db.query(
        `UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = $1`,
        [key],
      );
      expect(await t.app.get(IdempotencyService).purgeExpired()).toBeGreaterThanOrEqual(1);
      expect(await t.db.query('SELECT 1 FROM idempotency_keys WHERE key = $1', [key])).toHaveLength(
        0,
      );
    });
  });

  describe('idempotent replays are the first response, byte for byte', () => {
    it('replays a 201 with the same body bytes, Location, ETag and Content-Type', async () => {
      const p = await createProduct(t, admin, { stock: 5 });
      const key = randomUUID();
      const first = await placeOrder(t, alice, [{ productId: p.id, quantity: 2 }], key).expect(201);
      const replay = await placeOrder(t, alice, [{ productId: p.id, quantity: 2 }], key).expect(
        201,
      );
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.text).toBe(first.text);
      for (const header of ['location', 'etag', 'content-type', 'last-modified']) {
        expect(replay.headers[header]).toBe(first.headers[header]);
      }
    });

    it('replays a 409 problem with the same bytes, naming the request that did the work', async () => {
      const p = await createProduct(t, admin, { stock: 1 });
      const key = randomUUID();
      const lines = [
        { productId: p.id, quantity: 3 },
        { productId: randomUUID(), quantity: 1 },
      ];
      const first = await placeOrder(t, alice, lines.slice(0, 1), key);
      expectProblem(first, 'INSUFFICIENT_STOCK');
      const replay = await placeOrder(t, alice, lines.slice(0, 1), key);
      expect(replay.status).toBe(409);
      expect(replay.text).toBe(first.text);
      expect(replay.headers['content-type']).toBe(first.headers['content-type']);
      expect(replay.headers['x-request-id']).toBe(first.headers['x-request-id']);
    });

    it("keeps the client's own X-Request-Id on a replay", async () => {
      const p = await createProduct(t, admin, { stock: 5 });
      const key = randomUUID();
      await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }], key).expect(201);
      const replay = await t
        .http()
        .post('/api/v1/orders')
        .set(alice.auth)
        .set('Idempotency-Key', key)
        .set('X-Request-Id', 'my-retry-1')
        .send({ items: [{ productId: p.id, quantity: 1 }] })
        .expect(201);
      expect(replay.headers['x-request-id']).toBe('my-retry-1');
    });
  });

  describe('returning held units always succeeds', () => {
    it('cancels an order even when the returned units take stock past the 1e9 an admin may set', async () => {
      const p = await createProduct(t, admin, { stock: 1_000_000_000 });
      const order = await placeOrder(t, alice, [{ productId: p.id, quantity: 5 }]).expect(201);
      await t
        .http()
        .post(`/api/v1/products/${p.id}/stock-adjustments`)
        .set(admin.auth)
        .send({ delta: 5, reason: 'top up to the maximum' })
        .expect(200);
      expect(await stockOf(t, p.id)).toBe(1_000_000_000);
      const res = await act(t, alice, order.body.id, 'cancel');
      expect(res.status).toBe(200);
      expect(await stockOf(t, p.id)).toBe(1_000_000_005);
      // An admin may still lower it, but not raise it further.
      await t
        .http()
        .post(`/api/v1/products/${p.id}/stock-adjustments`)
        .set(admin.auth)
        .send({ delta: -2, reason: 'count' })
        .expect(200);
      expectProblem(
        await t
          .http()
          .post(`/api/v1/products/${p.id}/stock-adjustments`)
          .set(admin.auth)
          .send({ delta: 1, reason: 'count' }),
        'VALIDATION_FAILED',
      );
    });
  });

  describe('what one caller can make us store', () => {
    let capped: TestApp;
    let buyer: Account;
    let admin2: Account;
    beforeAll(async () => {
      capped = await createTestApp({ IDEMPOTENCY_MAX_KEYS_PER_USER: '3' });
      buyer = await account(capped);
      admin2 = await account(capped, 'admin');
    });
    afterAll(() => capped.close());

    it('refuses a new key past IDEMPOTENCY_MAX_KEYS_PER_USER with 429 and Retry-After, still replaying the live ones', async () => {
      const p = await createProduct(capped, admin2, { stock: 100 });
      const line = [{ productId: p.id, quantity: 1 }];
      for (const key of ['k1', 'k2', 'k3']) {
        await placeOrder(capped, buyer, line, key).expect(201);
      }
      const fourth = await placeOrder(capped, buyer, line, 'k4');
      expectProblem(fourth, 'RATE_LIMITED');
      expect(Number(fourth.headers['retry-after'])).toBeGreaterThan(0);
      expect(await orderCount(capped, buyer.id)).toBe(3);
      const replay = await placeOrder(capped, buyer, line, 'k2').expect(201);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      // Another caller is not affected, and requests without a key never are.
      await placeOrder(capped, admin2, line, 'k4').expect(201);
      await placeOrder(capped, buyer, line).expect(201);
    });

    it('purges a large backlog of expired keys in batches', async () => {
      await capped.db.query(
        `INSERT INTO idempotency_keys (user_id, key, fingerprint, method, path, expires_at)
         SELECT $1, 'old-' || n, 'x', 'POST', '/api/v1/orders', now() - interval '1 hour'
           FROM generate_series(1, 2500) AS n`,
        [buyer.id],
      );
      const purged = await capped.app.get(IdempotencyService).purgeExpired(1000);
      expect(purged).toBe(2500);
      const [{ n }] = await capped.db.query(
        `SELECT count(*)::int AS n FROM idempotency_keys WHERE key LIKE 'old-%'`,
      );
      expect(n).toBe(0);
    });
  });

  describe('deleting what orders reference', () => {
    it('answers 409 RESOURCE_IN_USE with dependents for a product and a user, deleting nothing', async () => {
      const carol = await account(t);
      const p = await createProduct(t, admin, { stock: 5 });
      await placeOrder(t, carol, [{ productId: p.id, quantity: 1 }]).expect(201);
      await placeOrder(t, carol, [{ productId: p.id, quantity: 1 }]).expect(201);
      const current = await t.http().get(`/api/v1/products/${p.id}`).expect(200);
      const res = await t
        .http()
        .delete(`/api/v1/products/${p.id}`)
        .set(admin.auth)
        .set('If-Match', current.headers.etag);
      expectProblem(res, 'RESOURCE_IN_USE');
      expect(res.body.dependents).toEqual({ orders: 2 });
      expect(await productRow(t, p.id)).toBeDefined();

      const user = await t.http().get(`/api/v1/users/${carol.id}`).set(admin.auth).expect(200);
      const del = await t
        .http()
        .delete(`/api/v1/users/${carol.id}`)
        .set(admin.auth)
        .set('If-Match', user.headers.etag);
      expectProblem(del, 'RESOURCE_IN_USE');
      expect(del.body.dependents).toEqual({ orders: 2 });
      expect(await orderCount(t, carol.id)).toBe(2);
    });
  });
});
