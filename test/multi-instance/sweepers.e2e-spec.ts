import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { createTestDatabase } from '../support/test-app';
import { call, customer, type Instance, startInstance } from './instances';

/** Two instances sweep one database: every due hold is expired exactly once, stock exact. */
describe('hold sweepers on two instances', () => {
  let db: { url: string; drop: () => Promise<void> };
  let sql: Client;
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Holds of 30 s: placed first, then made due at once (below), then both sweepers race for them.
    const env = { ORDER_HOLD_SECONDS: '30', ORDER_EXPIRY_SWEEP_SECONDS: '1' };
    [a, b] = await Promise.all([startInstance('A', db.url, env), startInstance('B', db.url, env)]);
    sql = new Client({ connectionString: db.url });
    await sql.connect();
  }, 120_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await sql?.end();
    await db?.drop();
  });

  it('expires 200 due orders, each exactly once, and gives back exactly their units', async () => {
    const admin = await customer(a, b);
    await sql.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
    const shopper = await customer(b, a);
    const tag = randomBytes(4).toString('hex');
    const created = await call(a.url, 'POST', '/api/v1/products', {
      token: admin.token,
      body: {
        sku: `SW-${tag}`,
        slug: `sw-${tag}`,
        name: 'Swept',
        priceCents: 100,
        currency: 'EUR',
        stock: 1000,
      },
    });
    expect(created.status).toBe(201);
    const productId = created.body.id as string;
    const ids: string[] = [];
    for (let i = 0; i < 200; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, (_, k) =>
          call((i + k) % 2 ? a.url : b.url, 'POST', '/api/v1/orders', {
            token: shopper.token,
            body: { items: [{ productId, quantity: 3 }] },
          }),
        ),
      );
      for (const r of batch) {
        expect(r.status).toBe(201);
        ids.push(r.body.id as string);
      }
    }
    // The holds end in waves of 20 over 3 s (a test's shortcut for waiting 30 s), so that both
    // instances' sweeps, ticking each second on their own, meet due orders.
    for (let i = 0; i < 200; i += 20) {
      await sql.query(
        `UPDATE orders SET expires_at = clock_timestamp() - interval '1 second' WHERE id = ANY($1::uuid[])`,
        [ids.slice(i, i + 20)],
      );
      await sleep(300);
    }
    const deadline = Date.now() + 30_000;
    let pending = 200;
    while (pending > 0 && Date.now() < deadline) {
      await sleep(250);
      pending = Number(
        (
          await sql.query(
            `SELECT count(*)::int AS n FROM orders WHERE id = ANY($1::uuid[]) AND status = 'pending'`,
            [ids],
          )
        ).rows[0].n,
      );
    }
    expect(pending).toBe(0);
    const expiries = await sql.query(
      `SELECT order_id, count(*)::int AS n FROM order_history
        WHERE action = 'expire' AND order_id = ANY($1::uuid[]) GROUP BY order_id`,
      [ids],
    );
    expect(expiries.rows).toHaveLength(200);
    expect(expiries.rows.every((r: { n: number }) => r.n === 1)).toBe(true);
    const { rows } = await sql.query('SELECT stock::int AS stock FROM products WHERE id = $1', [
      productId,
    ]);
    expect(rows[0].stock).toBe(1000);
    // Each instance counts what it expired: together exactly 200.
    const counted = await Promise.all(
      [a, b].map(async (instance) => {
        const text = (await call(instance.url, 'GET', '/metrics')).body as string;
        return Number(/^order_holds_expired_total (\d+)$/m.exec(text)?.[1] ?? 'NaN');
      }),
    );
    console.log(`two sweepers, 200 due orders: expired by A ${counted[0]}, by B ${counted[1]}`);
    expect(counted[0] + counted[1]).toBe(200);
  }, 90_000);
});
