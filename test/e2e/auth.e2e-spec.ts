import { createTestApp, type TestApp } from '../support/test-app';
import { account, expectProblem, uniqueEmail } from '../support/http';

describe('auth: registration and login', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  const countByEmail = async (email: string): Promise<number> => {
    const [{ n }] = await t.db.query<{ n: number }[]>(
      'SELECT count(*)::int AS n FROM users WHERE lower(email) = lower($1)',
      [email],
    );
    return n;
  };

  it('registers a customer with 201, Location and ETag, never exposing the password', async () => {
    const email = uniqueEmail();
    const res = await t
      .http()
      .post('/api/v1/auth/register')
      .send({ email, password: 'long enough password', name: 'Ada' })
      .expect(201);
    expect(res.body).toMatchObject({ email, name: 'Ada', role: 'customer', version: 1 });
    expect(res.headers.location).toBe(`/api/v1/users/${res.body.id}`);
    expect(res.headers.etag).toMatch(/^"[^"]+"$/);
    expect(JSON.stringify(res.body)).not.toMatch(/password|hash/i);
  });

  it('answers 409 EMAIL_TAKEN for the same email in another case and with spaces, keeping one row', async () => {
    const email = uniqueEmail('Case');
    await t
      .http()
      .post('/api/v1/auth/register')
      .send({ email, password: 'long enough password', name: 'A' })
      .expect(201);
    const res = await t
      .http()
      .post('/api/v1/auth/register')
      .send({ email: `  ${email.toUpperCase()} `, password: 'another long password', name: 'B' });
    expectProblem(res, 'EMAIL_TAKEN');
    expect(res.body).toMatchObject({ field: 'email', value: email.toUpperCase() });
    // An anonymous caller may not see the existing account, so it is not named.
    expect(res.body.conflictingResource).toBeUndefined();
    expect(await countByEmail(email)).toBe(1);
  });

  it('lets exactly one of 20 parallel registrations of one email succeed', async () => {
    const email = uniqueEmail('race');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t
          .http()
          .post('/api/v1/auth/register')
          .send({
            email: i % 2 ? email.toUpperCase() : email,
            password: 'long enough password',
            name: `r${i}`,
          }),
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    for (const r of results.filter((x) => x.status === 409)) expectProblem(r, 'EMAIL_TAKEN');
    expect(await countByEmail(email)).toBe(1);
  });

  it('logs in case-insensitively and returns a bearer token that /users/me accepts', async () => {
    const a = await account(t);
    const res = await t
      .http()
      .post('/api/v1/auth/login')
      .send({ email: a.email.toUpperCase(), password: a.password })
      .expect(200);
    expect(res.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 3600 });
    const me = await t
      .http()
      .get('/api/v1/users/me')
      .set('Authorization', `Bearer ${res.body.accessToken}`)
      .expect(200);
    expect(me.body).toMatchObject({ id: a.id, email: a.email, role: 'customer' });
    expect(me.headers.etag).toMatch(/^"/);
  });

  it('answers login failures identically whether or not the email exists', async () => {
    const a = await account(t);
    const wrongPassword = await t
      .http()
      .post('/api/v1/auth/login')
      .send({ email: a.email, password: 'not the password' });
    const unknownEmail = await t
      .http()
      .post('/api/v1/auth/login')
      .send({ email: uniqueEmail('ghost'), password: 'not the password' });
    for (const res of [wrongPassword, unknownEmail]) {
      expectProblem(res, 'UNAUTHENTICATED');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    const strip = (b: Record<string, unknown>): Record<string, unknown> => ({
      ...b,
      requestId: undefined,
    });
    expect(strip(wrongPassword.body)).toEqual(strip(unknownEmail.body));
  });

  it('answers 401 with WWW-Authenticate for a missing, malformed or forged token', async () => {
    const forged =
      'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIiwicm9sZSI6ImFkbWluIn0.c2lnbmF0dXJlLWZvcmdlZA';
    for (const header of [undefined, 'Basic abc', `Bearer ${forged}`]) {
      const req = t.http().get('/api/v1/users/me');
      const res = await (header ? req.set('Authorization', header) : req);
      expectProblem(res, 'UNAUTHENTICATED');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    }
  });

  it('rejects a token whose account was deleted', async () => {
    const a = await account(t);
    await t.db.query('DELETE FROM users WHERE id = $1', [a.id]);
    expectProblem(await t.http().get('/api/v1/users/me').set(a.auth), 'UNAUTHENTICATED');
  });

  it('names every failing registration field', async () => {
    const res = await t
      .http()
      .post('/api/v1/auth/register')
      .send({ email: 'nope', password: 'short' });
    expectProblem(res, 'VALIDATION_FAILED');
    const fields = (res.body.errors as { field: string }[]).map((e) => e.field);
    expect(new Set(fields)).toEqual(new Set(['email', 'password', 'name']));
  });

  it('never lets registration create an admin', async () => {
    const res = await t
      .http()
      .post('/api/v1/auth/register')
      .send({ email: uniqueEmail(), password: 'long enough password', name: 'x', role: 'admin' });
    expectProblem(res, 'VALIDATION_FAILED');
    expect(res.body.errors).toEqual([{ field: 'role', message: 'property role should not exist' }]);
  });
});
