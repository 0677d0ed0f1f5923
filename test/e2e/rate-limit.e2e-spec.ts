import { randomBytes } from 'node:crypto';
import { expectProblem } from '../support/http';
import { describeWithService } from '../support/services';
import { createTestApp, type TestApp } from '../support/test-app';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const describeWithRedis = describeWithService({
  name: 'redis',
  label: 'Redis',
  url: REDIS_URL,
  defaultPort: 6379,
});

/** The same cases with the counters in memory and in Redis. */
const rateLimitCases = (withRedis: boolean) => (): void => {
  const limits = (): Record<string, string> => ({
    RATE_LIMIT_MAX: '5',
    AUTH_RATE_LIMIT_MAX: '3',
    RATE_LIMIT_WINDOW_SECONDS: '60',
    RATE_LIMIT_NAMESPACE: `test-${randomBytes(6).toString('hex')}:`,
    ...(withRedis ? { REDIS_URL } : {}),
  });
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(limits());
  });
  afterAll(() => t.close());

  const login = (app: TestApp) =>
    app
      .http()
      .post('/api/v1/auth/login')
      .send({ email: 'nobody@example.com', password: 'wrong password' });

  it('limits /auth strictly: the 4th login in a minute is 429 RATE_LIMITED with Retry-After', async () => {
    for (let i = 0; i < 3; i++) expect((await login(t)).status).toBe(401);
    const res = await login(t);
    expectProblem(res, 'RATE_LIMITED');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('limits the rest of the API generally, and never the health checks', async () => {
    for (let i = 0; i < 5; i++) await t.http().get('/api/v1/products').expect(200);
    expectProblem(await t.http().get('/api/v1/products'), 'RATE_LIMITED');
    for (let i = 0; i < 10; i++) await t.http().get('/health/live').expect(200);
  });

  if (withRedis) {
    it('shares the counters between instances through Redis', async () => {
      const env = limits();
      const a = await createTestApp(env);
      const b = await createTestApp(env);
      try {
        for (let i = 0; i < 3; i++) expect((await login(i % 2 ? a : b)).status).toBe(401);
        expectProblem(await login(a), 'RATE_LIMITED');
        expectProblem(await login(b), 'RATE_LIMITED');
      } finally {
        await a.close();
        await b.close();
      }
    });
  }
};

describe('rate limits in memory', rateLimitCases(false));
describeWithRedis('rate limits in Redis', rateLimitCases(true));

describe('rate limits when Redis is unreachable', () => {
  it('fail open: requests are still served', async () => {
    const t = await createTestApp({ RATE_LIMIT_MAX: '2', REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      for (let i = 0; i < 4; i++) await t.http().get('/api/v1/products').expect(200);
    } finally {
      await t.close();
    }
  });
});
