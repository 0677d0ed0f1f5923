import { type Account, account, expectProblem } from '../support/http';
import { createProduct, productInput, productRow, stockOf } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

describe('products', () => {
  let t: TestApp;
  let admin: Account;
  let customer: Account;
  beforeAll(async () => {
    t = await createTestApp();
    admin = await account(t, 'admin');
    customer = await account(t, 'customer');
  });
  afterAll(() => t.close());

  describe('create', () => {
    it('answers 201 with Location, a strong ETag and Last-Modified', async () => {
      const input = productInput({ description: 'Soft.' });
      const res = await t.http().post('/api/v1/products').set(admin.auth).send(input).expect(201);
      const { stock, ...own } = input;
      expect(res.body).toMatchObject({ ...own, version: 1, active: true });
      // Stock is its own resource (API.md §13): the create took it, the product does not carry it.
      expect(res.body).not.toHaveProperty('stock');
      expect(await stockOf(t, res.body.id)).toBe(stock);
      expect(res.headers.location).toBe(`/api/v1/products/${res.body.id}`);
      expect(res.headers.etag).toMatch(/^"[^"]+"$/);
      expect(res.headers['last-modified']).toBeDefined();
    });

    it('answers 403 FORBIDDEN to a customer and 401 to an anonymous caller, creating nothing', async () => {
      const input = productInput();
      expectProblem(
        await t.http().post('/api/v1/products').set(customer.auth).send(input),
        'FORBIDDEN',
      );
      expectProblem(await t.http().post('/api/v1/products').send(input), 'UNAUTHENTICATED');
      const rows = await t.db.query('SELECT 1 FROM products WHERE sku = $1', [input.sku]);
      expect(rows).toHaveLength(0);
    });

    it('answers 409 SKU_TAKEN for the same SKU in another case, naming the existing product', async () => {
      const first = await createProduct(t, admin);
      const res = await t
        .http()
        .post('/api/v1/products')
        .set(admin.auth)
        .send(productInput({ sku: `  ${first.body.sku.toLowerCase()} ` }));
      expectProblem(res, 'SKU_TAKEN');
      expect(res.body).toMatchObject({
        field: 'sku',
        value: first.body.sku.toLowerCase(),
        conflictingResource: `/api/v1/products/${first.id}`,
      });
      const [{ n }] = await t.db.query(
        'SELECT count(*)::int AS n FROM products WHERE upper(sku) = upper($1)',
        [first.body.sku],
      );
      expect(n).toBe(1);
    });

    it('answers 409 SLUG_TAKEN for a taken slug', async () => {
      const first = await createProduct(t, admin);
      const res = await t
        .http()
        .post('/api/v1/products')
        .set(admin.auth)
        .send(productInput({ slug: first.body.slug }));
      expectProblem(res, 'SLUG_TAKEN');
      expect(res.body).toMatchObject({
        field: 'slug',
        value: first.body.slug,
        conflictingResource: `/api/v1/products/${first.id}`,
      });
    });

    it('lets exactly one of 20 parallel creates of one SKU in mixed case succeed', async () => {
      const sku = `RACE-${Date.now()}`;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          t
            .http()
            .post('/api/v1/products')
            .set(admin.auth)
            .send(
              productInput({
                sku: i % 3 === 0 ? sku.toLowerCase() : i % 3 === 1 ? sku : ` ${sku} `,
              }),
            ),
        ),
      );
      expect(results.filter((r) => r.status === 201)).toHaveLength(1);
      const losers = results.filter((r) => r.status !== 201);
      expect(losers).toHaveLength(19);
      for (const r of losers) expectProblem(r, 'SKU_TAKEN');
      const [{ n }] = await t.db.query(
        'SELECT count(*)::int AS n FROM products WHERE upper(sku) = $1',
        [sku.toUpperCase()],
      );
      expect(n).toBe(1);
    });

    it('rejects bad fields all at once: negative price, bad currency, bad slug, fractional stock', async () => {
      const res = await t
        .http()
        .post('/api/v1/products')
        .set(admin.auth)
        .send({
          ...productInput(),
          priceCents: -1,
          currency: 'EURO',
          slug: 'Not A Slug',
          stock: 1.5,
        });
      expectProblem(res, 'VALIDATION_FAILED');
      const fields = (res.body.errors as { field: string }[]).map((e) => e.field);
      expect(new Set(fields)).toEqual(new Set(['priceCents', 'currency', 'slug', 'stock']));
    });
  });

  describe('read', () => {
    it('serves one product publicly with ETag, and 304 on a matching If-None-Match', async () => {
      const p = await createProduct(t, admin);
      const res = await t.http().get(`/api/v1/products/${p.id}`).expect(200);
      expect(res.headers.etag).toBe(p.etag);
      const again = await t
        .http()
        .get(`/api/v1/products/${p.id}`)
        .set('If-None-Match', `"other", W/${p.etag}`);
      expect(again.status).toBe(304);
      expect(again.headers.etag).toBe(p.etag);
      expect(again.text).toBe('');
    });

    it('answers 404 for an unknown id and 400 for a malformed one', async () => {
      expectProblem(
        await t.http().get('/api/v1/products/00000000-0000-4000-8000-000000000000'),
        'NOT_FOUND',
      );
      const bad = await t.http().get('/api/v1/products/not-a-uuid');
      expectProblem(bad, 'VALIDATION_FAILED');
      expect(bad.body.errors).toEqual([{ field: 'id', message: 'id must be a UUID' }]);
    });

    it('lists with a page size limit, a stable order, text and active filters, and a list ETag', async () => {
      const tag = `flt${Date.now()}`;
      const a = await createProduct(t, admin, { name: `Alpha ${tag}` });
      const b = await createProduct(t, admin, { name: `Beta ${tag}`, active: false });
      const all = await t.http().get('/api/v1/products').query({ q: tag }).expect(200);
      expect(all.body.items.map((p: { id: string }) => p.id)).toEqual([a.id, b.id]);
      expect(all.body.total).toBe(2);
      const active = await t
        .http()
        .get('/api/v1/products')
        .query({ q: tag, active: 'true' })
        .expect(200);
      expect(active.body.items.map((p: { id: string }) => p.id)).toEqual([a.id]);
      const page = await t
        .http()
        .get('/api/v1/products')
        .query({ q: tag, limit: 1, offset: 1 })
        .expect(200);
      expect(page.body).toMatchObject({ total: 2, limit: 1, offset: 1 });
      expect(page.body.items.map((p: { id: string }) => p.id)).toEqual([b.id]);
      expect(
        (
          await t
            .http()
            .get('/api/v1/products')
            .query({ q: tag })
            .set('If-None-Match', all.headers.etag)
        ).status,
      ).toBe(304);
      expectProblem(
        await t.http().get('/api/v1/products').query({ limit: 1000 }),
        'VALIDATION_FAILED',
      );
      expectProblem(
        await t.http().get('/api/v1/products').query({ color: 'red' }),
        'VALIDATION_FAILED',
      );
    });

    it('treats LIKE wildcards in the search text literally', async () => {
      const res = await t.http().get('/api/v1/products').query({ q: '%' }).expect(200);
      expect(res.body.total).toBe(0);
    });
  });

  describe('update with preconditions', () => {
    const patch = (id: string) => t.http().patch(`/api/v1/products/${id}`).set(admin.auth);

    it('applies a PATCH with the current If-Match and returns the new version and ETag', async () => {
      const p = await createProduct(t, admin);
      const res = await patch(p.id).set('If-Match', p.etag).send({ name: 'Renamed' }).expect(200);
      expect(res.body).toMatchObject({ name: 'Renamed', version: 2, sku: p.body.sku });
      expect(res.headers.etag).not.toBe(p.etag);
      expect((await productRow(t, p.id))?.name).toBe('Renamed');
    });

    it('answers 412 with the current state and changes nothing when If-Match is stale', async () => {
      const p = await createProduct(t, admin);
      const v2 = await patch(p.id).set('If-Match', p.etag).send({ name: 'First' }).expect(200);
      const res = await patch(p.id).set('If-Match', p.etag).send({ name: 'Second' });
      expectProblem(res, 'PRECONDITION_FAILED');
      expect(res.body).toMatchObject({
        currentVersion: 2,
        currentEtag: v2.headers.etag,
        current: { name: 'First', version: 2 },
      });
      expect(await productRow(t, p.id)).toMatchObject({ name: 'First', version: 2 });
    });

    it('never matches a weak If-Match, accepts lists and *', async () => {
      const p = await createProduct(t, admin);
      expectProblem(
        await patch(p.id).set('If-Match', `W/${p.etag}`).send({ name: 'x' }),
        'PRECONDITION_FAILED',
      );
      const listed = await patch(p.id)
        .set('If-Match', `"nope", ${p.etag}`)
        .send({ name: 'Listed' })
        .expect(200);
      expect(listed.body.version).toBe(2);
      const star = await patch(p.id).set('If-Match', '*').send({ name: 'Star' }).expect(200);
      expect(star.body.version).toBe(3);
    });

    it('answers 409 VERSION_MISMATCH for a stale body version, with the current state', async () => {
      const p = await createProduct(t, admin);
      await patch(p.id).send({ version: 1, priceCents: 999 }).expect(200);
      const res = await patch(p.id).send({ version: 1, priceCents: 1 });
      expectProblem(res, 'VERSION_MISMATCH');
      expect(res.body).toMatchObject({
        requestedVersion: 1,
        currentVersion: 2,
        current: { priceCents: 999 },
      });
      expect(res.body.currentEtag).toMatch(/^"/);
      expect(await productRow(t, p.id)).toMatchObject({ price_cents: 999, version: 2 });
    });

    it('answers 428 explaining how to resubmit when no precondition is given', async () => {
      const p = await createProduct(t, admin);
      const res = await patch(p.id).send({ name: 'Blind write' });
      expectProblem(res, 'PRECONDITION_REQUIRED');
      expect(res.body.detail).toContain('If-Match');
      expect(res.body.detail).toContain(p.etag);
      expect(await productRow(t, p.id)).toMatchObject({ name: p.body.name, version: 1 });
    });

    it('honours If-Unmodified-Since', async () => {
      const p = await createProduct(t, admin);
      const past = new Date(Date.now() - 3_600_000).toUTCString();
      expectProblem(
        await patch(p.id).set('If-Unmodified-Since', past).send({ name: 'x' }),
        'PRECONDITION_FAILED',
      );
      const future = new Date(Date.now() + 3_600_000).toUTCString();
      await patch(p.id).set('If-Unmodified-Since', future).send({ name: 'Fresh' }).expect(200);
    });

    it('answers 404, not 412, for an unknown id even with a precondition', async () => {
      const res = await patch('00000000-0000-4000-8000-000000000000')
        .set('If-Match', '"whatever"')
        .send({ name: 'x' });
      expectProblem(res, 'NOT_FOUND');
    });

    it('answers 409 SKU_TAKEN when renaming onto another SKU, changing nothing', async () => {
      const a = await createProduct(t, admin);
      const b = await createProduct(t, admin);
      const res = await patch(b.id).set('If-Match', b.etag).send({ sku: a.body.sku.toLowerCase() });
      expectProblem(res, 'SKU_TAKEN');
      expect(res.body.conflictingResource).toBe(`/api/v1/products/${a.id}`);
      expect(await productRow(t, b.id)).toMatchObject({ sku: b.body.sku, version: 1 });
    });

    it('lets exactly one of 50 PATCHes holding the same If-Match win', async () => {
      const p = await createProduct(t, admin);
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          patch(p.id)
            .set('If-Match', p.etag)
            .send({ name: `Writer ${i}` }),
        ),
      );
      const ok = results.filter((r) => r.status === 200);
      expect(ok).toHaveLength(1);
      const failed = results.filter((r) => r.status !== 200);
      expect(failed).toHaveLength(49);
      for (const r of failed) expectProblem(r, 'PRECONDITION_FAILED');
      expect(await productRow(t, p.id)).toMatchObject({ version: 2, name: ok[0].body.name });
    });

    it('loses no update when 30 clients read-modify-write with If-Match and retry on 412', async () => {
      const p = await createProduct(t, admin, { priceCents: 0 });
      const client = async (): Promise<number> => {
        for (let attempt = 1; attempt <= 200; attempt++) {
          const current = await t.http().get(`/api/v1/products/${p.id}`).expect(200);
          const res = await patch(p.id)
            .set('If-Match', current.headers.etag)
            .send({ priceCents: current.body.priceCents + 1 });
          if (res.status === 200) return attempt;
          expectProblem(res, 'PRECONDITION_FAILED');
        }
        throw new Error('gave up');
      };
      await Promise.all(Array.from({ length: 30 }, client));
      expect(await productRow(t, p.id)).toMatchObject({ price_cents: 30, version: 31 });
    });
  });

  describe('delete with preconditions', () => {
    it('deletes with the current If-Match, answers 412 when stale and 428 without', async () => {
      const p = await createProduct(t, admin);
      expectProblem(
        await t.http().delete(`/api/v1/products/${p.id}`).set(admin.auth),
        'PRECONDITION_REQUIRED',
      );
      expectProblem(
        await t
          .http()
          .delete(`/api/v1/products/${p.id}`)
          .set(admin.auth)
          .set('If-Match', '"stale"'),
        'PRECONDITION_FAILED',
      );
      expect(await productRow(t, p.id)).toBeDefined();
      await t
        .http()
        .delete(`/api/v1/products/${p.id}`)
        .set(admin.auth)
        .set('If-Match', p.etag)
        .expect(204);
      expect(await productRow(t, p.id)).toBeUndefined();
      expectProblem(
        await t.http().delete(`/api/v1/products/${p.id}`).set(admin.auth).set('If-Match', p.etag),
        'NOT_FOUND',
      );
    });
  });

  describe('stock adjustments', () => {
    const adjust = (id: string, delta: number) =>
      t
        .http()
        .post(`/api/v1/products/${id}/stock-adjustments`)
        .set(admin.auth)
        .send({ delta, reason: 'test' });

    it("applies a relative change and answers the stock, whose version moves and the product's does not", async () => {
      const p = await createProduct(t, admin, { stock: 5 });
      const res = await adjust(p.id, 7).expect(200);
      expect(res.body).toEqual({
        productId: p.id,
        stock: 12,
        version: 2,
        updatedAt: expect.any(String),
      });
      const stock = await t.http().get(`/api/v1/products/${p.id}/stock`).expect(200);
      expect(res.headers.etag).toBe(stock.headers.etag);
      const product = await t.http().get(`/api/v1/products/${p.id}`).expect(200);
      expect(product.headers.etag).toBe(p.etag);
      expect(product.body.version).toBe(1);
    });

    it('answers 409 INSUFFICIENT_STOCK with what is available, changing nothing', async () => {
      const p = await createProduct(t, admin, { stock: 2 });
      const res = await adjust(p.id, -3);
      expectProblem(res, 'INSUFFICIENT_STOCK');
      expect(res.body).toMatchObject({
        available: 2,
        items: [{ productId: p.id, sku: p.body.sku, requested: 3, available: 2 }],
      });
      expect(await productRow(t, p.id)).toMatchObject({ stock: 2, stock_version: 1, version: 1 });
    });

    it('answers 404 for an unknown product and 400 for a zero delta', async () => {
      expectProblem(await adjust('00000000-0000-4000-8000-000000000000', 1), 'NOT_FOUND');
      const p = await createProduct(t, admin);
      expectProblem(await adjust(p.id, 0), 'VALIDATION_FAILED');
    });

    it('takes exactly 60 of 100 parallel −1 adjustments on stock 60, ending at 0', async () => {
      const p = await createProduct(t, admin, { stock: 60 });
      const results = await Promise.all(Array.from({ length: 100 }, () => adjust(p.id, -1)));
      expect(results.filter((r) => r.status === 200)).toHaveLength(60);
      const refused = results.filter((r) => r.status !== 200);
      expect(refused).toHaveLength(40);
      for (const r of refused) expectProblem(r, 'INSUFFICIENT_STOCK');
      expect(await productRow(t, p.id)).toMatchObject({ stock: 0, stock_version: 61, version: 1 });
    });
  });
});
