import { randomBytes } from 'node:crypto';
import { type Account, account, expectProblem } from '../support/http';
import { createProduct, productInput, stockOf } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

/** `PUT /products/sku/{sku}` and `GET /products/sku/{sku}`: catalogue sync by natural key. */
describe('products by SKU', () => {
  let t: TestApp;
  let admin: Account;
  let alice: Account;
  beforeAll(async () => {
    t = await createTestApp();
    admin = await account(t, 'admin');
    alice = await account(t);
  });
  afterAll(() => t.close());

  const sku = () => `ERP-${randomBytes(4).toString('hex').toUpperCase()}`;
  const put = (code: string, body: object, headers: Record<string, string>, who = admin) =>
    t.http().put(`/api/v1/products/sku/${code}`).set(who.auth).set(headers).send(body);
  const body = (code?: string, overrides: object = {}) => {
    const { sku: generated, ...rest } = productInput(overrides);
    void generated; // the path names the SKU
    return code ? { ...rest, sku: code } : rest;
  };
  /** A replacing PUT's body: the product without `stock` (its own resource, API.md §13). */
  const replacement = (code?: string, overrides: object = {}) => {
    const { stock, ...rest } = body(code, overrides) as { stock?: number };
    void stock;
    return rest;
  };
  const rowsWithSku = async (code: string) =>
    (
      await t.db.query('SELECT id, name, version FROM products WHERE upper(sku) = upper($1)', [
        code,
      ])
    ).length as number;

  it('creates with If-None-Match: * (201, Location, ETag), then answers 412 with the existing one', async () => {
    const code = sku();
    const created = await put(code, body(), { 'If-None-Match': '*' });
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe(`/api/v1/products/${created.body.id}`);
    expect(created.headers.etag).toMatch(/^"/);
    expect(created.body).toMatchObject({ sku: code, version: 1 });

    const again = await put(code.toLowerCase(), body(undefined, { name: 'Other' }), {
      'If-None-Match': '*',
    });
    expectProblem(again, 'PRECONDITION_FAILED');
    expect(again.body.current).toMatchObject({ id: created.body.id, version: 1 });
    expect(again.body.currentEtag).toBe(created.headers.etag);
    expect(await rowsWithSku(code)).toBe(1);
  });

  it('replaces the whole product with a matching If-Match (200) and refuses a stale one (412)', async () => {
    const code = sku();
    const created = await put(code, body(code, { description: 'first' }), {
      'If-None-Match': '*',
    }).expect(201);
    const withStock = await put(code, body(code, { name: 'Replaced', stock: 3 }), {
      'If-Match': created.headers.etag,
    });
    expectProblem(withStock, 'VALIDATION_FAILED');
    expect(withStock.body.errors).toEqual([
      { field: 'stock', message: expect.stringContaining('PUT /products/{id}/stock') },
    ]);
    const replaced = await put(code, replacement(code, { name: 'Replaced' }), {
      'If-Match': created.headers.etag,
    });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({
      id: created.body.id,
      name: 'Replaced',
      description: '', // the whole product: what the body leaves out takes the create default
      version: 2,
    });
    expect(replaced.body).not.toHaveProperty('stock');
    // The stock is not part of the product: the replace left it as the create set it.
    expect(await stockOf(t, created.body.id)).toBe(10);
    const stale = await put(code, replacement(code, { name: 'Lost update' }), {
      'If-Match': created.headers.etag,
    });
    expectProblem(stale, 'PRECONDITION_FAILED');
    expect(stale.body.current).toMatchObject({ name: 'Replaced', version: 2 });
    const [row] = await t.db.query('SELECT name, version FROM products WHERE id = $1', [
      created.body.id,
    ]);
    expect(row).toEqual({ name: 'Replaced', version: 2 });
  });

  it('answers 428 without a precondition, whether or not the SKU exists, and creates nothing', async () => {
    const code = sku();
    expectProblem(await put(code, body(), {}), 'PRECONDITION_REQUIRED');
    expect(await rowsWithSku(code)).toBe(0);
    await put(code, body(), { 'If-None-Match': '*' }).expect(201);
    // Now a replace: its body without stock (with it, 400 before the precondition).
    expectProblem(await put(code, replacement(), {}), 'PRECONDITION_REQUIRED');
  });

  it('answers 404 for If-Match on a SKU no product has, creating nothing', async () => {
    const code = sku();
    expectProblem(await put(code, replacement(), { 'If-Match': '"x"' }), 'NOT_FOUND');
    expect(await rowsWithSku(code)).toBe(0);
  });

  it('answers 400 when the body names another SKU than the path', async () => {
    const code = sku();
    const res = await put(code, body('SOMETHING-ELSE'), { 'If-None-Match': '*' });
    expectProblem(res, 'VALIDATION_FAILED');
    expect(res.body.errors[0].field).toBe('sku');
    expect(await rowsWithSku(code)).toBe(0);
  });

  it('answers 409 SLUG_TAKEN when the slug belongs to another product', async () => {
    const other = await createProduct(t, admin);
    const res = await put(sku(), body(undefined, { slug: other.body.slug }), {
      'If-None-Match': '*',
    });
    expectProblem(res, 'SLUG_TAKEN');
  });

  it('is for admins only (403), and validates the path SKU (400)', async () => {
    expectProblem(await put(sku(), body(), { 'If-None-Match': '*' }, alice), 'FORBIDDEN');
    expectProblem(
      await put('not%20a%20sku', body(), { 'If-None-Match': '*' }),
      'VALIDATION_FAILED',
    );
  });

  it('lets exactly one of 20 racing creates with If-None-Match: * win; the others get 412', async () => {
    const code = sku();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        put(code, body(undefined, { name: `racer ${i}` }), { 'If-None-Match': '*' }),
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    console.log(`natural-key create race: ${JSON.stringify(count(statuses))}`);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(19);
    expect(await rowsWithSku(code)).toBe(1);
  });

  it('reads by SKU case-insensitively, with ETag and 304', async () => {
    const code = sku();
    const created = await put(code, body(), { 'If-None-Match': '*' }).expect(201);
    const res = await t.http().get(`/api/v1/products/sku/${code.toLowerCase()}`).expect(200);
    expect(res.body.id).toBe(created.body.id);
    expect(res.headers.etag).toBe(created.headers.etag);
    await t
      .http()
      .get(`/api/v1/products/sku/${code}`)
      .set('If-None-Match', created.headers.etag)
      .expect(304);
    expectProblem(await t.http().get(`/api/v1/products/sku/${sku()}`), 'NOT_FOUND');
  });
});

function count(values: number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
