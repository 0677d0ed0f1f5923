import { Writable } from 'node:stream';
import { JwtService } from '@nestjs/jwt';
import { createTestApp, type TestApp } from '../support/test-app';
import { type Account, account, expectProblem, uniqueEmail } from '../support/http';

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

/** The service's JSON request log lines: the only place a public route shows whom it took you for. */
class RequestLog extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.msg === 'request') this.lines.push(entry);
    }
    done();
  }

  /** The line is written once the response has gone out, so it may trail the client a little. */
  async find(requestId: string): Promise<Record<string, unknown>> {
    for (let i = 0; i < 50; i++) {
      const line = this.lines.find((l) => l.requestId === requestId);
      if (line) return line;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no request log line for ${requestId}`);
  }
}

describe('auth: a stale token on public routes', () => {
  // The secret createTestApp configures: these tokens are well signed, just no longer valid.
  const jwt = new JwtService({ secret: 'test-secret-that-is-long-enough-for-hs256-0123456789' });
  let t: TestApp;
  let log: RequestLog;
  let a: Account;
  let expired: string;
  beforeAll(async () => {
    log = new RequestLog();
    t = await createTestApp({}, log);
    a = await account(t);
    expired = await jwt.signAsync(
      { sub: a.id, role: 'customer', exp: Math.floor(Date.now() / 1000) - 60 },
      { algorithm: 'HS256' },
    );
  });
  afterAll(() => t.close());

  it('ignores an expired token on login, register and the catalogue, and still refuses it elsewhere', async () => {
    const stale = { Authorization: `Bearer ${expired}` };
    const login = await t
      .http()
      .post('/api/v1/auth/login')
      .set(stale)
      .send({ email: a.email, password: a.password })
      .expect(200);
    expect(login.body).toMatchObject({ tokenType: 'Bearer' });
    await t
      .http()
      .post('/api/v1/auth/register')
      .set(stale)
      .send({ email: uniqueEmail('again'), password: 'long enough password', name: 'Ada' })
      .expect(201);
    await t.http().get('/api/v1/products').set(stale).expect(200);

    const protectedRoute = await t.http().get('/api/v1/users/me').set(stale);
    expectProblem(protectedRoute, 'UNAUTHENTICATED');
    expect(protectedRoute.headers['www-authenticate']).toMatch(/^Bearer/);
    // The fresh token from that login works where the stale one did not.
    await t
      .http()
      .get('/api/v1/users/me')
      .set('Authorization', `Bearer ${login.body.accessToken}`)
      .expect(200);
  });

  it('ignores a malformed, badly signed or orphaned token on a public route', async () => {
    const gone = await account(t);
    await t.db.query('DELETE FROM users WHERE id = $1', [gone.id]);
    const [header, payload] = a.token.split('.');
    const badlySigned = `${header}.${payload}.c2lnbmF0dXJlLWZvcmdlZA`;
    for (const authorization of [
      'Basic abc',
      'Bearer not-a-token',
      `Bearer ${badlySigned}`,
      gone.auth.Authorization,
    ]) {
      await t.http().get('/api/v1/products').set('Authorization', authorization).expect(200);
      const res = await t.http().get('/api/v1/users/me').set('Authorization', authorization);
      expectProblem(res, 'UNAUTHENTICATED');
    }
  });

  it('accepts a token signed with JWT_SECRET as a string, and refuses one signed with another secret', async () => {
    // The service signs with the secret as a KeyObject and verifies with its bytes (fast-jwt): tokens
    // issued before, or by other tools from the same secret, stay valid.
    const token = await jwt.signAsync(
      { sub: a.id, role: 'customer', exp: Math.floor(Date.now() / 1000) + 60 },
      { algorithm: 'HS256' },
    );
    const me = await t.http().get('/api/v1/users/me').set('Authorization', `Bearer ${token}`);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: a.id });
    const forged = new JwtService({
      secret: 'test-secret-that-is-long-enough-for-hs256-0123456780',
    });
    const other = await forged.signAsync({ sub: a.id, role: 'customer' }, { algorithm: 'HS256' });
    const refused = await t.http().get('/api/v1/users/me').set('Authorization', `Bearer ${other}`);
    expectProblem(refused, 'UNAUTHENTICATED');
  });

  it('refuses a token from the moment it expires, though it was verified (and remembered) before', async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = await jwt.signAsync({ sub: a.id, role: 'customer', exp }, { algorithm: 'HS256' });
    const auth = { Authorization: `Bearer ${token}` };
    for (let i = 0; i < 3; i++) await t.http().get('/api/v1/users/me').set(auth).expect(200);
    await new Promise((r) => setTimeout(r, exp * 1000 + 1100 - Date.now()));
    expectProblem(await t.http().get('/api/v1/users/me').set(auth), 'UNAUTHENTICATED');
    // The same token with a forged signature never passes, verified or not before.
    const [header, payload] = token.split('.');
    const forged = { Authorization: `Bearer ${header}.${payload}.c2lnbmF0dXJlLWZvcmdlZA` };
    expectProblem(await t.http().get('/api/v1/users/me').set(forged), 'UNAUTHENTICATED');
  });

  it('still reads a valid token on a public route, and takes the caller of a stale one for nobody', async () => {
    await t
      .http()
      .get('/api/v1/products')
      .set(a.auth)
      .set('X-Request-Id', 'public-valid')
      .expect(200);
    expect(await log.find('public-valid')).toMatchObject({ userId: a.id, status: 200 });
    await t
      .http()
      .get('/api/v1/products')
      .set('Authorization', `Bearer ${expired}`)
      .set('X-Request-Id', 'public-expired')
      .expect(200);
    const line = await log.find('public-expired');
    expect(line.status).toBe(200);
    expect(line.userId).toBeUndefined();
  });
});
