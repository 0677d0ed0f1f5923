import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { Response } from 'supertest';
import { HoldExpiry } from '../../src/orders/hold-expiry';
import { type Account, account, expectProblem } from '../support/http';
import { createProduct, stockOf } from '../support/fixtures';
import { holdRow, metricValue, untilQueued, untilWaiting, waiting } from '../support/row-locks';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * Checkouts with a promotion code in the one-statement and batched placement (issue 23), and the
 * lock order orders → products → promotion, made certain by rows held in a transaction of the
 * test's own.
 */
describe('promotion codes: batched placement and lock order (real PostgreSQL, held rows)', () => {
  let t: TestApp;
  let admin: Account;
  let shoppers: Account[];
  beforeAll(async () => {
    t = await createTestApp({ DB_POOL_SIZE: '20', ORDER_EXPIRY_SWEEP_SECONDS: '3600' });
    admin = await account(t, 'admin');
    shoppers = await Promise.all(Array.from({ length: 8 }, () => account(t)));
  });
  afterAll(() => t.close());

  async function promotion(terms: Record<string, unknown>) {
    const res = await t
      .http()
      .post('/api/v1/promotions')
      .set(admin.auth)
      .send({ code: `L-${randomBytes(4).toString('hex').toUpperCase()}`, ...terms })
      .expect(201);
    return { id: res.body.id as string, code: res.body.code as string };
  }
  const checkout = (who: Account, productId: string, code?: string): Promise<Response> =>
    t
      .http()
      .post('/api/v1/orders')
      .set(who.auth)
      .send({ items: [{ productId, quantity: 1 }], ...(code ? { promotionCode: code } : {}) })
      .then((r) => r);
  const timesUsed = async (id: string): Promise<number> =>
    (await t.db.query('SELECT times_used FROM promotions WHERE id = $1', [id]))[0].times_used;
  const metric = (series: string): Promise<number> => metricValue(t, series);
  const queued = (n: number): Promise<void> => untilQueued(t, n);
  /** A promotion's row held (as a checkout's guarded write would hold it) until `release()`. */
  const holdPromotion = async (id: string) => {
    const blocker = new Client({ connectionString: t.databaseUrl });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT id FROM promotions WHERE id = $1 FOR NO KEY UPDATE', [id]);
    return {
      release: async (): Promise<void> => {
        try {
          await blocker.query('COMMIT');
        } finally {
          await blocker.end();
        }
      },
    };
  };

  it('checkouts with a code queued behind one in flight are placed together (place_orders) whatever their products, each with its discount and its use; another code goes in a batch of its own', async () => {
    const [p, p2, p3] = await Promise.all(
      [1000, 2000, 500].map((priceCents) => createProduct(t, admin, { stock: 20, priceCents })),
    );
    const a = await promotion({ percentOff: 10, usageLimit: 10 });
    const b = await promotion({ amountOffCents: 300, currency: 'EUR' });
    const batches = await metric('order_placement_batch_size_count');
    const placed = await metric('order_placement_batch_size_sum');
    const before = await waiting(t);
    const held = await holdRow(t, 'products', p.id);
    let answers: Promise<Response[]>;
    try {
      const first = checkout(shoppers[0], p.id, a.code);
      await untilWaiting(t, before + 1);
      // Five behind it with the same code, on p, on p2, on p2 and p3 (queued in the service: the
      // code is their key), and one with another code (its own key: sent at once, waiting in the
      // database).
      const behind = [
        checkout(shoppers[1], p.id, a.code),
        checkout(shoppers[2], p.id, a.code),
        checkout(shoppers[3], p2.id, a.code),
        checkout(shoppers[4], p.id, a.code),
        t
          .http()
          .post('/api/v1/orders')
          .set(shoppers[5].auth)
          .send({
            items: [
              { productId: p3.id, quantity: 2 },
              { productId: p2.id, quantity: 1 },
            ],
            promotionCode: a.code,
          })
          .then((r) => r),
      ];
      const other = checkout(shoppers[6], p.id, b.code);
      await queued(5);
      await untilWaiting(t, before + 2);
      answers = Promise.all([first, ...behind, other]);
    } finally {
      await held.release();
    }
    const results = await answers;
    for (const r of results) expect(r.status).toBe(201);
    for (const r of [0, 1, 2, 4].map((i) => results[i])) {
      expect(r.body).toMatchObject({
        subtotalCents: 1000,
        discountCents: 100,
        totalCents: 900,
        promotionCode: a.code,
      });
    }
    expect(results[3].body).toMatchObject({ subtotalCents: 2000, discountCents: 200 });
    expect(results[5].body).toMatchObject({
      items: [
        expect.objectContaining({ productId: p3.id, quantity: 2 }),
        expect.objectContaining({ productId: p2.id, quantity: 1 }),
      ],
      subtotalCents: 3000,
      discountCents: 300,
      totalCents: 2700,
    });
    expect(results[6].body).toMatchObject({ discountCents: 300, promotionCode: b.code });
    // The first alone, the five as one statement, the other code alone.
    expect((await metric('order_placement_batch_size_count')) - batches).toBe(3);
    expect((await metric('order_placement_batch_size_sum')) - placed).toBe(7);
    expect(await timesUsed(a.id)).toBe(6);
    expect(await timesUsed(b.id)).toBe(1);
    expect(await stockOf(t, p.id)).toBe(15);
    expect(await stockOf(t, p2.id)).toBe(18);
    expect(await stockOf(t, p3.id)).toBe(18);
    const events = await t.db.query(
      `SELECT body FROM outbox_events WHERE type = 'order.created' AND order_id = $1`,
      [results[5].body.id],
    );
    expect(JSON.parse(events[0].body).data.order).toMatchObject({
      subtotalCents: 3000,
      discountCents: 300,
      totalCents: 2700,
      promotionCode: a.code,
    });
  });

  it('perCustomerLimit inside one batch: one customer, five checkouts placed together → one', async () => {
    const p = await createProduct(t, admin, { stock: 20 });
    const promo = await promotion({ percentOff: 10, perCustomerLimit: 1 });
    const before = await waiting(t);
    const held = await holdRow(t, 'products', p.id);
    let answers: Promise<Response[]>;
    try {
      const first = checkout(shoppers[7], p.id, promo.code);
      await untilWaiting(t, before + 1);
      const behind = [1, 2, 3, 4].map(() => checkout(shoppers[7], p.id, promo.code));
      await queued(4);
      answers = Promise.all([first, ...behind]);
    } finally {
      await held.release();
    }
    const results = await answers;
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409]);
    for (const r of results.filter((x) => x.status === 409)) {
      expectProblem(r, 'PROMOTION_NOT_APPLICABLE');
      expect(r.body.reason).toBe('customer_limit');
    }
    expect(await timesUsed(promo.id)).toBe(1);
    expect(await stockOf(t, p.id)).toBe(19);
  });

  it("perCustomerLimit counts the orders committed while a checkout waited for the code's row (one customer, two products, two transactions)", async () => {
    const [p1, p2] = await Promise.all([
      createProduct(t, admin, { stock: 5 }),
      createProduct(t, admin, { stock: 5 }),
    ]);
    const promo = await promotion({ percentOff: 10, perCustomerLimit: 1 });
    const who = await account(t);
    // One instance queues the checkouts of one code (one batch at a time): the other transaction
    // is another instance's, here the placement statement sent on a connection of the test's own.
    const other = new Client({ connectionString: t.databaseUrl });
    await other.connect();
    const before = await waiting(t);
    // Both take their products' locks and then wait at the code's guarded write.
    const held = await holdPromotion(promo.id);
    let answers: Promise<[Response, { placed: boolean; reason?: string }]>;
    try {
      answers = Promise.all([
        checkout(who, p1.id, promo.code),
        other
          .query(
            `SELECT place_order($1, $2::uuid[], $3::int[], 900, gen_random_uuid(), '{cancel}',
                                NULL, $4, NULL) AS answer`,
            [who.id, [p2.id], [1], promo.code],
          )
          .then(({ rows }) => ({
            placed: 'order' in rows[0].answer,
            reason: rows[0].answer.promotion?.reason,
          })),
      ]);
      await untilWaiting(t, before + 2);
    } finally {
      await held.release();
    }
    const [http, direct] = await answers.finally(() => other.end());
    // Exactly one placed, whichever got the row first; the other refused customer_limit.
    expect([http.status === 201, direct.placed].filter(Boolean)).toHaveLength(1);
    if (http.status !== 201) {
      expectProblem(http, 'PROMOTION_NOT_APPLICABLE');
      expect(http.body.reason).toBe('customer_limit');
    } else {
      expect(direct.reason).toBe('customer_limit');
    }
    expect(await timesUsed(promo.id)).toBe(1);
    expect((await stockOf(t, p1.id)) + (await stockOf(t, p2.id))).toBe(9);
  });

  it('expiring several holds gives their uses back after all their products are locked: a checkout crossing it does not deadlock', async () => {
    const [p1, p2] = await Promise.all([
      createProduct(t, admin, { stock: 5 }),
      createProduct(t, admin, { stock: 5 }),
    ]);
    const promo = await promotion({ percentOff: 10 });
    const o1 = (await checkout(shoppers[0], p1.id, promo.code)).body.id as string;
    const o2 = (await checkout(shoppers[1], p2.id, promo.code)).body.id as string;
    // Overdue, o1 first: the expiry ends o1 (its product, its use) before it locks o2's product.
    await t.db.query(
      `UPDATE orders SET expires_at = clock_timestamp() - CASE id WHEN $1 THEN interval '2 seconds'
                                                          ELSE interval '1 second' END
        WHERE id IN ($1, $2)`,
      [o1, o2],
    );
    const deadlocks = async (): Promise<number> =>
      Number(
        (
          await t.db.query(
            'SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()',
          )
        )[0].deadlocks,
      );
    const deadlocksBefore = await deadlocks();
    const before = await waiting(t);
    const held = await holdRow(t, 'products', p2.id);
    let placing: Promise<Response>;
    let expiring: Promise<number>;
    try {
      // The checkout waits for p2 first; then the expiry (o1 done) waits for p2 behind it. When
      // p2 is let go the checkout takes it, then the code's row: held by the expiry, if it had
      // given o1's use back before locking p2, while the expiry waits for p2 — a deadlock.
      placing = checkout(shoppers[2], p2.id, promo.code);
      await untilWaiting(t, before + 1);
      // Its own transaction, not retried: a deadlock would reject it.
      expiring = t.db.transaction((m) =>
        t.app.get(HoldExpiry).expireOverdue(m, { promotionId: promo.id }, { limit: 10 }),
      );
      await untilWaiting(t, before + 2);
    } finally {
      await held.release();
    }
    const [placed, expired] = await Promise.all([placing, expiring]);
    expect(placed.status).toBe(201);
    expect(expired).toBe(2);
    const statuses = await t.db.query('SELECT status FROM orders WHERE id = ANY($1) ORDER BY id', [
      [o1, o2],
    ]);
    expect(statuses.map((s: { status: string }) => s.status)).toEqual(['expired', 'expired']);
    expect(await timesUsed(promo.id)).toBe(1);
    expect(await stockOf(t, p1.id)).toBe(5);
    expect(await stockOf(t, p2.id)).toBe(4);
    await new Promise((r) => setTimeout(r, 1100)); // the statistics are flushed within a second
    expect(await deadlocks()).toBe(deadlocksBefore);
  });
});
