import { setTimeout as sleep } from 'node:timers/promises';
import { jest } from '@jest/globals';
import type { SpiedFunction } from 'jest-mock';
import { PasswordHasher } from '../../src/users/passwords';
import { type Account, account, expectProblem } from '../support/http';
import { act, createProduct, placeOrder, productRow } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

/** The conditional-request rules of RFC 9110 §13 that the first version got wrong (issue 10). */
describe('preconditions', () => {
  let t: TestApp;
  let admin: Account;
  let alice: Account;
  beforeAll(async () => {
    t = await createTestApp();
    admin = await account(t, 'admin');
    alice = await account(t);
  });
  afterAll(() => t.close());

  const patch = (id: string, headers: Record<string, string>, body: object = { priceCents: 777 }) =>
    t.http().patch(`/api/v1/products/${id}`).set(admin.auth).set(headers).send(body);

  describe('If-None-Match on a write', () => {
    it('answers 412 with current for `*` on an existing product, and changes nothing', async () => {
      const p = await createProduct(t, admin);
      const res = await patch(p.id, { 'If-None-Match': '*' });
      expectProblem(res, 'PRECONDITION_FAILED');
      expect(res.body).toMatchObject({ currentVersion: 1, currentEtag: p.etag });
      expect(res.body.current).toMatchObject({ id: p.id, version: 1 });
      expect(await productRow(t, p.id)).toMatchObject({ version: 1, price_cents: 1250 });
    });

    it('answers 412 for a matching tag (weak comparison) on PATCH and DELETE', async () => {
      const p = await createProduct(t, admin);
      expectProblem(
        await patch(p.id, { 'If-Match': p.etag, 'If-None-Match': `W/${p.etag}` }),
        'PRECONDITION_FAILED',
      );
      const del = await t
        .http()
        .delete(`/api/v1/products/${p.id}`)
        .set(admin.auth)
        .set('If-Match', p.etag)
        .set('If-None-Match', p.etag);
      expectProblem(del, 'PRECONDITION_FAILED');
      expect(await productRow(t, p.id)).toMatchObject({ version: 1 });
    });

    it('lets the write through when the tag does not match and If-Match holds', async () => {
      const p = await createProduct(t, admin);
      await patch(p.id, { 'If-Match': p.etag, 'If-None-Match': '"something-else"' }).expect(200);
      expect(await productRow(t, p.id)).toMatchObject({ version: 2, price_cents: 777 });
    });

    it('answers 412 for `If-None-Match: *` on a transition, and the order stays as it was', async () => {
      const p = await createProduct(t, admin, { stock: 5 });
      const order = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
      const res = await t
        .http()
        .post(`/api/v1/orders/${order.body.id}/cancel`)
        .set(alice.auth)
        .set('If-None-Match', '*')
        .send();
      expectProblem(res, 'PRECONDITION_FAILED');
      const [row] = await t.db.query('SELECT status, version FROM orders WHERE id = $1', [
        order.body.id,
      ]);
      expect(row).toEqual({ status: 'pending', version: 1 });
      expect((await productRow(t, p.id))!.stock).toBe(4);
    });
  });

  describe('an If-Match that matches nothing says why (issue 20)', () => {
    /** PATCHes with `ifMatch`; asserts the 412 with `current` and that nothing changed; the detail. */
    async function refused(id: string, ifMatch: string, version = 1): Promise<string> {
      const res = await patch(id, { 'If-Match': ifMatch });
      expectProblem(res, 'PRECONDITION_FAILED');
      expect(res.body).toMatchObject({ currentVersion: version, current: { id, version } });
      expect(res.body.currentEtag).toMatch(/^"v\d+-[A-Za-z0-9_-]{27}"$/);
      expect(await productRow(t, id)).toMatchObject({ version, price_cents: 1250 });
      return res.body.detail as string;
    }

    it('an ETag sent without its quotes, or backslash-escaped as copied from JSON: not a valid entity-tag', async () => {
      const p = await createProduct(t, admin);
      const bare = p.etag.slice(1, -1);
      const unquoted = await refused(p.id, bare);
      expect(unquoted).toMatch(/is not a valid entity-tag: its double quotes are missing/);
      expect(unquoted).not.toMatch(/changed since you read it/);
      expect(unquoted).toContain(`If-Match: ${p.etag}`);
      const escaped = await refused(p.id, `\\"${bare}\\"`);
      expect(escaped).toMatch(/is not a valid entity-tag: it contains backslashes/);
      expect(await refused(p.id, 'garbage, "x')).toMatch(/is not a valid entity-tag/);
    });

    it("the README's own placeholder, and other tags this service never issued for it", async () => {
      const p = await createProduct(t, admin);
      const other = await createProduct(t, admin);
      // `If-Match: "q0Yx2…"` as curl sends it: the ellipsis as UTF-8 bytes (Node reads latin1).
      const readme = await refused(p.id, '"q0Yx2\u00e2\u0080\u00a6"');
      expect(readme).toMatch(/is not an ETag this service issued for product .* as you read it/);
      expect(readme).not.toMatch(/changed since you read it/);
      expect(await refused(p.id, other.etag)).toMatch(/is not an ETag this service issued/);
      const ahead = p.etag.replace('"v1-', '"v7-');
      expect(await refused(p.id, ahead)).toMatch(/is not an ETag this service issued/);
      expect(await refused(p.id, `W/${p.etag}`)).toMatch(/A weak ETag .* never matches/);
    });

    it('a real earlier version: it has changed since you read it, naming both versions', async () => {
      const p = await createProduct(t, admin);
      await patch(p.id, { 'If-Match': p.etag }, { priceCents: 1250, name: 'Renamed' }).expect(200);
      const res = await patch(p.id, { 'If-Match': p.etag });
      expectProblem(res, 'PRECONDITION_FAILED');
      expect(res.body.detail).toMatch(
        /changed since you read it \(you hold version 1, now version 2\); nothing was changed/,
      );
      expect(res.body).toMatchObject({ currentVersion: 2, current: { name: 'Renamed' } });
    });

    it('the same on an order transition', async () => {
      const p = await createProduct(t, admin, { stock: 5 });
      const order = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
      const res = await t
        .http()
        .post(`/api/v1/orders/${order.body.id}/cancel`)
        .set(alice.auth)
        .set('If-Match', order.headers.etag.slice(1, -1))
        .send();
      expectProblem(res, 'PRECONDITION_FAILED');
      expect(res.body.detail).toMatch(/not a valid entity-tag: its double quotes are missing/);
      expect(res.body).toMatchObject({ currentVersion: 1, currentEtag: order.headers.etag });
      const [row] = await t.db.query('SELECT status FROM orders WHERE id = $1', [order.body.id]);
      expect(row).toEqual({ status: 'pending' });
    });
  });

  describe('If-Unmodified-Since', () => {
    /** Two versions within one second: retried until the clock puts both in the same second. */
    async function twoVersionsInOneSecond(): Promise<{
      id: string;
      firstLastModified: string;
      secondLastModified: string;
    }> {
      for (let attempt = 0; attempt < 20; attempt++) {
        const p = await createProduct(t, admin);
        const first = await t.http().get(`/api/v1/products/${p.id}`).expect(200);
        const second = await patch(p.id, { 'If-Match': p.etag }).expect(200);
        if (first.headers['last-modified'] === second.headers['last-modified']) {
          return {
            id: p.id,
            firstLastModified: first.headers['last-modified'],
            secondLastModified: second.headers['last-modified'],
          };
        }
      }
      throw new Error('never managed two versions within one second');
    }

    it('answers 412 when the named second holds two versions: the date cannot tell which one the client holds', async () => {
      const { id, firstLastModified } = await twoVersionsInOneSecond();
      // The client read version 1; its Last-Modified is the same second as version 2's.
      const res = await patch(id, { 'If-Unmodified-Since': firstLastModified }, { name: 'mine' });
      expectProblem(res, 'PRECONDITION_FAILED');
      expect(res.body.detail).toMatch(/If-Match/);
      expect(res.body).toMatchObject({ currentVersion: 2 });
      expect(await productRow(t, id)).toMatchObject({ version: 2 });
    });

    it('lets the write through when only the current version falls in that second', async () => {
      const p = await createProduct(t, admin);
      await sleep(1100);
      const changed = await patch(p.id, { 'If-Match': p.etag }).expect(200);
      const res = await patch(
        p.id,
        { 'If-Unmodified-Since': changed.headers['last-modified'] },
        { name: 'mine' },
      );
      expect(res.status).toBe(200);
      expect(await productRow(t, p.id)).toMatchObject({ version: 3, name: 'mine' });
    });

    it('answers 412 for a date before the last change', async () => {
      const p = await createProduct(t, admin);
      const res = await patch(p.id, { 'If-Unmodified-Since': 'Sun, 06 Nov 1994 08:49:37 GMT' });
      expectProblem(res, 'PRECONDITION_FAILED');
    });

    it.each(['0', 'x 2001', '2001', 'Sun, 06 Nov 1994 08:49:37 +0000'])(
      'ignores %j (not an HTTP-date), so the write without another precondition gets 428',
      async (date) => {
        const p = await createProduct(t, admin);
        expectProblem(await patch(p.id, { 'If-Unmodified-Since': date }), 'PRECONDITION_REQUIRED');
        expect(await productRow(t, p.id)).toMatchObject({ version: 1 });
      },
    );

    it('never moves Last-Modified backwards, even for writes in the same transaction-start instant', async () => {
      const p = await createProduct(t, admin);
      const stamps: number[] = [];
      let etag = p.etag;
      for (let i = 0; i < 5; i++) {
        const res = await patch(p.id, { 'If-Match': etag }, { priceCents: 100 + i }).expect(200);
        etag = res.headers.etag;
        stamps.push(Date.parse(res.body.updatedAt));
      }
      expect([...stamps].sort((a, b) => a - b)).toEqual(stamps);
      expect(new Set(stamps).size).toBe(stamps.length);
    });
  });

  describe('null and wrong JSON types on optional fields', () => {
    it.each([
      ['priceCents', null],
      ['priceCents', '12'],
      ['name', null],
      ['active', null],
      ['description', null],
      ['stock', null],
    ])('PATCH /products {%s: %j} → 400 naming the field, nothing changed', async (field, value) => {
      const p = await createProduct(t, admin);
      const res = await patch(p.id, {}, { [field]: value, version: 1 });
      expectProblem(res, 'VALIDATION_FAILED');
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      expect(await productRow(t, p.id)).toMatchObject({ version: 1 });
    });

    it.each([
      ['password', null],
      ['name', null],
      ['email', null],
      ['role', null],
      ['password', 12345678],
    ])('PATCH /users/{me} {%s: %j} → 400 naming the field', async (field, value) => {
      const res = await t
        .http()
        .patch(`/api/v1/users/${alice.id}`)
        .set(alice.auth)
        .send({ [field]: value, version: 1 });
      expectProblem(res, 'VALIDATION_FAILED');
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    });

    it('PATCH /users/{anyone} {password: null} → 400, never 500, before the user is looked up', async () => {
      const res = await t
        .http()
        .patch('/api/v1/users/00000000-0000-4000-8000-000000000000')
        .set(alice.auth)
        .send({ password: null });
      expectProblem(res, 'VALIDATION_FAILED');
    });
  });

  describe('PATCH /users: cheap checks before the password hash', () => {
    // A spy, not a mock: the real hashing still runs; the test only counts it.
    let hashes: SpiedFunction<PasswordHasher['hash']>;
    beforeEach(() => {
      hashes = jest.spyOn(t.app.get(PasswordHasher), 'hash');
    });
    afterEach(() => hashes.mockRestore());

    const change = (id: string, who: Account, headers: Record<string, string> = {}) =>
      t
        .http()
        .patch(`/api/v1/users/${id}`)
        .set(who.auth)
        .set(headers)
        .send({ password: 'a brand new password' });

    it('hashes nothing for an unknown user (404)', async () => {
      expectProblem(
        await change('00000000-0000-4000-8000-000000000000', admin, { 'If-Match': '*' }),
        'NOT_FOUND',
      );
      expect(hashes).not.toHaveBeenCalled();
    });

    it("hashes nothing for another customer's account (404 for customers)", async () => {
      const bob = await account(t);
      hashes.mockClear(); // registering hashed bob's password
      expectProblem(await change(bob.id, alice, { 'If-Match': '*' }), 'NOT_FOUND');
      expect(hashes).not.toHaveBeenCalled();
    });

    it('hashes nothing without a precondition (428) or with a stale one (412)', async () => {
      const carol = await account(t);
      hashes.mockClear();
      expectProblem(await change(carol.id, carol), 'PRECONDITION_REQUIRED');
      expectProblem(
        await change(carol.id, carol, { 'If-Match': '"stale"' }),
        'PRECONDITION_FAILED',
      );
      expect(hashes).not.toHaveBeenCalled();
    });

    it('hashes once when the change goes through', async () => {
      const dave = await account(t);
      hashes.mockClear();
      await change(dave.id, dave, { 'If-Match': '*' }).expect(200);
      expect(hashes).toHaveBeenCalledTimes(1);
    });
  });

  it('still answers transitions without any precondition (they are optional there)', async () => {
    const p = await createProduct(t, admin, { stock: 2 });
    const order = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    expect((await act(t, alice, order.body.id, 'cancel')).status).toBe(200);
  });
});
