import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { verifyPassword } from '../../src/users/passwords';
import { expectProblem, login, uniqueEmail } from '../support/http';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * `npm run admin:create`, run as users run it: the built CLI in its own process, against this file's
 * database. It cannot run from the TypeScript sources (ESM + decorators need the build), so, like
 * test/multi-instance, it needs `npm run build` (CI builds before `npm test`); without a build it is
 * skipped rather than failed.
 */
const CLI = 'dist/src/cli/admin-create.js';
const built = existsSync(CLI);
if (!built) {
  // Straight to stderr: Jest drops console output of a file whose tests are all skipped.
  process.stderr.write(`\nadmin:create tests skipped: ${CLI} is absent (run npm run build)\n`);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

(built ? describe : describe.skip)('npm run admin:create (built CLI)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  const adminCreate = (args: string[], password?: string): Promise<Run> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], {
        env: {
          PATH: process.env.PATH,
          DATABASE_URL: t.databaseUrl,
          ...(password === undefined ? {} : { ADMIN_PASSWORD: password }),
        },
        // No terminal: the CLI must take ADMIN_PASSWORD or stop, never wait for a prompt.
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });

  const row = async (
    email: string,
  ): Promise<
    | { role: string; name: string; password_hash: string; version: number; updated_at: Date }
    | undefined
  > => {
    const rows = await t.db.query(
      `SELECT role, name, password_hash, version, updated_at FROM users
       WHERE lower(email) = lower($1)`,
      [email],
    );
    return rows[0];
  };

  const loginStatus = async (email: string, password: string): Promise<number> =>
    (await t.http().post('/api/v1/auth/login').send({ email, password })).status;

  /** Someone registers first, through the open API, with a password only they know. */
  const stranger = async (): Promise<{ email: string; password: string }> => {
    const email = uniqueEmail('stranger');
    const password = 'the strangers own password';
    await t
      .http()
      .post('/api/v1/auth/register')
      .send({ email, password, name: 'Stranger' })
      .expect(201);
    return { email, password };
  };

  const mine = 'the password the operator typed';

  it('creates an admin account with the password given', async () => {
    const email = uniqueEmail('cli-new');
    const run = await adminCreate([email, 'Ada', 'Admin'], mine);
    expect(run).toMatchObject({ code: 0, stdout: expect.stringMatching(/Created admin account/) });
    expect(await row(email)).toMatchObject({ role: 'admin', name: 'Ada Admin', version: 1 });
    expect(await verifyPassword((await row(email))!.password_hash, mine)).toBe(true);
    const token = await login(t, email, mine);
    const me = await t
      .http()
      .get('/api/v1/users/me')
      .set({ Authorization: `Bearer ${token}` })
      .expect(200);
    expect(me.body).toMatchObject({ email, role: 'admin' });
  });

  it('refuses an email someone already registered (in any case): exit 1, nothing changed', async () => {
    const s = await stranger();
    const before = await row(s.email);

    const run = await adminCreate([s.email.toUpperCase()], mine);

    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/already registered/);
    expect(run.stderr).toMatch(/--promote/);
    expect(run.stderr).toMatch(/keeps its own password/);
    expect(await row(s.email)).toEqual(before);
    expect(before?.role).toBe('customer');
    expect(await loginStatus(s.email, s.password)).toBe(200);
    expectProblem(
      await t.http().post('/api/v1/auth/login').send({ email: s.email, password: mine }),
      'UNAUTHENTICATED',
    );
  });

  it('with --promote, makes the existing account an admin and says its password was not changed', async () => {
    const s = await stranger();
    const before = (await row(s.email))!;

    const run = await adminCreate(['--promote', s.email], mine);

    expect(run).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(
        /Promoted existing account \S+ to admin .*; its password was not changed\./,
      ),
    });
    const after = (await row(s.email))!;
    expect(after).toMatchObject({ role: 'admin', version: before.version + 1 });
    expect(after.password_hash).toBe(before.password_hash);
    expect(await loginStatus(s.email, s.password)).toBe(200);
    expect(await loginStatus(s.email, mine)).toBe(401);

    // Again: already an admin, nothing to do, and still not its password.
    const again = await adminCreate([s.email, '--promote'], mine);
    expect(again).toMatchObject({ code: 0, stdout: expect.stringMatching(/already is an admin/) });
    expect(await row(s.email)).toEqual(after);
  });

  it('with --promote on an unknown email, creates the account with the password given', async () => {
    const email = uniqueEmail('cli-promote-new');
    const run = await adminCreate(['--promote', email], mine);
    expect(run).toMatchObject({ code: 0, stdout: expect.stringMatching(/Created admin account/) });
    expect(await row(email)).toMatchObject({ role: 'admin', version: 1 });
    expect(await loginStatus(email, mine)).toBe(200);
  });

  it('without ADMIN_PASSWORD and no terminal to prompt on, stops before writing anything', async () => {
    const email = uniqueEmail('cli-nopass');
    const run = await adminCreate([email]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/ADMIN_PASSWORD/);
    expect(await row(email)).toBeUndefined();
  });
});
