import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { inTransaction } from '../../src/common/database/transaction';
import { ProblemError } from '../../src/common/problems/problem.error';
import { createDataSource } from '../../src/database/data-source';
import { type Account, account, expectProblem } from '../support/http';
import { createProduct, placeOrder, stockOf } from '../support/fixtures';
import { createTestApp, createTestDatabase, type TestApp } from '../support/test-app';

describe('transient database failures', () => {
  describe('the transaction helper, on real serialization failures', () => {
    let ds: DataSource;
    let drop: () => Promise<void>;
    beforeAll(async () => {
      const db = await createTestDatabase();
      drop = db.drop;
      ds = createDataSource({ url: db.url, poolSize: 12 });
      await ds.initialize();
      await ds.query('CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)');
    });
    afterAll(async () => {
      await ds.destroy();
      await drop();
    });

    // Read-then-write under SERIALIZABLE: PostgreSQL aborts all but one of the colliding
    // transactions with 40001, and the helper must run them again until every increment lands.
    const increment = (attempts: number) =>
      inTransaction(
        ds,
        async (m) => {
          const [{ n }] = await m.query('SELECT n FROM counter WHERE id = 1');
          await m.query('SELECT pg_sleep(0.01)');
          await m.query('UPDATE counter SET n = $1 WHERE id = 1', [n + 1]);
        },
        { isolation: 'SERIALIZABLE', attempts },
      );

    it('retries serialization failures until every transaction has committed once', async () => {
      await ds.query('INSERT INTO counter VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0');
      await Promise.all(Array.from({ length: 8 }, () => increment(50)));
      const [{ n }] = await ds.query('SELECT n FROM counter WHERE id = 1');
      expect(n).toBe(8);
    });

    it('answers 503 SERVICE_UNAVAILABLE with Retry-After once the retry budget is spent', async () => {
      await ds.query('INSERT INTO counter VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0');
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => increment(1)));
      const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(failures.length).toBeGreaterThan(0);
      for (const f of failures) {
        expect(f.reason).toBeInstanceOf(ProblemError);
        expect(f.reason).toMatchObject({
          code: 'SERVICE_UNAVAILABLE',
          headers: { 'Retry-After': '1' },
        });
      }
      const [{ n }] = await ds.query('SELECT n FROM counter WHERE id = 1');
      expect(n).toBe(8 - failures.length);
    });
  });

  describe('connections killed under the service', () => {
    let t: TestApp;
    let admin: Account;
    let buyer: Account;
    beforeAll(async () => {
      t = await createTestApp();
      admin = await account(t, 'admin');
      buyer = await account(t);
    });
    afterAll(() => t.close());

    /** Terminates every connection of the service, from a connection of its own, until stopped. */
    const killWhile = async <T>(during: Promise<T>): Promise<{ value: T; kills: number }> => {
      const killer = new Client({ connectionString: t.databaseUrl });
      await killer.connect();
      let done = false;
      let kills = 0;
      const loop = (async () => {
        while (!done) {
          const { rows } = await killer.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()`,
          );
          kills += rows.length;
          await sleep(3);
        }
      })();
      try {
        return { value: await during, kills };
      } finally {
        done = true;
        await loop;
        await killer.end();
      }
    };

    it('answers 503 (never 500) while connections die, never leaves a partial order, and recovers', async () => {
      const p = await createProduct(t, admin, { stock: 1000 });
      const burst = Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          sleep(i * 5).then(() => placeOrder(t, buyer, [{ productId: p.id, quantity: 1 }])),
        ),
      );
      const { value: results, kills } = await killWhile(burst);
      for (const r of results) {
        expect([201, 503]).toContain(r.status);
        if (r.status === 503) {
          expectProblem(r, 'SERVICE_UNAVAILABLE');
          expect(r.headers['retry-after']).toBeDefined();
        }
      }
      // Recovery on its own: the pool replaces dead connections.
      await placeOrder(t, buyer, [{ productId: p.id, quantity: 1 }]).expect(201);
      // No partial writes: every order has its line and its creation event, and stock matches.
      const orphans = await t.db.query(
        `SELECT o.id FROM orders o
          WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)
             OR NOT EXISTS (SELECT 1 FROM order_history e WHERE e.order_id = o.id)`,
      );
      expect(orphans).toEqual([]);
      const [{ n }] = await t.db.query(
        'SELECT coalesce(sum(quantity), 0)::int AS n FROM order_items WHERE product_id = $1',
        [p.id],
      );
      expect(await stockOf(t, p.id)).toBe(1000 - n);
      console.log(
        `${kills} connections killed during 60 orders: ${JSON.stringify(results.reduce<Record<number, number>>((a, r) => ({ ...a, [r.status]: (a[r.status] ?? 0) + 1 }), {}))}`,
      );
    });
  });
});

describe('answers for what the database refuses', () => {
  let t: TestApp;
  let admin: Account;
  let buyer: Account;
  beforeAll(async () => {
    t = await createTestApp({ DB_STATEMENT_TIMEOUT_MS: '500' });
    admin = await account(t, 'admin');
    buyer = await account(t);
  });
  afterAll(() => t.close());

  it('answers 503, not 500, when an order waits on a locked product past the statement timeout', async () => {
    const p = await createProduct(t, admin, { stock: 5 });
    const blocker = new Client({ connectionString: t.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [p.id]);
      for (const key of [undefined, 'timeout-key']) {
        const res = await placeOrder(t, buyer, [{ productId: p.id, quantity: 1 }], key);
        expectProblem(res, 'SERVICE_UNAVAILABLE');
        expect(res.headers['retry-after']).toBeDefined();
      }
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    expect(await stockOf(t, p.id)).toBe(5);
    // Nothing was stored for the key: the retry runs anew and succeeds.
    await placeOrder(t, buyer, [{ productId: p.id, quantity: 1 }], 'timeout-key').expect(201);
  });

  it.each([['a NUL character in a name', { name: 'a\u0000b' }]])(
    'answers 400, not 500, for %s',
    async (_, patch) => {
      const res = await t
        .http()
        .post('/api/v1/auth/register')
        .send({
          email: `nul-${Date.now()}@example.com`,
          password: 'long enough password',
          ...patch,
        });
      expectProblem(res, 'VALIDATION_FAILED');
    },
  );

  it('answers 400, not 500, for a search containing NUL', async () => {
    expectProblem(
      await t.http().get('/api/v1/products').query({ q: 'a\u0000' }),
      'VALIDATION_FAILED',
    );
  });

  it('refuses an adjustment past the stock ceiling with 400, changing nothing', async () => {
    const p = await createProduct(t, admin, { stock: 1_000_000_000 });
    const res = await t
      .http()
      .post(`/api/v1/products/${p.id}/stock-adjustments`)
      .set(admin.auth)
      .send({ delta: 1, reason: 'x' });
    expectProblem(res, 'VALIDATION_FAILED');
    expect(await stockOf(t, p.id)).toBe(1_000_000_000);
  });
});
