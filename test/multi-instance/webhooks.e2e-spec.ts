import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { WebhookReceiver } from '../support/webhook-receiver';
import { createTestDatabase } from '../support/test-app';
import { call, customer, type Instance, startInstance } from './instances';

/** Two instances relay one outbox: every event delivered, one attempt by one instance, none lost. */
describe('webhook relays on two instances', () => {
  let db: { url: string; drop: () => Promise<void> };
  let sql: Client;
  let a: Instance;
  let b: Instance;
  const receiver = new WebhookReceiver();
  let base: string;
  let admin: { id: string; token: string };
  let shopper: { id: string; token: string };
  let productId: string;
  // Development, so that the receiver on 127.0.0.1 is an acceptable target; a short lease, so that
  // a killed instance's claim comes back within the test.
  const env = { NODE_ENV: 'development', WEBHOOK_LEASE_SECONDS: '15' };

  beforeAll(async () => {
    base = await receiver.start();
    db = await createTestDatabase();
    [a, b] = await Promise.all([startInstance('A', db.url, env), startInstance('B', db.url, env)]);
    sql = new Client({ connectionString: db.url });
    await sql.connect();
    admin = await customer(a, b);
    await sql.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
    shopper = await customer(b, a);
    const tag = randomBytes(4).toString('hex');
    const created = await call(a.url, 'POST', '/api/v1/products', {
      token: admin.token,
      body: {
        sku: `WH-${tag}`,
        slug: `wh-${tag}`,
        name: 'Hooked',
        priceCents: 100,
        currency: 'EUR',
        stock: 100000,
      },
    });
    productId = created.body.id as string;
  }, 120_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await sql?.end();
    await db?.drop();
    await receiver.stop();
  });

  const subscribe = async (path: string): Promise<string> => {
    const res = await call(a.url, 'POST', '/api/v1/webhooks', {
      token: admin.token,
      body: { url: `${base}${path}`, events: ['*'] },
    });
    expect(res.status).toBe(201);
    receiver.trust(res.body.secret as string);
    return res.body.id as string;
  };
  const place = (via: Instance) =>
    call(via.url, 'POST', '/api/v1/orders', {
      token: shopper.token,
      body: { items: [{ productId, quantity: 1 }] },
    });

  it('delivers 500 events, each exactly once to an always-2xx receiver', async () => {
    const subscription = await subscribe('/five-hundred');
    const orders: string[] = [];
    for (let i = 0; i < 500; i += 25) {
      const batch = await Promise.all(
        Array.from({ length: 25 }, (_, k) => place((i + k) % 2 ? a : b)),
      );
      for (const r of batch) {
        expect(r.status).toBe(201);
        orders.push(r.body.id as string);
      }
    }
    const here = () => receiver.received.filter((r) => r.path === '/five-hundred');
    await receiver.waitFor(() => here().length >= 500, 60_000);
    await sleep(1500); // a duplicate would arrive now
    const received = here();
    const ids = received.map((r) => r.webhookId);
    const duplicates = ids.length - new Set(ids).size;
    console.log(
      `two relays, 500 events: ${received.length} deliveries, ${duplicates} duplicate(s)`,
    );
    expect(duplicates).toBe(0);
    expect(received).toHaveLength(500);
    expect(received.every((r) => r.signatureValid && r.type === 'order.created')).toBe(true);
    expect(new Set(received.map((r) => r.orderId))).toEqual(new Set(orders));
    const { rows } = await sql.query(
      `SELECT status, count(*)::int AS n, max(attempts) AS most FROM webhook_deliveries
        WHERE subscription_id = $1 GROUP BY status`,
      [subscription],
    );
    expect(rows).toEqual([{ status: 'delivered', n: 500, most: 1 }]);
    await call(a.url, 'DELETE', `/api/v1/webhooks/${subscription}`, { token: admin.token });
  }, 120_000);

  it('loses nothing when the instance making an attempt is killed: the other delivers after the lease', async () => {
    await subscribe('/killed');
    // B is frozen, so A alone claims the next delivery; the receiver never answers that attempt.
    b.process.kill('SIGSTOP');
    let frozen = true;
    try {
      receiver.delayMs = (_, attempt) => (attempt === 1 ? 60_000 : 0);
      const order = await place(a);
      expect(order.status).toBe(201);
      const here = () => receiver.received.filter((r) => r.path === '/killed');
      const deadline = Date.now() + 10_000;
      // The attempt is in flight at the receiver (recorded only once answered): wait for its lease.
      for (;;) {
        const { rows } = await sql.query(
          `SELECT d.attempts FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
            WHERE s.url LIKE '%/killed' AND d.lease_until IS NOT NULL`,
        );
        if (rows.length && rows[0].attempts === 1) break;
        if (Date.now() > deadline) throw new Error('A never claimed the delivery');
        await sleep(50);
      }
      await a.kill(); // SIGKILL, mid-attempt
      b.process.kill('SIGCONT');
      frozen = false;
      await receiver.waitFor(() => here().some((r) => r.answered === 204), 30_000);
      // B records the delivery once the receiver's 204 has reached it: a moment after the
      // receiver logged its answer, so the row is read until it settles (or 10 s pass).
      const state = async () =>
        (
          await sql.query(
            `SELECT d.status, d.attempts FROM webhook_deliveries d
               JOIN webhook_subscriptions s ON s.id = d.subscription_id WHERE s.url LIKE '%/killed'`,
          )
        ).rows;
      let rows = await state();
      for (
        const until = Date.now() + 10_000;
        rows[0]?.status !== 'delivered' && Date.now() < until;
      ) {
        await sleep(50);
        rows = await state();
      }
      expect(rows).toEqual([{ status: 'delivered', attempts: 2 }]);
      const accepted = here().filter((r) => r.answered === 204);
      expect(accepted).toHaveLength(1);
      expect(accepted[0].orderId).toBe(order.body.id);
      console.log(
        'killed mid-delivery: A claimed attempt 1 and died; B delivered attempt 2 after the 15 s lease',
      );
    } finally {
      if (frozen) b.process.kill('SIGCONT');
      receiver.delayMs = () => 0;
    }
  }, 90_000);
});
