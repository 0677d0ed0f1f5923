import { randomBytes } from 'node:crypto';
import type { Response } from 'supertest';
import { type Account, account, expectProblem } from '../support/http';
import { act, createProduct, stockOf } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

const statuses = (results: Response[]): Record<number, number> =>
  results.reduce<Record<number, number>>(
    (acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }),
    {},
  );

/** API.md §11: a limited code is never used more than its limit, whatever the concurrency. */
describe('races on promotion codes (real parallel HTTP requests, real PostgreSQL)', () => {
  let t: TestApp;
  let admin: Account;
  let shoppers: Account[];
  beforeAll(async () => {
    t = await createTestApp({ DB_POOL_SIZE: '30', ORDER_EXPIRY_SWEEP_SECONDS: '3600' });
    admin = await account(t, 'admin');
    shoppers = await Promise.all(Array.from({ length: 10 }, () => account(t)));
  });
  afterAll(() => t.close());

  async function promotion(terms: Record<string, unknown>) {
    const res = await t
      .http()
      .post('/api/v1/promotions')
      .set(admin.auth)
      .send({ code: `R-${randomBytes(4).toString('hex').toUpperCase()}`, ...terms })
      .expect(201);
    return { id: res.body.id as string, code: res.body.code as string };
  }
  const checkout = (who: Account, productId: string, code?: string) =>
    t
      .http()
      .post('/api/v1/orders')
      .set(who.auth)
      .send({ items: [{ productId, quantity: 1 }], ...(code ? { promotionCode: code } : {}) });
  const timesUsed = async (id: string): Promise<number> =>
    (await t.db.query('SELECT times_used FROM promotions WHERE id = $1', [id]))[0].times_used;
  const holding = async (promotionId: string): Promise<number> =>
    (
      await t.db.query(
        `SELECT count(*)::int AS n FROM orders
          WHERE promotion_id = $1 AND status NOT IN ('cancelled', 'expired')`,
        [promotionId],
      )
    )[0].n;

  it('usageLimit 50 under 500 parallel checkouts → exactly 50 orders with the code, 450 × 409 exhausted, stock moved only for the 50', async () => {
    const p = await createProduct(t, admin, { stock: 1000 });
    const promo = await promotion({ percentOff: 10, usageLimit: 50 });
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) => checkout(shoppers[i % 10], p.id, promo.code)),
    );
    console.log(`usageLimit race: ${JSON.stringify(statuses(results))}`);
    expect(statuses(results)).toEqual({ 201: 50, 409: 450 });
    for (const r of results.filter((x) => x.status === 409)) {
      expectProblem(r, 'PROMOTION_NOT_APPLICABLE');
      expect(r.body.reason).toBe('exhausted');
    }
    expect(await holding(promo.id)).toBe(50);
    expect(await timesUsed(promo.id)).toBe(50);
    expect(await stockOf(t, p.id)).toBe(950);
  });

  it('perCustomerLimit 1, one customer, 20 parallel checkouts → exactly one', async () => {
    const p = await createProduct(t, admin, { stock: 100 });
    const promo = await promotion({ percentOff: 10, perCustomerLimit: 1 });
    const results = await Promise.all(
      Array.from({ length: 20 }, () => checkout(shoppers[0], p.id, promo.code)),
    );
    expect(statuses(results)).toEqual({ 201: 1, 409: 19 });
    for (const r of results.filter((x) => x.status === 409)) {
      expect(r.body).toMatchObject({ code: 'PROMOTION_NOT_APPLICABLE', reason: 'customer_limit' });
    }
    expect(await timesUsed(promo.id)).toBe(1);
    expect(await stockOf(t, p.id)).toBe(99);
  });

  it('a use given back by a cancel is taken exactly once by 20 racing checkouts', async () => {
    const p = await createProduct(t, admin, { stock: 100 });
    const promo = await promotion({ percentOff: 10, usageLimit: 1 });
    const first = await checkout(shoppers[0], p.id, promo.code).expect(201);
    const [cancel, ...results] = await Promise.all([
      act(t, shoppers[0], first.body.id, 'cancel'),
      ...Array.from({ length: 20 }, (_, i) => checkout(shoppers[1 + (i % 9)], p.id, promo.code)),
    ]);
    expect(cancel.status).toBe(200);
    // Those before the cancel committed were refused; of those after, exactly one took the use.
    expect(results.filter((r) => r.status === 201).length).toBeLessThanOrEqual(1);
    const late = await Promise.all(
      Array.from({ length: 10 }, (_, i) => checkout(shoppers[1 + (i % 9)], p.id, promo.code)),
    );
    const won = [...results, ...late].filter((r) => r.status === 201);
    expect(won).toHaveLength(1);
    expect(await holding(promo.id)).toBe(1);
    expect(await timesUsed(promo.id)).toBe(1);
    expect(await stockOf(t, p.id)).toBe(99);
  });

  it('a use held by an overdue order is taken exactly once by 20 racing checkouts (the hold expired once)', async () => {
    const p = await createProduct(t, admin, { stock: 100 });
    const promo = await promotion({ percentOff: 10, usageLimit: 1 });
    const first = await checkout(shoppers[0], p.id, promo.code).expect(201);
    await t.db.query(
      `UPDATE orders SET expires_at = clock_timestamp() - interval '1 second' WHERE id = $1`,
      [first.body.id],
    );
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => checkout(shoppers[1 + (i % 9)], p.id, promo.code)),
    );
    expect(statuses(results)).toEqual({ 201: 1, 409: 19 });
    const history = await t.db.query(
      `SELECT action FROM order_history WHERE order_id = $1 ORDER BY id`,
      [first.body.id],
    );
    expect(history.map((h: { action: string }) => h.action)).toEqual(['place', 'expire']);
    expect(await holding(promo.id)).toBe(1);
    expect(await timesUsed(promo.id)).toBe(1);
    expect(await stockOf(t, p.id)).toBe(99);
  });

  it('a code and a hot product together with the batched placement: the limit and the stock still hold', async () => {
    const p = await createProduct(t, admin, { stock: 120 });
    const promo = await promotion({ percentOff: 10, usageLimit: 20 });
    // 100 checkouts without the code (batched) interleaved with 100 with it (one transaction each).
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        checkout(shoppers[i % 10], p.id, i % 2 ? promo.code : undefined).then((r) => ({
          r,
          coded: i % 2 === 1,
        })),
      ),
    );
    const coded = results.filter((x) => x.coded);
    const plain = results.filter((x) => !x.coded);
    const codedWon = coded.filter((x) => x.r.status === 201).length;
    const plainWon = plain.filter((x) => x.r.status === 201).length;
    console.log(`batched + code: ${codedWon} with the code, ${plainWon} without`);
    expect(codedWon).toBeLessThanOrEqual(20);
    expect(codedWon + plainWon).toBe(120);
    for (const { r } of results.filter((x) => x.r.status !== 201)) {
      expect(r.status).toBe(409);
      expect(['INSUFFICIENT_STOCK', 'PROMOTION_NOT_APPLICABLE']).toContain(r.body.code);
    }
    expect(await holding(promo.id)).toBe(codedWon);
    expect(await timesUsed(promo.id)).toBe(codedWon);
    expect(await stockOf(t, p.id)).toBe(0);
  });
});
