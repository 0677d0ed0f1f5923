import { StockApart1763791500000 } from '../../migrations/1763791500000-StockApart';
import { computeEtag } from '../../src/common/http/etag';
import { type Account, account, expectProblem } from '../support/http';
import { createProduct, productRow } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * What a client holding state from before stock moved apart (issue 25, API.md §13) meets after the
 * deploy: the product's representation lost `stock`, so its old ETag must not be fresh; the stock's
 * history starts as the product's was, its last two changes included.
 */
describe('stock apart, for what was read before the deploy', () => {
  let t: TestApp;
  let admin: Account;
  beforeAll(async () => {
    t = await createTestApp();
    admin = await account(t, 'admin');
  });
  afterAll(() => t.close());

  /** The ETag the product had before: computeEtag('product', id, version) named a body with stock. */
  const etagBefore = (id: string, version: number) => computeEtag('product', id, version);

  it("a product's ETag from before is not fresh: If-None-Match → 200 without stock, If-Match → 412", async () => {
    const p = await createProduct(t, admin, { stock: 7 });
    const old = etagBefore(p.id, 1);
    expect(p.etag).not.toBe(old);
    const read = await t
      .http()
      .get(`/api/v1/products/${p.id}`)
      .set('If-None-Match', old)
      .expect(200);
    expect(read.body).toMatchObject({ id: p.id, version: 1 });
    expect(read.body).not.toHaveProperty('stock');
    // The version and Last-Modified did not move: a body `version` from before is still current.
    expect(read.headers['last-modified']).toBe(
      (await t.http().get(`/api/v1/products/${p.id}`).expect(200)).headers['last-modified'],
    );
    const stale = await t
      .http()
      .patch(`/api/v1/products/${p.id}`)
      .set(admin.auth)
      .set('If-Match', old)
      .send({ priceCents: 999 });
    expectProblem(stale, 'PRECONDITION_FAILED');
    expect(stale.body.currentEtag).toBe(p.etag);
    expect(stale.body.current).not.toHaveProperty('stock');
    await t
      .http()
      .patch(`/api/v1/products/${p.id}`)
      .set(admin.auth)
      .send({ priceCents: 999, version: 1 })
      .expect(200);
  });

  // Last in the file: it runs the migration down and up again on this file's own database.
  it('the migration starts the stock at version 1 with the product’s last two change times: two changes in one second stay a 412 for If-Unmodified-Since', async () => {
    const p = await createProduct(t, admin, { stock: 7 });
    const migration = new StockApart1763791500000();
    const q = t.db.createQueryRunner();
    try {
      await migration.down(q);
      // As the product was before the deploy: its last two versions (a sale, say) in one second.
      await q.query('ALTER TABLE products DISABLE TRIGGER products_touch_version');
      await q.query(
        `UPDATE products SET version = 3, updated_at = '2026-01-01T10:00:00.700Z',
           previous_updated_at = '2026-01-01T10:00:00.200Z' WHERE id = $1`,
        [p.id],
      );
      await q.query('ALTER TABLE products ENABLE TRIGGER products_touch_version');
      await migration.up(q);
    } finally {
      await q.release();
    }
    const row = (await productRow(t, p.id))!;
    expect(row).toMatchObject({ version: 3, stock: 7, stock_version: 1 });
    expect(row.stock_updated_at).toEqual(row.updated_at);
    expect(row.stock_previous_updated_at).toEqual(row.previous_updated_at);
    expect(row.stock_previous_updated_at).toEqual(new Date('2026-01-01T10:00:00.200Z'));

    const take = (since: string) =>
      t
        .http()
        .put(`/api/v1/products/${p.id}/stock`)
        .set(admin.auth)
        .set('If-Unmodified-Since', since)
        .send({ stock: 20 });
    const ambiguous = await take('Thu, 01 Jan 2026 10:00:00 GMT');
    expectProblem(ambiguous, 'PRECONDITION_FAILED');
    expect(ambiguous.body.detail).toContain('more than once within the second');
    expect(ambiguous.body.current).toMatchObject({ stock: 7, version: 1 });
    const later = await take('Thu, 01 Jan 2026 10:00:01 GMT').expect(200);
    expect(later.body).toMatchObject({ stock: 20, version: 2 });
  });
});
