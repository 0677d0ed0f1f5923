import { setTimeout as sleep } from 'node:timers/promises';
import { HoldExpiry } from '../../src/orders/hold-expiry';
import { type Account, account } from '../support/http';
import {
  completePayment,
  createProduct,
  openPayment,
  placeOrder,
  stockOf,
} from '../support/fixtures';
import { held } from '../support/row-locks';
import { createTestApp, type TestApp } from '../support/test-app';

const tally = (values: string[]): Record<string, number> =>
  values.reduce<Record<string, number>>((acc, v) => ({ ...acc, [v]: (acc[v] ?? 0) + 1 }), {});

describe('races on holds and edits (real parallel requests, real PostgreSQL)', () => {
  let t: TestApp;
  let admin: Account;
  let buyer: Account;
  beforeAll(async () => {
    // A 2 s hold; the test drives the expiries itself (the sweeper would run every hour).
    t = await createTestApp({ ORDER_HOLD_SECONDS: '2', ORDER_EXPIRY_SWEEP_SECONDS: '3600' });
    admin = await account(t, 'admin');
    buyer = await account(t);
  });
  afterAll(() => t.close());

  it('pays each of 50 orders whose money lands at the deadline exactly once: paid before it, or expired and revived after it; units exact', async () => {
    const p = await createProduct(t, admin, { stock: 100 });
    const orders = await Promise.all(
      Array.from({ length: 50 }, () => placeOrder(t, buyer, [{ productId: p.id, quantity: 2 }])),
    );
    // The payments are opened in time; the provider's confirmations arrive around the deadline.
    const payments = await Promise.all(
      orders.map((o) => openPayment(t, buyer, o.body.id as string).expect(201)),
    );
    // Each order's pay lands within ±60 ms of its own deadline, while sweeps run back to back.
    const deadlines = orders.map((o) => Date.parse(o.body.expiresAt as string));
    await sleep(Math.max(0, Math.min(...deadlines) - Date.now() - 100));
    const service = t.app.get(HoldExpiry);
    let sweeping = true;
    const sweeps = (async () => {
      let expired = 0;
      while (sweeping) expired += await service.sweep();
      return expired;
    })();
    const pays = await Promise.all(
      orders.map(async (o, i) => {
        const offset = -60 + (i * 120) / orders.length;
        await sleep(Math.max(0, deadlines[i] + offset - Date.now()));
        return completePayment(t, buyer, payments[i].body.id as string);
      }),
    );
    await sleep(100);
    sweeping = false;
    await sweeps;
    await service.sweep(); // whatever the racing sweeps left
    const statuses: string[] = [];
    for (const [i, o] of orders.entries()) {
      const [row] = await t.db.query('SELECT status FROM orders WHERE id = $1', [o.body.id]);
      const actions = (
        await t.db.query('SELECT action FROM order_history WHERE order_id = $1 ORDER BY id', [
          o.body.id,
        ])
      ).map((e: { action: string }) => e.action);
      // Money that arrives is never left without the order: paid before the deadline, or (the
      // expiry won) expired and revived, its units taken again (API.md §9).
      expect(pays[i].status).toBe(200);
      expect(pays[i].body.status).toBe('succeeded');
      expect(row.status).toBe('paid');
      expect([
        ['place', 'pay'],
        ['place', 'expire', 'revive'],
      ]).toContainEqual(actions);
      statuses.push(actions.join('→'));
    }
    const counts = tally(statuses);
    console.log(`payment vs expiry at the deadline, 50 orders: ${JSON.stringify(counts)}`);
    const [{ n: refunds }] = await t.db.query('SELECT count(*)::int AS n FROM refunds');
    expect(refunds).toBe(0);
    expect(await stockOf(t, p.id)).toBe(0);
    expect((await stockOf(t, p.id)) + (await held(t, p.id))).toBe(100);
  });

  // (An edit racing a pay: a payment opening and an edit never interleave, see
  // order-writers-queue.e2e-spec.ts; a pay itself is the provider's, never a request's.)
  describe.each([
    ['cancel', 'cancelled'],
    ['edit', 'pending'],
  ] as const)('an edit racing a %s on the same version, 20 times', (rival, rivalStatus) => {
    it('has exactly one winner each time, and stock arithmetic stays exact', async () => {
      const a = await createProduct(t, admin, { stock: 1000 });
      const b = await createProduct(t, admin, { stock: 1000 });
      const outcomes: string[] = [];
      for (let i = 0; i < 20; i++) {
        const placed = await placeOrder(t, buyer, [{ productId: a.id, quantity: 2 }]).expect(201);
        const etag = placed.headers.etag;
        const editTo = (qtyA: number, qtyB: number) =>
          t
            .http()
            .patch(`/api/v1/orders/${placed.body.id}`)
            .set(buyer.auth)
            .set('If-Match', etag)
            .send({
              items: [
                { productId: a.id, quantity: qtyA },
                { productId: b.id, quantity: qtyB },
              ],
            });
        const other =
          rival === 'edit'
            ? editTo(1, 5)
            : t
                .http()
                .post(`/api/v1/orders/${placed.body.id}/${rival}`)
                .set(buyer.auth)
                .set('If-Match', etag)
                .send();
        const [edited, rivalled] = await Promise.all([editTo(4, 3), other]);
        const winners = [edited, rivalled].filter((r) => r.status === 200);
        expect(winners).toHaveLength(1);
        for (const loser of [edited, rivalled].filter((r) => r.status !== 200)) {
          expect([409, 412]).toContain(loser.status);
        }
        const [row] = await t.db.query('SELECT status, version FROM orders WHERE id = $1', [
          placed.body.id,
        ]);
        expect(row.version).toBe(2);
        if (edited.status === 200) {
          expect(row.status).toBe('pending');
          outcomes.push('edit');
        } else {
          expect(row.status).toBe(rivalStatus);
          outcomes.push(rival === 'edit' ? 'other edit' : rival);
        }
      }
      console.log(`edit vs ${rival}: ${JSON.stringify(tally(outcomes))}`);
      for (const p of [a, b]) expect((await stockOf(t, p.id)) + (await held(t, p.id))).toBe(1000);
    });
  });
});
