import { randomBytes } from 'node:crypto';
import { act, createProduct } from '../support/fixtures';
import { type Account, account, expectProblem } from '../support/http';
import { createTestApp, type TestApp } from '../support/test-app';

const code = (): string => `SAVE-${randomBytes(4).toString('hex').toUpperCase()}`;

describe('promotions (API.md §11)', () => {
  let t: TestApp;
  let admin: Account;
  let customer: Account;
  beforeAll(async () => {
    t = await createTestApp();
    admin = await account(t, 'admin');
    customer = await account(t, 'customer');
  });
  afterAll(() => t.close());

  const create = (body: Record<string, unknown>) =>
    t.http().post('/api/v1/promotions').set(admin.auth).send(body);

  it('creates a code stored trimmed and upper-case, with Location, ETag and timesUsed 0', async () => {
    const c = code();
    const res = await create({ code: `  ${c.toLowerCase()} `, percentOff: 10, usageLimit: 50 });
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers.location).toBe(`/api/v1/promotions/${res.body.id}`);
    expect(res.headers.etag).toMatch(/^"[^"]+"$/);
    expect(res.body).toMatchObject({
      code: c,
      percentOff: 10,
      amountOffCents: null,
      currency: null,
      startsAt: null,
      endsAt: null,
      usageLimit: 50,
      perCustomerLimit: null,
      active: true,
      timesUsed: 0,
      version: 1,
    });
    const [row] = await t.db.query('SELECT code FROM promotions WHERE id = $1', [res.body.id]);
    expect(row.code).toBe(c);
  });

  it('answers 409 PROMOTION_CODE_TAKEN for the same code in another case, naming the existing one', async () => {
    const c = code();
    const first = await create({ code: c, amountOffCents: 500, currency: 'eur' }).expect(201);
    expect(first.body).toMatchObject({ amountOffCents: 500, currency: 'EUR', percentOff: null });
    const res = await create({ code: ` ${c.toLowerCase()}`, percentOff: 5 });
    expectProblem(res, 'PROMOTION_CODE_TAKEN');
    expect(res.body).toMatchObject({
      field: 'code',
      value: c,
      conflictingResource: `/api/v1/promotions/${first.body.id}`,
    });
    const [{ n }] = await t.db.query('SELECT count(*)::int AS n FROM promotions WHERE code = $1', [
      c,
    ]);
    expect(n).toBe(1);
  });

  it('lets exactly one of 10 parallel creates of one code succeed', async () => {
    const c = code();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        create({ code: i % 2 ? c.toLowerCase() : c, percentOff: 10 }),
      ),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 201)) {
      expectProblem(r, 'PROMOTION_CODE_TAKEN');
    }
  });

  it.each([
    [{ percentOff: 10, amountOffCents: 100, currency: 'EUR' }, 'amountOffCents'],
    [{}, 'percentOff'],
    [{ amountOffCents: 100 }, 'currency'],
    [{ percentOff: 10, currency: 'EUR' }, 'currency'],
    [{ percentOff: 0 }, 'percentOff'],
    [{ percentOff: 101 }, 'percentOff'],
    [
      { percentOff: 10, startsAt: '2030-01-02T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' },
      'endsAt',
    ],
    [{ percentOff: 10, usageLimit: -1 }, 'usageLimit'],
    [{ percentOff: 10, perCustomerLimit: 0 }, 'perCustomerLimit'],
    [{ percentOff: 10, startsAt: 'tomorrow' }, 'startsAt'],
  ])('answers 400 for %j (field %s), creating nothing', async (terms, field) => {
    const c = code();
    const res = await create({ code: c, ...terms });
    expectProblem(res, 'VALIDATION_FAILED');
    expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    const rows = await t.db.query('SELECT 1 FROM promotions WHERE code = $1', [c]);
    expect(rows).toHaveLength(0);
  });

  it('answers 400 for a code that is not a code', async () => {
    expectProblem(await create({ code: 'two words', percentOff: 1 }), 'VALIDATION_FAILED');
    expectProblem(await create({ code: '', percentOff: 1 }), 'VALIDATION_FAILED');
  });

  it('is admin only: 403 to a customer, 401 anonymous', async () => {
    expectProblem(
      await t
        .http()
        .post('/api/v1/promotions')
        .set(customer.auth)
        .send({ code: code(), percentOff: 5 }),
      'FORBIDDEN',
    );
    expectProblem(await t.http().get('/api/v1/promotions').set(customer.auth), 'FORBIDDEN');
    expectProblem(await t.http().get('/api/v1/promotions'), 'UNAUTHENTICATED');
  });

  it('reads one with its ETag (304 on If-None-Match) and lists pages', async () => {
    const created = await create({ code: code(), percentOff: 20 }).expect(201);
    const one = await t
      .http()
      .get(`/api/v1/promotions/${created.body.id}`)
      .set(admin.auth)
      .expect(200);
    expect(one.body).toEqual(created.body);
    expect(one.headers.etag).toBe(created.headers.etag);
    await t
      .http()
      .get(`/api/v1/promotions/${created.body.id}`)
      .set(admin.auth)
      .set('If-None-Match', one.headers.etag)
      .expect(304);
    const page = await t
      .http()
      .get('/api/v1/promotions?limit=1&offset=0')
      .set(admin.auth)
      .expect(200);
    expect(page.body).toMatchObject({ limit: 1, offset: 0 });
    expect(page.body.items).toHaveLength(1);
    expect(page.body.total).toBeGreaterThanOrEqual(1);
    expectProblem(
      await t.http().get('/api/v1/promotions?limit=1000').set(admin.auth),
      'VALIDATION_FAILED',
    );
    expectProblem(
      await t.http().get(`/api/v1/promotions/${randomUUIDLike()}`).set(admin.auth),
      'NOT_FOUND',
    );
  });

  it('PATCH needs a precondition (428), refuses a stale one (412 with current), applies a fresh one', async () => {
    const created = await create({ code: code(), percentOff: 20 }).expect(201);
    const path = `/api/v1/promotions/${created.body.id}`;
    expectProblem(
      await t.http().patch(path).set(admin.auth).send({ active: false }),
      'PRECONDITION_REQUIRED',
    );
    const changed = await t
      .http()
      .patch(path)
      .set(admin.auth)
      .set('If-Match', created.headers.etag)
      .send({ amountOffCents: 300, currency: 'EUR', usageLimit: 3, endsAt: '2031-01-01T00:00:00Z' })
      .expect(200);
    expect(changed.body).toMatchObject({
      percentOff: null,
      amountOffCents: 300,
      currency: 'EUR',
      usageLimit: 3,
      endsAt: '2031-01-01T00:00:00.000Z',
      version: 2,
    });
    const stale = await t
      .http()
      .patch(path)
      .set(admin.auth)
      .set('If-Match', created.headers.etag)
      .send({ active: false });
    expectProblem(stale, 'PRECONDITION_FAILED');
    expect(stale.body.current).toMatchObject({ version: 2 });
    const mismatch = await t.http().patch(path).set(admin.auth).send({ version: 1, active: false });
    expectProblem(mismatch, 'VERSION_MISMATCH');
    // A currency without an amount, as the terms would be after the change: 400, nothing changed.
    expectProblem(
      await t
        .http()
        .patch(path)
        .set(admin.auth)
        .set('If-Match', changed.headers.etag)
        .send({ percentOff: 5, currency: 'EUR' }),
      'VALIDATION_FAILED',
    );
    const cleared = await t
      .http()
      .patch(path)
      .set(admin.auth)
      .set('If-Match', changed.headers.etag)
      .send({ percentOff: 5, usageLimit: null, endsAt: null })
      .expect(200);
    expect(cleared.body).toMatchObject({
      percentOff: 5,
      amountOffCents: null,
      currency: null,
      usageLimit: null,
      endsAt: null,
      version: 3,
    });
  });

  it('PATCH to a taken code → 409 PROMOTION_CODE_TAKEN', async () => {
    const a = await create({ code: code(), percentOff: 20 }).expect(201);
    const b = await create({ code: code(), percentOff: 20 }).expect(201);
    const res = await t
      .http()
      .patch(`/api/v1/promotions/${b.body.id}`)
      .set(admin.auth)
      .set('If-Match', b.headers.etag)
      .send({ code: a.body.code.toLowerCase() });
    expectProblem(res, 'PROMOTION_CODE_TAKEN');
    expect(res.body.conflictingResource).toBe(`/api/v1/promotions/${a.body.id}`);
  });

  it('DELETE needs a precondition and deletes an unused code', async () => {
    const created = await create({ code: code(), percentOff: 20 }).expect(201);
    const path = `/api/v1/promotions/${created.body.id}`;
    expectProblem(await t.http().delete(path).set(admin.auth), 'PRECONDITION_REQUIRED');
    await t.http().delete(path).set(admin.auth).set('If-Match', created.headers.etag).expect(204);
    expectProblem(await t.http().get(path).set(admin.auth), 'NOT_FOUND');
  });

  it('a use taken and given back (checkout, cancel, expiry) moves timesUsed, not the version: the ETag read before stays fresh', async () => {
    const created = await create({ code: code(), percentOff: 10 }).expect(201);
    const path = `/api/v1/promotions/${created.body.id}`;
    const p = await createProduct(t, admin, { stock: 10 });
    const order = () =>
      t
        .http()
        .post('/api/v1/orders')
        .set(customer.auth)
        .send({ items: [{ productId: p.id, quantity: 1 }], promotionCode: created.body.code })
        .expect(201);
    const [kept, cancelled, expired] = [await order(), await order(), await order()];
    expect((await act(t, customer, cancelled.body.id, 'cancel')).status).toBe(200);
    await t.db.query(
      `UPDATE orders SET expires_at = clock_timestamp() - interval '1 second' WHERE id = $1`,
      [expired.body.id],
    );
    await t.http().get(`/api/v1/orders/${expired.body.id}`).set(customer.auth).expect(200);
    const [row] = await t.db.query('SELECT status FROM orders WHERE id = $1', [expired.body.id]);
    expect(row.status).toBe('expired');
    const now = await t.http().get(path).set(admin.auth).expect(200);
    expect(now.body).toMatchObject({ timesUsed: 1, version: 1 });
    expect(now.headers.etag).toBe(created.headers.etag);
    const patched = await t
      .http()
      .patch(path)
      .set(admin.auth)
      .set('If-Match', created.headers.etag)
      .send({ usageLimit: 5 })
      .expect(200);
    expect(patched.body).toMatchObject({ timesUsed: 1, version: 2, usageLimit: 5 });
    expect(kept.body.promotionCode).toBe(created.body.code);
  });

  it('DELETE of a code an order references → 409 RESOURCE_IN_USE, nothing deleted', async () => {
    const created = await create({ code: code(), percentOff: 20 }).expect(201);
    // An order naming the code, written directly (the checkout's own tests place them).
    await t.db.query(
      `INSERT INTO orders (user_id, status, total_cents, currency, expires_at, promotion_id,
                           promotion_code, promotion_percent_off)
       VALUES ($1, 'pending', 100, 'EUR', now() + interval '1 hour', $2, $3, 20)`,
      [customer.id, created.body.id, created.body.code],
    );
    const res = await t
      .http()
      .delete(`/api/v1/promotions/${created.body.id}`)
      .set(admin.auth)
      .set('If-Match', created.headers.etag);
    expectProblem(res, 'RESOURCE_IN_USE');
    expect(res.body.dependents).toEqual({ orders: 1 });
    const rows = await t.db.query('SELECT 1 FROM promotions WHERE id = $1', [created.body.id]);
    expect(rows).toHaveLength(1);
  });
});

function randomUUIDLike(): string {
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
