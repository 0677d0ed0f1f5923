import { type Account, account, expectProblem } from '../support/http';
import { act, createProduct, paid, placeOrder } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * GET /orders/{id}/history is a list like GET /orders (issue 20): the same page envelope
 * `{items, total, limit, offset}`, the same limit/offset validation, unknown parameters → 400.
 */
describe('GET /orders/{id}/history', () => {
  let t: TestApp;
  let admin: Account;
  let alice: Account;
  let bob: Account;
  let orderId: string;
  beforeAll(async () => {
    t = await createTestApp();
    admin = await account(t, 'admin');
    alice = await account(t);
    bob = await account(t);
    const p = await createProduct(t, admin, { stock: 10 });
    const placed = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]);
    orderId = placed.body.id;
    // place, pay (a test payment), ship, deliver: four entries.
    await paid(t, alice, orderId);
    for (const [who, action] of [
      [admin, 'ship'],
      [admin, 'deliver'],
    ] as const) {
      await act(t, who, orderId, action).expect(200);
    }
  });
  afterAll(() => t.close());

  const history = (query: Record<string, string | number> = {}, who: Account = alice) =>
    t.http().get(`/api/v1/orders/${orderId}/history`).query(query).set(who.auth);

  it('answers the page envelope, oldest first, with the default limit', async () => {
    const res = await history();
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({ total: 4, limit: 20, offset: 0 });
    expect(res.body.items.map((e: { action: string }) => e.action)).toEqual([
      'place',
      'pay',
      'ship',
      'deliver',
    ]);
    expect(res.body.items[0]).toMatchObject({ from: null, to: 'pending', actorId: alice.id });
  });

  it('honours limit and offset', async () => {
    const first = await history({ limit: 2 });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ total: 4, limit: 2, offset: 0 });
    expect(first.body.items.map((e: { action: string }) => e.action)).toEqual(['place', 'pay']);
    const second = await history({ limit: 2, offset: 2 });
    expect(second.body).toMatchObject({ total: 4, limit: 2, offset: 2 });
    expect(second.body.items.map((e: { action: string }) => e.action)).toEqual(['ship', 'deliver']);
    const past = await history({ offset: 10 });
    expect(past.body).toMatchObject({ items: [], total: 4, limit: 20, offset: 10 });
  });

  it('validates limit and offset as GET /orders does', async () => {
    const cases: Record<string, string | number>[] = [
      { limit: 0 },
      { limit: 101 },
      { limit: 'x' },
      { offset: -1 },
    ];
    for (const query of cases) {
      const res = await history(query);
      expectProblem(res, 'VALIDATION_FAILED');
      const field = Object.keys(query)[0];
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      // The same answer as the list of orders gives for the same parameters.
      const orders = await t.http().get('/api/v1/orders').query(query).set(alice.auth);
      expect({ status: orders.status, errors: orders.body.errors }).toEqual({
        status: res.status,
        errors: res.body.errors,
      });
    }
  });

  it('rejects unknown query parameters with 400 naming them', async () => {
    const res = await history({ limt: 2 });
    expectProblem(res, 'VALIDATION_FAILED');
    expect(res.body.errors.map((e: { field: string }) => e.field)).toContain('limt');
  });

  it('is 404 for an order the caller cannot see; admins page it too', async () => {
    expectProblem(await history({}, bob), 'NOT_FOUND');
    const admins = await history({ limit: 1 }, admin);
    expect(admins.body).toMatchObject({ total: 4, limit: 1 });
  });
});
