import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { Response } from 'supertest';
import { type Account, account, expectProblem } from '../support/http';
import { createProduct, orderCount, placeOrder, stockOf } from '../support/fixtures';
import { holdRow, metricValue, untilWaiting, waiting } from '../support/row-locks';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * Checkouts with an Idempotency-Key in the one-statement and batched placement (issue 26): the key
 * is claimed, the order placed and the outcome stored by one statement (place_order_keyed), and
 * keyed checkouts of the same products queue and go together like unkeyed ones. Every guarantee of
 * API.md §4 holds: one order per key, a replay byte for byte the first response, a retry while the
 * first is in flight waits for it (or 409 IDEMPOTENCY_KEY_IN_USE), another body 422.
 * Races are made certain: the product's row is held in a transaction of its own while the
 * checkouts queue behind it, then let go.
 */
describe('keyed checkouts (real HTTP, real PostgreSQL)', () => {
  let t: TestApp;
  let admin: Account;
  let buyers: Account[];
  beforeAll(async () => {
    t = await createTestApp({ DB_POOL_SIZE: '30' });
    admin = await account(t, 'admin');
  });
  // Buyers of each test's own: the tests count orders per buyer.
  beforeEach(async () => {
    buyers = await Promise.all(Array.from({ length: 6 }, () => account(t)));
  });
  afterAll(() => t.close());

  const metric = (series: string): Promise<number> => metricValue(t, series);
  const until = async (what: string, done: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`never: ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const storedOutcome = async (userId: string, key: string) => {
    const rows = await t.db.query(
      'SELECT response FROM idempotency_keys WHERE user_id = $1 AND key = $2',
      [userId, key],
    );
    return rows[0]?.response as Record<string, unknown> | null | undefined;
  };
  /** What a replay must repeat: status, body bytes and the representation's headers. */
  const bytes = (r: Response) => ({
    status: r.status,
    body: r.text,
    etag: r.headers.etag,
    location: r.headers.location,
    lastModified: r.headers['last-modified'],
  });

  it('places a keyed checkout in one statement that also stores its outcome, and replays it byte for byte', async () => {
    const p = await createProduct(t, admin, { stock: 10 });
    const key = `one-${randomUUID()}`;
    const statements = await metric('order_placement_batch_size_count');
    const first = await placeOrder(t, buyers[0], [{ productId: p.id, quantity: 2 }], key);
    expect(first.status).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    // Placed by the placement statement (which counts itself), not by a transaction of its own.
    expect(await metric('order_placement_batch_size_count')).toBe(statements + 1);
    expect(await storedOutcome(buyers[0].id, key)).toHaveProperty('placed');

    const again = await placeOrder(t, buyers[0], [{ productId: p.id, quantity: 2 }], key);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(bytes(again)).toEqual(bytes(first));
    expect(again.headers['x-request-id']).toBe(first.headers['x-request-id']);

    // The same key with another body: 422, and nothing placed.
    const other = await placeOrder(t, buyers[0], [{ productId: p.id, quantity: 3 }], key);
    expectProblem(other, 'IDEMPOTENCY_KEY_REUSED');
    expect(await orderCount(t, buyers[0].id)).toBe(1);
    expect(await stockOf(t, p.id)).toBe(8);
  });

  it('batches keyed checkouts of one hot product while some of them are retried: one order per key, every retry the first response', async () => {
    const p = await createProduct(t, admin, { stock: 1000 });
    const before = await waiting(t);
    const statements = await metric('order_placement_batch_size_count');
    const checkouts = await metric('order_placement_batch_size_sum');
    const keys = buyers.map((b) => ({ buyer: b, key: `hot-${randomUUID()}` }));
    // Sent now (a supertest request is sent when it is awaited or then'd).
    const send = (k: { buyer: Account; key: string }): Promise<Response> =>
      placeOrder(t, k.buyer, [{ productId: p.id, quantity: 1 }], k.key).then((r) => r);

    const hold = await holdRow(t, 'products', p.id);
    let firsts: Promise<Response>[];
    let retries: Promise<Response>[];
    try {
      // The first waits in the database behind the held row; the others queue behind it.
      const head = send(keys[0]);
      await untilWaiting(t, before + 1);
      firsts = [head, ...keys.slice(1).map(send)];
      await until('the keyed checkouts queue', async () => {
        return (await metric('order_placements_waiting')) >= keys.length - 1;
      });
      // Half of them retried while the first attempts are queued: same key, same body.
      retries = keys.filter((_, i) => i % 2 === 1).map(send);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await hold.release();
    }
    const first = await Promise.all(firsts);
    const retried = await Promise.all(retries);

    for (const r of first) expect(r.status).toBe(201);
    const byKey = new Map(keys.map((k, i) => [k.key, first[i]]));
    keys
      .filter((_, i) => i % 2 === 1)
      .forEach((k, j) => {
        const r = retried[j];
        if (r.status === 409) {
          // Still in flight when it looked, and it waited past its bound: retry later.
          expectProblem(r, 'IDEMPOTENCY_KEY_IN_USE');
          return;
        }
        expect(r.headers['idempotent-replayed']).toBe('true');
        expect(bytes(r)).toEqual(bytes(byKey.get(k.key)!));
      });
    // One order per key, and the stock moved once per key.
    for (const k of keys) expect(await orderCount(t, k.buyer.id)).toBe(1);
    expect(await stockOf(t, p.id)).toBe(1000 - keys.length);
    // Every first attempt went through a placement statement, several of them in one.
    const placedStatements = (await metric('order_placement_batch_size_count')) - statements;
    const placedCheckouts = (await metric('order_placement_batch_size_sum')) - checkouts;
    expect(placedCheckouts).toBeGreaterThanOrEqual(keys.length);
    expect(placedStatements).toBeLessThan(placedCheckouts);
    for (const k of keys) expect(await storedOutcome(k.buyer.id, k.key)).toHaveProperty('placed');
  });

  it('a keyed checkout refused for stock goes the usual keyed way: its 409 stored and replayed, nothing reserved', async () => {
    const p = await createProduct(t, admin, { stock: 1 });
    const key = `short-${randomUUID()}`;
    const refused = await placeOrder(t, buyers[1], [{ productId: p.id, quantity: 2 }], key);
    expectProblem(refused, 'INSUFFICIENT_STOCK');
    const again = await placeOrder(t, buyers[1], [{ productId: p.id, quantity: 2 }], key);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.text).toBe(refused.text);
    expect(await stockOf(t, p.id)).toBe(1);
  });

  it('two keyed checkouts with the same key in one batch: one order, the second a replay or 409 in use', async () => {
    const p = await createProduct(t, admin, { stock: 50 });
    const key = `twice-${randomUUID()}`;
    const before = await waiting(t);
    const hold = await holdRow(t, 'products', p.id);
    let answers: Promise<Response>[];
    try {
      const head = placeOrder(t, buyers[2], [{ productId: p.id, quantity: 1 }]).then((r) => r);
      await untilWaiting(t, before + 1);
      answers = Array.from({ length: 4 }, () =>
        placeOrder(t, buyers[3], [{ productId: p.id, quantity: 1 }], key).then((r) => r),
      );
      answers.push(head);
      await until('the checkouts queue', async () => {
        return (await metric('order_placements_waiting')) >= 4;
      });
    } finally {
      await hold.release();
    }
    const settled = await Promise.all(answers);
    const keyed = settled.slice(0, 4);
    const created = keyed.filter((r) => r.status === 201);
    const original = created.filter((r) => r.headers['idempotent-replayed'] === undefined);
    expect(original).toHaveLength(1);
    for (const r of created) expect(bytes(r)).toEqual(bytes(original[0]));
    for (const r of keyed.filter((x) => x.status !== 201)) {
      expectProblem(r, 'IDEMPOTENCY_KEY_IN_USE');
    }
    expect(await orderCount(t, buyers[3].id)).toBe(1);
    expect(await stockOf(t, p.id)).toBe(48);
  });

  it('a key in flight in another transaction: the placement statement does not wait for it, the usual path does, then places once', async () => {
    const p = await createProduct(t, admin, { stock: 10 });
    const key = `flight-${randomUUID()}`;
    // The key's lock, as a request claiming it holds it (idempotency_key_free).
    const holder = new Client({ connectionString: t.databaseUrl });
    await holder.connect();
    let answer: Promise<Response>;
    try {
      await holder.query('BEGIN');
      await holder.query(
        `SELECT pg_advisory_xact_lock(hashtextextended($1 || ' ' || $2, 727002))`,
        [buyers[4].id, key],
      );
      answer = placeOrder(t, buyers[4], [{ productId: p.id, quantity: 1 }], key).then((r) => r);
      // The usual path waits on the key's lock (the statement itself never does: it gave up).
      await until('the checkout waits for the key', async () => {
        const [{ n }] = await t.db.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event = 'advisory'`,
        );
        return n === 1;
      });
      expect(await orderCount(t, buyers[4].id)).toBe(0);
    } finally {
      await holder.query('COMMIT').catch(() => undefined);
      await holder.end();
    }
    const res = await answer;
    expect(res.status).toBe(201);
    expect(await orderCount(t, buyers[4].id)).toBe(1);
    // Stored by the usual path: the rendered response.
    expect(await storedOutcome(buyers[4].id, key)).toHaveProperty('status', 201);
    const again = await placeOrder(t, buyers[4], [{ productId: p.id, quantity: 1 }], key);
    expect(bytes(again)).toEqual(bytes(res));
    expect(await stockOf(t, p.id)).toBe(9);
  });

  it('an order of free products is paid at placement, with or without terms and keys', async () => {
    const free = await createProduct(t, admin, { priceCents: 0, stock: 10 });
    const plain = await placeOrder(t, buyers[5], [{ productId: free.id, quantity: 1 }]);
    expect(plain.status).toBe(201);
    expect(plain.body).toMatchObject({ status: 'paid', totalCents: 0, expiresAt: null });
    const key = `free-${randomUUID()}`;
    const keyed = await placeOrder(t, buyers[5], [{ productId: free.id, quantity: 2 }], key);
    expect(keyed.body).toMatchObject({ status: 'paid', totalCents: 0 });
    const again = await placeOrder(t, buyers[5], [{ productId: free.id, quantity: 2 }], key);
    expect(bytes(again)).toEqual(bytes(keyed));
    expect(await orderCount(t, buyers[5].id)).toBe(2);
    expect(await stockOf(t, free.id)).toBe(7);
  });
});
