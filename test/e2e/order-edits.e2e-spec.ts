import { type Account, account, expectProblem } from '../support/http';
import { createProduct, type Line, paid, placeOrder, stockOf } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

/** `PATCH /orders/{id}`: editing a pending order's lines. */
describe('editing a pending order', () => {
  let t: TestApp;
  let admin: Account;
  let alice: Account;
  let bob: Account;
  beforeAll(async () => {
    t = await createTestApp();
    admin = await account(t, 'admin');
    alice = await account(t);
    bob = await account(t);
  });
  afterAll(() => t.close());

  const edit = (
    id: string,
    who: Account,
    items: Line[],
    headers: Record<string, string> = {},
    extra: object = {},
  ) =>
    t
      .http()
      .patch(`/api/v1/orders/${id}`)
      .set(who.auth)
      .set(headers)
      .send({ items, ...extra });
  const orderRow = async (id: string) =>
    (
      await t.db.query(
        'SELECT status, version, total_cents, expires_at FROM orders WHERE id = $1',
        [id],
      )
    )[0] as { status: string; version: number; total_cents: number; expires_at: Date | null };

  it('moves stock by the difference: raised, lowered, added and removed lines, one history entry', async () => {
    const a = await createProduct(t, admin, { stock: 10, priceCents: 100 });
    const b = await createProduct(t, admin, { stock: 10, priceCents: 200 });
    const c = await createProduct(t, admin, { stock: 10, priceCents: 300 });
    const d = await createProduct(t, admin, { stock: 10, priceCents: 400 });
    const placed = await placeOrder(t, alice, [
      { productId: a.id, quantity: 2 },
      { productId: b.id, quantity: 5 },
      { productId: c.id, quantity: 1 },
    ]).expect(201);
    const res = await edit(
      placed.body.id,
      alice,
      [
        { productId: a.id, quantity: 6 }, // raised by 4
        { productId: b.id, quantity: 1 }, // lowered by 4
        { productId: d.id, quantity: 3 }, // added; c removed
      ],
      { 'If-Match': placed.headers.etag },
    );
    expect(res.status).toBe(200);
    expect(res.headers.etag).not.toBe(placed.headers.etag);
    expect(res.body).toMatchObject({
      status: 'pending',
      version: 2,
      totalCents: 6 * 100 + 1 * 200 + 3 * 400,
      expiresAt: placed.body.expiresAt, // the hold does not move
    });
    expect(res.body.items.map((i: Line) => [i.productId, i.quantity])).toEqual([
      [a.id, 6],
      [b.id, 1],
      [d.id, 3],
    ]);
    expect([
      await stockOf(t, a.id),
      await stockOf(t, b.id),
      await stockOf(t, c.id),
      await stockOf(t, d.id),
    ]).toEqual([4, 9, 10, 7]);
    const entries = await t.db.query(
      'SELECT action, from_status, to_status, actor_id FROM order_history WHERE order_id = $1 ORDER BY id',
      [placed.body.id],
    );
    expect(entries[1]).toEqual({
      action: 'edit',
      from_status: 'pending',
      to_status: 'pending',
      actor_id: alice.id,
    });
  });

  it('keeps the price snapshot of kept products and takes today’s price for added ones', async () => {
    const kept = await createProduct(t, admin, { stock: 10, priceCents: 1000 });
    const added = await createProduct(t, admin, { stock: 10, priceCents: 500 });
    const placed = await placeOrder(t, alice, [{ productId: kept.id, quantity: 1 }]).expect(201);
    for (const p of [kept, added]) {
      await t
        .http()
        .patch(`/api/v1/products/${p.id}`)
        .set(admin.auth)
        .set('If-Match', '*')
        .send({ priceCents: 9999 })
        .expect(200);
    }
    const res = await edit(
      placed.body.id,
      alice,
      [
        { productId: kept.id, quantity: 2 },
        { productId: added.id, quantity: 1 },
      ],
      {},
      { version: 1 },
    ).expect(200);
    expect(res.body.items.map((i: { unitPriceCents: number }) => i.unitPriceCents)).toEqual([
      1000, 9999,
    ]);
    expect(res.body.totalCents).toBe(2 * 1000 + 9999);
  });

  it('answers 409 INSUFFICIENT_STOCK listing every short line beyond what the order holds, moving nothing', async () => {
    const a = await createProduct(t, admin, { stock: 3 });
    const b = await createProduct(t, admin, { stock: 5 });
    const placed = await placeOrder(t, alice, [
      { productId: a.id, quantity: 2 },
      { productId: b.id, quantity: 4 },
    ]).expect(201);
    // a: holds 2, 1 free; asks 5 → 3 more, short. b: lowered 4 → 1, fine (but must not move).
    const res = await edit(
      placed.body.id,
      alice,
      [
        { productId: a.id, quantity: 5 },
        { productId: b.id, quantity: 1 },
      ],
      { 'If-Match': placed.headers.etag },
    );
    expectProblem(res, 'INSUFFICIENT_STOCK');
    expect(res.body.items).toEqual([
      { productId: a.id, sku: a.body.sku, requested: 3, available: 1 },
    ]);
    expect([await stockOf(t, a.id), await stockOf(t, b.id)]).toEqual([1, 1]);
    expect(await orderRow(placed.body.id)).toMatchObject({ version: 1 });
  });

  it('returns all the units of a removed line', async () => {
    const a = await createProduct(t, admin, { stock: 5 });
    const b = await createProduct(t, admin, { stock: 5 });
    const placed = await placeOrder(t, alice, [
      { productId: a.id, quantity: 3 },
      { productId: b.id, quantity: 2 },
    ]).expect(201);
    await edit(placed.body.id, alice, [{ productId: b.id, quantity: 2 }], {
      'If-Match': placed.headers.etag,
    }).expect(200);
    expect([await stockOf(t, a.id), await stockOf(t, b.id)]).toEqual([5, 3]);
  });

  it('needs a precondition: 428 without, 412 with a stale If-Match, 409 with a stale version', async () => {
    const p = await createProduct(t, admin, { stock: 5 });
    const placed = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    const items = [{ productId: p.id, quantity: 2 }];
    expectProblem(await edit(placed.body.id, alice, items), 'PRECONDITION_REQUIRED');
    await edit(placed.body.id, alice, items, { 'If-Match': placed.headers.etag }).expect(200);
    const stale = await edit(placed.body.id, alice, items, { 'If-Match': placed.headers.etag });
    expectProblem(stale, 'PRECONDITION_FAILED');
    expect(stale.body.current).toMatchObject({ id: placed.body.id, version: 2 });
    const staleVersion = await edit(placed.body.id, alice, items, {}, { version: 1 });
    expectProblem(staleVersion, 'VERSION_MISMATCH');
    expect(staleVersion.body).toMatchObject({ requestedVersion: 1, currentVersion: 2 });
    expect(await stockOf(t, p.id)).toBe(3);
  });

  it('answers 409 ORDER_NOT_EDITABLE with currentStatus once the order is paid', async () => {
    const p = await createProduct(t, admin, { stock: 5 });
    const placed = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    const afterPay = await paid(t, alice, placed.body.id);
    const res = await edit(placed.body.id, alice, [{ productId: p.id, quantity: 3 }], {
      'If-Match': afterPay.headers.etag,
    });
    expectProblem(res, 'ORDER_NOT_EDITABLE');
    expect(res.body.currentStatus).toBe('paid');
    expect(await stockOf(t, p.id)).toBe(4);
  });

  it('lets an admin edit, and hides another customer’s order (404)', async () => {
    const p = await createProduct(t, admin, { stock: 5 });
    const placed = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    expectProblem(
      await edit(placed.body.id, bob, [{ productId: p.id, quantity: 2 }], { 'If-Match': '*' }),
      'NOT_FOUND',
    );
    await edit(placed.body.id, admin, [{ productId: p.id, quantity: 2 }], {
      'If-Match': '*',
    }).expect(200);
    expect(await stockOf(t, p.id)).toBe(3);
  });

  it('validates the new lines like a placement (400), and refuses unknown or inactive added products', async () => {
    const p = await createProduct(t, admin, { stock: 5 });
    const inactive = await createProduct(t, admin, { stock: 5, active: false });
    const placed = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    const bad = await edit(placed.body.id, alice, [], { 'If-Match': '*' });
    expectProblem(bad, 'VALIDATION_FAILED');
    expect(bad.body.errors[0].field).toBe('items');
    expectProblem(
      await edit(placed.body.id, alice, [{ productId: inactive.id, quantity: 1 }], {
        'If-Match': '*',
      }),
      'PRODUCT_UNAVAILABLE',
    );
    expectProblem(
      await edit(
        placed.body.id,
        alice,
        [{ productId: '00000000-0000-4000-8000-000000000000', quantity: 1 }],
        { 'If-Match': '*' },
      ),
      'UNKNOWN_PRODUCT',
    );
    expect(await orderRow(placed.body.id)).toMatchObject({ version: 1 });
    expect(await stockOf(t, p.id)).toBe(4);
  });

  it('refuses to raise the line of a product no longer for sale (409), and lets it be lowered or removed', async () => {
    const p = await createProduct(t, admin, { stock: 10, priceCents: 100 });
    const q = await createProduct(t, admin, { stock: 10, priceCents: 200 });
    const placed = await placeOrder(t, alice, [
      { productId: p.id, quantity: 3 },
      { productId: q.id, quantity: 1 },
    ]).expect(201);
    await t.db.query('UPDATE products SET active = false WHERE id = $1', [p.id]);
    const raised = await edit(
      placed.body.id,
      alice,
      [
        { productId: p.id, quantity: 4 },
        { productId: q.id, quantity: 1 },
      ],
      { 'If-Match': '*' },
    );
    expectProblem(raised, 'PRODUCT_UNAVAILABLE');
    expect(raised.body.items).toEqual([{ productId: p.id, sku: p.body.sku }]);
    expect(await orderRow(placed.body.id)).toMatchObject({ version: 1, total_cents: 500 });
    expect(await stockOf(t, p.id)).toBe(7);

    const lowered = await edit(
      placed.body.id,
      alice,
      [
        { productId: p.id, quantity: 2 },
        { productId: q.id, quantity: 1 },
      ],
      { 'If-Match': '*' },
    );
    expect(lowered.status).toBe(200);
    expect(lowered.body.totalCents).toBe(400);
    expect(await stockOf(t, p.id)).toBe(8);
    const removed = await edit(placed.body.id, alice, [{ productId: q.id, quantity: 1 }], {
      'If-Match': '*',
    });
    expect(removed.status).toBe(200);
    expect(await stockOf(t, p.id)).toBe(10);
  });
});
