import { Writable } from 'node:stream';
import { expectProblem } from '../support/http';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * CORS (issue 20): in development any localhost port may call the API from a browser (a Vite app on
 * :5173 works out of the box); a preflight that is not allowed gets a 403 problem saying why, never
 * a bare 404; production without CORS_ORIGINS allows no origin; the policy is logged at start.
 */
describe('CORS', () => {
  /** Boots an app and keeps its log lines. */
  async function boot(overrides: Record<string, string>): Promise<{ t: TestApp; logs: string[] }> {
    const logs: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        logs.push(chunk.toString());
        callback();
      },
    });
    const t = await createTestApp({ ...overrides, LOG_LEVEL: 'info' }, stream);
    return { t, logs };
  }

  const preflight = (t: TestApp, origin: string, method = 'POST', headers?: string) => {
    const req = t
      .http()
      .options('/api/v1/orders')
      .set('Origin', origin)
      .set('Access-Control-Request-Method', method);
    return headers ? req.set('Access-Control-Request-Headers', headers) : req;
  };

  describe('in development, without CORS_ORIGINS', () => {
    let t: TestApp;
    let logs: string[];
    beforeAll(async () => ({ t, logs } = await boot({ NODE_ENV: 'development' })));
    afterAll(() => t.close());

    it('allows a preflight from http://localhost:5173 (any port, 127.0.0.1 too)', async () => {
      for (const origin of [
        'http://localhost:5173',
        'http://127.0.0.1:8080',
        'http://[::1]:3001',
      ]) {
        const res = await preflight(t, origin, 'PATCH', 'authorization, content-type, if-match');
        expect(res.status).toBe(204);
        expect(res.headers['access-control-allow-origin']).toBe(origin);
        expect(res.headers['access-control-allow-methods']).toMatch(/PATCH/);
        expect(res.headers['access-control-allow-headers']).toMatch(/If-Match/);
        expect(res.headers.vary).toMatch(/Origin/);
      }
    });

    it('lets the page read the answer of the real request, with ETag exposed', async () => {
      const res = await t
        .http()
        .get('/api/v1/products')
        .set('Origin', 'http://localhost:5173')
        .expect(200);
      expect(res.headers['access-control-allow-origin']).toBe('http://localhost:5173');
      expect(res.headers['access-control-expose-headers']).toMatch(/ETag/);
    });

    it('refuses a preflight from another origin with a 403 problem saying how to allow it', async () => {
      const res = await preflight(t, 'https://evil.example');
      expectProblem(res, 'FORBIDDEN');
      expect(res.body.detail).toMatch(/"https:\/\/evil\.example" are not allowed/);
      expect(res.body.detail).toMatch(/localhost/);
      expect(res.body.detail).toMatch(/CORS_ORIGINS/);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      // Not a loopback host, whatever it looks like.
      expectProblem(await preflight(t, 'http://localhost.evil.example:5173'), 'FORBIDDEN');
    });

    it('refuses a preflight for a method or header the API does not take, naming it', async () => {
      const method = await preflight(t, 'http://localhost:5173', 'TRACE');
      expectProblem(method, 'FORBIDDEN');
      expect(method.body.detail).toMatch(/"TRACE"/);
      const header = await preflight(t, 'http://localhost:5173', 'GET', 'x-secret');
      expectProblem(header, 'FORBIDDEN');
      expect(header.body.detail).toMatch(/x-secret/);
    });

    it('serves a simple request from another origin without CORS headers', async () => {
      const res = await t.http().get('/api/v1/products').set('Origin', 'https://evil.example');
      expect(res.status).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('logs the policy at start', () => {
      const line = logs.map((l) => JSON.parse(l)).find((l) => /^CORS: /.test(l.msg));
      expect(line?.msg).toMatch(/localhost, 127\.0\.0\.1 and \[::1\] on any port/);
    });
  });

  describe('in production without CORS_ORIGINS', () => {
    let t: TestApp;
    let logs: string[];
    beforeAll(async () => ({ t, logs } = await boot({ NODE_ENV: 'production' })));
    afterAll(() => t.close());

    it('allows no origin, localhost included, and says CORS is closed', async () => {
      for (const origin of ['http://localhost:5173', 'https://shop.example.com']) {
        const res = await preflight(t, origin);
        expectProblem(res, 'FORBIDDEN');
        expect(res.body.detail).toMatch(/no browser origin may call the API/);
        expect(res.headers['access-control-allow-origin']).toBeUndefined();
      }
      const line = logs.map((l) => JSON.parse(l)).find((l) => /^CORS: /.test(l.msg));
      expect(line?.msg).toMatch(/CORS: closed/);
    });
  });

  describe('with CORS_ORIGINS', () => {
    let t: TestApp;
    beforeAll(
      async () =>
        ({ t } = await boot({ NODE_ENV: 'production', CORS_ORIGINS: 'https://shop.example.com' })),
    );
    afterAll(() => t.close());

    it('allows exactly those origins', async () => {
      const ok = await preflight(t, 'https://shop.example.com', 'POST', 'idempotency-key');
      expect(ok.status).toBe(204);
      expect(ok.headers['access-control-allow-origin']).toBe('https://shop.example.com');
      expectProblem(await preflight(t, 'http://shop.example.com'), 'FORBIDDEN');
      expectProblem(await preflight(t, 'http://localhost:5173'), 'FORBIDDEN');
    });
  });
});
