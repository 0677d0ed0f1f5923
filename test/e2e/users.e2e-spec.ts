import { type Account, account, expectProblem } from '../support/http';
import { createTestApp, type TestApp } from '../support/test-app';

describe('users', () => {
  let t: TestApp;
  let admin: Account;
  beforeAll(async () => {
    t = await createTestApp();
    admin = await account(t, 'admin');
  });
  afterAll(() => t.close());

  const userRow = async (id: string): Promise<Record<string, any> | undefined> =>
    (await t.db.query('SELECT id, email, name, role, version FROM users WHERE id = $1', [id]))[0];
  const get = (a: Account, id: string) => t.http().get(`/api/v1/users/${id}`).set(a.auth);

  it('lets a customer read only themselves: anyone else is 404', async () => {
    const a = await account(t);
    const b = await account(t);
    const self = await get(a, a.id).expect(200);
    expect(self.headers.etag).toMatch(/^"/);
    expectProblem(await get(a, b.id), 'NOT_FOUND');
    expectProblem(await t.http().get('/api/v1/users').set(a.auth), 'FORBIDDEN');
  });

  it('lets an admin list users with pagination and read anyone', async () => {
    const c = await account(t);
    const res = await t
      .http()
      .get('/api/v1/users')
      .set(admin.auth)
      .query({ limit: 100 })
      .expect(200);
    expect(res.body.items.map((u: { id: string }) => u.id)).toContain(c.id);
    await get(admin, c.id).expect(200);
  });

  it('answers 304 to GET /users/me with a matching If-None-Match', async () => {
    const a = await account(t);
    const first = await t.http().get('/api/v1/users/me').set(a.auth).expect(200);
    const again = await t
      .http()
      .get('/api/v1/users/me')
      .set(a.auth)
      .set('If-None-Match', first.headers.etag);
    expect(again.status).toBe(304);
  });

  it('lets a user rename themselves with If-Match; a stale tag is 412 and changes nothing', async () => {
    const a = await account(t);
    const { headers } = await get(a, a.id).expect(200);
    const ok = await t
      .http()
      .patch(`/api/v1/users/${a.id}`)
      .set(a.auth)
      .set('If-Match', headers.etag)
      .send({ name: 'New name' })
      .expect(200);
    expect(ok.body).toMatchObject({ name: 'New name', version: 2 });
    const stale = await t
      .http()
      .patch(`/api/v1/users/${a.id}`)
      .set(a.auth)
      .set('If-Match', headers.etag)
      .send({ name: 'Lost' });
    expectProblem(stale, 'PRECONDITION_FAILED');
    expect(stale.body).toMatchObject({ currentVersion: 2, current: { name: 'New name' } });
    expect(stale.body.current).not.toHaveProperty('passwordHash');
    expect(await userRow(a.id)).toMatchObject({ name: 'New name', version: 2 });
  });

  it('answers 428 without a precondition and 409 VERSION_MISMATCH with a stale body version', async () => {
    const a = await account(t);
    expectProblem(
      await t.http().patch(`/api/v1/users/${a.id}`).set(a.auth).send({ name: 'x' }),
      'PRECONDITION_REQUIRED',
    );
    await t
      .http()
      .patch(`/api/v1/users/${a.id}`)
      .set(a.auth)
      .send({ name: 'y', version: 1 })
      .expect(200);
    const res = await t
      .http()
      .patch(`/api/v1/users/${a.id}`)
      .set(a.auth)
      .send({ name: 'z', version: 1 });
    expectProblem(res, 'VERSION_MISMATCH');
    expect(res.body).toMatchObject({ requestedVersion: 1, currentVersion: 2 });
    expect(await userRow(a.id)).toMatchObject({ name: 'y', version: 2 });
  });

  it('forbids customers from changing roles and from editing others (404)', async () => {
    const a = await account(t);
    const b = await account(t);
    expectProblem(
      await t.http().patch(`/api/v1/users/${a.id}`).set(a.auth).send({ role: 'admin', version: 1 }),
      'FORBIDDEN',
    );
    expectProblem(
      await t.http().patch(`/api/v1/users/${b.id}`).set(a.auth).send({ name: 'x', version: 1 }),
      'NOT_FOUND',
    );
    expect(await userRow(a.id)).toMatchObject({ role: 'customer', version: 1 });
  });

  it('lets an admin promote a customer, whose next request has admin rights', async () => {
    const a = await account(t);
    await t
      .http()
      .patch(`/api/v1/users/${a.id}`)
      .set(admin.auth)
      .send({ role: 'admin', version: 1 })
      .expect(200);
    await t.http().get('/api/v1/users').set(a.auth).expect(200);
  });

  it('answers 409 EMAIL_TAKEN when changing to a taken email; admins see the conflicting user', async () => {
    const a = await account(t);
    const b = await account(t);
    const own = await t
      .http()
      .patch(`/api/v1/users/${a.id}`)
      .set(a.auth)
      .send({ email: b.email.toUpperCase(), version: 1 });
    expectProblem(own, 'EMAIL_TAKEN');
    expect(own.body.conflictingResource).toBeUndefined();
    const byAdmin = await t
      .http()
      .patch(`/api/v1/users/${a.id}`)
      .set(admin.auth)
      .send({ email: b.email, version: 1 });
    expectProblem(byAdmin, 'EMAIL_TAKEN');
    expect(byAdmin.body).toMatchObject({
      field: 'email',
      value: b.email,
      conflictingResource: `/api/v1/users/${b.id}`,
    });
    expect(await userRow(a.id)).toMatchObject({ email: a.email, version: 1 });
  });

  it('changes a password so that only the new one logs in', async () => {
    const a = await account(t);
    await t
      .http()
      .patch(`/api/v1/users/${a.id}`)
      .set(a.auth)
      .send({ password: 'the new long password', version: 1 })
      .expect(200);
    expectProblem(
      await t.http().post('/api/v1/auth/login').send({ email: a.email, password: a.password }),
      'UNAUTHENTICATED',
    );
    await t
      .http()
      .post('/api/v1/auth/login')
      .send({ email: a.email, password: 'the new long password' })
      .expect(200);
  });

  it('lets an admin delete a user with If-Match; customers get 403; 428 without precondition', async () => {
    const a = await account(t);
    const b = await account(t);
    expectProblem(await t.http().delete(`/api/v1/users/${b.id}`).set(a.auth), 'FORBIDDEN');
    expectProblem(
      await t.http().delete(`/api/v1/users/${b.id}`).set(admin.auth),
      'PRECONDITION_REQUIRED',
    );
    const { headers } = await get(admin, b.id).expect(200);
    await t
      .http()
      .delete(`/api/v1/users/${b.id}`)
      .set(admin.auth)
      .set('If-Match', headers.etag)
      .expect(204);
    expect(await userRow(b.id)).toBeUndefined();
  });

  it('lets exactly one of 20 parallel PATCHes with one body version win', async () => {
    const a = await account(t);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t
          .http()
          .patch(`/api/v1/users/${a.id}`)
          .set(a.auth)
          .send({ name: `n${i}`, version: 1 }),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) expectProblem(r, 'VERSION_MISMATCH');
    expect((await userRow(a.id))?.version).toBe(2);
  });
});
