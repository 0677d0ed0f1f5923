import { setTimeout as sleep } from 'node:timers/promises';
import { type Account, account, expectProblem } from '../support/http';
import { act, createProduct, openPayment, paid, placeOrder, stockOf } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

/** Checkout holds that expire (unpaid pending orders give their units back). */
describe('checkout holds', () => {
  /** A 1 s hold and no sweeper: what is expired here, requests expired themselves. */
  let t: TestApp;
  let admin: Account;
  let alice: Account;
  let bob: Account;
  beforeAll(async () => {
    t = await createTestApp({ ORDER_HOLD_SECONDS: '1', ORDER_EXPIRY_SWEEP_SECONDS: '3600' });
    admin = await account(t, 'admin');
    alice = await account(t);
    bob = await account(t);
  });
  afterAll(() => t.close());

  const row = async (id: string) =>
    (await t.db.query('SELECT status, expires_at FROM orders WHERE id = $1', [id]))[0] as {
      status: string;
      expires_at: Date | null;
    };
  type Entry = { action: string; from_status: string; to_status: string; actor_id: string | null };
  const history = (id: string): Promise<Entry[]> =>
    t.db.query<Entry[]>(
      'SELECT action, from_status, to_status, actor_id FROM order_history WHERE order_id = $1 ORDER BY id',
      [id],
    );

  it('gives every pending order an expiresAt ORDER_HOLD_SECONDS after placement, and null once paid', async () => {
    const p = await createProduct(t, admin, { stock: 5 });
    const res = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    const hold = Date.parse(res.body.expiresAt) - Date.parse(res.body.createdAt);
    expect(hold).toBeGreaterThanOrEqual(990);
    expect(hold).toBeLessThan(1500);
    const afterPay = await paid(t, alice, res.body.id);
    expect(afterPay.body.expiresAt).toBeNull();
    expect((await row(res.body.id)).expires_at).toBeNull();
  });

  it('shows an order past its hold as expired on GET, with its units back and the history entry', async () => {
    const p = await createProduct(t, admin, { stock: 3 });
    const order = await placeOrder(t, alice, [{ productId: p.id, quantity: 2 }]).expect(201);
    expect(await stockOf(t, p.id)).toBe(1);
    await sleep(1100);
    expect((await row(order.body.id)).status).toBe('pending'); // nobody swept it
    const res = await t.http().get(`/api/v1/orders/${order.body.id}`).set(alice.auth).expect(200);
    expect(res.body).toMatchObject({ status: 'expired', expiresAt: null, allowedTransitions: [] });
    expect((await row(order.body.id)).status).toBe('expired');
    expect(await stockOf(t, p.id)).toBe(3);
    const entries = await history(order.body.id);
    expect(entries.map((e) => e.action)).toEqual(['place', 'expire']);
    expect(entries[1]).toMatchObject({
      from_status: 'pending',
      to_status: 'expired',
      actor_id: null,
    });
    const listed = await t
      .http()
      .get('/api/v1/orders/' + order.body.id + '/history')
      .set(alice.auth);
    expect(listed.body.items[1]).toMatchObject({ action: 'expire', actorId: null });
  });

  it('never shows a pending order past its hold in a list either', async () => {
    const carol = await account(t);
    const p = await createProduct(t, admin, { stock: 3 });
    await placeOrder(t, carol, [{ productId: p.id, quantity: 1 }]).expect(201);
    await sleep(1100);
    const res = await t.http().get('/api/v1/orders').set(carol.auth).expect(200);
    expect(res.body.items.map((o: { status: string }) => o.status)).toEqual(['expired']);
  });

  it('refuses opening a payment at or after expiresAt with 409 currentStatus "expired", expiring it in that request', async () => {
    const p = await createProduct(t, admin, { stock: 2 });
    const order = await placeOrder(t, alice, [{ productId: p.id, quantity: 2 }]).expect(201);
    await sleep(1100);
    const res = await openPayment(t, alice, order.body.id);
    expectProblem(res, 'ILLEGAL_STATE_TRANSITION');
    expect(res.body).toMatchObject({
      currentStatus: 'expired',
      attemptedTransition: 'pay',
      allowedTransitions: [],
    });
    // The expiry the pay found stands, although the pay itself was refused.
    expect((await row(order.body.id)).status).toBe('expired');
    expect(await stockOf(t, p.id)).toBe(2);
    expect((await history(order.body.id)).map((e) => e.action)).toEqual(['place', 'expire']);
  });

  it('refuses a keyed payment opening past the hold the same way, and replays that answer', async () => {
    const p = await createProduct(t, admin, { stock: 2 });
    const order = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    await sleep(1100);
    const pay = () => openPayment(t, alice, order.body.id, `pay-${order.body.id}`);
    const first = await pay();
    expectProblem(first, 'ILLEGAL_STATE_TRANSITION');
    expect(first.body.currentStatus).toBe('expired');
    expect((await row(order.body.id)).status).toBe('expired');
    const replay = await pay();
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.text).toBe(first.text);
  });

  it('answers 403 to a caller asking for expire, whatever their role, and changes nothing', async () => {
    const p = await createProduct(t, admin, { stock: 2 });
    const order = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    expectProblem(await act(t, alice, order.body.id, 'expire'), 'FORBIDDEN');
    expectProblem(await act(t, admin, order.body.id, 'expire'), 'FORBIDDEN');
    expect((await row(order.body.id)).status).toBe('pending');
    expect(order.body.allowedTransitions).not.toContain('expire');
  });

  it('gives a buyer the last units held by an expired order nobody has swept yet', async () => {
    const p = await createProduct(t, admin, { stock: 3 });
    const abandoned = await placeOrder(t, alice, [{ productId: p.id, quantity: 3 }]).expect(201);
    expect(await stockOf(t, p.id)).toBe(0);
    // While the hold is live, the units are taken.
    expectProblem(
      await placeOrder(t, bob, [{ productId: p.id, quantity: 2 }]),
      'INSUFFICIENT_STOCK',
    );
    await sleep(1100);
    expect((await row(abandoned.body.id)).status).toBe('pending');
    const bought = await placeOrder(t, bob, [{ productId: p.id, quantity: 3 }]);
    expect(bought.status).toBe(201);
    expect((await row(abandoned.body.id)).status).toBe('expired');
    expect(await stockOf(t, p.id)).toBe(0);
    expect((await history(abandoned.body.id)).map((e) => e.action)).toEqual(['place', 'expire']);
  });

  it('still refuses a buyer when the expired holds do not cover the order, and keeps them expired', async () => {
    const p = await createProduct(t, admin, { stock: 2 });
    const abandoned = await placeOrder(t, alice, [{ productId: p.id, quantity: 2 }]).expect(201);
    await sleep(1100);
    const res = await placeOrder(t, bob, [{ productId: p.id, quantity: 5 }]);
    expectProblem(res, 'INSUFFICIENT_STOCK');
    expect(res.body.items).toEqual([
      { productId: p.id, sku: p.body.sku, requested: 5, available: 2 },
    ]);
    expect((await row(abandoned.body.id)).status).toBe('expired');
    expect(await stockOf(t, p.id)).toBe(2);
  });

  describe('the sweeper', () => {
    let swept: TestApp;
    beforeAll(async () => {
      swept = await createTestApp({ ORDER_HOLD_SECONDS: '1', ORDER_EXPIRY_SWEEP_SECONDS: '1' });
    });
    afterAll(() => swept.close());

    it('expires unpaid holds by itself within a few seconds, and the metrics count them', async () => {
      const shopAdmin = await account(swept, 'admin');
      const shopper = await account(swept);
      const p = await createProduct(swept, shopAdmin, { stock: 4 });
      const orders = await Promise.all(
        [1, 2].map(() => placeOrder(swept, shopper, [{ productId: p.id, quantity: 2 }])),
      );
      expect(await stockOf(swept, p.id)).toBe(0);
      const deadline = Date.now() + 8000;
      let statuses: string[] = [];
      while (Date.now() < deadline) {
        statuses = (
          await swept.db.query('SELECT status FROM orders WHERE id = ANY($1::uuid[])', [
            orders.map((o) => o.body.id),
          ])
        ).map((r: { status: string }) => r.status);
        if (statuses.every((s) => s === 'expired')) break;
        await sleep(200);
      }
      expect(statuses).toEqual(['expired', 'expired']);
      expect(await stockOf(swept, p.id)).toBe(4);
      const metrics = (await swept.http().get('/metrics').expect(200)).text;
      expect(metrics).toMatch(/^order_holds_expired_total 2$/m);
      expect(metrics).toMatch(/^order_hold_oldest_overdue_seconds 0$/m);
    });
  });
});
