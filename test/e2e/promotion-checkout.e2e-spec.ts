import { randomBytes } from 'node:crypto';
import { type Account, account, expectProblem } from '../support/http';
import { act, createProduct, stockOf } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

/** `POST /orders` with a promotion code and an expected total (API.md §11). */
describe('checkout with a promotion code', () => {
  let t: TestApp;
  let admin: Account;
  let alice: Account;
  let bob: Account;
  beforeAll(async () => {
    t = await createTestApp({ ORDER_EXPIRY_SWEEP_SECONDS: '3600' });
    admin = await account(t, 'admin');
    alice = await account(t);
    bob = await account(t);
  });
  afterAll(() => t.close());

  const newCode = (): string => `C-${randomBytes(4).toString('hex').toUpperCase()}`;
  async function promotion(terms: Record<string, unknown>) {
    const res = await t
      .http()
      .post('/api/v1/promotions')
      .set(admin.auth)
      .send({ code: newCode(), ...terms })
      .expect(201);
    return { id: res.body.id as string, code: res.body.code as string, etag: res.headers.etag };
  }
  const checkout = (who: Account, body: Record<string, unknown>) =>
    t.http().post('/api/v1/orders').set(who.auth).send(body);
  const timesUsed = async (id: string): Promise<number> =>
    (await t.db.query('SELECT times_used FROM promotions WHERE id = $1', [id]))[0].times_used;
  const overdue = (orderId: string) =>
    t.db.query(
      `UPDATE orders SET expires_at = clock_timestamp() - interval '1 second' WHERE id = $1`,
      [orderId],
    );

  it('applies a percentage (floor), counts the use, and shows subtotal, discount and code (also in order.created)', async () => {
    const p = await createProduct(t, admin, { priceCents: 999, stock: 10 });
    const promo = await promotion({ percentOff: 15, usageLimit: 10 });
    const res = await checkout(alice, {
      items: [{ productId: p.id, quantity: 3 }],
      promotionCode: ` ${promo.code.toLowerCase()} `,
      expectedTotalCents: 2997 - 449,
    });
    expect(res.status).toBe(201);
    // 2997 × 15 / 100 = 449.55 → 449
    expect(res.body).toMatchObject({
      status: 'pending',
      subtotalCents: 2997,
      discountCents: 449,
      promotionCode: promo.code,
      totalCents: 2548,
    });
    expect(await timesUsed(promo.id)).toBe(1);
    expect(await stockOf(t, p.id)).toBe(7);
    const [event] = await t.db.query(
      `SELECT body FROM outbox_events WHERE order_id = $1 AND type = 'order.created'`,
      [res.body.id],
    );
    expect(JSON.parse(event.body).data.order).toMatchObject({
      subtotalCents: 2997,
      discountCents: 449,
      promotionCode: promo.code,
      totalCents: 2548,
    });
  });

  it('without a code, an order shows subtotal = total, discount 0, code null', async () => {
    const p = await createProduct(t, admin, { priceCents: 500 });
    const res = await checkout(alice, { items: [{ productId: p.id, quantity: 2 }] }).expect(201);
    expect(res.body).toMatchObject({
      subtotalCents: 1000,
      discountCents: 0,
      promotionCode: null,
      totalCents: 1000,
    });
  });

  it('caps an amount off at the subtotal: an order of 0 is paid at placement (history pay, no actor, no payment)', async () => {
    const p = await createProduct(t, admin, { priceCents: 300, stock: 5 });
    const promo = await promotion({ amountOffCents: 1000, currency: 'EUR' });
    const res = await checkout(alice, {
      items: [{ productId: p.id, quantity: 1 }],
      promotionCode: promo.code,
    }).expect(201);
    expect(res.body).toMatchObject({
      status: 'paid',
      subtotalCents: 300,
      discountCents: 300,
      totalCents: 0,
      expiresAt: null,
    });
    const history = await t.db.query(
      'SELECT action, actor_id FROM order_history WHERE order_id = $1 ORDER BY id',
      [res.body.id],
    );
    expect(history).toEqual([
      { action: 'place', actor_id: alice.id },
      { action: 'pay', actor_id: null },
    ]);
    const payments = await t.db.query('SELECT 1 FROM payments WHERE order_id = $1', [res.body.id]);
    expect(payments).toHaveLength(0);
    expect(await stockOf(t, p.id)).toBe(4);
  });

  describe('refusals: 409 PROMOTION_NOT_APPLICABLE with the first reason, nothing reserved or counted', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['inactive', { percentOff: 10, active: false, endsAt: '2000-01-02T00:00:00Z' }, 'inactive'],
      ['not started', { percentOff: 10, startsAt: '2999-01-01T00:00:00Z' }, 'not_started'],
      [
        'ended',
        { percentOff: 10, startsAt: '2000-01-01T00:00:00Z', endsAt: '2000-01-02T00:00:00Z' },
        'ended',
      ],
      ['another currency', { amountOffCents: 100, currency: 'USD', usageLimit: 0 }, 'currency'],
      ['exhausted', { percentOff: 10, usageLimit: 0 }, 'exhausted'],
    ];
    it.each(cases)('%s', async (_name, terms, reason) => {
      const p = await createProduct(t, admin, { stock: 4 });
      const promo = await promotion(terms);
      const res = await checkout(alice, {
        items: [{ productId: p.id, quantity: 1 }],
        promotionCode: promo.code,
      });
      expectProblem(res, 'PROMOTION_NOT_APPLICABLE');
      expect(res.body).toMatchObject({ promotionCode: promo.code, reason });
      expect(await stockOf(t, p.id)).toBe(4);
      expect(await timesUsed(promo.id)).toBe(0);
    });

    it('unknown', async () => {
      const p = await createProduct(t, admin, { stock: 4 });
      const res = await checkout(alice, {
        items: [{ productId: p.id, quantity: 1 }],
        promotionCode: 'NO-SUCH-CODE',
      });
      expectProblem(res, 'PROMOTION_NOT_APPLICABLE');
      expect(res.body).toMatchObject({ promotionCode: 'NO-SUCH-CODE', reason: 'unknown' });
      expect(await stockOf(t, p.id)).toBe(4);
    });

    it('customer_limit before exhausted; another customer may still use it', async () => {
      const p = await createProduct(t, admin, { stock: 10 });
      const promo = await promotion({ percentOff: 10, perCustomerLimit: 1, usageLimit: 2 });
      const items = [{ productId: p.id, quantity: 1 }];
      await checkout(alice, { items, promotionCode: promo.code }).expect(201);
      const again = await checkout(alice, { items, promotionCode: promo.code });
      expectProblem(again, 'PROMOTION_NOT_APPLICABLE');
      expect(again.body.reason).toBe('customer_limit');
      await checkout(bob, { items, promotionCode: promo.code }).expect(201);
      const third = await checkout(alice, { items, promotionCode: promo.code });
      expect(third.body.reason).toBe('customer_limit');
      expect(await timesUsed(promo.id)).toBe(2);
      expect(await stockOf(t, p.id)).toBe(8);
    });
  });

  it('checks in the contract order: 422 → PRODUCT_UNAVAILABLE → PROMOTION_NOT_APPLICABLE → PRICE_CHANGED → INSUFFICIENT_STOCK', async () => {
    const ok = await createProduct(t, admin, { priceCents: 100, stock: 1 });
    const off = await createProduct(t, admin, { active: false });
    const bad = 'NO-SUCH-CODE';
    const unknownId = '00000000-0000-4000-8000-000000000000';
    expectProblem(
      await checkout(alice, { items: [{ productId: unknownId, quantity: 1 }], promotionCode: bad }),
      'UNKNOWN_PRODUCT',
    );
    expectProblem(
      await checkout(alice, { items: [{ productId: off.id, quantity: 1 }], promotionCode: bad }),
      'PRODUCT_UNAVAILABLE',
    );
    expectProblem(
      await checkout(alice, {
        items: [{ productId: ok.id, quantity: 5 }],
        promotionCode: bad,
        expectedTotalCents: 1,
      }),
      'PROMOTION_NOT_APPLICABLE',
    );
    expectProblem(
      await checkout(alice, { items: [{ productId: ok.id, quantity: 5 }], expectedTotalCents: 1 }),
      'PRICE_CHANGED',
    );
    expectProblem(
      await checkout(alice, {
        items: [{ productId: ok.id, quantity: 5 }],
        expectedTotalCents: 500,
      }),
      'INSUFFICIENT_STOCK',
    );
    expect(await stockOf(t, ok.id)).toBe(1);
  });

  it('PRICE_CHANGED when a price changed since: the lines as now, nothing reserved', async () => {
    const p = await createProduct(t, admin, { priceCents: 1000, stock: 3 });
    await t
      .http()
      .patch(`/api/v1/products/${p.id}`)
      .set(admin.auth)
      .set('If-Match', p.etag)
      .send({ priceCents: 1200 })
      .expect(200);
    const res = await checkout(alice, {
      items: [{ productId: p.id, quantity: 2 }],
      expectedTotalCents: 2000,
    });
    expectProblem(res, 'PRICE_CHANGED');
    expect(res.body).toMatchObject({
      expectedTotalCents: 2000,
      totalCents: 2400,
      items: [
        { productId: p.id, sku: p.body.sku, name: p.body.name, unitPriceCents: 1200, quantity: 2 },
      ],
    });
    expect(await stockOf(t, p.id)).toBe(3);
    await checkout(alice, {
      items: [{ productId: p.id, quantity: 2 }],
      expectedTotalCents: 2400,
    }).expect(201);
  });

  it('PRICE_CHANGED when the code changed since: nothing reserved or counted', async () => {
    const p = await createProduct(t, admin, { priceCents: 1000, stock: 3 });
    const promo = await promotion({ percentOff: 10 });
    await t
      .http()
      .patch(`/api/v1/promotions/${promo.id}`)
      .set(admin.auth)
      .set('If-Match', promo.etag)
      .send({ percentOff: 5 })
      .expect(200);
    const res = await checkout(alice, {
      items: [{ productId: p.id, quantity: 1 }],
      promotionCode: promo.code,
      expectedTotalCents: 900,
    });
    expectProblem(res, 'PRICE_CHANGED');
    expect(res.body).toMatchObject({ expectedTotalCents: 900, totalCents: 950 });
    expect(await stockOf(t, p.id)).toBe(3);
    expect(await timesUsed(promo.id)).toBe(0);
  });

  it('answers 400 for a bad promotionCode or expectedTotalCents', async () => {
    const p = await createProduct(t, admin);
    const items = [{ productId: p.id, quantity: 1 }];
    for (const extra of [
      { promotionCode: '' },
      { promotionCode: 5 },
      { promotionCode: 'x'.repeat(65) },
      { expectedTotalCents: -1 },
      { expectedTotalCents: 1.5 },
      { expectedTotalCents: '100' },
    ]) {
      expectProblem(await checkout(alice, { items, ...extra }), 'VALIDATION_FAILED');
    }
  });

  it('a cancelled order gives its use back at once; the next checkout takes it', async () => {
    const p = await createProduct(t, admin, { stock: 10 });
    const promo = await promotion({ percentOff: 10, usageLimit: 1 });
    const items = [{ productId: p.id, quantity: 1 }];
    const first = await checkout(alice, { items, promotionCode: promo.code }).expect(201);
    expect((await checkout(bob, { items, promotionCode: promo.code })).body.reason).toBe(
      'exhausted',
    );
    await act(t, alice, first.body.id, 'cancel').expect(200);
    expect(await timesUsed(promo.id)).toBe(0);
    await checkout(bob, { items, promotionCode: promo.code }).expect(201);
    expect(await timesUsed(promo.id)).toBe(1);
  });

  it('a checkout about to be refused exhausted first expires the overdue holds of the code', async () => {
    const p = await createProduct(t, admin, { stock: 10 });
    const promo = await promotion({ percentOff: 10, usageLimit: 1 });
    const items = [{ productId: p.id, quantity: 2 }];
    const first = await checkout(alice, { items, promotionCode: promo.code }).expect(201);
    await overdue(first.body.id);
    const second = await checkout(bob, { items, promotionCode: promo.code }).expect(201);
    expect(second.body.promotionCode).toBe(promo.code);
    const [row] = await t.db.query('SELECT status FROM orders WHERE id = $1', [first.body.id]);
    expect(row.status).toBe('expired');
    expect(await timesUsed(promo.id)).toBe(1);
    expect(await stockOf(t, p.id)).toBe(8);
  });

  it('an edit reapplies the terms as they were at placement, without a second use', async () => {
    const p = await createProduct(t, admin, { priceCents: 1000, stock: 10 });
    const promo = await promotion({ percentOff: 20, usageLimit: 5 });
    const placed = await checkout(alice, {
      items: [{ productId: p.id, quantity: 1 }],
      promotionCode: promo.code,
    }).expect(201);
    // A use is not an edit: timesUsed moved, the version and ETag did not, and the admin's
    // If-Match from before the use is still fresh.
    const now = await t.http().get(`/api/v1/promotions/${promo.id}`).set(admin.auth).expect(200);
    expect(now.body).toMatchObject({ timesUsed: 1, version: 1 });
    expect(now.headers.etag).toBe(promo.etag);
    await t
      .http()
      .patch(`/api/v1/promotions/${promo.id}`)
      .set(admin.auth)
      .set('If-Match', promo.etag)
      .send({ percentOff: 50, active: false })
      .expect(200);
    const edited = await t
      .http()
      .patch(`/api/v1/orders/${placed.body.id}`)
      .set(alice.auth)
      .set('If-Match', placed.headers.etag)
      .send({ items: [{ productId: p.id, quantity: 3 }] })
      .expect(200);
    expect(edited.body).toMatchObject({
      subtotalCents: 3000,
      discountCents: 600,
      totalCents: 2400,
      promotionCode: promo.code,
    });
    expect(await timesUsed(promo.id)).toBe(1);
  });

  it('DELETE of a code an order holds → 409 RESOURCE_IN_USE', async () => {
    const p = await createProduct(t, admin);
    const promo = await promotion({ percentOff: 10 });
    await checkout(alice, {
      items: [{ productId: p.id, quantity: 1 }],
      promotionCode: promo.code,
    }).expect(201);
    expectProblem(
      await t
        .http()
        .delete(`/api/v1/promotions/${promo.id}`)
        .set(admin.auth)
        .set(
          'If-Match',
          (await t.http().get(`/api/v1/promotions/${promo.id}`).set(admin.auth)).headers.etag,
        ),
      'RESOURCE_IN_USE',
    );
  });
});
