import { setTimeout as sleep } from 'node:timers/promises';
import Stripe from 'stripe';
import { RefundRelay } from '../../src/payments/refund-relay';
import { createProduct, placeOrder } from '../support/fixtures';
import { type Account, account, expectProblem } from '../support/http';
import { queuedBehindOrder } from '../support/row-locks';
import { StripeDouble } from '../support/stripe-double';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * The `stripe` provider inside the service (API.md §9, §10), against the local Stripe double through
 * the real SDK: opening, Stripe's webhook on the raw bytes, refunds by the relay with Stripe's keys.
 */
describe('payments with Stripe (the local double)', () => {
  const double = new StripeDouble();
  let t: TestApp;
  let admin: Account;
  let alice: Account;
  let webhook: string;

  beforeAll(async () => {
    await double.start();
    t = await createTestApp({
      ...double.env(),
      REFUND_BACKOFF_BASE_SECONDS: '1',
    });
    webhook = `${t.baseUrl}/api/v1/payments/stripe/webhook`;
    admin = await account(t, 'admin');
    alice = await account(t);
  });
  afterAll(async () => {
    await t?.close();
    await double.stop();
  });
  afterEach(() => double.clearFaults());

  const get = (who: Account, path: string) => t.http().get(`/api/v1${path}`).set(who.auth);
  const relayPass = () => t.app.get(RefundRelay).passOnce();
  const count = async (sql: string, params: unknown[] = []) =>
    (await t.db.query<{ n: number }[]>(sql, params))[0]?.n ?? 0;
  const recordedEvents = () =>
    count(`SELECT count(*)::int AS n FROM payment_provider_events WHERE provider = 'stripe'`);

  async function pendingOrder(priceCents = 1250, quantity = 2) {
    const p = await createProduct(t, admin, { stock: 50, priceCents });
    const o = await placeOrder(t, alice, [{ productId: p.id, quantity }]).expect(201);
    return o.body as Record<string, any>;
  }

  async function stripePayment(order: Record<string, any>) {
    const res = await t
      .http()
      .post(`/api/v1/orders/${order.id}/payments`)
      .set(alice.auth)
      .send({ provider: 'stripe' });
    expect(res.status).toBe(201);
    return res.body as Record<string, any>;
  }

  async function paidOrder() {
    const order = await pendingOrder();
    const payment = await stripePayment(order);
    const event = double.confirm(payment.providerPaymentId as string, 'succeeded');
    expect((await double.deliver(event, webhook)).status).toBe(200);
    return { order, payment, event };
  }

  it('opens one PaymentIntent for the order total, keyed by the payment id; its client_secret is the clientSecret', async () => {
    const order = await pendingOrder(1250, 2);
    const payment = await stripePayment(order);
    expect(payment).toMatchObject({
      provider: 'stripe',
      status: 'requires_action',
      amountCents: 2500,
      currency: 'EUR',
      providerPaymentId: expect.stringMatching(/^pi_/),
    });
    const pi = double.intents.get(payment.providerPaymentId as string)!;
    expect(payment.clientSecret).toBe(pi.client_secret);
    expect(pi).toMatchObject({
      amount: 2500,
      currency: 'eur',
      capture_method: 'automatic',
      metadata: { orderId: order.id, paymentId: payment.id },
    });
    const create = double
      .seen({ method: 'POST', path: '/v1/payment_intents' })
      .filter((r) => r.params.metadata?.paymentId === payment.id);
    expect(create.map((r) => [r.idempotencyKey, r.stripeVersion])).toEqual([
      [payment.id, Stripe.API_VERSION],
    ]);
  });

  it('pays the order when Stripe says so; the same event again is acknowledged and not applied twice', async () => {
    const { order, payment, event } = await paidOrder();
    const read = await get(alice, `/orders/${order.id}`).expect(200);
    expect(read.body).toMatchObject({ status: 'paid', paymentStatus: 'paid', paidCents: 2500 });
    const again = await double.deliver(event, webhook);
    expect(again.status).toBe(200);
    expect(
      await count(
        `SELECT count(*)::int AS n FROM order_history WHERE order_id = $1 AND action = 'pay'`,
        [order.id],
      ),
    ).toBe(1);
    expect(
      await count(
        `SELECT count(*)::int AS n FROM outbox_events WHERE order_id = $1 AND type = 'payment.succeeded'`,
        [order.id],
      ),
    ).toBe(1);
    const p = await get(alice, `/orders/${order.id}/payments/${payment.id}`).expect(200);
    expect(p.body).toMatchObject({ status: 'succeeded', clientSecret: null });
  });

  it('bad notifications through HTTP → 400 WEBHOOK_SIGNATURE_INVALID, nothing recorded', async () => {
    const order = await pendingOrder();
    const payment = await stripePayment(order);
    const event = double.confirm(payment.providerPaymentId as string, 'succeeded');
    const payload = JSON.stringify(event, null, 2);
    const now = Math.floor(Date.now() / 1000);
    const before = await recordedEvents();
    const cases: Array<[string, Parameters<StripeDouble['deliver']>[2]]> = [
      ['unsigned', { header: null }],
      ['badly signed', { header: `t=${now},v1=${'ab'.repeat(32)}` }],
      ['wrong secret', { secret: 'whsec_not_ours' }],
      ['stale timestamp', { timestamp: now - 301 }],
      ['malformed header', { header: 'v1=,t=' }],
      [
        'changed after signing',
        { header: double.sign(payload), body: payload.replace('2500', '1') },
      ],
      ['signed but malformed', { header: double.sign('{"id":'), body: '{"id":' }],
    ];
    for (const [name, options] of cases) {
      const res = await fetch(webhook, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(options?.header === null
            ? {}
            : {
                'stripe-signature':
                  options?.header ??
                  double.sign(payload, { timestamp: options?.timestamp, secret: options?.secret }),
              }),
        },
        body: options?.body ?? payload,
      });
      const body = (await res.json()) as Record<string, any>;
      expect([name, res.status, body.code]).toEqual([name, 400, 'WEBHOOK_SIGNATURE_INVALID']);
      expect([name, res.headers.get('content-type')]).toEqual([
        name,
        expect.stringMatching(/^application\/problem\+json/),
      ]);
    }
    expect(await recordedEvents()).toBe(before);
    const read = await get(alice, `/orders/${order.id}`).expect(200);
    expect(read.body).toMatchObject({ status: 'pending', paidCents: 0 });
    expect((await get(alice, `/orders/${order.id}/payments/${payment.id}`)).body.status).toBe(
      'requires_action',
    );
    // The genuine one still works.
    expect((await double.deliver(event, webhook)).status).toBe(200);
    expect((await get(alice, `/orders/${order.id}`)).body.status).toBe('paid');
  });

  it('a refund is carried out by the relay with the refund id as key; Stripe’s echo is not counted twice', async () => {
    const { order, payment } = await paidOrder();
    const res = await t
      .http()
      .post(`/api/v1/orders/${order.id}/refunds`)
      .set(admin.auth)
      .send({ amountCents: 700, reason: 'scratched' })
      .expect(201);
    expect(res.body).toMatchObject({ status: 'pending', amountCents: 700 });
    const refundId = res.body.id as string;
    await relayPass();
    const made = double.refundsFor(refundId);
    expect(made).toHaveLength(1);
    expect(made[0]).toMatchObject({ amount: 700, payment_intent: payment.providerPaymentId });
    expect(double.keysUsed()).toContain(refundId);
    const echo = double.eventsOf('refund.created', made[0].id as string)[0];
    expect((await double.deliver(echo, webhook)).status).toBe(200);
    const read = await get(alice, `/orders/${order.id}`).expect(200);
    expect(read.body).toMatchObject({ refundedCents: 700, paymentStatus: 'partially_refunded' });
    const list = await get(admin, `/orders/${order.id}/refunds`).expect(200);
    const items = (list.body.items ?? list.body) as Array<Record<string, any>>;
    expect(items.map((r) => [r.id, r.status, r.providerRefundId])).toEqual([
      [refundId, 'succeeded', made[0].id],
    ]);
  });

  async function refundOf(orderId: string, amountCents: number) {
    const res = await t
      .http()
      .post(`/api/v1/orders/${orderId}/refunds`)
      .set(admin.auth)
      .send({ amountCents, reason: 'returned' })
      .expect(201);
    return res.body.id as string;
  }
  const refundsOf = async (orderId: string) => {
    const list = await get(admin, `/orders/${orderId}/refunds`).expect(200);
    return (list.body.items ?? list.body) as Array<Record<string, any>>;
  };
  const refundedCents = async (orderId: string) =>
    (await get(alice, `/orders/${orderId}`).expect(200)).body.refundedCents as number;

  it('a refund Stripe failed after it succeeded, retried: a new refund under a new key, never the old answer replayed', async () => {
    const { order } = await paidOrder();
    const refundId = await refundOf(order.id as string, 700);
    await relayPass();
    const [first] = double.refundsFor(refundId);
    expect(first.status).toBe('succeeded');
    // A closed card: Stripe fails the refund later; the balance reopens.
    expect(
      (await double.deliver(double.settleRefund(first.id as string, 'failed'), webhook)).status,
    ).toBe(200);
    expect((await refundsOf(order.id as string))[0]).toMatchObject({ status: 'failed' });
    expect(await refundedCents(order.id as string)).toBe(0);
    await t
      .http()
      .post(`/api/v1/orders/${order.id}/refunds/${refundId}/retry`)
      .set(admin.auth)
      .expect(202);
    await relayPass();
    const made = double.refundsFor(refundId);
    expect(made).toHaveLength(2);
    const keys = double.keysUsed().filter((k) => k.startsWith(refundId));
    expect(keys[0]).toBe(refundId);
    expect(keys.at(-1)).not.toBe(refundId);
    const [ours] = await refundsOf(order.id as string);
    expect(ours).toMatchObject({ status: 'succeeded', providerRefundId: made[1].id });
    expect(await refundedCents(order.id as string)).toBe(700);
  });

  it('a refund Stripe failed, then a late "succeeded" of it: stays failed, nothing counted (out of order)', async () => {
    const { order } = await paidOrder();
    const refundId = await refundOf(order.id as string, 700);
    await relayPass();
    const [made] = double.refundsFor(refundId);
    const late = double.settleRefund(made.id as string, 'succeeded');
    const failed = double.settleRefund(made.id as string, 'failed');
    expect((await double.deliver(failed, webhook)).status).toBe(200);
    expect((await double.deliver(late, webhook)).status).toBe(200);
    expect((await refundsOf(order.id as string))[0]).toMatchObject({ status: 'failed' });
    expect(await refundedCents(order.id as string)).toBe(0);
    // The balance is open again: the admin can refund.
    await refundOf(order.id as string, 700);
  });

  it('two events of one dashboard refund applied at once (both queued on the order): recorded once, succeeded', async () => {
    const { order, payment } = await paidOrder();
    const { refund, event } = double.dashboardRefund(payment.providerPaymentId as string);
    const created = JSON.parse(JSON.stringify(event)) as typeof event;
    (created.data.object as Record<string, unknown>).status = 'pending';
    const updated = double.settleRefund(refund.id as string, 'succeeded');
    const [a, b] = await queuedBehindOrder(
      t,
      order.id as string,
      () => double.deliver(created, webhook),
      () => double.deliver(updated, webhook),
    );
    expect([a.status, b.status]).toEqual([200, 200]);
    const ours = await refundsOf(order.id as string);
    expect(ours.map((r) => [r.reason, r.status, r.amountCents])).toEqual([
      ['external', 'succeeded', 2500],
    ]);
    expect(await refundedCents(order.id as string)).toBe(2500);
  });

  it('a refund answered 500, then retried: the relay lists first and uses {refundId}:2; one refund at Stripe', async () => {
    const { order } = await paidOrder();
    double.failNext(1, { match: { method: 'POST', path: '/v1/refunds' } });
    const res = await t
      .http()
      .post(`/api/v1/orders/${order.id}/refunds`)
      .set(admin.auth)
      .send({ amountCents: 300, reason: 'late' })
      .expect(201);
    const refundId = res.body.id as string;
    await relayPass();
    expect(double.keysUsed().filter((k) => k.startsWith(refundId))).toEqual([refundId]);
    // Backoff base 1 s × 2^0 ± 25%.
    for (let i = 0; i < 20 && double.refundsFor(refundId).length === 0; i++) {
      await sleep(250);
      await relayPass();
    }
    expect(double.keysUsed().filter((k) => k.startsWith(refundId))).toEqual([
      refundId,
      `${refundId}:2`,
    ]);
    expect(double.refundsFor(refundId)).toHaveLength(1);
    const list = await get(admin, `/orders/${order.id}/refunds`).expect(200);
    const items = (list.body.items ?? list.body) as Array<Record<string, any>>;
    expect(items.find((r) => r.id === refundId)).toMatchObject({ status: 'succeeded' });
  });

  it('Stripe refusing to open → 409 PAYMENT_PROVIDER_REJECTED with its code; unreachable → 503; no payment left open', async () => {
    const cheap = await pendingOrder(20, 1); // 20 cents: under Stripe's minimum
    const refused = await t
      .http()
      .post(`/api/v1/orders/${cheap.id}/payments`)
      .set(alice.auth)
      .send({ provider: 'stripe' });
    expectProblem(refused, 'PAYMENT_PROVIDER_REJECTED');
    expect(refused.body.providerCode).toBe('amount_too_small');
    const order = await pendingOrder();
    double.failNext(1, { match: { path: '/v1/payment_intents' } });
    const down = await t
      .http()
      .post(`/api/v1/orders/${order.id}/payments`)
      .set(alice.auth)
      .send({ provider: 'stripe' });
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toBeDefined();
    // Nothing open: a new attempt opens.
    await stripePayment(order);
  });

  it('cancelling a payment cancels its PaymentIntent; a failed payment’s PaymentIntent is cancelled too', async () => {
    const order = await pendingOrder();
    const payment = await stripePayment(order);
    await t
      .http()
      .post(`/api/v1/orders/${order.id}/payments/${payment.id}/cancel`)
      .set(alice.auth)
      .expect(200);
    expect(double.intents.get(payment.providerPaymentId as string)?.status).toBe('canceled');
    const second = await stripePayment(order);
    const failed = double.confirm(second.providerPaymentId as string, 'failed');
    expect((await double.deliver(failed, webhook)).status).toBe(200);
    for (let i = 0; i < 20; i++) {
      if (double.intents.get(second.providerPaymentId as string)?.status === 'canceled') break;
      await sleep(100);
    }
    expect(double.intents.get(second.providerPaymentId as string)?.status).toBe('canceled');
    expect((await get(alice, `/orders/${order.id}/payments/${second.id}`)).body).toMatchObject({
      status: 'failed',
      failureReason: expect.stringContaining('card_declined'),
    });
  });
});
