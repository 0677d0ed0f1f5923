import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import {
  type EmbeddedPostgres,
  startEmbeddedPostgres,
  stopEmbeddedPostgres,
} from '../../src/database/embedded-postgres';
import { freePort } from '../../scripts/service-process.mjs';
import { createTestDatabase } from '../support/test-app';
import { call, customer, type Instance, type Reply, startInstance, tally } from './instances';

/** What must hold after any fault: no partial writes, exact stock, no key stuck without its outcome. */
async function assertConsistent(sql: Client, products: Record<string, number>): Promise<void> {
  const partial = await sql.query(
    `SELECT o.id FROM orders o
      WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)
         OR NOT EXISTS (SELECT 1 FROM order_history e WHERE e.order_id = o.id AND e.from_status IS NULL)`,
  );
  expect(partial.rows).toEqual([]);
  for (const [id, initial] of Object.entries(products)) {
    const { rows } = await sql.query(
      `SELECT p.stock::int AS stock, coalesce((SELECT sum(i.quantity) FROM order_items i JOIN orders o ON o.id = i.order_id
                                  WHERE i.product_id = p.id AND o.status <> 'cancelled'), 0)::int AS sold
         FROM products p WHERE p.id = $1`,
      [id],
    );
    expect(rows[0].stock + rows[0].sold).toBe(initial);
  }
  const stuck = await sql.query('SELECT key FROM idempotency_keys WHERE response IS NULL');
  expect(stuck.rows).toEqual([]);
}

async function seedProduct(
  inst: Instance,
  admin: { token: string },
  stock: number,
): Promise<string> {
  const tag = randomBytes(4).toString('hex');
  const res = await call(inst.url, 'POST', '/api/v1/products', {
    token: admin.token,
    body: {
      sku: `F-${tag}`,
      slug: `f-${tag}`,
      name: `F ${tag}`,
      priceCents: 100,
      currency: 'EUR',
      stock,
    },
  });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

describe('faults under traffic', () => {
  describe('the database stops and comes back', () => {
    let pg: EmbeddedPostgres;
    let dir: string;
    let app: Instance;
    let sql: Client;

    beforeAll(async () => {
      // A cluster of this test's own: stopping the shared one would break the other test files.
      dir = await mkdtemp(join(tmpdir(), 'order-service-fault-'));
      await chmod(dir, 0o755);
      pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pgdata'), port: await freePort() });
      app = await startInstance('A', pg.url, { DB_STATEMENT_TIMEOUT_MS: '3000' });
      sql = new Client({ connectionString: pg.url });
      await sql.connect();
    }, 120_000);
    afterAll(async () => {
      await app?.stop();
      await sql?.end().catch(() => undefined);
      await pg?.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    });

    it('answers 503 (never 500, never a hang) while it is away, reports not ready, and recovers on its own', async () => {
      const admin = await customer(app);
      await sql.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
      const buyer = await customer(app);
      const productId = await seedProduct(app, admin, 10_000);
      await sql.end();

      const replies: Reply[] = [];
      let running = true;
      const traffic = (async () => {
        while (running) {
          const started = Date.now();
          const r = await call(app.url, 'POST', '/api/v1/orders', {
            token: buyer.token,
            body: { items: [{ productId, quantity: 1 }] },
            headers: { 'Idempotency-Key': randomUUID() },
            timeoutMs: 20_000,
          });
          replies.push(r);
          expect(Date.now() - started).toBeLessThan(15_000);
          await sleep(20);
        }
      })();

      await sleep(500);
      await stopEmbeddedPostgres(pg.dataDir, 'fast');
      await sleep(1500);
      const ready = await call(app.url, 'GET', '/health/ready');
      expect(ready.status).toBe(503);
      const during = await call(app.url, 'GET', `/api/v1/products/${productId}`);
      expect(during.status).toBe(503);
      expect(during.body.code).toBe('SERVICE_UNAVAILABLE');
      expect(during.headers.get('retry-after')).toBeTruthy();

      pg = await startEmbeddedPostgres({ dataDir: pg.dataDir, port: Number(new URL(pg.url).port) });
      const back = Date.now();
      let recovered = -1;
      while (Date.now() - back < 15_000) {
        const r = await call(app.url, 'GET', '/health/ready');
        if (r.status === 200) {
          recovered = Date.now() - back;
          break;
        }
        await sleep(100);
      }
      expect(recovered).toBeGreaterThanOrEqual(0);
      await sleep(500);
      running = false;
      await traffic;

      const counts = tally(replies);
      expect(Object.keys(counts).every((s) => s === '201' || s === '503')).toBe(true);
      expect(counts[503]).toBeGreaterThan(0);
      expect(replies.at(-1)?.status).toBe(201);
      sql = new Client({ connectionString: pg.url });
      await sql.connect();
      await assertConsistent(sql, { [productId]: 10_000 });
      console.log(
        `database restart: ${JSON.stringify(counts)}, ready again ${recovered} ms after it came back`,
      );
    });
  });

  describe('an instance is killed mid-checkout', () => {
    let db: { url: string; drop: () => Promise<void> };
    let a: Instance;
    let b: Instance;
    let sql: Client;
    beforeAll(async () => {
      db = await createTestDatabase();
      [a, b] = await Promise.all([startInstance('A', db.url), startInstance('B', db.url)]);
      sql = new Client({ connectionString: db.url });
      await sql.connect();
    }, 120_000);
    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
      await sql?.end();
      await db?.drop();
    });

    it('leaves no partial order and no stuck key; retries on the survivor give one order per key', async () => {
      const admin = await customer(b);
      await sql.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
      const buyer = await customer(b);
      const productId = await seedProduct(b, admin, 1000);
      const keys = Array.from({ length: 60 }, () => randomUUID());
      const body = { items: [{ productId, quantity: 1 }] };
      // Warm A up (pool connections, JIT) with another account, so the kill lands mid-stream.
      const warm = await customer(a);
      for (let i = 0; i < 20; i++) {
        await call(a.url, 'POST', '/api/v1/orders', { token: warm.token, body });
      }

      const inFlight = keys.map((key, i) =>
        sleep(i * 10).then(() =>
          call(a.url, 'POST', '/api/v1/orders', {
            token: buyer.token,
            body,
            headers: { 'Idempotency-Key': key },
          }).catch(
            () => undefined, // the connection died with the process
          ),
        ),
      );
      await sleep(300);
      await a.kill();
      const first = await Promise.all(inFlight);
      const committedBeforeRetry = (
        await sql.query('SELECT count(*)::int AS n FROM orders WHERE user_id = $1', [buyer.id])
      ).rows[0].n as number;

      // The client retries every checkout it has no answer for, with the same key, on the survivor.
      const retries = await Promise.all(
        keys.map((key) =>
          call(b.url, 'POST', '/api/v1/orders', {
            token: buyer.token,
            body,
            headers: { 'Idempotency-Key': key },
          }),
        ),
      );
      expect(retries.every((r) => r.status === 201)).toBe(true);
      const answered = first.filter((r): r is Reply => r !== undefined && r.status === 201);
      for (const r of answered) {
        const retry = retries[first.indexOf(r)];
        expect(retry.body.id).toBe(r.body.id);
        expect(retry.headers.get('idempotent-replayed')).toBe('true');
      }
      const { rows } = await sql.query('SELECT count(*)::int AS n FROM orders WHERE user_id = $1', [
        buyer.id,
      ]);
      expect(rows[0].n).toBe(keys.length);
      await assertConsistent(sql, { [productId]: 1000 });
      console.log(
        `SIGKILL mid-checkout: ${answered.length} answered before the kill, ${committedBeforeRetry - answered.length} committed but unanswered, ${first.filter((r) => r === undefined).length} cut off, ${rows[0].n} orders for ${keys.length} keys after retries`,
      );
    });

    it('survives its connections being terminated during traffic on the other instance', async () => {
      const admin = await customer(b);
      await sql.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
      const buyer = await customer(b);
      const productId = await seedProduct(b, admin, 1000);
      const traffic = Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          sleep(i * 5).then(() =>
            call(b.url, 'POST', '/api/v1/orders', {
              token: buyer.token,
              body: { items: [{ productId, quantity: 1 }] },
            }),
          ),
        ),
      );
      for (let i = 0; i < 10; i++) {
        await sql.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'order-service'`,
        );
        await sleep(15);
      }
      const replies = await traffic;
      expect(replies.every((r) => r.status === 201 || r.status === 503)).toBe(true);
      await sleep(200);
      expect((await call(b.url, 'GET', '/health/ready')).status).toBe(200);
      await assertConsistent(sql, { [productId]: 1000 });
      console.log(`terminated connections: ${JSON.stringify(tally(replies))}`);
    });
  });
});
