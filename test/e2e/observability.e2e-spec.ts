import { Writable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { ShutdownState } from '../../src/health/shutdown-state';
import { type Account, account, expectProblem } from '../support/http';
import { createProduct, placeOrder } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

/** Collects the service's JSON log lines. */
class Lines extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  raw = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.raw += chunk.toString();
    for (const line of chunk.toString().split('\n').filter(Boolean))
      this.lines.push(JSON.parse(line));
    done();
  }
}

describe('observability and hardening', () => {
  let t: TestApp;
  let logs: Lines;
  let admin: Account;
  beforeAll(async () => {
    logs = new Lines();
    t = await createTestApp({ CORS_ORIGINS: 'https://shop.example' }, logs);
    admin = await account(t, 'admin');
  });
  afterAll(() => t.close());

  const requestLines = () => logs.lines.filter((l) => l.msg === 'request');

  it('writes one JSON line per request with request id, user id, route template, status and duration', async () => {
    const res = await t
      .http()
      .get(`/api/v1/users/${admin.id}`)
      .set(admin.auth)
      .set('X-Request-Id', 'trace-me-1')
      .expect(200);
    const line = requestLines().find((l) => l.requestId === 'trace-me-1');
    expect(line).toMatchObject({
      level: 30,
      userId: admin.id,
      method: 'GET',
      route: '/api/v1/users/:id',
      path: `/api/v1/users/${admin.id}`,
      status: 200,
    });
    expect(typeof line?.durationMs).toBe('number');
    expect(res.headers['x-request-id']).toBe('trace-me-1');
  });

  it('logs every problem answer with its code', async () => {
    await t.http().get('/api/v1/products/not-a-uuid').set('X-Request-Id', 'trace-me-2');
    expect(requestLines().find((l) => l.requestId === 'trace-me-2')).toMatchObject({
      status: 400,
      code: 'VALIDATION_FAILED',
    });
  });

  it('never logs passwords or tokens', async () => {
    await t
      .http()
      .post('/api/v1/auth/login')
      .send({ email: admin.email, password: admin.password })
      .expect(200);
    await t.http().get('/api/v1/users/me').set(admin.auth).expect(200);
    expect(logs.raw).not.toContain(admin.password);
    expect(logs.raw).not.toContain(admin.token);
  });

  it('exposes Prometheus metrics: durations by route, problems by code, replays, stock failures, pool', async () => {
    const p = await createProduct(t, admin, { stock: 1 });
    const buyer = await account(t);
    const key = randomUUID();
    await placeOrder(t, buyer, [{ productId: p.id, quantity: 1 }], key).expect(201);
    await placeOrder(t, buyer, [{ productId: p.id, quantity: 1 }], key).expect(201);
    expectProblem(
      await placeOrder(t, buyer, [{ productId: p.id, quantity: 1 }]),
      'INSUFFICIENT_STOCK',
    );
    const res = await t.http().get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.text;
    expect(text).toMatch(
      /http_request_duration_seconds_bucket\{le="[^"]+",method="POST",route="\/api\/v1\/orders",status_code="201"\}/,
    );
    expect(text).toMatch(/conflicts_total\{code="INSUFFICIENT_STOCK"\} [1-9]/);
    expect(text).toContain('conflicts_total{code="IDEMPOTENCY_KEY_REUSED"} 0');
    expect(text).toMatch(/idempotent_replays_total [1-9]/);
    expect(text).toMatch(/stock_reservation_failures_total\{reason="insufficient_stock"\} [1-9]/);
    expect(text).toMatch(/db_pool_connections\{state="idle"\} \d+/);
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  it('answers readiness 503 while draining, and 200 again after', async () => {
    const state = t.app.get(ShutdownState);
    state.draining = true;
    try {
      const res = await t.http().get('/health/ready');
      expectProblem(res, 'SERVICE_UNAVAILABLE');
    } finally {
      state.draining = false;
    }
    await t.http().get('/health/ready').expect(200);
    await t.http().get('/health/live').expect(200);
  });

  it('sends security headers', async () => {
    const res = await t.http().get('/api/v1/products');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.headers['strict-transport-security']).toBeDefined();
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('allows CORS only from configured origins, exposing the conflict headers', async () => {
    const ok = await t
      .http()
      .options('/api/v1/products')
      .set('Origin', 'https://shop.example')
      .set('Access-Control-Request-Method', 'PATCH')
      .set('Access-Control-Request-Headers', 'if-match,idempotency-key');
    expect(ok.headers['access-control-allow-origin']).toBe('https://shop.example');
    expect(ok.headers['access-control-allow-headers']).toMatch(/If-Match/i);
    const get = await t.http().get('/api/v1/products').set('Origin', 'https://shop.example');
    expect(get.headers['access-control-expose-headers']).toMatch(/ETag/);
    const evil = await t.http().get('/api/v1/products').set('Origin', 'https://evil.example');
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
  });
});
