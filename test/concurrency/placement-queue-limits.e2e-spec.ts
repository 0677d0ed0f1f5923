import { Client } from 'pg';
import type { Response } from 'supertest';
import { type Account, account, expectProblem } from '../support/http';
import { createProduct, orderCount, placeOrder, stockOf } from '../support/fixtures';
import { metricValue } from '../support/row-locks';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * The placement queue's bounds (issue 20), against real PostgreSQL: a checkout queued behind one
 * that waits in the database (for a row lock another transaction holds with SELECT … FOR UPDATE)
 * is answered 503 at its own deadline, not when the one ahead is answered, and is never placed;
 * past PLACEMENT_QUEUE_MAX queued checkouts of the same products, the next is answered 503 at once.
 * The queue's own rules are in test/unit/placement-queue.spec.ts.
 */
const WAIT_MS = 2_000;
const MAX_QUEUED = 3;

describe('placement queue bounds (real HTTP, real PostgreSQL)', () => {
  let t: TestApp;
  let admin: Account;
  let shoppers: Account[];
  beforeAll(async () => {
    t = await createTestApp({
      DB_POOL_SIZE: '30',
      PLACEMENT_QUEUE_WAIT_MS: String(WAIT_MS),
      PLACEMENT_QUEUE_MAX: String(MAX_QUEUED),
    });
    admin = await account(t, 'admin');
    shoppers = await Promise.all(Array.from({ length: 7 }, () => account(t)));
  });
  afterAll(() => t.close());

  const metric = (series: string): Promise<number> => metricValue(t, series);
  const until = async (what: string, done: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`never: ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  /** A checkout, and how long after it was sent its answer came. */
  const timed = (who: Account, productId: string) => {
    const sent = Date.now();
    return placeOrder(t, who, [{ productId, quantity: 1 }]).then((res: Response) => ({
      res,
      ms: Date.now() - sent,
    }));
  };
  /** The value of `p` if it settles within `ms`, else 'pending'. */
  const within = <T>(p: Promise<T>, ms: number): Promise<T | 'pending'> =>
    Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);

  it('answers queued checkouts 503 at their own deadline while the one ahead waits in the database, a full queue 503 at once, and places none of them', async () => {
    const p = await createProduct(t, admin, { stock: 10 });
    const shed = async () => ({
      waited: await metric('order_placements_shed_total{reason="waited"}'),
      full: await metric('order_placements_shed_total{reason="queue_full"}'),
    });
    const shedBefore = await shed();
    const before = await Promise.all(shoppers.map((s) => orderCount(t, s.id)));

    // The product's row lock, held by another transaction.
    const blocker = new Client({ connectionString: t.databaseUrl });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT id FROM products WHERE id = $1 FOR UPDATE', [p.id]);
    let first: Promise<{ res: Response; ms: number }>;
    try {
      first = timed(shoppers[0], p.id);
      await until('the first checkout waits for the lock', async () => {
        const [{ n }] = await t.db.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT place_order(%'`,
        );
        return n >= 1;
      });
      // Three queue behind it, up to the bound. (Without an Idempotency-Key: a keyed checkout runs in
      // a transaction of its own, and goes to the database rather than to the queue.)
      const queued = [1, 2, 3].map((i) => timed(shoppers[i], p.id));
      await until('three checkouts queued', async () => {
        return (await metric('order_placements_waiting')) >= MAX_QUEUED;
      });
      // The queue is full: the next two are answered at once.
      const overflow = await Promise.all(
        [shoppers[4], shoppers[5]].map((s) => within(timed(s, p.id), WAIT_MS / 2)),
      );
      for (const o of overflow) {
        expect(o).not.toBe('pending');
        if (o === 'pending') continue;
        expectProblem(o.res, 'SERVICE_UNAVAILABLE');
        expect(o.res.headers['retry-after']).toBe('1');
        expect(o.ms).toBeLessThan(WAIT_MS / 2);
      }
      // The queued ones at their deadline, the lock still held and the first still waiting.
      const answers = await Promise.all(queued.map((q) => within(q, 4 * WAIT_MS)));
      for (const a of answers) {
        expect(a).not.toBe('pending');
        if (a === 'pending') continue;
        expectProblem(a.res, 'SERVICE_UNAVAILABLE');
        expect(a.res.headers['retry-after']).toBe('1');
        expect(a.ms).toBeGreaterThanOrEqual(WAIT_MS - 50);
        expect(a.ms).toBeLessThan(WAIT_MS + 2_000);
      }
      expect(await within(first, 0)).toBe('pending');
      expect(await metric('order_placements_waiting')).toBe(0);
    } finally {
      await blocker.query('COMMIT');
      await blocker.end();
    }
    const placed = await first;
    expect(placed.res.status).toBe(201);

    // Exactly the first was placed: stock, orders, and what the metrics say was shed.
    expect(await stockOf(t, p.id)).toBe(9);
    const after = await Promise.all(shoppers.map((s) => orderCount(t, s.id)));
    expect(after.map((n, i) => n - before[i])).toEqual([1, 0, 0, 0, 0, 0, 0]);
    const shedAfter = await shed();
    expect({
      waited: shedAfter.waited - shedBefore.waited,
      full: shedAfter.full - shedBefore.full,
    }).toEqual({ waited: 3, full: 2 });

    // The products are free again: the next checkouts are placed (one of those answered 503, again).
    const again = await Promise.all(
      [shoppers[3], shoppers[6]].map((s) => placeOrder(t, s, [{ productId: p.id, quantity: 1 }])),
    );
    expect(again.map((r) => r.status)).toEqual([201, 201]);
    expect(await stockOf(t, p.id)).toBe(7);
  });
});
