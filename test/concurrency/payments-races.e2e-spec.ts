import { RefundRelay } from '../../src/payments/refund-relay';
import { type Account, account, expectProblem } from '../support/http';
import {
  completePayment,
  createProduct,
  openPayment,
  paid,
  placeOrder,
  stockOf,
} from '../support/fixtures';
import { held, queuedBehindOrder } from '../support/row-locks';
import { createTestApp, type TestApp } from '../support/test-app';

/** Money (API.md §9, §10) under real parallel requests on a real PostgreSQL. */
describe('payment races', () => {
  let t: TestApp;
  let admin: Account;
  let buyer: Account;
  beforeAll(async () => {
    t = await createTestApp({ ORDER_EXPIRY_SWEEP_SECONDS: '3600' });
    admin = await account(t, 'admin');
    buyer = await account(t);
  });
  afterAll(() => t.close());

  const relayPass = () => t.app.get(RefundRelay).passOnce();

  it('cancel racing a payment’s success ×50: never paid and cancelled, every cancelled order whose money arrived has exactly one full refund, stock exact', async () => {
    const STOCK = 200;
    const p = await createProduct(t, admin, { stock: STOCK, priceCents: 300 });
    const tally = { cancelFirst: 0, paymentFirst: 0 };
    const orderIds: string[] = [];
    for (let round = 0; round < 50; round++) {
      const placed = await placeOrder(t, buyer, [{ productId: p.id, quantity: 2 }]).expect(201);
      const id = placed.body.id as string;
      orderIds.push(id);
      const opened = await openPayment(t, buyer, id).expect(201);
      const cancel = () =>
        t
          .http()
          .post(`/api/v1/orders/${id}/cancel`)
          .set(round % 2 ? admin.auth : buyer.auth)
          .send()
          .then((r) => r);
      const success = () => completePayment(t, buyer, opened.body.id as string).then((r) => r);
      const cancelFirst = round % 2 === 0;
      const [a, b] = cancelFirst
        ? await queuedBehindOrder(t, id, cancel, success)
        : await queuedBehindOrder(t, id, success, cancel);
      const [cancelled, completed] = cancelFirst ? [a, b] : [b, a];
      expect(cancelled.status).toBe(200);
      expect(completed.status).toBe(200);
      expect(completed.body.status).toBe('succeeded');
      const order = (await t.http().get(`/api/v1/orders/${id}`).set(buyer.auth).expect(200)).body;
      expect(order.status).toBe('cancelled');
      const history = (
        await t.db.query('SELECT action FROM order_history WHERE order_id = $1 ORDER BY id', [id])
      ).map((e: { action: string }) => e.action);
      const refunds = await t.db.query(
        'SELECT amount_cents, reason, payment_id FROM refunds WHERE order_id = $1',
        [id],
      );
      // The money arrived either way: exactly one full refund of it.
      expect(refunds).toEqual([
        { amount_cents: 600, reason: 'order_cancelled', payment_id: opened.body.id },
      ]);
      if (cancelFirst) {
        tally.cancelFirst++;
        expect(history).toEqual(['place', 'cancel']);
        expect(order).toMatchObject({ paidCents: 0, paymentStatus: 'unpaid' });
      } else {
        tally.paymentFirst++;
        expect(history).toEqual(['place', 'pay', 'cancel']);
        expect(order).toMatchObject({ paidCents: 600 });
      }
    }
    console.log(`cancel vs payment success, 50 orders: ${JSON.stringify(tally)}`);
    expect(tally).toEqual({ cancelFirst: 25, paymentFirst: 25 });
    expect(await stockOf(t, p.id)).toBe(STOCK);
    expect((await stockOf(t, p.id)) + (await held(t, p.id))).toBe(STOCK);
    // Carried out: every refund succeeded once; the money is back.
    while ((await relayPass()) > 0);
    const [sums] = await t.db.query(
      `SELECT count(*)::int AS n, sum(amount_cents)::int AS cents,
              count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded
         FROM refunds WHERE order_id = ANY($1::uuid[])`,
      [orderIds],
    );
    console.log(`refunds owed and carried out: ${JSON.stringify(sums)}`);
    expect(sums).toEqual({ n: 50, cents: 50 * 600, succeeded: 50 });
    const refunded = await t.db.query(
      `SELECT count(*)::int AS n FROM orders WHERE id = ANY($1::uuid[]) AND refunded_cents = paid_cents`,
      [orderIds],
    );
    expect(refunded[0].n).toBe(50);
  });

  it('the same cancel/success race unqueued (plain parallel requests) ×30: same invariants', async () => {
    const p = await createProduct(t, admin, { stock: 100, priceCents: 250 });
    for (let round = 0; round < 30; round++) {
      const placed = await placeOrder(t, buyer, [{ productId: p.id, quantity: 1 }]).expect(201);
      const id = placed.body.id as string;
      const opened = await openPayment(t, buyer, id).expect(201);
      const [c, s] = await Promise.all([
        t.http().post(`/api/v1/orders/${id}/cancel`).set(buyer.auth).send(),
        completePayment(t, buyer, opened.body.id as string),
      ]);
      expect([c.status, s.status]).toEqual([200, 200]);
      const [row] = await t.db.query('SELECT status FROM orders WHERE id = $1', [id]);
      expect(row.status).toBe('cancelled');
      const refunds = await t.db.query('SELECT amount_cents FROM refunds WHERE order_id = $1', [
        id,
      ]);
      expect(refunds).toEqual([{ amount_cents: 250 }]);
    }
    expect(await stockOf(t, p.id)).toBe(100);
  });

  it('concurrent refunds whose sum exceeds the balance ×20 rounds: exactly those that fit, never above captured', async () => {
    const p = await createProduct(t, admin, { stock: 100, priceCents: 1000 });
    const totals: number[] = [];
    for (let round = 0; round < 20; round++) {
      const placed = await placeOrder(t, buyer, [{ productId: p.id, quantity: 1 }]).expect(201);
      const id = placed.body.id as string;
      await paid(t, buyer, id);
      // 8 refunds, 2,000-3,400 cents asked in all, against 1,000 captured.
      const amounts = Array.from({ length: 8 }, (_, k) => 250 + ((k * 37 + round * 11) % 200));
      const answers = await Promise.all(
        amounts.map((amountCents, k) =>
          t
            .http()
            .post(`/api/v1/orders/${id}/refunds`)
            .set(admin.auth)
            .send({ amountCents, reason: `race ${round}.${k}` }),
        ),
      );
      const granted = answers.filter((r) => r.status === 201);
      const refused = answers.filter((r) => r.status !== 201);
      for (const r of refused) {
        expectProblem(r, 'REFUND_EXCEEDS_BALANCE');
        expect(r.body.requestedCents).toBeGreaterThan(r.body.refundableCents);
      }
      const sum = granted.reduce((s, r) => s + (r.body.amountCents as number), 0);
      expect(sum).toBeLessThanOrEqual(1000);
      expect(granted.length).toBeGreaterThan(0);
      // The balance only shrinks: whatever was refused could not fit in what is left either.
      for (const r of refused) expect(r.body.requestedCents).toBeGreaterThan(1000 - sum);
      const [row] = await t.db.query(
        'SELECT captured_cents, refund_reserved_cents FROM payments WHERE order_id = $1',
        [id],
      );
      expect(row).toEqual({ captured_cents: 1000, refund_reserved_cents: sum });
      totals.push(sum);
    }
    while ((await relayPass()) > 0);
    const over = await t.db.query(
      `SELECT count(*)::int AS n FROM orders WHERE refunded_cents > paid_cents`,
    );
    expect(over[0].n).toBe(0);
    console.log(
      `concurrent refunds, 20 rounds of 8 against 1000 captured: refunded per round ${JSON.stringify(totals)}`,
    );
  });
});
