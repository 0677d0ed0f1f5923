import { PROBLEM_CODES, PROBLEMS } from '../../src/common/problems/problem-catalogue';
import { createTestApp, type TestApp } from '../support/test-app';
import { expectProblem } from '../support/http';

describe('the problem+json pipeline', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ BODY_LIMIT_BYTES: '2048' });
  });
  afterAll(() => t.close());

  it('answers malformed JSON with 400 VALIDATION_FAILED naming the body', async () => {
    const res = await t
      .http()
      .post('/api/v1/auth/register')
      .set('Content-Type', 'application/json')
      .send('{"email": ');
    expectProblem(res, 'VALIDATION_FAILED');
    expect(res.body.errors[0].field).toBe('body');
    expect(res.body.instance).toBe('/api/v1/auth/register');
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])(
    'answers a %s body with 415 UNSUPPORTED_MEDIA_TYPE',
    async (type) => {
      const res = await t
        .http()
        .post('/api/v1/auth/register')
        .set('Content-Type', type)
        .send('email=a');
      expectProblem(res, 'UNSUPPORTED_MEDIA_TYPE');
    },
  );

  it('answers a body over the limit with 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await t
      .http()
      .post('/api/v1/auth/register')
      .send({ email: 'a@example.com', password: 'x'.repeat(5000), name: 'big' });
    expectProblem(res, 'PAYLOAD_TOO_LARGE');
  });

  it.each([
    ['GET', '/api/v1/nothing-here'],
    ['GET', '/nope'],
    ['DELETE', '/api/v1/auth/login'],
  ])('answers %s %s with 404 NOT_FOUND', async (method, path) => {
    const res = await t.http()[method.toLowerCase() as 'get' | 'delete'](path);
    expectProblem(res, 'NOT_FOUND');
    expect(res.body.instance).toBe(path);
  });

  it('names nested fields of a validation error by their path', async () => {
    const res = await t
      .http()
      .post('/api/v1/auth/register')
      .send({ email: ['x'], password: 12, name: { first: 'a' } });
    expectProblem(res, 'VALIDATION_FAILED');
    const fields = (res.body.errors as { field: string }[]).map((e) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['email', 'password', 'name']));
  });

  it('answers a non-UUID path id with 400 naming the parameter', async () => {
    const admin = await t
      .http()
      .post('/api/v1/auth/login')
      .send({ email: 'x@example.com', password: 'nope-nope' });
    expect(admin.status).toBe(401);
    const res = await t.http().get('/api/v1/users/not-a-uuid');
    // Authentication comes first: an anonymous caller learns nothing about the path.
    expectProblem(res, 'UNAUTHENTICATED');
  });

  it('echoes a well-formed X-Request-Id and replaces a malformed one', async () => {
    const mine = await t.http().get('/nope').set('X-Request-Id', 'client-abc.123');
    expect(mine.headers['x-request-id']).toBe('client-abc.123');
    expect(mine.body.requestId).toBe('client-abc.123');
    const bad = await t.http().get('/nope').set('X-Request-Id', 'bad id with spaces <script>');
    expect(bad.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(bad.body.requestId).toBe(bad.headers['x-request-id']);
    const ok = await t.http().get('/health/live').expect(200);
    expect(ok.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('serves a page for every problem type, and 404 for an unknown one', async () => {
    for (const code of PROBLEM_CODES) {
      const res = await t.http().get(`/problems/${PROBLEMS[code].slug}`).expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.text).toContain(PROBLEMS[code].title.replace(/'/g, '&#39;'));
      expect(res.text).toContain(code);
      expect(res.text).toContain(`href="/problems/guide#${code.toLowerCase()}"`);
    }
    const guide = await t.http().get('/problems/guide').expect(200);
    for (const code of PROBLEM_CODES) expect(guide.text).toContain(`id="${code.toLowerCase()}"`);
    expectProblem(await t.http().get('/problems/no-such-problem'), 'NOT_FOUND');
  });

  it('serves the OpenAPI document and the Swagger UI', async () => {
    const doc = await t.http().get('/docs-json').expect(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(['/api/v1/auth/register', '/api/v1/users/{id}']),
    );
    const ui = await t.http().get('/docs').expect(200);
    expect(ui.text).toContain('swagger-ui');
  });

  it('reports readiness with a database round trip', async () => {
    const res = await t.http().get('/health/ready').expect(200);
    expect(res.body).toMatchObject({
      status: 'ok',
      info: { database: { status: 'up' }, shutdown: { status: 'up' } },
    });
  });
});
