import type { ProblemCode } from '../../src/common/problems/problem-catalogue';
import { type Account, account, expectProblem } from '../support/http';
import { createProduct, productInput } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * Hostile and broken input, one row per case: the expected status and code, and never a 5xx.
 * After the table, the state is checked unchanged.
 */
describe('abuse cases are answered cleanly', () => {
  let t: TestApp;
  let admin: Account;
  let customer: Account;
  let productId: string;
  beforeAll(async () => {
    t = await createTestApp({ BODY_LIMIT_BYTES: '131072' });
    admin = await account(t, 'admin');
    customer = await account(t);
    productId = (await createProduct(t, admin, { stock: 7 })).id;
  });
  afterAll(() => t.close());

  type Who = 'anonymous' | 'customer' | 'admin';
  interface Case {
    name: string;
    method: 'get' | 'post' | 'patch' | 'delete';
    path: () => string;
    who: Who;
    body?: unknown;
    raw?: { type: string; data: string };
    headers?: Record<string, string>;
    query?: Record<string, string>;
    expect: ProblemCode | number;
  }

  const deep = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  const orderOf = (items: unknown) => ({ items });

  const cases: Case[] = [
    {
      name: 'a body over the limit',
      method: 'post',
      path: () => '/api/v1/auth/register',
      who: 'anonymous',
      raw: {
        type: 'application/json',
        data: JSON.stringify({ email: 'a@b.co', password: 'x'.repeat(200_000), name: 'n' }),
      },
      expect: 'PAYLOAD_TOO_LARGE',
    },
    {
      name: 'deeply nested JSON (5,000 levels)',
      method: 'post',
      path: () => '/api/v1/orders',
      who: 'customer',
      raw: { type: 'application/json', data: deep(5000) },
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'a JSON array instead of an object',
      method: 'post',
      path: () => '/api/v1/orders',
      who: 'customer',
      raw: { type: 'application/json', data: '[1,2,3]' },
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'JSON null as the body',
      method: 'post',
      path: () => '/api/v1/orders',
      who: 'customer',
      raw: { type: 'application/json', data: 'null' },
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'prototype pollution via __proto__',
      method: 'post',
      path: () => '/api/v1/auth/register',
      who: 'anonymous',
      raw: {
        type: 'application/json',
        data: '{"email":"p@example.com","password":"long enough","name":"p","__proto__":{"role":"admin"}}',
      },
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'prototype pollution via constructor.prototype',
      method: 'post',
      path: () => '/api/v1/auth/register',
      who: 'anonymous',
      raw: {
        type: 'application/json',
        data: '{"email":"p2@example.com","password":"long enough","name":"p","constructor":{"prototype":{"role":"admin"}}}',
      },
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'wrong types everywhere (register)',
      method: 'post',
      path: () => '/api/v1/auth/register',
      who: 'anonymous',
      body: { email: 42, password: ['x'], name: { first: 'a' } },
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'wrong types everywhere (product)',
      method: 'post',
      path: () => '/api/v1/products',
      who: 'admin',
      body: {
        sku: 1,
        slug: true,
        name: null,
        priceCents: '12',
        currency: 978,
        stock: '5',
        active: 'yes',
      },
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'a negative quantity',
      method: 'post',
      path: () => '/api/v1/orders',
      who: 'customer',
      body: orderOf([{ productId: '00000000-0000-4000-8000-000000000000', quantity: -1 }]),
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'a gigantic quantity (1e20)',
      method: 'post',
      path: () => '/api/v1/orders',
      who: 'customer',
      body: orderOf([{ productId: '00000000-0000-4000-8000-000000000000', quantity: 1e20 }]),
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'a quantity as a string',
      method: 'post',
      path: () => '/api/v1/orders',
      who: 'customer',
      body: orderOf([{ productId: '00000000-0000-4000-8000-000000000000', quantity: '1' }]),
      expect: 'VALIDATION_FAILED',
    },
    {
      name: '1,000 order lines',
      method: 'post',
      path: () => '/api/v1/orders',
      who: 'customer',
      body: orderOf(
        Array.from({ length: 1000 }, () => ({
          productId: '00000000-0000-4000-8000-000000000000',
          quantity: 1,
        })),
      ),
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'a price past 2^53',
      method: 'post',
      path: () => '/api/v1/products',
      who: 'admin',
      body: productInput({ priceCents: 2 ** 53 + 2 }),
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'a negative price',
      method: 'post',
      path: () => '/api/v1/products',
      who: 'admin',
      body: productInput({ priceCents: -5 }),
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'a stock of 1e308',
      method: 'post',
      path: () => '/api/v1/products',
      who: 'admin',
      body: productInput({ stock: 1e308 }),
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'a stock adjustment past the integer range',
      method: 'post',
      path: () => `/api/v1/products/${productId}/stock-adjustments`,
      who: 'admin',
      body: { delta: 2 ** 31, reason: 'x' },
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'an invalid UUID in the path',
      method: 'get',
      path: () => '/api/v1/products/1%27%20OR%201=1',
      who: 'anonymous',
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'an invalid UUID in a transition path',
      method: 'post',
      path: () => '/api/v1/orders/..%2F..%2Fetc/cancel',
      who: 'customer',
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'a path traversal attempt',
      method: 'get',
      path: () => '/problems/..%2F..%2Fpackage.json',
      who: 'anonymous',
      expect: 'NOT_FOUND',
    },
    {
      name: 'unknown query parameters',
      method: 'get',
      path: () => '/api/v1/products',
      who: 'anonymous',
      query: { sort: 'DROP TABLE' },
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'an over-long search text',
      method: 'get',
      path: () => '/api/v1/products',
      who: 'anonymous',
      query: { q: 'x'.repeat(5000) },
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'a negative offset',
      method: 'get',
      path: () => '/api/v1/products',
      who: 'anonymous',
      query: { offset: '-1' },
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'SQL injection in the search text',
      method: 'get',
      path: () => '/api/v1/products',
      who: 'anonymous',
      query: { q: "'; DROP TABLE products; --" },
      expect: 200,
    },
    {
      name: 'SQL injection in a login email',
      method: 'post',
      path: () => '/api/v1/auth/login',
      who: 'anonymous',
      body: { email: "' OR '1'='1", password: "' OR '1'='1" },
      expect: 'UNAUTHENTICATED',
    },
    {
      name: 'SQL injection in a registration name',
      method: 'post',
      path: () => '/api/v1/auth/register',
      who: 'anonymous',
      body: {
        email: 'sqli@example.com',
        password: 'long enough pw',
        name: "Robert'); DROP TABLE users;--",
      },
      expect: 201,
    },
    {
      name: 'an Idempotency-Key of 10 kB',
      method: 'post',
      path: () => '/api/v1/orders',
      who: 'customer',
      headers: { 'Idempotency-Key': 'k'.repeat(10_000) },
      body: orderOf([{ productId: '00000000-0000-4000-8000-000000000000', quantity: 1 }]),
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'a garbage If-Match',
      method: 'patch',
      path: () => `/api/v1/products/${productId}`,
      who: 'admin',
      headers: { 'If-Match': 'not an etag at all' },
      body: { name: 'x' },
      expect: 'PRECONDITION_FAILED',
    },
    {
      name: 'a garbage If-Unmodified-Since (ignored, so 428)',
      method: 'patch',
      path: () => `/api/v1/products/${productId}`,
      who: 'admin',
      headers: { 'If-Unmodified-Since': 'yesterday-ish' },
      body: { name: 'x' },
      expect: 'PRECONDITION_REQUIRED',
    },
    {
      name: 'a version of the wrong type',
      method: 'patch',
      path: () => `/api/v1/products/${productId}`,
      who: 'admin',
      body: { name: 'x', version: '1' },
      expect: 'VALIDATION_FAILED',
    },
    {
      name: 'a bearer token that is garbage',
      method: 'get',
      path: () => '/api/v1/users/me',
      who: 'anonymous',
      headers: { Authorization: 'Bearer a.b.c' },
      expect: 'UNAUTHENTICATED',
    },
    {
      name: 'a token signed with alg none',
      method: 'get',
      path: () => '/api/v1/users/me',
      who: 'anonymous',
      headers: {
        Authorization: `Bearer ${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"x","role":"admin"}').toString('base64url')}.`,
      },
      expect: 'UNAUTHENTICATED',
    },
    {
      name: 'a customer writing the catalogue',
      method: 'post',
      path: () => '/api/v1/products',
      who: 'customer',
      body: productInput(),
      expect: 'FORBIDDEN',
    },
    {
      name: 'an unsupported media type',
      method: 'post',
      path: () => '/api/v1/orders',
      who: 'customer',
      raw: { type: 'application/xml', data: '<items/>' },
      expect: 'UNSUPPORTED_MEDIA_TYPE',
    },
    {
      name: 'a multipart body',
      method: 'post',
      path: () => '/api/v1/orders',
      who: 'customer',
      raw: { type: 'multipart/form-data; boundary=x', data: '--x--' },
      expect: 'UNSUPPORTED_MEDIA_TYPE',
    },
    {
      name: 'an unknown HTTP route',
      method: 'get',
      path: () => '/api/v2/products',
      who: 'anonymous',
      expect: 'NOT_FOUND',
    },
  ];

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    let req = t.http()[c.method](c.path());
    if (c.who !== 'anonymous') req = req.set((c.who === 'admin' ? admin : customer).auth);
    for (const [k, v] of Object.entries(c.headers ?? {})) req = req.set(k, v);
    if (c.query) req = req.query(c.query);
    const res = c.raw
      ? await req.set('Content-Type', c.raw.type).send(c.raw.data)
      : await req.send(c.body as object);
    expect(res.status).toBeLessThan(500);
    if (typeof c.expect === 'number') expect(res.status).toBe(c.expect);
    else expectProblem(res, c.expect);
    expect(JSON.stringify(res.body ?? '')).not.toMatch(
      /SELECT|INSERT|UPDATE |QueryFailedError|at .*\.ts:\d+/,
    );
  });

  it('leaves the data intact after all of the above', async () => {
    const [{ n }] = await t.db.query(
      "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name IN ('users','products','orders')",
    );
    expect(n).toBe(3);
    const [row] = await t.db.query('SELECT stock, version, name FROM products WHERE id = $1', [
      productId,
    ]);
    expect(row).toMatchObject({ stock: 7, version: 1 });
    const admins = await t.db.query("SELECT email FROM users WHERE role = 'admin'");
    expect(admins.map((a: { email: string }) => a.email)).toEqual([admin.email]);
    expect(({} as Record<string, unknown>).role).toBeUndefined();
  });
});
