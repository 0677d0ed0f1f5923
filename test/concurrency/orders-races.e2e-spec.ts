import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { Response } from 'supertest';
import { type Account, account, expectProblem } from '../support/http';
import {
  act,
  paid,
  pay,
  createProduct,
  type Line,
  orderCount,
  placeOrder,
  stockOf,
} from '../support/fixtures';
import { metricValue, untilQueued } from '../support/row-locks';
import { createTestApp, type TestApp } from '../support/test-app';

const statuses = (results: Response[]): Record<number, number> =>
  results.reduce<Record<number, number>>(
    (acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }),
    {},
  );

describe('races on orders (real parallel HTTP requests, real PostgreSQL)', () => {
  let t: TestApp;
  let admin: Account;
  let shoppers: Account[];
  beforeAll(async () => {
    t = await createTestApp({ DB_POOL_SIZE: '30' });
    admin = await account(t, 'admin');
    shoppers = await Promise.all(Array.from({ length: 10 }, () => account(t)));
  });
  afterAll(() => t.close());

  const unitsOrdered = async (productId: string): Promise<number> => {
    const [{ n }] = await t.db.query(
      `SELECT coalesce(sum(i.quantity), 0)::int AS n FROM order_items i JOIN orders o ON o.id = i.order_id
        WHERE i.product_id = $1 AND o.status <> 'cancelled'`,
      [productId],
    );
    return n;
  };

  it('never oversells: 200 parallel single-unit orders on stock 50 → exactly 50 × 201 and 150 × 409', async () => {
    const p = await createProduct(t, admin, { stock: 50 });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        placeOrder(t, shoppers[i % shoppers.length], [{ productId: p.id, quantity: 1 }]),
      ),
    );
    expect(statuses(results)).toEqual({ 201: 50, 409: 150 });
    console.log(`oversell race: ${JSON.stringify(statuses(results))}`);
    for (const r of results.filter((x) => x.status === 409)) {
      expectProblem(r, 'INSUFFICIENT_STOCK');
      expect(r.body.items[0]).toMatchObject({ productId: p.id, requested: 1 });
    }
    expect(await stockOf(t, p.id)).toBe(0);
    expect(await unitsOrdered(p.id)).toBe(50);
  });

  it('never deadlocks: 50 parallel multi-line orders over the same products in opposite line orders', async () => {
    const products = await Promise.all(
      [0, 1, 2].map(() => createProduct(t, admin, { stock: 1000 })),
    );
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => {
        const lines = products.map((p, j) => ({ productId: p.id, quantity: j + 1 }));
        return placeOrder(t, shoppers[i % shoppers.length], i % 2 ? lines.reverse() : lines);
      }),
    );
    expect(statuses(results)).toEqual({ 201: 50 });
    for (const [j, p] of products.entries()) {
      expect(await stockOf(t, p.id)).toBe(1000 - 50 * (j + 1));
      expect(await unitsOrdered(p.id)).toBe(50 * (j + 1));
    }
  });

  /**
   * place_order reads the products without a lock, writes the order, and only then locks and
   * decrements, on the condition that each product still says what the order copied. These hold a
   * product's row lock in another transaction across that window and change the product in it.
   */
  /**
   * A product's row lock held in another transaction (after `change`, if any, is made in it), until
   * `commit()`. `checkoutWaits(n)` returns once n checkouts have written their orders and wait for
   * that lock: polled on the test's own connection, since inside a transaction pg_stat_activity stays as
   * first read.
   */
  const holdProduct = async (productId: string, change = 'stock = stock') => {
    const blocker = new Client({ connectionString: t.databaseUrl });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query(`UPDATE products SET ${change} WHERE id = $1`, [productId]);
    return {
      checkoutWaits: async (checkouts = 1): Promise<void> => {
        const deadline = Date.now() + 10_000;
        for (;;) {
          const [{ n }] = await t.db.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT place_order(%'`,
          );
          if (n >= checkouts) return;
          if (Date.now() > deadline) throw new Error('the checkout never waited for the lock');
          await new Promise((r) => setTimeout(r, 20));
        }
      },
      commit: async (): Promise<void> => {
        try {
          await blocker.query('COMMIT');
        } finally {
          await blocker.end();
        }
      },
    };
  };

  describe("a product that moves between the checkout's read and its lock", () => {
    const whileLocked = async (
      productId: string,
      change: string,
      placing: () => Promise<Response>,
    ): Promise<Response> => {
      const held = await holdProduct(productId, change);
      try {
        const response = placing();
        await held.checkoutWaits();
        await held.commit();
        return await response;
      } catch (err) {
        await held.commit().catch(() => undefined);
        throw err;
      }
    };

    it('places the order at the price that committed first, with nothing left of the first attempt', async () => {
      const p = await createProduct(t, admin, { stock: 10, priceCents: 1000 });
      const buyer = shoppers[0];
      const before = await orderCount(t, buyer.id);
      const res = await whileLocked(p.id, 'price_cents = 1500', () =>
        placeOrder(t, buyer, [{ productId: p.id, quantity: 2 }]).then((r) => r),
      );
      expect(res.status).toBe(201);
      expect(res.body.items).toEqual([
        expect.objectContaining({ unitPriceCents: 1500, quantity: 2 }),
      ]);
      expect(res.body.totalCents).toBe(3000);
      expect(await orderCount(t, buyer.id)).toBe(before + 1);
      expect(await stockOf(t, p.id)).toBe(8);
      const events = await t.db.query(
        `SELECT body FROM outbox_events WHERE type = 'order.created' AND order_id = $1`,
        [res.body.id],
      );
      expect(events).toHaveLength(1);
      const event = JSON.parse(events[0].body);
      expect(event.data.order).toMatchObject({
        totalCents: 3000,
        items: [{ unitPriceCents: 1500 }],
      });
    });

    it('refuses with what is left when the stock went meanwhile, and writes nothing', async () => {
      const p = await createProduct(t, admin, { stock: 3 });
      const buyer = shoppers[1];
      const before = await orderCount(t, buyer.id);
      const events = async (): Promise<number> =>
        (await t.db.query(`SELECT count(*)::int AS n FROM outbox_events`))[0].n;
      const eventsBefore = await events();
      const res = await whileLocked(p.id, 'stock = 1', () =>
        placeOrder(t, buyer, [{ productId: p.id, quantity: 2 }]).then((r) => r),
      );
      expectProblem(res, 'INSUFFICIENT_STOCK');
      expect(res.body.items).toEqual([
        expect.objectContaining({ productId: p.id, requested: 2, available: 1 }),
      ]);
      expect(await orderCount(t, buyer.id)).toBe(before);
      expect(await events()).toBe(eventsBefore);
      expect(await stockOf(t, p.id)).toBe(1);
    });
  });

  /**
   * Checkouts of the same products that arrive while one of them is in the database queue behind it
   * and are placed together, in one statement (PlacementQueue, migration PlaceOrdersTogether). These
   * keep the first one waiting on a held row lock while the others queue, so the batch is certain.
   */
  describe('checkouts of the same products placed together', () => {
    const metric = (series: string): Promise<number> => metricValue(t, series);
    const queued = (n: number): Promise<void> => untilQueued(t, n);
    const send = (who: Account, productId: string, quantity: number): Promise<Response> =>
      placeOrder(t, who, [{ productId, quantity }]).then((r) => r);
    /**
     * `first()` sent while `productId`'s row lock is held, and waiting for it in the database; then
     * `behind()` sent, and `count` checkouts seen queued behind it; then `meanwhile()`, and the lock
     * released. The answers of both.
     */
    const placedBehind = async <T>(
      productId: string,
      first: () => Promise<Response>,
      behind: () => Promise<T>,
      count: number,
      meanwhile: () => Promise<unknown> = () => Promise.resolve(),
    ): Promise<[Response, T]> => {
      const held = await holdProduct(productId);
      let answers: Promise<[Response, T]>;
      try {
        const sent = first();
        await held.checkoutWaits();
        answers = Promise.all([sent, behind()]);
        await queued(count);
        await meanwhile();
      } finally {
        await held.commit();
      }
      return answers;
    };

    it('decides each checkout of a batch on its own: the short one refused, the rest placed, each with its event', async () => {
      const p = await createProduct(t, admin, { stock: 5, priceCents: 1000 });
      const eventsOf = async (orderId: string): Promise<string[]> =>
        (await t.db.query(`SELECT type FROM outbox_events WHERE order_id = $1`, [orderId])).map(
          (e: { type: string }) => e.type,
        );
      const batchesBefore = await metric('order_placement_batch_size_count');
      const checkoutsBefore = await metric('order_placement_batch_size_sum');
      const refusedBefore = await orderCount(t, shoppers[5].id);
      // Behind the first: four single units (4 left after it: all fit, in any order) and one too many.
      const [a, [b, c, d, e, tooMany]] = await placedBehind(
        p.id,
        () => send(shoppers[0], p.id, 1),
        () =>
          Promise.all([
            ...[1, 2, 3, 4].map((i) => send(shoppers[i], p.id, 1)),
            send(shoppers[5], p.id, 10),
          ]),
        5,
      );
      for (const r of [a, b, c, d, e]) expect(r.status).toBe(201);
      expectProblem(tooMany, 'INSUFFICIENT_STOCK');
      expect(tooMany.body.items).toEqual([
        expect.objectContaining({ productId: p.id, requested: 10 }),
      ]);
      expect(tooMany.body.items[0].available).toBeLessThanOrEqual(4);
      // The first alone, then the five that queued as one statement.
      expect((await metric('order_placement_batch_size_count')) - batchesBefore).toBe(2);
      expect((await metric('order_placement_batch_size_sum')) - checkoutsBefore).toBe(6);
      expect(await stockOf(t, p.id)).toBe(0);
      expect(await unitsOrdered(p.id)).toBe(5);
      const ids = [a, b, c, d, e].map((r) => r.body.id as string);
      expect(new Set(ids).size).toBe(5);
      for (const [k, r] of [a, b, c, d, e].entries()) {
        expect(r.body).toMatchObject({
          userId: shoppers[k].id,
          status: 'pending',
          totalCents: 1000,
        });
        expect(await eventsOf(r.body.id)).toEqual(['order.created']);
      }
      expect(await orderCount(t, shoppers[5].id)).toBe(refusedBefore);
    });

    it('keeps each checkout of a batch of multi-line orders to its own lines, in its own line order', async () => {
      const [x, y] = await Promise.all([
        createProduct(t, admin, { stock: 100, priceCents: 300 }),
        createProduct(t, admin, { stock: 100, priceCents: 500 }),
      ]);
      const orders: Line[][] = [
        [
          { productId: y.id, quantity: 1 },
          { productId: x.id, quantity: 4 },
        ],
        [
          { productId: x.id, quantity: 2 },
          { productId: y.id, quantity: 3 },
        ],
        [
          { productId: y.id, quantity: 5 },
          { productId: x.id, quantity: 1 },
        ],
      ];
      const [a, placed] = await placedBehind(
        x.id,
        () =>
          placeOrder(t, shoppers[0], [
            { productId: x.id, quantity: 1 },
            { productId: y.id, quantity: 1 },
          ]).then((r) => r),
        () =>
          Promise.all(
            orders.map((lines, n) => placeOrder(t, shoppers[n + 1], lines).then((r) => r)),
          ),
        3,
      );
      expect(a.status).toBe(201);
      for (const [i, r] of placed.entries()) {
        expect(r.status).toBe(201);
        expect(r.body.userId).toBe(shoppers[i + 1].id);
        expect(
          r.body.items.map((l: Line & { unitPriceCents: number }) => [l.productId, l.quantity]),
        ).toEqual(orders[i].map((l) => [l.productId, l.quantity]));
        const total = orders[i].reduce(
          (sum, l) => sum + l.quantity * (l.productId === x.id ? 300 : 500),
          0,
        );
        expect(r.body.totalCents).toBe(total);
        const lines = await t.db.query(
          'SELECT product_id, quantity FROM order_items WHERE order_id = $1 ORDER BY line_no',
          [r.body.id],
        );
        expect(
          lines.map((l: { product_id: string; quantity: number }) => [l.product_id, l.quantity]),
        ).toEqual(orders[i].map((l) => [l.productId, l.quantity]));
      }
      expect(await stockOf(t, x.id)).toBe(100 - 1 - 4 - 2 - 1);
      expect(await stockOf(t, y.id)).toBe(100 - 1 - 1 - 3 - 5);
    });

    it('queues a checkout with an Idempotency-Key like any other: it waits for the batch in flight and goes to the database with it (issue 26)', async () => {
      const p = await createProduct(t, admin, { stock: 10 });
      const held = await holdProduct(p.id);
      let first: Promise<Response>;
      let keyed: Promise<Response>;
      const key = `k-${randomUUID()}`;
      try {
        first = send(shoppers[0], p.id, 1);
        await held.checkoutWaits();
        keyed = placeOrder(t, shoppers[1], [{ productId: p.id, quantity: 2 }], key).then((r) => r);
        // In the service's queue, not in the database.
        await queued(1);
      } finally {
        await held.commit();
      }
      expect((await first).status).toBe(201);
      expect((await keyed).status).toBe(201);
      expect(await stockOf(t, p.id)).toBe(7);
      // Its outcome stored with its key by the placement statement itself.
      const [row] = await t.db.query(
        'SELECT response FROM idempotency_keys WHERE user_id = $1 AND key = $2',
        [shoppers[1].id, key],
      );
      expect(row.response).toHaveProperty('placed');
    });

    it('places each checkout of a batch on its own when one fails: the account deleted while it queued gets 401, the others 201', async () => {
      const p = await createProduct(t, admin, { stock: 10 });
      const doomed = await account(t);
      const batchesBefore = await metric('order_placement_batch_size_count');
      const [a, [gone, c]] = await placedBehind(
        p.id,
        () => send(shoppers[0], p.id, 1),
        () => Promise.all([send(doomed, p.id, 1), send(shoppers[1], p.id, 1)]),
        2,
        // Its token was good when the guard read the account; now the account goes.
        () => t.db.query('DELETE FROM users WHERE id = $1', [doomed.id]),
      );
      expect(a.status).toBe(201);
      expect(c.status).toBe(201);
      expectProblem(gone, 'UNAUTHENTICATED');
      expect((await metric('order_placement_batch_size_count')) - batchesBefore).toBe(2);
      expect(await orderCount(t, doomed.id)).toBe(0);
      expect(await stockOf(t, p.id)).toBe(8);
      expect(await unitsOrdered(p.id)).toBe(2);
    });
  });

  it('lets exactly one of cancel and ship win on a paid order, 20 times; stock returns only when cancel won', async () => {
    const tally = { cancel: 0, ship: 0 };
    for (let round = 0; round < 20; round++) {
      const p = await createProduct(t, admin, { stock: 5 });
      const owner = shoppers[round % shoppers.length];
      const order = await placeOrder(t, owner, [{ productId: p.id, quantity: 2 }]).expect(201);
      await paid(t, owner, order.body.id);
      const [cancel, ship] = await Promise.all([
        act(t, round % 2 ? owner : admin, order.body.id, 'cancel'),
        act(t, admin, order.body.id, 'ship'),
      ]);
      const winners = [cancel, ship].filter((r) => r.status === 200);
      expect(winners).toHaveLength(1);
      const loser = cancel.status === 200 ? ship : cancel;
      expectProblem(loser, 'ILLEGAL_STATE_TRANSITION');
      const [row] = await t.db.query('SELECT status FROM orders WHERE id = $1', [order.body.id]);
      if (cancel.status === 200) {
        tally.cancel++;
        expect(row.status).toBe('cancelled');
        expect(await stockOf(t, p.id)).toBe(5);
      } else {
        tally.ship++;
        expect(row.status).toBe('shipped');
        expect(await stockOf(t, p.id)).toBe(3);
      }
      const events = await t.db.query(
        'SELECT to_status FROM order_history WHERE order_id = $1 ORDER BY id',
        [order.body.id],
      );
      expect(events.map((e: { to_status: string }) => e.to_status)).toEqual([
        'pending',
        'paid',
        row.status,
      ]);
    }
    expect(tally.cancel + tally.ship).toBe(20);
    console.log(`cancel vs ship: ${JSON.stringify(tally)}`);
  });

  it('records the status a cancel really left when it races a pay, 20 times: history is a chain', async () => {
    const p = await createProduct(t, admin, { stock: 100 });
    const buyer = await account(t);
    const tally = { cancelledFromPending: 0, cancelledFromPaid: 0, paidOnly: 0 };
    for (let i = 0; i < 20; i++) {
      const order = await placeOrder(t, buyer, [{ productId: p.id, quantity: 1 }]).expect(201);
      // The pay is a test payment opened and completed (API.md §9): money that arrives for a
      // cancelled order is owed back; the order's history stays a chain either way.
      const [paying, cancel] = await Promise.all([
        pay(t, buyer, order.body.id),
        act(t, buyer, order.body.id, 'cancel'),
      ]);
      expect([200, 409]).toContain(cancel.status);
      const history: { action: string; from_status: string | null; to_status: string }[] =
        await t.db.query(
          'SELECT action, from_status, to_status FROM order_history WHERE order_id = $1 ORDER BY id',
          [order.body.id],
        );
      // Every entry leaves the status the previous one reached: no entry invents its `from`.
      history.forEach((e, k) => expect(e.from_status).toBe(k ? history[k - 1].to_status : null));
      const [row] = await t.db.query('SELECT status FROM orders WHERE id = $1', [order.body.id]);
      expect(history[history.length - 1].to_status).toBe(row.status);
      if (row.status === 'cancelled') {
        if (paying.status === 200) tally.cancelledFromPaid++;
        else tally.cancelledFromPending++;
      } else tally.paidOnly++;
    }
    console.log(`cancel vs pay: ${JSON.stringify(tally)}`);
    // Units: every cancelled order gave its unit back, exactly once.
    const [{ held }] = await t.db.query(
      `SELECT coalesce(sum(i.quantity), 0)::int AS held FROM order_items i JOIN orders o ON o.id = i.order_id
        WHERE i.product_id = $1 AND o.status <> 'cancelled'`,
      [p.id],
    );
    expect((await stockOf(t, p.id)) + held).toBe(100);
  });

  it('creates exactly one order for 20 parallel checkouts with one Idempotency-Key', async () => {
    const p = await createProduct(t, admin, { stock: 100 });
    const buyer = await account(t);
    const key = `checkout-${randomUUID()}`;
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        placeOrder(t, buyer, [{ productId: p.id, quantity: 2 }], key),
      ),
    );
    const created = results.filter((r) => r.status === 201);
    const original = created.filter((r) => r.headers['idempotent-replayed'] === undefined);
    expect(original).toHaveLength(1);
    for (const r of created) expect(r.body).toEqual(original[0].body);
    for (const r of results.filter((x) => x.status !== 201)) {
      expectProblem(r, 'IDEMPOTENCY_KEY_IN_USE');
      expect(r.headers['retry-after']).toBeDefined();
    }
    expect(created.length + results.filter((r) => r.status === 409).length).toBe(20);
    expect(await orderCount(t, buyer.id)).toBe(1);
    expect(await stockOf(t, p.id)).toBe(98);
    console.log(
      `idempotency race: ${JSON.stringify(statuses(results))}, replays: ${created.length - 1}`,
    );
  });

  it('keeps stock arithmetic exact under a mix of orders, cancels and adjustments', async () => {
    const p = await createProduct(t, admin, { stock: 30 });
    const first = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        placeOrder(t, shoppers[i % shoppers.length], [{ productId: p.id, quantity: 1 }]),
      ),
    );
    const placed = first.filter((r) => r.status === 201);
    expect(placed).toHaveLength(30);
    const mixed = await Promise.all([
      ...placed.slice(0, 10).map((r) => act(t, admin, r.body.id, 'cancel')),
      ...Array.from({ length: 20 }, (_, i) =>
        placeOrder(t, shoppers[i % shoppers.length], [{ productId: p.id, quantity: 1 }]),
      ),
      ...Array.from({ length: 5 }, () =>
        t
          .http()
          .post(`/api/v1/products/${p.id}/stock-adjustments`)
          .set(admin.auth)
          .send({ delta: 1, reason: 'found' }),
      ),
    ]);
    expect(mixed.every((r) => r.status < 500)).toBe(true);
    // Whatever interleaving happened: stock = initial + adjustments − units in live orders.
    expect(await stockOf(t, p.id)).toBe(30 + 5 - (await unitsOrdered(p.id)));
    expect(await stockOf(t, p.id)).toBeGreaterThanOrEqual(0);
  });
});
