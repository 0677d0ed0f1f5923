import { randomBytes } from 'node:crypto';
import { JwtService } from '@nestjs/jwt';
import { ApiProblem, MergeConflict, OrderClient, type ProblemCode, retry } from '../src/index';
import type { ProblemCode as ServerProblemCode } from '../../src/common/problems/problem-catalogue';
import { account } from '../../test/support/http';
import { createTestApp, type TestApp } from '../../test/support/test-app';

// The client's code union (generated from openapi.json) is exactly the server's catalogue.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameCodes: Same<ProblemCode, ServerProblemCode> = true;

/** What a caller writes: an exhaustive switch (adding a code without a case does not compile). */
function advice(code: ProblemCode): string {
  switch (code) {
    case 'VALIDATION_FAILED':
    case 'PAYLOAD_TOO_LARGE':
    case 'UNSUPPORTED_MEDIA_TYPE':
      return 'fix the input';
    case 'UNAUTHENTICATED':
      return 'log in';
    case 'FORBIDDEN':
    case 'NOT_FOUND':
    case 'RESOURCE_IN_USE':
    case 'INTERNAL':
      return 'give up';
    case 'EMAIL_TAKEN':
    case 'SKU_TAKEN':
    case 'SLUG_TAKEN':
    case 'IDEMPOTENCY_KEY_REUSED':
    case 'UNKNOWN_PRODUCT':
    case 'PRODUCT_UNAVAILABLE':
    case 'INSUFFICIENT_STOCK':
      return 'change the request';
    case 'VERSION_MISMATCH':
    case 'PRECONDITION_FAILED':
    case 'PRECONDITION_REQUIRED':
    case 'ILLEGAL_STATE_TRANSITION':
    case 'ORDER_NOT_EDITABLE':
      return 'refetch and decide';
    case 'IDEMPOTENCY_KEY_IN_USE':
    case 'RATE_LIMITED':
    case 'SERVICE_UNAVAILABLE':
      return 'retry later';
  }
}

describe('the typed client against the real service', () => {
  let t: TestApp;
  let adminLogin: { id: string; email: string; password: string };
  const client = (options: { fetch?: typeof fetch } = {}): OrderClient =>
    new OrderClient({ baseUrl: t.baseUrl, ...options });
  const asAdmin = async (options: { fetch?: typeof fetch } = {}): Promise<OrderClient> => {
    const c = client(options);
    await c.login(adminLogin.email, adminLogin.password);
    return c;
  };
  const newProduct = (stock = 10) => {
    const tag = randomBytes(4).toString('hex');
    return {
      sku: `C-${tag}`,
      slug: `c-${tag}`,
      name: `Mug ${tag}`,
      priceCents: 900,
      currency: 'EUR',
      stock,
    };
  };

  beforeAll(async () => {
    t = await createTestApp();
    const admin = await account(t, 'admin');
    adminLogin = { id: admin.id, email: admin.email, password: admin.password };
  });
  afterAll(() => t.close());

  it('surfaces problems as one ApiProblem discriminated by code', async () => {
    expect(sameCodes).toBe(true);
    const c = client();
    const email = `client-${Date.now()}@example.com`;
    await c.register(email, 'long enough password', 'Ada');
    const error = await c
      .register(email.toUpperCase(), 'long enough password', 'Ada')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiProblem);
    expect(error).toMatchObject({ code: 'EMAIL_TAKEN', status: 409, body: { field: 'email' } });
    expect(advice((error as ApiProblem).code)).toBe('change the request');
  });

  describe('with a token that has expired', () => {
    /** Signed with the test app's secret, so only its `exp` makes it stale. */
    const expiredToken = (sub: string): Promise<string> =>
      new JwtService({ secret: 'test-secret-that-is-long-enough-for-hs256-0123456789' }).signAsync(
        { sub, role: 'admin', exp: Math.floor(Date.now() / 1000) - 60 },
        { algorithm: 'HS256' },
      );
    /** A fetch that notes the Authorization header each request went out with. */
    const recording =
      (sent: { path: string; authorization: string | null }[]): typeof fetch =>
      async (input: Request | string | URL, init?: RequestInit) => {
        if (input instanceof Request) {
          sent.push({
            path: new URL(input.url).pathname,
            authorization: input.headers.get('authorization'),
          });
        }
        return fetch(input, init);
      };

    it('logs in again, sending no token to login or register', async () => {
      const sent: { path: string; authorization: string | null }[] = [];
      const c = new OrderClient({
        baseUrl: t.baseUrl,
        token: await expiredToken(adminLogin.id),
        fetch: recording(sent),
      });
      await c.register(`again-${Date.now()}@example.com`, 'long enough password', 'Again');
      await c.login(adminLogin.email, adminLogin.password);
      const { value: p } = await c.createProduct(newProduct()); // admin-only: the new token is used
      expect(p.id).toEqual(expect.any(String));
      expect(sent.map((r) => [r.path, r.authorization === null])).toEqual([
        ['/api/v1/auth/register', true],
        ['/api/v1/auth/login', true],
        ['/api/v1/products', false],
      ]);
    });

    it('drops the stale token when the login is refused', async () => {
      const sent: { path: string; authorization: string | null }[] = [];
      const c = new OrderClient({
        baseUrl: t.baseUrl,
        token: await expiredToken(adminLogin.id),
        fetch: recording(sent),
      });
      const refused = await c.login(adminLogin.email, 'not the password').catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
      const page = await c.api.GET('/api/v1/products', { params: { query: { limit: 1 } } });
      expect(page.response.status).toBe(200);
      expect(sent.at(-1)).toEqual({ path: '/api/v1/products', authorization: null });
    });
  });

  /** A fetch that holds this client's PATCHes until `release` resolves: the other writer goes first. */
  const heldPatches =
    (release: Promise<unknown>): typeof fetch =>
    async (input: Request | string | URL, init?: RequestInit) => {
      if (input instanceof Request && input.method === 'PATCH') await release;
      return fetch(input, init);
    };

  it('lands both of two concurrent edits of disjoint fields (one is merged after a 412)', async () => {
    const alice = await asAdmin();
    const { value: p } = await alice.createProduct(newProduct());
    let done!: () => void;
    const aliceDone = new Promise<void>((r) => (done = r));
    const bob = await asAdmin({ fetch: heldPatches(aliceDone) });
    const bobEdit = bob.update('products', p.id, () => ({ priceCents: 1250 }));
    await new Promise((r) => setTimeout(r, 100)); // Bob has read version 1
    await alice.update('products', p.id, () => ({ name: 'Renamed by Alice' }));
    done();
    const final = await bobEdit;
    expect(final).toMatchObject({ name: 'Renamed by Alice', priceCents: 1250, version: 3 });
  });

  it('rejects concurrent edits of the same field with a typed conflict holding base, mine and theirs', async () => {
    const alice = await asAdmin();
    const { value: p } = await alice.createProduct(newProduct());
    let done!: () => void;
    const aliceDone = new Promise<void>((r) => (done = r));
    const bob = await asAdmin({ fetch: heldPatches(aliceDone) });
    const bobEdit = bob
      .update('products', p.id, () => ({ name: 'Bob’s name' }))
      .catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    await alice.update('products', p.id, () => ({ name: 'Alice’s name' }));
    done();
    const conflict = await bobEdit;
    expect(conflict).toBeInstanceOf(MergeConflict);
    expect((conflict as MergeConflict).fields).toEqual({
      name: { base: p.name, mine: 'Bob’s name', theirs: 'Alice’s name' },
    });
    const now = await alice.getProduct(p.id);
    expect(now.value.name).toBe('Alice’s name');
  });

  it('returns the same order when the first checkout attempt is cut off after the server committed', async () => {
    const admin = await asAdmin();
    const { value: p } = await admin.createProduct(newProduct(5));
    let cut = 0;
    const flaky = (async (input: Request | string | URL, init?: RequestInit) => {
      const response = await fetch(input, init);
      if (
        input instanceof Request &&
        input.method === 'POST' &&
        input.url.endsWith('/api/v1/orders') &&
        cut++ === 0
      ) {
        await response.arrayBuffer(); // the server has answered (committed), but we never see it
        throw new TypeError('fetch failed');
      }
      return response;
    }) as typeof fetch;
    const shopper = client({ fetch: flaky });
    const email = `shopper-${Date.now()}@example.com`;
    await shopper.register(email, 'long enough password', 'Shopper');
    await shopper.login(email, 'long enough password');
    const { order, replayed } = await shopper.placeOrder([{ productId: p.id, quantity: 2 }], {
      sleep: async () => undefined,
    });
    expect(cut).toBe(2);
    expect(replayed).toBe(true);
    const [{ n }] = await t.db.query(
      'SELECT count(*)::int AS n FROM orders o JOIN order_items i ON i.order_id = o.id WHERE i.product_id = $1',
      [p.id],
    );
    expect(n).toBe(1);
    expect((await admin.getProduct(p.id)).value.stock).toBe(3);
    expect(order.items[0]).toMatchObject({ productId: p.id, quantity: 2 });
  });

  it('does not retry a refusal: INSUFFICIENT_STOCK arrives at once with what is available', async () => {
    const admin = await asAdmin();
    const { value: p } = await admin.createProduct(newProduct(1));
    const error = await admin
      .placeOrder([{ productId: p.id, quantity: 2 }])
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'INSUFFICIENT_STOCK',
      body: { items: [{ requested: 2, available: 1 }] },
    });
  });
});

describe('the typed client under rate limiting', () => {
  it('waits for Retry-After and then succeeds', async () => {
    const t = await createTestApp({ RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_SECONDS: '1' });
    try {
      const c = new OrderClient({ baseUrl: t.baseUrl });
      const waits: number[] = [];
      for (let i = 0; i < 3; i++) await fetch(`${t.baseUrl}/api/v1/products?limit=1`);
      const page = await retry(
        async () => {
          const r = await c.api.GET('/api/v1/products', { params: { query: { limit: 1 } } });
          if (r.error) throw new ApiProblem(r.error, r.response.headers);
          return r.data;
        },
        { onRetry: ({ delayMs }) => waits.push(delayMs) },
      );
      expect(page.limit).toBe(1);
      expect(waits.length).toBeGreaterThanOrEqual(1);
      expect(waits[0]).toBeGreaterThanOrEqual(1000);
    } finally {
      await t.close();
    }
  });
});
