import { existsSync } from 'node:fs';
import type { DataSource } from 'typeorm';
import { verifyPassword } from '../../src/users/passwords';
import { createDataSource } from '../../src/database/data-source';
import { DEMO_ACCOUNTS, DEMO_PRODUCTS } from '../../src/common/demo-data';
import { seedDemo } from '../../src/database/seed';
import { call, type Instance, startInstance } from '../multi-instance/instances';
import { expectProblem, login } from '../support/http';
import { createTestApp, createTestDatabase, type TestApp } from '../support/test-app';

const storedHash = async (db: DataSource, email: string): Promise<string> => {
  const [row] = await db.query<{ password_hash: string }[]>(
    'SELECT password_hash FROM users WHERE lower(email) = lower($1)',
    [email],
  );
  return row.password_hash;
};

const productCount = async (db: DataSource): Promise<number> => {
  const [{ n }] = await db.query<{ n: number }[]>(
    'SELECT count(*)::int AS n FROM products WHERE sku = ANY($1)',
    [DEMO_PRODUCTS.map((p) => p.sku)],
  );
  return n;
};

describe('demo seed with NODE_ENV=production', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it('creates the demo accounts with fresh random passwords: the published ones do not log in', async () => {
    const created = await seedDemo(t.db, 'production');

    for (const a of DEMO_ACCOUNTS) {
      // What an attacker who read the README tries first.
      const res = await t
        .http()
        .post('/api/v1/auth/login')
        .send({ email: a.email, password: a.password });
      expectProblem(res, 'UNAUTHENTICATED');
      expect(await verifyPassword(await storedHash(t.db, a.email), a.password)).toBe(false);
    }

    expect(created.map((a) => a.email).sort()).toEqual(DEMO_ACCOUNTS.map((a) => a.email).sort());
    const published: string[] = DEMO_ACCOUNTS.map((a) => a.password);
    for (const a of created) {
      expect(published).not.toContain(a.password);
      expect(a.password.length).toBeGreaterThanOrEqual(20);
      // The password handed back (for the start-up log) is the one that works.
      expect(await login(t, a.email, a.password)).toEqual(expect.any(String));
    }
    expect(new Set(created.map((a) => a.password)).size).toBe(created.length);
    expect(await productCount(t.db)).toBe(DEMO_PRODUCTS.length);
  });

  it('creates nothing on the next start, so no password is printed twice', async () => {
    const before = await storedHash(t.db, DEMO_ACCOUNTS[0].email);
    expect(await seedDemo(t.db, 'production')).toEqual([]);
    expect(await storedHash(t.db, DEMO_ACCOUNTS[0].email)).toBe(before);
  });
});

describe('demo seed in development', () => {
  let drop: () => Promise<void>;
  let db: DataSource;
  beforeAll(async () => {
    const database = await createTestDatabase();
    drop = database.drop;
    db = createDataSource({ url: database.url, poolSize: 2 });
    await db.initialize();
  });
  afterAll(async () => {
    await db.destroy();
    await drop();
  });

  it('keeps the published demo passwords (README, client/demo)', async () => {
    const created = await seedDemo(db, 'development');
    expect(created).toEqual(
      DEMO_ACCOUNTS.map((a) => ({ email: a.email, role: a.role, password: a.password })),
    );
    for (const a of DEMO_ACCOUNTS) {
      expect(await verifyPassword(await storedHash(db, a.email), a.password)).toBe(true);
    }
    expect(await productCount(db)).toBe(DEMO_PRODUCTS.length);
  });
});

/** The wiring in main.ts: the built service, started as `docker compose up` runs it. */
const built = existsSync('dist/src/main.js');
if (!built)
  console.log('seed start-up log test skipped: dist/src/main.js is absent (npm run build)');

(built ? describe : describe.skip)(
  'SEED_DEMO=true with NODE_ENV=production (built service)',
  () => {
    let database: { url: string; drop: () => Promise<void> };
    let instance: Instance | undefined;
    beforeAll(async () => {
      database = await createTestDatabase();
    });
    afterAll(async () => {
      await instance?.stop();
      await database.drop();
    });

    /** The `role email / password` lines of the start-up log (JSON lines in production). */
    const credentials = (output: string[]): Map<string, string> => {
      const found = new Map<string, string>();
      for (const line of output.join('').split('\n')) {
        let msg: unknown;
        try {
          msg = (JSON.parse(line) as { msg?: unknown }).msg;
        } catch {
          continue;
        }
        const m = typeof msg === 'string' ? /^\s*\w+\s+(\S+@\S+) \/ (\S+)$/.exec(msg) : null;
        if (m) found.set(m[1], m[2]);
      }
      return found;
    };

    it('prints each generated password once, and only those passwords log in', async () => {
      // startInstance runs LOG_LEVEL=warn, as production often does: the passwords must still show.
      const env = { SEED_DEMO: 'true' };
      instance = await startInstance('seeded', database.url, env);
      const printed = credentials(instance.output);
      expect([...printed.keys()].sort()).toEqual(DEMO_ACCOUNTS.map((a) => a.email).sort());
      for (const a of DEMO_ACCOUNTS) {
        expect(printed.get(a.email)).not.toBe(a.password);
        const refused = await call(instance.url, 'POST', '/api/v1/auth/login', {
          body: { email: a.email, password: a.password },
        });
        expect(refused.status).toBe(401);
        const accepted = await call(instance.url, 'POST', '/api/v1/auth/login', {
          body: { email: a.email, password: printed.get(a.email) },
        });
        expect(accepted.status).toBe(200);
      }
      await instance.stop();

      instance = await startInstance('restarted', database.url, env);
      expect(credentials(instance.output).size).toBe(0);
    });
  },
);
