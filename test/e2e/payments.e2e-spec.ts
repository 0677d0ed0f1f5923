import { setTimeout as sleep } from 'node:timers/promises';
import { NotificationApplying } from '../../src/payments/notification-applying';
import { RefundRelay } from '../../src/payments/refund-relay';
import { PaymentProviders } from '../../src/payments/providers/providers';
import { type Account, account, expectProblem } from '../support/http';
import {
  act,
  completePayment,
  createProduct,
  openPayment,
  paid,
  placeOrder,
  stockOf,
} from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

/** Payments (API.md §9): an order is paid when its money is confirmed, by the provider or an admin. */
describe('payments', () => {
  let t: TestApp;
  let admin: Account;
  let alice: Account;
  let bob: Account;
  beforeAll(async () => {
    t = await createTestApp({ REFUND_BACKOFF_BASE_SECONDS: '1' });
    admin = await account(t, 'admin');
    alice = await account(t);
    bob = await account(t);
  });
  afterAll(() => t.close());

  const get = (who: Account, path: string) => t.http().get(`/api/v1${path}`).set(who.auth);
  const history = async (id: string) =>
    (
      await t.db.query<{ action: string; actor_id: string | null }[]>(
        'SELECT action, actor_id FROM order_history WHERE order_id = $1 ORDER BY id',
        [id],
      )
    ).map((e) => e.action);
  const events = async (id: string) =>
    (
      await t.db.query<{ type: string; body: string }[]>(
        'SELECT type, body FROM outbox_events WHERE order_id = $1 ORDER BY seq',
        [id],
      )
    ).map((e) => ({ type: e.type, body: JSON.parse(e.body) as Record<string, any> }));
  const relayPass = () => t.app.get(RefundRelay).passOnce();

  async function pendingOrder(who = alice, stock = 5, quantity = 1) {
    const p = await createProduct(t, admin, { stock, priceCents: 1250 });
    const o = await placeOrder(t, who, [{ productId: p.id, quantity }]).expect(201);
    return { product: p, order: o.body as Record<string, any> };
  }

  it('answers 403 to every caller of POST /orders/{id}/pay, and never lists pay', async () => {
    const { order } = await pendingOrder();
    expect(order).toMatchObject({
      allowedTransitions: ['cancel'],
      paymentStatus: 'unpaid',
      paidCents: 0,
      refundedCents: 0,
    });
    expectProblem(await act(t, alice, order.id, 'pay'), 'FORBIDDEN');
    expectProblem(await act(t, admin, order.id, 'pay'), 'FORBIDDEN');
    expectProblem(await act(t, admin, order.id, 'revive'), 'FORBIDDEN');
    expectProblem(await act(t, bob, order.id, 'pay'), 'NOT_FOUND');
    expect((await get(alice, `/orders/${order.id}`)).body.status).toBe('pending');
  });

  it('pays an order through the test provider: opened for the total, completed, order paid with history and events', async () => {
    const { order } = await pendingOrder();
    const opened = await openPayment(t, alice, order.id).expect(201);
    expect(opened.headers.location).toBe(`/api/v1/orders/${order.id}/payments/${opened.body.id}`);
    expect(opened.body).toMatchObject({
      orderId: order.id,
      provider: 'test',
      status: 'requires_action',
      amountCents: 1250,
      currency: 'EUR',
    });
    expect(opened.body.clientSecret).toMatch(/^test_pi_/);
    // Opening changes nothing of the order.
    const before = await get(alice, `/orders/${order.id}`).expect(200);
    expect(before.body.version).toBe(order.version);
    // Only the owner sees the client secret.
    const asAdmin = await get(admin, `/orders/${order.id}/payments/${opened.body.id}`).expect(200);
    expect(asAdmin.body.clientSecret).toBeNull();

    const done = await completePayment(t, alice, opened.body.id).expect(200);
    expect(done.body).toMatchObject({ status: 'succeeded', clientSecret: null });
    const after = await get(alice, `/orders/${order.id}`).expect(200);
    expect(after.body).toMatchObject({
      status: 'paid',
      paymentStatus: 'paid',
      paidCents: 1250,
      refundedCents: 0,
      version: order.version + 1,
      allowedTransitions: ['cancel'],
    });
    expect(await history(order.id)).toEqual(['place', 'pay']);
    const evs = await events(order.id);
    expect(evs.map((e) => e.type)).toEqual(['order.created', 'order.paid', 'payment.succeeded']);
    expect(evs[2].body.data.payment).toMatchObject({ id: opened.body.id, clientSecret: null });
    expect(evs[2].body.data.order).toEqual(after.body);
    // Completing again: the payment is no longer open.
    expectProblem(await completePayment(t, alice, opened.body.id), 'PAYMENT_NOT_OPEN');
  });

  it('keeps one open payment per order, and refuses edits while it is open', async () => {
    const { order, product } = await pendingOrder();
    const first = await openPayment(t, alice, order.id).expect(201);
    const second = await openPayment(t, alice, order.id);
    expectProblem(second, 'PAYMENT_IN_PROGRESS');
    expect(second.body.paymentId).toBe(first.body.id);
    const edit = await t
      .http()
      .patch(`/api/v1/orders/${order.id}`)
      .set(alice.auth)
      .set('If-Match', (await get(alice, `/orders/${order.id}`)).headers.etag)
      .send({ items: [{ productId: product.id, quantity: 2 }] });
    expectProblem(edit, 'PAYMENT_IN_PROGRESS');
    expect(edit.body.paymentId).toBe(first.body.id);
    // Cancelled, it no longer blocks.
    const canceled = await t
      .http()
      .post(`/api/v1/orders/${order.id}/payments/${first.body.id}/cancel`)
      .set(alice.auth)
      .expect(200);
    expect(canceled.body).toMatchObject({ status: 'canceled', clientSecret: null });
    expectProblem(
      await t
        .http()
        .post(`/api/v1/orders/${order.id}/payments/${first.body.id}/cancel`)
        .set(alice.auth),
      'PAYMENT_NOT_CANCELABLE',
    );
    await openPayment(t, alice, order.id).expect(201);
  });

  it('checks opening in order: 404, 403, 400, 409', async () => {
    const { order } = await pendingOrder();
    expectProblem(await openPayment(t, bob, order.id), 'NOT_FOUND');
    expectProblem(
      await t.http().post(`/api/v1/orders/${order.id}/payments`).set(alice.auth).send({
        provider: 'manual',
        amountCents: 1250,
        reference: 'x',
      }),
      'FORBIDDEN',
    );
    expectProblem(
      await t
        .http()
        .post(`/api/v1/orders/${order.id}/payments`)
        .set(admin.auth)
        .send({ provider: 'test' }),
      'FORBIDDEN',
    );
    const bogus = await t
      .http()
      .post(`/api/v1/orders/${order.id}/payments`)
      .set(alice.auth)
      .send({ provider: 'paypal' });
    expectProblem(bogus, 'VALIDATION_FAILED');
    expect(bogus.body.errors[0].field).toBe('provider');
    await act(t, alice, order.id, 'cancel').expect(200);
    const late = await openPayment(t, alice, order.id);
    expectProblem(late, 'ILLEGAL_STATE_TRANSITION');
    expect(late.body).toMatchObject({ currentStatus: 'cancelled', attemptedTransition: 'pay' });
  });

  it('records a manual payment for exactly the total (admin), paying the order with the admin as actor', async () => {
    const { order } = await pendingOrder();
    const wrong = await t
      .http()
      .post(`/api/v1/orders/${order.id}/payments`)
      .set(admin.auth)
      .send({ provider: 'manual', amountCents: 1000, reference: 'SEPA 1' });
    expectProblem(wrong, 'PAYMENT_AMOUNT_MISMATCH');
    expect(wrong.body).toMatchObject({ amountCents: 1000, totalCents: 1250 });
    expect((await get(admin, `/orders/${order.id}/payments`)).body.items).toEqual([]);
    const ok = await t
      .http()
      .post(`/api/v1/orders/${order.id}/payments`)
      .set(admin.auth)
      .send({ provider: 'manual', amountCents: 1250, reference: 'SEPA 1' })
      .expect(201);
    expect(ok.body).toMatchObject({ status: 'succeeded', provider: 'manual', reference: 'SEPA 1' });
    const after = await get(alice, `/orders/${order.id}`).expect(200);
    expect(after.body).toMatchObject({ status: 'paid', paidCents: 1250, paymentStatus: 'paid' });
    const [, payEntry] = await t.db.query(
      'SELECT action, actor_id FROM order_history WHERE order_id = $1 ORDER BY id',
      [order.id],
    );
    expect(payEntry).toEqual({ action: 'pay', actor_id: admin.id });
  });

  it('fails a payment without touching the order; a later success still pays it', async () => {
    const { order } = await pendingOrder();
    const opened = await openPayment(t, alice, order.id).expect(201);
    const failed = await completePayment(t, alice, opened.body.id, 'failed').expect(200);
    expect(failed.body).toMatchObject({ status: 'failed' });
    expect((await events(order.id)).map((e) => e.type)).toEqual([
      'order.created',
      'payment.failed',
    ]);
    expect((await get(alice, `/orders/${order.id}`)).body.status).toBe('pending');
    const again = await openPayment(t, alice, order.id).expect(201);
    await completePayment(t, alice, again.body.id).expect(200);
    expect((await get(alice, `/orders/${order.id}`)).body.status).toBe('paid');
  });

  it('refunds part (admin), exactly once at the provider, within one relay pass; order fields follow', async () => {
    const { order } = await pendingOrder();
    await paid(t, alice, order.id);
    const v = (await get(alice, `/orders/${order.id}`)).body.version as number;
    expectProblem(
      await t
        .http()
        .post(`/api/v1/orders/${order.id}/refunds`)
        .set(alice.auth)
        .send({ amountCents: 100, reason: 'x' }),
      'FORBIDDEN',
    );
    const r = await t
      .http()
      .post(`/api/v1/orders/${order.id}/refunds`)
      .set(admin.auth)
      .set('Idempotency-Key', `refund-${order.id}`)
      .send({ amountCents: 250, reason: 'scratched' })
      .expect(201);
    expect(r.body).toMatchObject({ status: 'pending', amountCents: 250, reason: 'scratched' });
    const replay = await t
      .http()
      .post(`/api/v1/orders/${order.id}/refunds`)
      .set(admin.auth)
      .set('Idempotency-Key', `refund-${order.id}`)
      .send({ amountCents: 250, reason: 'scratched' })
      .expect(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    await relayPass();
    const listed = await get(alice, `/orders/${order.id}/refunds`).expect(200);
    expect(listed.body.items).toHaveLength(1);
    expect(listed.body.items[0]).toMatchObject({
      id: r.body.id,
      status: 'succeeded',
      lastError: null,
    });
    const after = await get(alice, `/orders/${order.id}`).expect(200);
    expect(after.body).toMatchObject({
      paymentStatus: 'partially_refunded',
      paidCents: 1250,
      refundedCents: 250,
      version: v + 1,
    });
    const over = await t
      .http()
      .post(`/api/v1/orders/${order.id}/refunds`)
      .set(admin.auth)
      .send({ amountCents: 1001, reason: 'too much' });
    expectProblem(over, 'REFUND_EXCEEDS_BALANCE');
    expect(over.body).toMatchObject({ requestedCents: 1001, refundableCents: 1000 });
    const attempts = t.app
      .get(PaymentProviders)
      .test()!
      .refundAttempts.filter((a) => a.refundId === r.body.id);
    expect(attempts).toEqual([{ refundId: r.body.id, key: r.body.id, attempt: 1 }]);
    expect((await events(order.id)).map((e) => e.type).slice(-1)).toEqual(['refund.succeeded']);
  });

  it('cancelling a paid order owes its full refund in the same transaction; the money comes back', async () => {
    const { order, product } = await pendingOrder(alice, 3, 2);
    await paid(t, alice, order.id);
    const cancelled = await act(t, alice, order.id, 'cancel').expect(200);
    expect(cancelled.body.status).toBe('cancelled');
    expect(await stockOf(t, product.id)).toBe(3);
    const owed = await get(admin, `/orders/${order.id}/refunds`).expect(200);
    expect(owed.body.items).toEqual([
      expect.objectContaining({ reason: 'order_cancelled', amountCents: 2500 }),
    ]);
    await relayPass();
    const after = await get(alice, `/orders/${order.id}`).expect(200);
    expect(after.body).toMatchObject({
      status: 'cancelled',
      paymentStatus: 'refunded',
      paidCents: 2500,
      refundedCents: 2500,
    });
  });

  it('gives back money for a cancelled order (order_cancelled) and a second payment (duplicate_payment)', async () => {
    const { order } = await pendingOrder();
    const opened = await openPayment(t, alice, order.id).expect(201);
    await act(t, alice, order.id, 'cancel').expect(200);
    const done = await completePayment(t, alice, opened.body.id).expect(200);
    expect(done.body.status).toBe('succeeded');
    expect((await get(alice, `/orders/${order.id}`)).body).toMatchObject({
      status: 'cancelled',
      paidCents: 0,
      paymentStatus: 'unpaid',
    });
    const refunds = (await get(admin, `/orders/${order.id}/refunds`)).body.items;
    expect(refunds).toEqual([
      expect.objectContaining({
        reason: 'order_cancelled',
        amountCents: 1250,
        paymentId: opened.body.id,
      }),
    ]);

    // An old payment (cancelled by request) that succeeds after another paid the order.
    const second = await pendingOrder();
    const old = await openPayment(t, alice, second.order.id).expect(201);
    await t
      .http()
      .post(`/api/v1/orders/${second.order.id}/payments/${old.body.id}/cancel`)
      .set(alice.auth)
      .expect(200);
    await paid(t, alice, second.order.id);
    // The provider confirms the old one after all (3-D Secure): money is never ignored.
    await t.app.get(NotificationApplying).apply('test', {
      kind: 'payment',
      eventId: `evt-late-${old.body.id}`,
      status: 'succeeded',
      providerPaymentId: old.body.providerPaymentId,
      paymentId: old.body.id,
      amountReceivedCents: 1250,
      currency: 'eur',
      failureReason: null,
    });
    const dup = (await get(admin, `/orders/${second.order.id}/refunds`)).body.items;
    expect(dup).toEqual([
      expect.objectContaining({
        reason: 'duplicate_payment',
        amountCents: 1250,
        paymentId: old.body.id,
      }),
    ]);
    expect((await get(alice, `/orders/${second.order.id}`)).body).toMatchObject({
      paidCents: 1250,
      refundedCents: 0,
      paymentStatus: 'paid',
    });
  });

  it('gives back the wrong amount (amount_mismatch), leaving the order pending', async () => {
    const { order } = await pendingOrder();
    const opened = await openPayment(t, alice, order.id).expect(201);
    await completePayment(t, alice, opened.body.id, 'succeeded', 999).expect(200);
    expect((await get(alice, `/orders/${order.id}`)).body.status).toBe('pending');
    const refunds = (await get(admin, `/orders/${order.id}/refunds`)).body.items;
    expect(refunds).toEqual([
      expect.objectContaining({ reason: 'amount_mismatch', amountCents: 999 }),
    ]);
  });

  it('applies a notification once: the same event id again changes nothing', async () => {
    const { order } = await pendingOrder();
    const opened = await openPayment(t, alice, order.id).expect(201);
    const n = {
      kind: 'payment' as const,
      eventId: `evt-once-${opened.body.id}`,
      status: 'succeeded' as const,
      providerPaymentId: opened.body.providerPaymentId,
      paymentId: opened.body.id,
      amountReceivedCents: 1250,
      currency: 'EUR',
      failureReason: null,
    };
    const results = await Promise.all(
      Array.from({ length: 10 }, () => t.app.get(NotificationApplying).apply('test', n)),
    );
    expect(results.filter((r) => r.outcome === 'applied')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'duplicate')).toHaveLength(9);
    expect(await history(order.id)).toEqual(['place', 'pay']);
    // A late `processing` never moves it back.
    await t.app
      .get(NotificationApplying)
      .apply('test', { ...n, eventId: 'evt-late-processing-' + n.eventId, status: 'processing' });
    expect((await get(alice, `/orders/${order.id}/payments/${opened.body.id}`)).body.status).toBe(
      'succeeded',
    );
  });

  it('retries a refund after an error (new key) or no answer (same key), fails it on a refusal, and retries it on request', async () => {
    const { order } = await pendingOrder();
    await paid(t, alice, order.id);
    const provider = t.app.get(PaymentProviders).test()!;
    provider.failNextRefunds(1, 'error_answer');
    provider.failNextRefunds(1, 'no_answer');
    provider.failNextRefunds(1, 'rejected');
    const r = await t
      .http()
      .post(`/api/v1/orders/${order.id}/refunds`)
      .set(admin.auth)
      .send({ amountCents: 1250, reason: 'all of it' })
      .expect(201);
    const refundRow = async () =>
      (await t.db.query('SELECT * FROM refunds WHERE id = $1', [r.body.id]))[0];
    await relayPass();
    expect(await refundRow()).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_outcome: 'error_answer',
    });
    await t.db.query('UPDATE refunds SET next_attempt_at = now() WHERE id = $1', [r.body.id]);
    await relayPass();
    expect(await refundRow()).toMatchObject({
      status: 'pending',
      attempts: 2,
      last_outcome: 'no_answer',
    });
    await t.db.query('UPDATE refunds SET next_attempt_at = now() WHERE id = $1', [r.body.id]);
    await relayPass();
    expect(await refundRow()).toMatchObject({ status: 'failed', attempts: 3 });
    const keys = provider.refundAttempts.filter((a) => a.refundId === r.body.id).map((a) => a.key);
    // First the refund id; after an error answer a new key; after no answer the same key again.
    expect(keys).toEqual([r.body.id, `${r.body.id}:2`, `${r.body.id}:2`]);
    const asAdmin = (await get(admin, `/orders/${order.id}/refunds`)).body.items[0];
    const asOwner = (await get(alice, `/orders/${order.id}/refunds`)).body.items[0];
    expect(asAdmin.lastError).toMatch(/charge_already_refunded/);
    expect(asOwner.lastError).toBeNull();
    expect((await events(order.id)).map((e) => e.type).slice(-1)).toEqual(['refund.failed']);

    const retried = await t
      .http()
      .post(`/api/v1/orders/${order.id}/refunds/${r.body.id}/retry`)
      .set(admin.auth)
      .expect(202);
    expect(retried.body).toMatchObject({ status: 'pending', attempts: 0 });
    expectProblem(
      await t.http().post(`/api/v1/orders/${order.id}/refunds/${r.body.id}/retry`).set(admin.auth),
      'REFUND_NOT_FAILED',
    );
    await relayPass();
    expect(await refundRow()).toMatchObject({ status: 'succeeded' });
    expect((await get(alice, `/orders/${order.id}`)).body.paymentStatus).toBe('refunded');
  });

  describe('money after the hold', () => {
    let h: TestApp;
    let hAdmin: Account;
    let carol: Account;
    let dave: Account;
    beforeAll(async () => {
      h = await createTestApp({ ORDER_HOLD_SECONDS: '1', ORDER_EXPIRY_SWEEP_SECONDS: '3600' });
      hAdmin = await account(h, 'admin');
      carol = await account(h);
      dave = await account(h);
    });
    afterAll(() => h.close());

    it('revives an expired order whose units are still there: expired → paid, history revive', async () => {
      const p = await createProduct(h, hAdmin, { stock: 2, priceCents: 700 });
      const o = await placeOrder(h, carol, [{ productId: p.id, quantity: 2 }]).expect(201);
      const opened = await openPayment(h, carol, o.body.id).expect(201);
      await sleep(1100);
      // The price changed meanwhile: the snapshotted price stands.
      await completePayment(h, carol, opened.body.id).expect(200);
      const after = await h.http().get(`/api/v1/orders/${o.body.id}`).set(carol.auth).expect(200);
      expect(after.body).toMatchObject({ status: 'paid', paidCents: 1400, expiresAt: null });
      const actions = (
        await h.db.query('SELECT action FROM order_history WHERE order_id = $1 ORDER BY id', [
          o.body.id,
        ])
      ).map((e: { action: string }) => e.action);
      expect(actions).toEqual(['place', 'expire', 'revive']);
      expect(await stockOf(h, p.id)).toBe(0);
    });

    it('refunds a late payment whose units were sold meanwhile (hold_expired); stock exact', async () => {
      const p = await createProduct(h, hAdmin, { stock: 1, priceCents: 700 });
      const o = await placeOrder(h, carol, [{ productId: p.id, quantity: 1 }]).expect(201);
      const opened = await openPayment(h, carol, o.body.id).expect(201);
      await sleep(1100);
      // Dave's checkout releases the expired hold and takes the last unit.
      await placeOrder(h, dave, [{ productId: p.id, quantity: 1 }]).expect(201);
      await completePayment(h, carol, opened.body.id).expect(200);
      const after = await h.http().get(`/api/v1/orders/${o.body.id}`).set(carol.auth).expect(200);
      expect(after.body).toMatchObject({ status: 'expired', paidCents: 0 });
      const refunds = (
        await h.http().get(`/api/v1/orders/${o.body.id}/refunds`).set(hAdmin.auth).expect(200)
      ).body.items;
      expect(refunds).toEqual([
        expect.objectContaining({ reason: 'hold_expired', amountCents: 700 }),
      ]);
      expect(await stockOf(h, p.id)).toBe(0);
    });

    async function promotion(terms: Record<string, unknown>) {
      const res = await h
        .http()
        .post('/api/v1/promotions')
        .set(hAdmin.auth)
        .send({ code: `LATE-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`, ...terms })
        .expect(201);
      return { id: res.body.id as string, code: res.body.code as string };
    }
    const timesUsed = async (id: string): Promise<number> =>
      (await h.db.query('SELECT times_used FROM promotions WHERE id = $1', [id]))[0].times_used;

    it('revives an order with a code: its use is taken again (API.md §11)', async () => {
      const p = await createProduct(h, hAdmin, { stock: 3, priceCents: 1000 });
      const promo = await promotion({ percentOff: 10, usageLimit: 1 });
      const o = await h
        .http()
        .post('/api/v1/orders')
        .set(carol.auth)
        .send({ items: [{ productId: p.id, quantity: 1 }], promotionCode: promo.code })
        .expect(201);
      expect(o.body.totalCents).toBe(900);
      const opened = await openPayment(h, carol, o.body.id).expect(201);
      await sleep(1100);
      await completePayment(h, carol, opened.body.id).expect(200);
      const after = await h.http().get(`/api/v1/orders/${o.body.id}`).set(carol.auth).expect(200);
      expect(after.body).toMatchObject({ status: 'paid', paidCents: 900 });
      expect(await timesUsed(promo.id)).toBe(1);
    });

    it('does not revive an order whose code use was taken meanwhile: refunded hold_expired, the use stays with the taker', async () => {
      const p = await createProduct(h, hAdmin, { stock: 5, priceCents: 1000 });
      const promo = await promotion({ percentOff: 10, usageLimit: 1 });
      const checkout = (who: Account) =>
        h
          .http()
          .post('/api/v1/orders')
          .set(who.auth)
          .send({ items: [{ productId: p.id, quantity: 1 }], promotionCode: promo.code });
      const o = await checkout(carol).expect(201);
      const opened = await openPayment(h, carol, o.body.id).expect(201);
      await sleep(1100);
      // Dave's checkout expires Carol's overdue hold and takes the code's only use.
      await checkout(dave).expect(201);
      await completePayment(h, carol, opened.body.id).expect(200);
      const after = await h.http().get(`/api/v1/orders/${o.body.id}`).set(carol.auth).expect(200);
      expect(after.body).toMatchObject({ status: 'expired', paidCents: 0 });
      const refunds = (
        await h.http().get(`/api/v1/orders/${o.body.id}/refunds`).set(hAdmin.auth).expect(200)
      ).body.items;
      expect(refunds).toEqual([
        expect.objectContaining({ reason: 'hold_expired', amountCents: 900 }),
      ]);
      expect(await timesUsed(promo.id)).toBe(1);
      expect(await stockOf(h, p.id)).toBe(4);
    });

    it('does not revive an order past perCustomerLimit: the customer used the code again meanwhile, refunded hold_expired', async () => {
      const p = await createProduct(h, hAdmin, { stock: 5, priceCents: 1000 });
      const promo = await promotion({ percentOff: 10, perCustomerLimit: 1 });
      const checkout = () =>
        h
          .http()
          .post('/api/v1/orders')
          .set(carol.auth)
          .send({ items: [{ productId: p.id, quantity: 1 }], promotionCode: promo.code });
      const first = await checkout().expect(201);
      const opened = await openPayment(h, carol, first.body.id).expect(201);
      await sleep(1100);
      // Carol's next checkout expires her overdue one (its use given back) and uses the code again.
      const second = await checkout().expect(201);
      await completePayment(h, carol, opened.body.id).expect(200);
      const after = await h
        .http()
        .get(`/api/v1/orders/${first.body.id}`)
        .set(carol.auth)
        .expect(200);
      expect(after.body).toMatchObject({ status: 'expired', paidCents: 0 });
      const refunds = (
        await h.http().get(`/api/v1/orders/${first.body.id}/refunds`).set(hAdmin.auth).expect(200)
      ).body.items;
      expect(refunds).toEqual([
        expect.objectContaining({ reason: 'hold_expired', amountCents: 900 }),
      ]);
      const live = await h.db.query(
        `SELECT id FROM orders WHERE promotion_id = $1 AND status NOT IN ('cancelled', 'expired')`,
        [promo.id],
      );
      expect(live.map((r: { id: string }) => r.id)).toEqual([second.body.id]);
      expect(await timesUsed(promo.id)).toBe(1);
    });
  });
});
