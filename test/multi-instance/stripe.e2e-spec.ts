import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { StripeDouble } from '../support/stripe-double';
import { createTestDatabase } from '../support/test-app';
import { call, customer, type Instance, type Reply, startInstance, tally } from './instances';

/**
 * Stripe across processes of the built service (API.md §9, §10), against the local Stripe double:
 * a notification delivered many times at once to two instances is applied once, and a relay killed
 * between Stripe's refund answer and its own commit completes the refund after a restart without a
 * second refund at Stripe. NODE_ENV=test: STRIPE_API_BASE stops the boot under production.
 */
describe('Stripe across instances', () => {
  const double = new StripeDouble();
  let db: { url: string; drop: () => Promise<void> };
  let sql: Client;
  let a: Instance;
  let b: Instance;
  let admin: { id: string; token: string };
  let shopper: { id: string; token: string };
  let env: Record<string, string>;

  beforeAll(async () => {
    await double.start();
    db = await createTestDatabase();
    env = {
      NODE_ENV: 'test',
      ...double.env(),
      REFUND_BACKOFF_BASE_SECONDS: '1',
    };
    [a, b] = await Promise.all([startInstance('A', db.url, env), startInstance('B', db.url, env)]);
    sql = new Client({ connectionString: db.url });
    await sql.connect();
    admin = await customer(a, b);
    await sql.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
    shopper = await customer(b, a);
  }, 120_000);
  afterAll(async () => {
    double.beforeAnswer = undefined;
    await Promise.all([a?.stop(), b?.stop()]);
    await sql?.end();
    await db?.drop();
    await double.stop();
  });

  const webhookOf = (inst: Instance) => `${inst.url}/api/v1/payments/stripe/webhook`;
  const count = async (text: string, params: unknown[]): Promise<number> =>
    (await sql.query<{ n: number }>(text, params)).rows[0].n;

  /** A pending order of 2 × 7.50 EUR and its Stripe payment, opened through `via`. */
  async function stripePayment(via: Instance): Promise<{ order: any; payment: any }> {
    const tag = randomBytes(4).toString('hex');
    const product = await call(via.url, 'POST', '/api/v1/products', {
      token: admin.token,
      body: {
        sku: `S-${tag}`,
        slug: `s-${tag}`,
        name: `S ${tag}`,
        priceCents: 750,
        currency: 'EUR',
        stock: 10,
      },
    });
    expect(product.status).toBe(201);
    const order = await call(via.url, 'POST', '/api/v1/orders', {
      token: shopper.token,
      body: { items: [{ productId: product.body.id, quantity: 2 }] },
    });
    expect(order.status).toBe(201);
    const payment = await call(via.url, 'POST', `/api/v1/orders/${order.body.id}/payments`, {
      token: shopper.token,
      body: { provider: 'stripe' },
    });
    expect(payment.status).toBe(201);
    return { order: order.body, payment: payment.body };
  }

  it('the same notification delivered 10× concurrently to two instances is applied once', async () => {
    const { order, payment } = await stripePayment(a);
    const event = double.confirm(payment.providerPaymentId as string, 'succeeded');
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) => double.deliver(event, webhookOf(i % 2 ? a : b))),
    );
    expect(tally(replies as unknown as Reply[])).toEqual({ 200: 10 });
    expect(
      await count(
        `SELECT count(*)::int AS n FROM payment_provider_events WHERE provider = 'stripe' AND event_id = $1`,
        [event.id],
      ),
    ).toBe(1);
    expect(
      await count(
        `SELECT count(*)::int AS n FROM order_history WHERE order_id = $1 AND action = 'pay'`,
        [order.id],
      ),
    ).toBe(1);
    const events = await sql.query<{ type: string; n: number }>(
      `SELECT type, count(*)::int AS n FROM outbox_events WHERE order_id = $1 GROUP BY type ORDER BY type`,
      [order.id],
    );
    expect(events.rows.filter((r) => r.type !== 'order.created')).toEqual([
      { type: 'order.paid', n: 1 },
      { type: 'payment.succeeded', n: 1 },
    ]);
    const read = await call(b.url, 'GET', `/api/v1/orders/${order.id}`, { token: shopper.token });
    expect(read.body).toMatchObject({ status: 'paid', paidCents: 1500, paymentStatus: 'paid' });
  });

  it('the relay SIGKILLed between Stripe’s refund answer and its commit: after a restart the refund completes, one refund at Stripe', async () => {
    const { order, payment } = await stripePayment(b);
    const event = double.confirm(payment.providerPaymentId as string, 'succeeded');
    expect((await double.deliver(event, webhookOf(a))).status).toBe(200);

    // Stripe carries the refund out; before its answer is written, every instance (whichever relay
    // sent it) is killed: the answer goes nowhere, and nothing after it is committed.
    let killed = 0;
    double.beforeAnswer = async (r) => {
      if (r.method !== 'POST' || r.path !== '/v1/refunds' || killed++ > 0) return;
      await created.catch(() => undefined); // the admin's 201 is out first
      await Promise.all([a.kill(), b.kill()]);
    };
    const created = call(a.url, 'POST', `/api/v1/orders/${order.id}/refunds`, {
      token: admin.token,
      body: { amountCents: 500, reason: 'one item returned' },
    });
    const res = await created;
    expect(res.status).toBe(201);
    const refundId = res.body.id as string;
    for (let i = 0; i < 100 && killed === 0; i++) await sleep(100);
    await Promise.all([a.exited, b.exited]);
    double.beforeAnswer = undefined;
    expect(killed).toBe(1);
    expect(double.refundsFor(refundId)).toHaveLength(1);
    const before = await sql.query(`SELECT status FROM refunds WHERE id = $1`, [refundId]);
    expect(before.rows[0].status).toBe('pending');

    // The killed relay's claim runs REFUND_LEASE_SECONDS (at least 45 s): end it now rather than
    // wait, as time would.
    await sql.query(`UPDATE refunds SET lease_until = now() WHERE id = $1`, [refundId]);
    [a, b] = await Promise.all([
      startInstance('A2', db.url, env),
      startInstance('B2', db.url, env),
    ]);
    let status = 'pending';
    for (let i = 0; i < 150 && status === 'pending'; i++) {
      await sleep(200);
      status = (await sql.query(`SELECT status FROM refunds WHERE id = $1`, [refundId])).rows[0]
        .status;
    }
    expect(status).toBe('succeeded');
    const made = double.refundsFor(refundId);
    expect(made).toHaveLength(1);
    const keys = double.keysUsed().filter((k) => k.startsWith(refundId));
    expect(keys.length).toBeGreaterThanOrEqual(2);
    expect(new Set(keys)).toEqual(new Set([refundId]));
    const row = await sql.query(`SELECT provider_refund_id FROM refunds WHERE id = $1`, [refundId]);
    expect(row.rows[0].provider_refund_id).toBe(made[0].id);
    const read = await call(a.url, 'GET', `/api/v1/orders/${order.id}`, { token: shopper.token });
    expect(read.body).toMatchObject({
      paidCents: 1500,
      refundedCents: 500,
      paymentStatus: 'partially_refunded',
    });
    // Stripe's echo of it changes nothing.
    const echo = double.eventsOf('refund.created', made[0].id as string)[0];
    expect((await double.deliver(echo, webhookOf(b))).status).toBe(200);
    const again = await call(a.url, 'GET', `/api/v1/orders/${order.id}`, { token: shopper.token });
    expect(again.body.refundedCents).toBe(500);
  }, 120_000);
});
