import { setTimeout as sleep } from 'node:timers/promises';
import { HoldExpiry } from '../../src/orders/hold-expiry';
import { type Account, account, expectProblem } from '../support/http';
import {
  act,
  completePayment,
  createProduct,
  openPayment,
  placeOrder,
  stockOf,
  stockResource,
} from '../support/fixtures';
import { holdRow, untilWaiting, waiting } from '../support/row-locks';
import { createTestApp, type TestApp } from '../support/test-app';

const tally = (values: number[]): Record<number, number> =>
  values.reduce<Record<number, number>>((acc, v) => ({ ...acc, [v]: (acc[v] ?? 0) + 1 }), {});

/**
 * Stock is its own resource (issue 25, API.md §13): a sale moves the stock's version, never the
 * product's, so a merchant's `If-Match` on the product is stale only when the product really changed.
 */
describe('stock apart from the product (real parallel requests, real PostgreSQL)', () => {
  let t: TestApp;
  let admin: Account;
  let buyers: Account[];
  beforeAll(async () => {
    t = await createTestApp({ DB_POOL_SIZE: '30', ORDER_EXPIRY_SWEEP_SECONDS: '3600' });
    admin = await account(t, 'admin');
    buyers = await Promise.all(Array.from({ length: 8 }, () => account(t)));
  });
  afterAll(() => t.close());

  const productEtag = async (id: string): Promise<string> =>
    (await t.http().get(`/api/v1/products/${id}`).expect(200)).headers.etag;

  it('lets 100 price edits with If-Match through at the first attempt while 8 buyers check the product out continuously; stock stays exact', async () => {
    const initial = 100_000;
    const p = await createProduct(t, admin, { stock: initial, priceCents: 1000 });
    let editing = true;
    let sold = 0;
    let soldUnits = 0;
    const refused: number[] = [];
    const buying = buyers.map(async (buyer, b) => {
      for (let i = 0; editing; i++) {
        const quantity = 1 + ((b + i) % 3);
        const res = await placeOrder(t, buyer, [{ productId: p.id, quantity }]);
        if (res.status === 201) {
          sold += 1;
          soldUnits += quantity;
        } else refused.push(res.status);
      }
    });

    const attempts: number[] = [];
    const salesBetween: number[] = [];
    try {
      for (let i = 0; i < 100; i++) {
        const etag = await productEtag(p.id);
        // At least one sale commits between the merchant's read and write: every ETag was read
        // before a sale, the case that made each edit stale when stock was in the product.
        const seen = sold;
        const deadline = Date.now() + 10_000;
        while (sold === seen) {
          if (Date.now() > deadline) throw new Error('the buyers stopped selling');
          await sleep(1);
        }
        salesBetween.push(sold - seen);
        const res = await t
          .http()
          .patch(`/api/v1/products/${p.id}`)
          .set(admin.auth)
          .set('If-Match', etag)
          .send({ priceCents: 1001 + i });
        // One attempt each: no retry, no merge. Anything but 200 is a failure of the test.
        attempts.push(res.status);
      }
    } finally {
      editing = false;
      await Promise.all(buying);
    }
    console.log(
      `100 If-Match price edits under 8 continuous buyers: ${JSON.stringify(tally(attempts))} at the first attempt; ${sold} orders (${soldUnits} units) sold meanwhile, ≥${Math.min(...salesBetween)} between each read and its write`,
    );
    expect(tally(attempts)).toEqual({ 200: 100 });
    expect(refused).toEqual([]);
    expect(sold).toBeGreaterThanOrEqual(100);
    const product = await t.http().get(`/api/v1/products/${p.id}`).expect(200);
    expect(product.body).toMatchObject({ priceCents: 1100, version: 101 });
    const stock = await stockResource(t, p.id);
    expect(stock.body.stock).toBe(initial - soldUnits);
    const [{ units }] = await t.db.query(
      'SELECT coalesce(sum(quantity), 0)::int AS units FROM order_items WHERE product_id = $1',
      [p.id],
    );
    expect(units).toBe(soldUnits);
    // 100 sequential edits among ~1,400 checkouts: ~60 s on a 2-core machine shared with others.
  }, 180_000);

  it("leaves the product's ETag, Last-Modified and timestamps unchanged and moves the stock's on a checkout, a cancel, an expiry, an edit, an adjustment and a revive", async () => {
    const p = await createProduct(t, admin, { stock: 50 });
    const other = await createProduct(t, admin, { stock: 50 });
    /** What a merchant's precondition can name: ETag, Last-Modified, and the row's own times. */
    const productState = async () => {
      const res = await t.http().get(`/api/v1/products/${p.id}`).expect(200);
      const [row] = await t.db.query(
        'SELECT version, updated_at, previous_updated_at FROM products WHERE id = $1',
        [p.id],
      );
      return { etag: res.headers.etag, lastModified: res.headers['last-modified'], row };
    };
    const product = await productState();
    const buyer = buyers[0];
    const seen: string[] = [(await stockResource(t, p.id)).etag];
    const step = async (name: string, expected: number): Promise<void> => {
      const stock = await stockResource(t, p.id);
      expect({ name, stock: stock.body.stock }).toEqual({ name, stock: expected });
      expect(seen).not.toContain(stock.etag);
      seen.push(stock.etag);
      expect({ name, product: await productState() }).toEqual({ name, product });
    };
    const expire = async (orderId: string): Promise<void> => {
      await t.db.query(`UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = $1`, [
        orderId,
      ]);
      expect(await t.app.get(HoldExpiry).sweep()).toBeGreaterThanOrEqual(1);
    };

    const checkout = await placeOrder(t, buyer, [{ productId: p.id, quantity: 3 }]).expect(201);
    await step('checkout', 47);
    await act(t, buyer, checkout.body.id, 'cancel').expect(200);
    await step('cancel', 50);

    const edited = await placeOrder(t, buyer, [{ productId: p.id, quantity: 2 }]).expect(201);
    await step('checkout', 48);
    await t
      .http()
      .patch(`/api/v1/orders/${edited.body.id}`)
      .set(buyer.auth)
      .set('If-Match', edited.headers.etag)
      .send({
        items: [
          { productId: p.id, quantity: 5 },
          { productId: other.id, quantity: 1 },
        ],
      })
      .expect(200);
    await step('edit', 45);
    await expire(edited.body.id);
    await step('expiry', 50);

    await t
      .http()
      .post(`/api/v1/products/${p.id}/stock-adjustments`)
      .set(admin.auth)
      .send({ delta: -4, reason: 'damaged' })
      .expect(200);
    await step('adjustment', 46);

    // A late payment on an expired order whose units are still there revives it (API.md §9).
    const late = await placeOrder(t, buyer, [{ productId: p.id, quantity: 2 }]).expect(201);
    await step('checkout', 44);
    const payment = await openPayment(t, buyer, late.body.id).expect(201);
    await expire(late.body.id);
    await step('expiry', 46);
    await completePayment(t, buyer, payment.body.id).expect(200);
    const revived = await t.http().get(`/api/v1/orders/${late.body.id}`).set(buyer.auth);
    expect(revived.body).toMatchObject({ status: 'paid' });
    await step('revive', 44);
    const [row] = await t.db.query('SELECT version, stock_version FROM products WHERE id = $1', [
      p.id,
    ]);
    expect(row).toEqual({ version: 1, stock_version: 10 });
  });

  it('of 10 stock-takes racing with one stock ETag, exactly one wins; the others get 412 with the winner as `current`', async () => {
    const p = await createProduct(t, admin, { stock: 10 });
    const { etag } = await stockResource(t, p.id);
    const before = await waiting(t);
    const hold = await holdRow(t, 'products', p.id);
    let answers;
    try {
      const takes = Array.from({ length: 10 }, (_, i) =>
        t
          .http()
          .put(`/api/v1/products/${p.id}/stock`)
          .set(admin.auth)
          .set('If-Match', etag)
          .send({ stock: 100 + i })
          .then((r) => r),
      );
      // All ten read the same version and wait on the row: none has written yet.
      await untilWaiting(t, before + 10);
      await hold.release();
      answers = await Promise.all(takes);
    } catch (err) {
      await hold.release().catch(() => undefined);
      throw err;
    }
    expect(tally(answers.map((a) => a.status))).toEqual({ 200: 1, 412: 9 });
    const winner = answers.find((a) => a.status === 200)!;
    for (const lost of answers.filter((a) => a.status === 412)) {
      expectProblem(lost, 'PRECONDITION_FAILED');
      expect(lost.body).toMatchObject({
        currentVersion: 2,
        currentEtag: winner.headers.etag,
        current: { productId: p.id, stock: winner.body.stock, version: 2 },
      });
    }
    expect(await stockOf(t, p.id)).toBe(winner.body.stock);
  });

  /**
   * Which checkouts came after the stock-take is decided by the database, not by the test's timing:
   * a log trigger of this test's database records, for every change of a product's stock, the new
   * stock version and the transaction that made it, and for every order the transaction that
   * inserted it. An order "after" the stock-take is one whose transaction moved the product's stock to a version above the stock-take's.
   * Orders before it are forgotten by the level counted (it is absolute: the count saw their units
   * gone); orders after it count against it. The race is made certain: the product's row is held
   * while 6 checkouts queue on it, then the stock-take (If-Match: *, an unconditional count), then 6
   * more; the row is let go, and all 13 writers go through it one after the other. (Each checkout also buys a product of its own, so that none is batched
   * with another and each waits on the row in its own transaction, in the order sent.)
   */
  it('a stock-take racing checkouts: the final stock is the level set minus the units of the orders placed after it, exactly', async () => {
    await t.db.query(`
      CREATE TABLE IF NOT EXISTS test_stock_log (product_id uuid, stock_version int, txid bigint);
      CREATE TABLE IF NOT EXISTS test_order_log (order_id uuid, txid bigint);
      CREATE OR REPLACE FUNCTION test_log_stock() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.stock_version <> OLD.stock_version THEN
          INSERT INTO test_stock_log VALUES (NEW.id, NEW.stock_version, txid_current());
        END IF;
        RETURN NULL;
      END $$;
      CREATE OR REPLACE FUNCTION test_log_order() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO test_order_log VALUES (NEW.id, txid_current());
        RETURN NULL;
      END $$;
      DROP TRIGGER IF EXISTS test_log_stock ON products;
      CREATE TRIGGER test_log_stock AFTER UPDATE ON products
        FOR EACH ROW EXECUTE FUNCTION test_log_stock();
      DROP TRIGGER IF EXISTS test_log_order ON orders;
      CREATE TRIGGER test_log_order AFTER INSERT ON orders
        FOR EACH ROW EXECUTE FUNCTION test_log_order();`);
    /** One race; how many of its 12 orders the database placed after the stock-take. */
    const race = async (): Promise<number> => {
      const p = await createProduct(t, admin, { stock: 1000 });
      const extras = await Promise.all(
        Array.from({ length: 12 }, () => createProduct(t, admin, { stock: 10 })),
      );
      const level = 500;
      const order = (i: number) =>
        placeOrder(t, buyers[i % buyers.length], [
          { productId: p.id, quantity: 1 + (i % 4) },
          { productId: extras[i].id, quantity: 1 },
        ]).then((r) => r);
      const before = await waiting(t);
      const hold = await holdRow(t, 'products', p.id);
      let take;
      let checkouts;
      try {
        const first = Array.from({ length: 6 }, (_, i) => order(i));
        await untilWaiting(t, before + 6);
        const taking = t
          .http()
          .put(`/api/v1/products/${p.id}/stock`)
          .set(admin.auth)
          .set('If-Match', '*')
          .send({ stock: level })
          .then((r) => r);
        await untilWaiting(t, before + 7);
        const second = Array.from({ length: 6 }, (_, i) => order(6 + i));
        await untilWaiting(t, before + 13);
        await hold.release();
        [take, ...checkouts] = await Promise.all([taking, ...first, ...second]);
      } catch (err) {
        await hold.release().catch(() => undefined);
        throw err;
      }
      expect(take.status).toBe(200);
      expect(checkouts.map((c) => c.status)).toEqual(Array(12).fill(201));
      // Per order: the stock version its transaction gave the product (one per transaction).
      const rows: { id: string; quantity: number; stock_version: number }[] = await t.db.query(
        `SELECT o.id::text AS id, i.quantity, l.stock_version
             FROM orders o JOIN order_items i ON i.order_id = o.id AND i.product_id = $1
             JOIN test_order_log ol ON ol.order_id = o.id
             JOIN test_stock_log l ON l.txid = ol.txid AND l.product_id = $1
            WHERE o.id = ANY($2::uuid[])`,
        [p.id, checkouts.map((c) => c.body.id)],
      );
      expect(rows).toHaveLength(12);
      const after = rows.filter((r) => r.stock_version > take.body.version);
      const afterUnits = after.reduce((n, r) => n + r.quantity, 0);
      console.log(
        `stock-take racing checkouts: ${12 - after.length} order(s) before it, ${after.length} after it (${afterUnits} units)`,
      );
      // Exact whichever side each order fell on (the database's decision, read from the log).
      expect(await stockOf(t, p.id)).toBe(level - afterUnits);
      return after.length;
    };
    try {
      // Both sides must be there at least once: PostgreSQL wakes the waiters of a row roughly, not
      // strictly, in the order they queued, so one race may put all 12 on one side. Each race
      // checks the arithmetic exactly; up to 5 races until one has orders on both sides.
      const sides: number[] = [];
      while (sides.length < 5 && !sides.some((n) => n > 0 && n < 12)) sides.push(await race());
      expect(sides.some((n) => n > 0 && n < 12)).toBe(true);
    } finally {
      await t.db.query('DROP TRIGGER IF EXISTS test_log_stock ON products');
      await t.db.query('DROP TRIGGER IF EXISTS test_log_order ON orders');
    }
  });
});
