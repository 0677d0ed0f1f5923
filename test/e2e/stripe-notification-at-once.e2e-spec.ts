import { Client } from 'pg';
import { createProduct, placeOrder } from '../support/fixtures';
import { type Account, account } from '../support/http';
import { holdRow, untilWaiting, waiting } from '../support/row-locks';
import { StripeDouble } from '../support/stripe-double';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * A Stripe success that pays a live pending order is applied by one statement
 * (sql/apply_payment_succeeded.sql, issue 26): these tests prove that it is one statement, that it
 * decides from what it read after the order's lock, that concurrent deliveries of one event apply it
 * once, and that the events it writes are the order and the payment exactly as the API renders them
 * (the full path's DTOs).
 */
describe('a Stripe success applied in one statement', () => {
  const double = new StripeDouble();
  let t: TestApp;
  let admin: Account;
  let alice: Account;
  let webhook: string;

  beforeAll(async () => {
    await double.start();
    t = await createTestApp({
      ...double.env(),
      DB_POOL_SIZE: '20',
    });
    webhook = `${t.baseUrl}/api/v1/payments/stripe/webhook`;
    admin = await account(t, 'admin');
    alice = await account(t);
  });
  afterAll(async () => {
    await t?.close();
    await double.stop();
  });

  const get = (path: string) => t.http().get(`/api/v1${path}`).set(alice.auth);
  const count = async (sql: string, params: unknown[] = []) =>
    ((await t.db.query<{ n: number }[]>(sql, params))[0]?.n as number | undefined) ?? 0;
  const history = async (orderId: string) =>
    (
      await t.db.query<{ action: string }[]>(
        'SELECT action FROM order_history WHERE order_id = $1 ORDER BY id',
        [orderId],
      )
    ).map((r) => r.action);

  /** A pending order of two lines with an open Stripe payment. */
  async function openPayment() {
    const [a, b] = await Promise.all([
      createProduct(t, admin, { stock: 50, priceCents: 1250 }),
      createProduct(t, admin, { stock: 50, priceCents: 399 }),
    ]);
    const order = (
      await placeOrder(t, alice, [
        { productId: b.id, quantity: 1 },
        { productId: a.id, quantity: 2 },
      ]).expect(201)
    ).body as Record<string, any>;
    const res = await t
      .http()
      .post(`/api/v1/orders/${order.id}/payments`)
      .set(alice.auth)
      .send({ provider: 'stripe' });
    expect(res.status).toBe(201);
    return { order, payment: res.body as Record<string, any> };
  }

  it('pays the order in one statement; its events are the order and the payment as the API renders them', async () => {
    const { order, payment } = await openPayment();
    const event = double.confirm(payment.providerPaymentId as string, 'succeeded');
    const before = await waiting(t);
    const hold = await holdRow(t, 'orders', order.id as string);
    let delivered;
    try {
      delivered = double.deliver(event, webhook);
      await untilWaiting(t, before + 1);
      // What waits for the order's lock is the one statement (the full path's transaction would
      // wait in its SELECT … FOR UPDATE of the order): every read that decides comes after it.
      const waiters = await t.db.query<{ query: string }[]>(
        `SELECT query FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      expect(waiters.map((w) => w.query)).toEqual([
        expect.stringMatching(/^SELECT apply_payment_succeeded\(/),
      ]);
    } finally {
      await hold.release();
    }
    expect((await delivered).status).toBe(200);

    const read = await get(`/orders/${order.id}`).expect(200);
    expect(read.body).toMatchObject({ status: 'paid', paymentStatus: 'paid', paidCents: 2899 });
    const paid = await get(`/orders/${order.id}/payments/${payment.id}`).expect(200);
    expect(paid.body).toMatchObject({ status: 'succeeded', clientSecret: null });
    expect(await history(order.id as string)).toEqual(['place', 'pay']);

    const events = await t.db.query<{ type: string; order_version: number; body: string }[]>(
      `SELECT type, order_version, body FROM outbox_events
        WHERE order_id = $1 AND type IN ('order.paid', 'payment.succeeded') ORDER BY seq`,
      [order.id],
    );
    expect(events.map((e) => e.type)).toEqual(['order.paid', 'payment.succeeded']);
    for (const e of events) {
      const body = JSON.parse(e.body) as Record<string, any>;
      expect(Object.keys(body)).toEqual(['id', 'type', 'occurredAt', 'data']);
      expect(body.type).toBe(e.type);
      expect(body.occurredAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(e.order_version).toBe(read.body.version);
      // Byte for byte what GET renders (same members, same order, same values).
      expect(JSON.stringify(body.data.order)).toBe(JSON.stringify(read.body));
    }
    const payload = JSON.parse(events[1].body) as Record<string, any>;
    expect(JSON.stringify(payload.data.payment)).toBe(JSON.stringify(paid.body));
  });

  it('decides from what it read after the order’s lock: a hold that ran out meanwhile is revived, not paid', async () => {
    const { order, payment } = await openPayment();
    const event = double.confirm(payment.providerPaymentId as string, 'succeeded');
    const before = await waiting(t);
    // The order's row held, and its hold run out in that same transaction.
    const holder = new Client({ connectionString: t.databaseUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(
        `UPDATE orders SET expires_at = clock_timestamp() - interval '1 second' WHERE id = $1`,
        [order.id],
      );
      const delivered = double.deliver(event, webhook);
      await untilWaiting(t, before + 1);
      await holder.query('COMMIT');
      expect((await delivered).status).toBe(200);
    } finally {
      await holder.end();
    }
    // Read after the lock: the hold is over, so the full path expires it and revives it.
    expect(await history(order.id as string)).toEqual(['place', 'expire', 'revive']);
    const read = await get(`/orders/${order.id}`).expect(200);
    expect(read.body).toMatchObject({ status: 'paid', paidCents: 2899 });
  });

  it('eight concurrent deliveries of one event queued on the order: applied once', async () => {
    const { order, payment } = await openPayment();
    const event = double.confirm(payment.providerPaymentId as string, 'succeeded');
    const before = await waiting(t);
    const hold = await holdRow(t, 'orders', order.id as string);
    let deliveries;
    try {
      deliveries = Array.from({ length: 8 }, () => double.deliver(event, webhook));
      await untilWaiting(t, before + 8);
    } finally {
      await hold.release();
    }
    expect((await Promise.all(deliveries)).map((d) => d.status)).toEqual(Array(8).fill(200));
    expect(await history(order.id as string)).toEqual(['place', 'pay']);
    expect(
      await count(
        `SELECT count(*)::int AS n FROM outbox_events WHERE order_id = $1
            AND type IN ('order.paid', 'payment.succeeded')`,
        [order.id],
      ),
    ).toBe(2);
    expect(
      await count(
        `SELECT count(*)::int AS n FROM payment_provider_events WHERE provider = 'stripe' AND event_id = $1`,
        [event.id],
      ),
    ).toBe(1);
    expect(
      await count(`SELECT count(*)::int AS n FROM refunds WHERE order_id = $1`, [order.id]),
    ).toBe(0);
  });
});
