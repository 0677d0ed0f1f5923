import { setTimeout as sleep } from 'node:timers/promises';
import { type Account, account, expectProblem } from '../support/http';
import { createProduct, productInput, productRow, stockResource } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * Stock is its own resource (issue 25, API.md §13): `GET/PUT /products/{id}/stock`, adjustments
 * answering the stock, no `stock` in the product, `include=stock` on the list.
 */
describe('stock as its own resource', () => {
  let t: TestApp;
  let admin: Account;
  let customer: Account;
  beforeAll(async () => {
    t = await createTestApp();
    admin = await account(t, 'admin');
    customer = await account(t, 'customer');
  });
  afterAll(() => t.close());

  const stockUrl = (id: string) => `/api/v1/products/${id}/stock`;
  const put = (id: string, headers: Record<string, string>, body: object) =>
    t.http().put(stockUrl(id)).set(admin.auth).set(headers).send(body);

  describe('GET /products/{id}/stock', () => {
    it('answers anyone with {productId, stock, version, updatedAt}, a strong ETag of its own and Last-Modified; 304 on If-None-Match', async () => {
      const p = await createProduct(t, admin, { stock: 7 });
      const res = await t.http().get(stockUrl(p.id)).expect(200);
      expect(res.body).toEqual({
        productId: p.id,
        stock: 7,
        version: 1,
        updatedAt: expect.any(String),
      });
      expect(res.headers.etag).toMatch(/^"[^W][^"]*"$/);
      expect(res.headers.etag).not.toBe(p.etag);
      expect(res.headers['last-modified']).toBeDefined();
      const again = await t
        .http()
        .get(stockUrl(p.id))
        .set(customer.auth)
        .set('If-None-Match', res.headers.etag)
        .expect(304);
      expect(again.headers.etag).toBe(res.headers.etag);
      expect(again.text).toBe('');
    });

    it('answers 404 for an unknown product and 400 for an id that is not a UUID', async () => {
      expectProblem(
        await t.http().get(stockUrl('00000000-0000-4000-8000-000000000000')),
        'NOT_FOUND',
      );
      expectProblem(await t.http().get(stockUrl('nope')), 'VALIDATION_FAILED');
    });
  });

  describe('PUT /products/{id}/stock (a stock-take)', () => {
    it("sets the level with the stock's If-Match; the stock's version and ETag move, the product's do not", async () => {
      const p = await createProduct(t, admin, { stock: 7 });
      const before = await stockResource(t, p.id);
      const res = await put(p.id, { 'If-Match': before.etag }, { stock: 40 }).expect(200);
      expect(res.body).toMatchObject({ productId: p.id, stock: 40, version: 2 });
      expect(res.headers.etag).not.toBe(before.etag);
      expect((await stockResource(t, p.id)).etag).toBe(res.headers.etag);
      const product = await t.http().get(`/api/v1/products/${p.id}`).expect(200);
      expect(product.headers.etag).toBe(p.etag);
      expect(product.body.version).toBe(1);
      // The same level counted again is still a stock-take: its version moves.
      const same = await put(p.id, { 'If-Match': res.headers.etag }, { stock: 40 }).expect(200);
      expect(same.body).toMatchObject({ stock: 40, version: 3 });
    });

    it('answers 428 without a precondition, naming the ETag and the body version', async () => {
      const p = await createProduct(t, admin, { stock: 7 });
      const { etag } = await stockResource(t, p.id);
      const res = await put(p.id, {}, { stock: 1 });
      expectProblem(res, 'PRECONDITION_REQUIRED');
      expect(res.body.detail).toContain(etag);
      expect(res.body.detail).toContain('"version": 1');
      expect((await productRow(t, p.id))!.stock).toBe(7);
    });

    it('answers 412 for a stale If-Match and 409 VERSION_MISMATCH for a stale body version, with the stock as `current`', async () => {
      const p = await createProduct(t, admin, { stock: 7 });
      const { etag } = await stockResource(t, p.id);
      await t
        .http()
        .post(`/api/v1/products/${p.id}/stock-adjustments`)
        .set(admin.auth)
        .send({ delta: -2, reason: 'broken' })
        .expect(200);
      const now = await stockResource(t, p.id);
      const stale = await put(p.id, { 'If-Match': etag }, { stock: 100 });
      expectProblem(stale, 'PRECONDITION_FAILED');
      expect(stale.body).toMatchObject({
        currentVersion: 2,
        currentEtag: now.etag,
        current: { productId: p.id, stock: 5, version: 2 },
      });
      const mismatch = await put(p.id, {}, { stock: 100, version: 1 });
      expectProblem(mismatch, 'VERSION_MISMATCH');
      expect(mismatch.body).toMatchObject({
        requestedVersion: 1,
        currentVersion: 2,
        currentEtag: now.etag,
        current: { stock: 5, version: 2 },
      });
      // The product's ETag is no precondition of its stock.
      expectProblem(await put(p.id, { 'If-Match': p.etag }, { stock: 100 }), 'PRECONDITION_FAILED');
      await put(p.id, {}, { stock: 100, version: 2 }).expect(200);
      expect((await productRow(t, p.id))!.stock).toBe(100);
    });

    it('takes If-Unmodified-Since on the stock’s own Last-Modified', async () => {
      const p = await createProduct(t, admin, { stock: 7 });
      const future = new Date(Date.now() + 60_000).toUTCString();
      expectProblem(
        await put(p.id, { 'If-Unmodified-Since': 'Sun, 06 Nov 1994 08:49:37 GMT' }, { stock: 1 }),
        'PRECONDITION_FAILED',
      );
      const ok = await put(p.id, { 'If-Unmodified-Since': future }, { stock: 3 }).expect(200);
      expect(ok.body).toMatchObject({ stock: 3, version: 2 });
    });

    /**
     * §3's one-second rule per resource: a sale is a version of the stock, not of the product.
     * Each case starts at a fresh second and checks, from the database, that its writes fell in one
     * second (a case that straddled a boundary on a loaded machine is run again, at most 4 times).
     */
    const inOneSecond = async (
      writes: (p: Awaited<ReturnType<typeof createProduct>>) => Promise<void>,
      sameSecond: (row: Record<string, Date>) => boolean,
    ) => {
      for (let attempt = 0; attempt < 4; attempt++) {
        const p = await createProduct(t, admin, { stock: 50 });
        await sleep(1000 - (Date.now() % 1000) + 20);
        await writes(p);
        const row = (await productRow(t, p.id))!;
        if (sameSecond(row)) return { p, second: new Date(secondOf(row.updated_at)) };
      }
      throw new Error('4 attempts each straddled a second boundary');
    };
    const secondOf = (d: Date) => Math.floor(d.getTime() / 1000) * 1000;
    const sale = (id: string) =>
      t
        .http()
        .post('/api/v1/orders')
        .set(customer.auth)
        .send({ items: [{ productId: id, quantity: 1 }] })
        .expect(201);

    it('a product edit and a sale in the same second: PATCH with If-Unmodified-Since of that second → 200', async () => {
      const { p } = await inOneSecond(
        async (p) => {
          await t
            .http()
            .patch(`/api/v1/products/${p.id}`)
            .set(admin.auth)
            .set('If-Match', p.etag)
            .send({ name: 'Edited' })
            .expect(200);
          await sale(p.id);
        },
        (row) =>
          secondOf(row.updated_at) === secondOf(row.stock_updated_at) &&
          secondOf(row.previous_updated_at) < secondOf(row.updated_at),
      );
      const row = (await productRow(t, p.id))!;
      expect(row).toMatchObject({ version: 2, stock_version: 2 });
      const res = await t
        .http()
        .patch(`/api/v1/products/${p.id}`)
        .set(admin.auth)
        .set('If-Unmodified-Since', new Date(secondOf(row.updated_at)).toUTCString())
        .send({ priceCents: 1999 })
        .expect(200);
      expect(res.body).toMatchObject({ version: 3, priceCents: 1999 });
    });

    it('two sales in one second: PUT /stock with If-Unmodified-Since of that second → 412 (use If-Match); the product’s PATCH → 200', async () => {
      const { p, second: productSecond } = await inOneSecond(
        async (p) => {
          await sale(p.id);
          await sale(p.id);
        },
        (row) => secondOf(row.stock_updated_at) === secondOf(row.stock_previous_updated_at),
      );
      const row = (await productRow(t, p.id))!;
      expect(row).toMatchObject({ version: 1, stock: 48, stock_version: 3 });
      const since = new Date(secondOf(row.stock_updated_at)).toUTCString();
      const take = await put(p.id, { 'If-Unmodified-Since': since }, { stock: 10 });
      expectProblem(take, 'PRECONDITION_FAILED');
      expect(take.body.detail).toContain('more than once within the second');
      expect(take.body.current).toMatchObject({ stock: 48, version: 3 });
      // The product did not change in that second (nor after its creation, before it).
      expect(productSecond.getTime()).toBeLessThan(secondOf(row.stock_updated_at));
      await t
        .http()
        .patch(`/api/v1/products/${p.id}`)
        .set(admin.auth)
        .set('If-Unmodified-Since', since)
        .send({ priceCents: 1999 })
        .expect(200);
    });

    it('refuses customers (403), bad levels and bad versions (400 naming the field), unknown products (404)', async () => {
      const p = await createProduct(t, admin, { stock: 7 });
      const { etag } = await stockResource(t, p.id);
      expectProblem(
        await t
          .http()
          .put(stockUrl(p.id))
          .set(customer.auth)
          .set('If-Match', etag)
          .send({ stock: 1 }),
        'FORBIDDEN',
      );
      for (const [body, field] of [
        [{}, 'stock'],
        [{ stock: -1 }, 'stock'],
        [{ stock: 1.5 }, 'stock'],
        [{ stock: null }, 'stock'],
        [{ stock: '5' }, 'stock'],
        [{ stock: 1_000_000_001 }, 'stock'],
        [{ stock: 1, version: 0 }, 'version'],
        [{ stock: 1, version: null }, 'version'],
        [{ stock: 1, delta: 2 }, 'delta'],
      ] as const) {
        const res = await put(p.id, { 'If-Match': etag }, body);
        expectProblem(res, 'VALIDATION_FAILED');
        expect((res.body.errors as { field: string }[]).map((e) => e.field)).toContain(field);
      }
      expectProblem(
        await put('00000000-0000-4000-8000-000000000000', { 'If-Match': etag }, { stock: 1 }),
        'NOT_FOUND',
      );
      expect((await productRow(t, p.id))!).toMatchObject({ stock: 7, stock_version: 1 });
    });
  });

  describe('the product without stock', () => {
    it('answers 400 naming `stock` on PATCH, changing nothing', async () => {
      const p = await createProduct(t, admin, { stock: 7 });
      const res = await t
        .http()
        .patch(`/api/v1/products/${p.id}`)
        .set(admin.auth)
        .set('If-Match', p.etag)
        .send({ stock: 3, name: 'Renamed' });
      expectProblem(res, 'VALIDATION_FAILED');
      expect(res.body.errors).toEqual([
        { field: 'stock', message: expect.stringContaining('PUT /products/{id}/stock') },
      ]);
      expect(await productRow(t, p.id)).toMatchObject({ stock: 7, version: 1, name: p.body.name });
    });

    it('answers 400 naming `stock` on a replacing PUT by SKU before its preconditions (stale If-Match, none, unknown SKU); a create takes it', async () => {
      const p = await createProduct(t, admin, { stock: 7 });
      const { sku, stock, ...rest } = productInput({ name: 'Replaced' });
      void stock;
      const putBySku = (code: string, headers: Record<string, string>, body: object) =>
        t.http().put(`/api/v1/products/sku/${code}`).set(admin.auth).set(headers).send(body);
      const refused = [
        await putBySku(p.body.sku, { 'If-Match': '"stale"' }, { ...rest, stock: 3 }),
        await putBySku(p.body.sku, {}, { ...rest, stock: 3 }),
        await putBySku(
          p.body.sku,
          { 'If-Unmodified-Since': 'Sun, 06 Nov 1994 08:49:37 GMT' },
          {
            ...rest,
            stock: 3,
          },
        ),
        await putBySku(sku, { 'If-Match': p.etag }, { ...rest, stock: 3 }),
      ];
      for (const res of refused) {
        expectProblem(res, 'VALIDATION_FAILED');
        expect(res.body.errors).toEqual([
          { field: 'stock', message: expect.stringContaining('PUT /products/{id}/stock') },
        ]);
      }
      expect(await productRow(t, p.id)).toMatchObject({ stock: 7, version: 1, name: p.body.name });
      // Without stock the same requests meet their preconditions: 412, 428, 412, 404.
      expectProblem(
        await putBySku(p.body.sku, { 'If-Match': '"stale"' }, rest),
        'PRECONDITION_FAILED',
      );
      expectProblem(await putBySku(p.body.sku, {}, rest), 'PRECONDITION_REQUIRED');
      expectProblem(await putBySku(sku, { 'If-Match': p.etag }, rest), 'NOT_FOUND');
      const created = await putBySku(sku, { 'If-None-Match': '*' }, { ...rest, stock: 4 }).expect(
        201,
      );
      expect((await stockResource(t, created.body.id)).body).toMatchObject({ stock: 4 });
    });

    it("a price edit moves the product's version and ETag, not the stock's", async () => {
      const p = await createProduct(t, admin, { stock: 7 });
      const stock = await stockResource(t, p.id);
      const res = await t
        .http()
        .patch(`/api/v1/products/${p.id}`)
        .set(admin.auth)
        .set('If-Match', p.etag)
        .send({ priceCents: 999 })
        .expect(200);
      expect(res.body.version).toBe(2);
      expect(res.body).not.toHaveProperty('stock');
      expect(await stockResource(t, p.id)).toEqual(stock);
    });

    it('creates with stock 0 when the create leaves it out', async () => {
      const { stock, ...input } = productInput();
      void stock;
      const res = await t.http().post('/api/v1/products').set(admin.auth).send(input).expect(201);
      expect((await stockResource(t, res.body.id)).body).toMatchObject({ stock: 0, version: 1 });
    });
  });

  it('the problem pages say how to merge a stock-take and that stock is its own resource', async () => {
    const page = async (slug: string) => (await t.http().get(`/problems/${slug}`).expect(200)).text;
    const failed = await page('precondition-failed');
    expect(failed).toContain('PUT /products/{id}/stock');
    expect(failed).toContain('current.stock');
    expect(failed).toContain('If-Match: *');
    expect(await page('validation-failed')).toContain('PUT /products/{id}/stock');
    const guide = (await t.http().get('/problems/guide').expect(200)).text;
    const section = guide.slice(guide.indexOf('id="precondition_failed"'));
    expect(section.slice(0, section.indexOf('id="payload_too_large"'))).toMatch(
      /selling continuously[\s\S]*If-Match: \*[\s\S]*stock-adjustments/,
    );
  });

  describe('GET /products?include=stock', () => {
    it('adds stock to each item only when asked; the ETag covers it', async () => {
      const p = await createProduct(t, admin, { stock: 9 });
      const q = { q: p.body.sku };
      const plain = await t.http().get('/api/v1/products').query(q).expect(200);
      expect(plain.body.items).toHaveLength(1);
      expect(plain.body.items[0]).not.toHaveProperty('stock');
      const withStock = await t
        .http()
        .get('/api/v1/products')
        .query({ ...q, include: 'stock' })
        .expect(200);
      expect(withStock.body.items[0]).toMatchObject({ id: p.id, stock: 9, version: 1 });
      expect(withStock.headers.etag).not.toBe(plain.headers.etag);
      await t
        .http()
        .post(`/api/v1/products/${p.id}/stock-adjustments`)
        .set(admin.auth)
        .send({ delta: -1, reason: 'sold offline' })
        .expect(200);
      // Without stock nothing the list carries changed: still 304; with stock, a new ETag.
      await t
        .http()
        .get('/api/v1/products')
        .query(q)
        .set('If-None-Match', plain.headers.etag)
        .expect(304);
      const after = await t
        .http()
        .get('/api/v1/products')
        .query({ ...q, include: 'stock' })
        .set('If-None-Match', withStock.headers.etag)
        .expect(200);
      expect(after.body.items[0].stock).toBe(8);
    });

    it('answers 400 naming `include` for anything but stock', async () => {
      for (const include of ['price', 'stock,price', '']) {
        const res = await t.http().get('/api/v1/products').query({ include });
        expectProblem(res, 'VALIDATION_FAILED');
        expect(res.body.errors[0].field).toBe('include');
      }
    });
  });
});
