import { randomBytes, randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { createTestDatabase } from '../support/test-app';
import { call, customer, type Instance, type Reply, startInstance, tally } from './instances';

/**
 * The races of the orders and catalogue suites, with the traffic split between two separate
 * processes of the service on one database: every invariant must hold exactly as on one instance,
 * because every decision is taken by PostgreSQL, not by a process.
 */
describe('races across two instances on one database', () => {
  let db: { url: string; drop: () => Promise<void> };
  let sql: Client;
  let a: Instance;
  let b: Instance;
  let admin: { id: string; token: string };
  let shoppers: { id: string; token: string }[];

  beforeAll(async () => {
    db = await createTestDatabase();
    [a, b] = await Promise.all([startInstance('A', db.url), startInstance('B', db.url)]);
    sql = new Client({ connectionString: db.url });
    await sql.connect();
    admin = await customer(a, b);
    await sql.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
    shoppers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => customer(i % 2 ? a : b, i % 2 ? b : a)),
    );
  }, 120_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await sql?.end();
    await db?.drop();
  });

  const on = (i: number): Instance => (i % 2 ? a : b);
  const product = async (stock: number): Promise<{ id: string; etag: string }> => {
    const tag = randomBytes(4).toString('hex');
    const res = await call(a.url, 'POST', '/api/v1/products', {
      token: admin.token,
      body: {
        sku: `MI-${tag}`,
        slug: `mi-${tag}`,
        name: `MI ${tag}`,
        priceCents: 500,
        currency: 'EUR',
        stock,
      },
    });
    expect(res.status).toBe(201);
    return { id: res.body.id, etag: res.headers.get('etag')! };
  };
  const stock = async (id: string): Promise<number> =>
    (await sql.query('SELECT stock::int AS stock FROM products WHERE id = $1', [id])).rows[0].stock;
  const order = (i: number, productId: string, quantity = 1, key?: string): Promise<Reply> =>
    call(on(i).url, 'POST', '/api/v1/orders', {
      token: shoppers[i % shoppers.length].token,
      body: { items: [{ productId, quantity }] },
      headers: key ? { 'Idempotency-Key': key } : {},
    });

  it('never oversells: 200 orders for stock 50, split over both instances → 50 × 201, 150 × 409', async () => {
    const p = await product(50);
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => order(i, p.id)));
    expect(tally(replies)).toEqual({ 201: 50, 409: 150 });
    expect(
      replies.filter((r) => r.status === 409).every((r) => r.body.code === 'INSUFFICIENT_STOCK'),
    ).toBe(true);
    expect(await stock(p.id)).toBe(0);
    const { rows } = await sql.query(
      'SELECT coalesce(sum(quantity), 0)::int AS n FROM order_items WHERE product_id = $1',
      [p.id],
    );
    expect(rows[0].n).toBe(50);
    console.log(`two instances, oversell race: ${JSON.stringify(tally(replies))}`);
  });

  const promotion = async (
    terms: Record<string, unknown>,
  ): Promise<{ id: string; code: string }> => {
    const res = await call(b.url, 'POST', '/api/v1/promotions', {
      token: admin.token,
      body: { code: `MI-${randomBytes(4).toString('hex').toUpperCase()}`, ...terms },
    });
    expect(res.status).toBe(201);
    return { id: res.body.id, code: res.body.code };
  };
  const coded = (i: number, productId: string, promotionCode: string, who = i): Promise<Reply> =>
    call(on(i).url, 'POST', '/api/v1/orders', {
      token: shoppers[who % shoppers.length].token,
      body: { items: [{ productId, quantity: 1 }], promotionCode },
    });
  const uses = async (promotionId: string): Promise<{ held: number; timesUsed: number }> =>
    (
      await sql.query(
        `SELECT (SELECT count(*)::int FROM orders WHERE promotion_id = p.id
                  AND status NOT IN ('cancelled', 'expired')) AS held,
                times_used AS "timesUsed"
           FROM promotions p WHERE id = $1`,
        [promotionId],
      )
    ).rows[0];

  it('usageLimit 50 under 500 checkouts split over both instances → exactly 50 orders with the code, 450 × 409 exhausted, stock moved only for the 50', async () => {
    const p = await product(1000);
    const promo = await promotion({ percentOff: 10, usageLimit: 50 });
    const replies = await Promise.all(
      Array.from({ length: 500 }, (_, i) => coded(i, p.id, promo.code)),
    );
    console.log(`two instances, usageLimit race: ${JSON.stringify(tally(replies))}`);
    expect(tally(replies)).toEqual({ 201: 50, 409: 450 });
    expect(
      replies
        .filter((r) => r.status === 409)
        .every((r) => r.body.code === 'PROMOTION_NOT_APPLICABLE' && r.body.reason === 'exhausted'),
    ).toBe(true);
    expect(await uses(promo.id)).toEqual({ held: 50, timesUsed: 50 });
    expect(await stock(p.id)).toBe(950);
  });

  it('perCustomerLimit 1: one customer, 20 checkouts over both instances → exactly one', async () => {
    const p = await product(100);
    const promo = await promotion({ percentOff: 10, perCustomerLimit: 1 });
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) => coded(i, p.id, promo.code, 0)),
    );
    expect(tally(replies)).toEqual({ 201: 1, 409: 19 });
    expect(await uses(promo.id)).toEqual({ held: 1, timesUsed: 1 });
    expect(await stock(p.id)).toBe(99);
  });

  it('lets exactly one of 50 PATCHes holding one If-Match win, whichever instance it hits', async () => {
    const p = await product(5);
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        call(on(i).url, 'PATCH', `/api/v1/products/${p.id}`, {
          token: admin.token,
          headers: { 'If-Match': p.etag },
          body: { name: `writer ${i}` },
        }),
      ),
    );
    expect(tally(replies)).toEqual({ 200: 1, 412: 49 });
    const { rows } = await sql.query('SELECT version FROM products WHERE id = $1', [p.id]);
    expect(rows[0].version).toBe(2);
  });

  it('creates one order for 20 checkouts with one Idempotency-Key spread over both instances', async () => {
    const p = await product(100);
    const key = `mi-${randomUUID()}`;
    const buyer = shoppers[0];
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(on(i).url, 'POST', '/api/v1/orders', {
          token: buyer.token,
          body: { items: [{ productId: p.id, quantity: 2 }] },
          headers: { 'Idempotency-Key': key },
        }),
      ),
    );
    const created = replies.filter((r) => r.status === 201);
    expect(
      created.length +
        replies.filter((r) => r.status === 409 && r.body.code === 'IDEMPOTENCY_KEY_IN_USE').length,
    ).toBe(20);
    expect(new Set(created.map((r) => r.body.id)).size).toBe(1);
    expect(created.filter((r) => r.headers.get('idempotent-replayed') !== 'true')).toHaveLength(1);
    const { rows } = await sql.query(
      'SELECT count(*)::int AS n FROM orders o JOIN order_items i ON i.order_id = o.id WHERE i.product_id = $1',
      [p.id],
    );
    expect(rows[0].n).toBe(1);
    expect(await stock(p.id)).toBe(98);
  });

  it('lets exactly one of cancel (on one instance) and ship (on the other) win, 10 times', async () => {
    const tallies = { cancel: 0, ship: 0 };
    for (let round = 0; round < 10; round++) {
      const p = await product(5);
      const owner = shoppers[round % shoppers.length];
      const placed = await call(a.url, 'POST', '/api/v1/orders', {
        token: owner.token,
        body: { items: [{ productId: p.id, quantity: 2 }] },
      });
      // Paid (API.md §9): the instances run under NODE_ENV=production, without the test
      // provider, so an admin records the money on the other instance.
      const recorded = await call(b.url, 'POST', `/api/v1/orders/${placed.body.id}/payments`, {
        token: admin.token,
        body: {
          provider: 'manual',
          amountCents: placed.body.totalCents,
          reference: `round ${round}`,
        },
      });
      expect(recorded.status).toBe(201);
      const [cancel, ship] = await Promise.all([
        call(on(round).url, 'POST', `/api/v1/orders/${placed.body.id}/cancel`, {
          token: admin.token,
        }),
        call(on(round + 1).url, 'POST', `/api/v1/orders/${placed.body.id}/ship`, {
          token: admin.token,
        }),
      ]);
      expect([cancel.status, ship.status].sort()).toEqual([200, 409]);
      const won = cancel.status === 200 ? 'cancel' : 'ship';
      tallies[won]++;
      expect(await stock(p.id)).toBe(won === 'cancel' ? 5 : 3);
    }
    console.log(`two instances, cancel vs ship: ${JSON.stringify(tallies)}`);
  });
});
