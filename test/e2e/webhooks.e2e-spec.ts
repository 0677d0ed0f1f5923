import { randomUUID } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { OutboxRetention } from '../../src/events/outbox-retention';
import { refuseWebhookUrl } from '../../src/webhooks/webhook-url';
import { backoffSeconds } from '../../src/webhooks/webhook-relay';
import { type Account, account, expectProblem } from '../support/http';
import { act, createProduct, paid, placeOrder } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';
import { WebhookReceiver } from '../support/webhook-receiver';

/** Order events through the outbox, to signed Standard Webhooks. */
describe('webhooks', () => {
  let t: TestApp;
  let admin: Account;
  let alice: Account;
  const receiver = new WebhookReceiver();
  let base: string;
  beforeAll(async () => {
    base = await receiver.start();
    // Backoff of 1 s × 2^(n−1), three attempts: the retry path takes a few seconds, not hours.
    t = await createTestApp({ WEBHOOK_BACKOFF_BASE_SECONDS: '1', WEBHOOK_MAX_ATTEMPTS: '3' });
    admin = await account(t, 'admin');
    alice = await account(t);
  });
  afterAll(async () => {
    await t.close();
    await receiver.stop();
  });

  const subscribe = async (path: string, events: string[]) => {
    const res = await t
      .http()
      .post('/api/v1/webhooks')
      .set(admin.auth)
      .send({ url: `${base}${path}`, events })
      .expect(201);
    receiver.trust(res.body.secret as string);
    return res.body as { id: string; secret: string };
  };
  const unsubscribe = (id: string) =>
    t.http().delete(`/api/v1/webhooks/${id}`).set(admin.auth).expect(204);

  describe('subscriptions', () => {
    it('creates one with a whsec_ secret shown once, lists and reads it without, deletes it', async () => {
      const res = await t
        .http()
        .post('/api/v1/webhooks')
        .set(admin.auth)
        .send({ url: `${base}/crud`, events: ['order.paid'] })
        .expect(201);
      expect(res.body).toMatchObject({ url: `${base}/crud`, events: ['order.paid'] });
      expect(res.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
      const one = await t.http().get(`/api/v1/webhooks/${res.body.id}`).set(admin.auth).expect(200);
      expect(one.body.secret).toBeUndefined();
      const all = await t.http().get('/api/v1/webhooks').set(admin.auth).expect(200);
      expect(
        all.body.items.some((w: { id: string; secret?: string }) => w.id === res.body.id),
      ).toBe(true);
      expect(JSON.stringify(all.body)).not.toContain(res.body.secret);
      await unsubscribe(res.body.id);
      expectProblem(
        await t.http().get(`/api/v1/webhooks/${res.body.id}`).set(admin.auth),
        'NOT_FOUND',
      );
    });

    it('is for admins only, and validates the URL and the event types', async () => {
      expectProblem(
        await t
          .http()
          .post('/api/v1/webhooks')
          .set(alice.auth)
          .send({ url: `${base}/x`, events: ['*'] }),
        'FORBIDDEN',
      );
      for (const body of [
        { url: 'ftp://example.com/x', events: ['*'] },
        { url: 'not a url', events: ['*'] },
        { url: `${base}/x`, events: [] },
        { url: `${base}/x`, events: ['order.refunded'] },
        { url: null, events: ['*'] },
      ]) {
        expectProblem(
          await t.http().post('/api/v1/webhooks').set(admin.auth).send(body),
          'VALIDATION_FAILED',
        );
      }
    });

    it('refuses loopback, private and link-local targets outside development and test', async () => {
      const strict = { allowPrivate: false };
      for (const url of [
        'http://127.0.0.1:8080/x',
        'http://localhost/x',
        'http://10.1.2.3/x',
        'http://192.168.0.10/x',
        'http://169.254.169.254/latest/meta-data',
        'http://[::1]/x',
        'http://[::ffff:127.0.0.1]/x',
        'http://0.0.0.0/x',
      ]) {
        expect(await refuseWebhookUrl(url, strict)).toMatch(/resolves to/);
      }
      expect(await refuseWebhookUrl('https://93.184.216.34/hook', strict)).toBeUndefined();
      expect(await refuseWebhookUrl('http://127.0.0.1/x', { allowPrivate: true })).toBeUndefined();
      const production = await createTestApp({ NODE_ENV: 'production' });
      try {
        const root = await account(production, 'admin');
        const res = await production
          .http()
          .post('/api/v1/webhooks')
          .set(root.auth)
          .send({ url: `${base}/x`, events: ['*'] });
        expectProblem(res, 'VALIDATION_FAILED');
        expect(res.body.errors[0]).toMatchObject({ field: 'url' });
      } finally {
        await production.close();
      }
    });
  });

  it('delivers each event once per subscription, in version order per order, every signature valid; a refused change emits nothing', async () => {
    const everything = await subscribe(`/all-${randomUUID()}`, ['*']);
    const money = await subscribe(`/money-${randomUUID()}`, ['order.paid', 'order.cancelled']);
    const p = await createProduct(t, admin, { stock: 5 });
    const first = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    await paid(t, alice, first.body.id);
    await act(t, admin, first.body.id, 'ship').expect(200);
    await act(t, admin, first.body.id, 'deliver').expect(200);
    const second = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    await act(t, alice, second.body.id, 'cancel').expect(200);
    // Refused for stock: rolled back, so no event.
    const refused = await placeOrder(t, alice, [{ productId: p.id, quantity: 99 }]);
    expect(refused.status).toBe(409);

    const at = (prefix: string) => receiver.received.filter((r) => r.path.startsWith(prefix));
    const allPath = `/all-`;
    await receiver.waitFor(() => at(allPath).length >= 7 && at('/money-').length >= 2);
    await new Promise((r) => setTimeout(r, 1500)); // nothing more may arrive
    const all = at(allPath);
    expect(all.every((r) => r.signatureValid)).toBe(true);
    // In arrival order, per order: orders may interleave, an order's own events may not.
    const arrivals = (orderId: string) =>
      all.filter((r) => r.orderId === orderId).map((r) => [r.type, r.version]);
    expect(all).toHaveLength(7);
    expect(arrivals(first.body.id)).toEqual([
      ['order.created', 1],
      ['order.paid', 2],
      ['payment.succeeded', 2],
      ['order.shipped', 3],
      ['order.delivered', 4],
    ]);
    expect(arrivals(second.body.id)).toEqual([
      ['order.created', 1],
      ['order.cancelled', 2],
    ]);
    expect(new Set(all.map((r) => r.webhookId)).size).toBe(7);
    expect(at('/money-').map((r) => r.type)).toEqual(['order.paid', 'order.cancelled']);
    const [{ n }] = await t.db.query(
      'SELECT count(*)::int AS n FROM outbox_events WHERE order_id NOT IN ($1, $2)',
      [first.body.id, second.body.id],
    );
    expect(n).toBe(0);
    const listed = await t
      .http()
      .get(`/api/v1/webhooks/${everything.id}/deliveries`)
      .set(admin.auth)
      .expect(200);
    expect(listed.body.items).toHaveLength(7);
    expect(listed.body.items.find((d: { type: string }) => d.type === 'order.paid')).toMatchObject({
      orderId: first.body.id,
      status: 'delivered',
    });
    expect(listed.body.items[0]).toMatchObject({
      type: 'order.created',
      orderId: first.body.id,
      status: 'delivered',
      attempts: 1,
      lastStatus: 204,
      lastError: null,
      nextAttemptAt: null,
    });
    await unsubscribe(everything.id);
    await unsubscribe(money.id);
  });

  it('retries a failing receiver with backoff, delivers on attempt N+1, fails after the last attempt, and redelivers on request', async () => {
    const flaky = await subscribe(`/flaky-${randomUUID()}`, ['order.created']);
    const p = await createProduct(t, admin, { stock: 5 });
    // Two 500s, then 200: delivered on attempt 3, after waits of ~1 s and ~2 s.
    receiver.answer = (_, attempt) => (attempt <= 2 ? 500 : 200);
    const placed = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    const flakyPath = (r: { path: string }) => r.path.startsWith('/flaky-');
    await receiver.waitFor(() => receiver.received.filter(flakyPath).length >= 3, 15_000);
    const attempts = receiver.received.filter(flakyPath);
    expect(attempts.map((a) => a.answered)).toEqual([500, 500, 200]);
    expect(new Set(attempts.map((a) => a.webhookId)).size).toBe(1);
    expect(attempts[1].at - attempts[0].at).toBeGreaterThanOrEqual(700); // 1 s − 25%
    expect(attempts[2].at - attempts[1].at).toBeGreaterThanOrEqual(1400); // 2 s − 25%
    expect(attempts[0].orderId).toBe(placed.body.id);

    // Always 500: after WEBHOOK_MAX_ATTEMPTS (3) it is failed, and listed so.
    receiver.answer = () => 500;
    await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    const deliveriesOf = async () =>
      (await t.http().get(`/api/v1/webhooks/${flaky.id}/deliveries`).set(admin.auth).expect(200))
        .body.items as { id: string; status: string; attempts: number; lastStatus: number }[];
    const deadline = Date.now() + 15_000;
    let last = (await deliveriesOf())[1];
    while (last?.status !== 'failed' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      last = (await deliveriesOf())[1];
    }
    expect(last).toMatchObject({ status: 'failed', attempts: 3, lastStatus: 500 });
    expect((await deliveriesOf())[0]).toMatchObject({ status: 'delivered', attempts: 3 });

    // Not failed → 409; failed → 202, then delivered.
    const notFailed = await t
      .http()
      .post(`/api/v1/webhooks/${flaky.id}/deliveries/${(await deliveriesOf())[0].id}/redeliver`)
      .set(admin.auth);
    expectProblem(notFailed, 'DELIVERY_NOT_FAILED');
    expect(notFailed.body.deliveryStatus).toBe('delivered');
    receiver.answer = () => 204;
    await t
      .http()
      .post(`/api/v1/webhooks/${flaky.id}/deliveries/${last.id}/redeliver`)
      .set(admin.auth)
      .expect(202);
    const until = Date.now() + 10_000;
    while ((await deliveriesOf())[1].status !== 'delivered' && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await deliveriesOf())[1]).toMatchObject({ status: 'delivered', attempts: 1 });
    const metrics = (await t.http().get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/^webhook_deliveries_total\{outcome="failed"\} [1-9]/m);
    expect(metrics).toMatch(/^webhook_deliveries_total\{outcome="retry"\} [1-9]/m);
    expect(metrics).toMatch(/^outbox_lag_seconds /m);
    await unsubscribe(flaky.id);
  });

  it('writes each event with the order exactly as its owner reads it at that version', async () => {
    const p = await createProduct(t, admin, { stock: 5 });
    const placed = await placeOrder(t, alice, [{ productId: p.id, quantity: 2 }]).expect(201);
    const read = await t.http().get(`/api/v1/orders/${placed.body.id}`).set(alice.auth).expect(200);
    const afterPay = await paid(t, alice, placed.body.id);
    const events: { type: string; body: string }[] = await t.db.query(
      'SELECT type, body FROM outbox_events WHERE order_id = $1 ORDER BY seq',
      [placed.body.id],
    );
    expect(events.map((e) => e.type)).toEqual(['order.created', 'order.paid', 'payment.succeeded']);
    // order.created comes from the one-statement checkout (SQL), order.paid from the service (TS):
    // both must be the representation, member for member.
    const [created, payment] = events.map((e) => JSON.parse(e.body) as Record<string, any>);
    expect(created.data.order).toEqual(read.body);
    expect(JSON.stringify(created.data.order)).toBe(JSON.stringify(read.body));
    expect(payment.data.order).toEqual(afterPay.body);
    expect(created).toMatchObject({ type: 'order.created', id: expect.any(String) });
    expect(Date.parse(created.occurredAt as string)).not.toBeNaN();
  });

  it('an unresponsive receiver does not hold up the others: 200 orders reach a healthy receiver within seconds', async () => {
    // A black hole: accepts the connection, reads, never answers.
    const sockets = new Set<Socket>();
    const hole = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.resume();
    });
    await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
    const holeUrl = `http://127.0.0.1:${(hole.address() as AddressInfo).port}/hole`;
    const black = await t
      .http()
      .post('/api/v1/webhooks')
      .set(admin.auth)
      .send({ url: holeUrl, events: ['order.created'] })
      .expect(201);
    const healthyPath = `/healthy-${randomUUID()}`;
    const healthy = await subscribe(healthyPath, ['order.created']);
    try {
      const p = await createProduct(t, admin, { stock: 1000 });
      const started = Date.now();
      for (let i = 0; i < 200; i += 20) {
        await Promise.all(
          Array.from({ length: 20 }, () =>
            placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201),
          ),
        );
      }
      const placedIn = Date.now() - started;
      const here = () => receiver.received.filter((r) => r.path === healthyPath);
      await receiver.waitFor(() => here().length >= 200, 8_000);
      const deliveredIn = Date.now() - started;
      expect(new Set(here().map((r) => r.orderId)).size).toBe(200);
      // The black hole is still being waited on, with no more attempts in flight than its cap.
      const [{ inflight }] = await t.db.query(
        `SELECT count(*)::int AS inflight FROM webhook_deliveries
          WHERE subscription_id = $1 AND status = 'pending' AND lease_until > clock_timestamp()`,
        [black.body.id],
      );
      expect(inflight).toBeGreaterThan(0);
      expect(inflight).toBeLessThanOrEqual(4);
      console.log(
        `black hole + healthy receiver: 200 orders placed in ${placedIn} ms, all 200 delivered to the healthy one ${deliveredIn} ms after the first (${inflight} attempts hanging at the black hole)`,
      );
    } finally {
      await unsubscribe(black.body.id);
      await unsubscribe(healthy.id);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => hole.close(() => resolve()));
    }
  }, 60_000);

  it('pages GET /webhooks like /orders and rejects unknown or bad parameters', async () => {
    const made: { id: string }[] = [];
    for (let i = 0; i < 3; i++) made.push(await subscribe(`/page-${i}`, ['order.paid']));
    const page = await t
      .http()
      .get('/api/v1/webhooks?limit=2&offset=1')
      .set(admin.auth)
      .expect(200);
    expect(page.headers['content-type']).toMatch(/^application\/json/);
    expect(page.body).toMatchObject({ total: 3, limit: 2, offset: 1 });
    expect(page.body.items.map((w: { id: string }) => w.id)).toEqual([made[1].id, made[2].id]);
    const past = await t.http().get('/api/v1/webhooks?offset=10').set(admin.auth).expect(200);
    expect(past.body).toEqual({ items: [], total: 3, limit: 20, offset: 10 });
    for (const query of ['limit=0', 'limit=101', 'offset=-1', 'limit=abc', 'status=pending']) {
      const res = await t.http().get(`/api/v1/webhooks?${query}`).set(admin.auth);
      expectProblem(res, 'VALIDATION_FAILED');
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    // Past the last page of deliveries, the total is still the total.
    const p = await createProduct(t, admin, { stock: 5 });
    const paidOrder = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    await paid(t, alice, paidOrder.body.id);
    const deliveries = (offset: number) =>
      t.http().get(`/api/v1/webhooks/${made[0].id}/deliveries?offset=${offset}`).set(admin.auth);
    expect((await deliveries(0).expect(200)).body).toMatchObject({ total: 1, offset: 0 });
    expect((await deliveries(5).expect(200)).body).toEqual({
      items: [],
      total: 1,
      limit: 20,
      offset: 5,
    });
    for (const w of made) await unsubscribe(w.id);
  });

  it('purges delivered deliveries and handled events past OUTBOX_RETENTION_HOURS, keeping failed and pending ones and their events', async () => {
    const keep = await subscribe(`/retention-${randomUUID()}`, ['*']);
    const p = await createProduct(t, admin, { stock: 10 });
    const orders = [];
    for (let i = 0; i < 4; i++) {
      orders.push(
        (await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201)).body,
      );
    }
    const deliveryOf = async (orderId: string) =>
      (
        await t.db.query(
          `SELECT d.id, d.status, d.event_id FROM webhook_deliveries d
            WHERE d.subscription_id = $1 AND d.order_id = $2`,
          [keep.id, orderId],
        )
      )[0] as { id: string; status: string; event_id: string } | undefined;
    await receiver.waitFor(
      () => receiver.received.filter((r) => r.path.startsWith('/retention-')).length >= 4,
    );
    const until = Date.now() + 5_000;
    while ((await deliveryOf(orders[3].id))?.status !== 'delivered' && Date.now() < until)
      await new Promise((r) => setTimeout(r, 50));
    const [old, oldFailed, oldPending, recent] = await Promise.all(
      orders.map((o) => deliveryOf(o.id)),
    );
    // Age three of them past the 168 h default: a delivered one, a failed one, a pending one.
    await t.db.query(
      `UPDATE outbox_events SET occurred_at = now() - interval '200 hours' WHERE id = ANY($1::uuid[])`,
      [[old!.event_id, oldFailed!.event_id, oldPending!.event_id]],
    );
    await t.db.query(
      `UPDATE webhook_deliveries SET settled_at = now() - interval '200 hours' WHERE id = $1`,
      [old!.id],
    );
    await t.db.query(
      `UPDATE webhook_deliveries SET status = 'failed', settled_at = now() - interval '169 hours'
        WHERE id = $1`,
      [oldFailed!.id],
    );
    await t.db.query(
      `UPDATE webhook_deliveries SET status = 'pending', settled_at = NULL,
              next_attempt_at = now() + interval '1 hour' WHERE id = $1`,
      [oldPending!.id],
    );
    const outcome = await t.app.get(OutboxRetention).purgeOnce();
    expect(outcome.deliveries).toBeGreaterThanOrEqual(1);
    expect(await deliveryOf(orders[0].id)).toBeUndefined();
    // A failed delivery stays listed until redelivered (API.md §8), however old.
    expect(await deliveryOf(orders[1].id)).toMatchObject({ id: oldFailed!.id, status: 'failed' });
    expect(await deliveryOf(orders[2].id)).toMatchObject({ status: 'pending' });
    expect(await deliveryOf(orders[3].id)).toMatchObject({ id: recent!.id, status: 'delivered' });
    const events: { id: string }[] = await t.db.query(
      'SELECT id FROM outbox_events WHERE id = ANY($1::uuid[])',
      [[old!.event_id, oldFailed!.event_id, oldPending!.event_id, recent!.event_id]],
    );
    // The aged event with no delivery left is gone; a pending or failed delivery keeps its event.
    expect(events.map((e) => e.id).sort()).toEqual(
      [oldFailed!.event_id, oldPending!.event_id, recent!.event_id].sort(),
    );
    await unsubscribe(keep.id);
  });

  it('backs off exponentially with ±25% jitter, capped at 6 h', () => {
    expect(backoffSeconds(30, 1, () => 0.5)).toBe(30);
    expect(backoffSeconds(30, 2, () => 0.5)).toBe(60);
    expect(backoffSeconds(30, 4, () => 0.5)).toBe(240);
    expect(backoffSeconds(30, 1, () => 0)).toBe(22.5);
    expect(backoffSeconds(30, 1, () => 1)).toBe(37.5);
    expect(backoffSeconds(30, 20, () => 1)).toBe(6 * 3600);
  });
});
