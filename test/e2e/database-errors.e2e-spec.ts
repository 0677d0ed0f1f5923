import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { CONSTRAINTS } from '../../src/common/database/database-errors';
import { type Account, account, expectProblem } from '../support/http';
import { createProduct, placeOrder } from '../support/fixtures';
import { createTestApp, type TestApp } from '../support/test-app';

/** Every log line the app writes, as text. */
class LogCapture extends Writable {
  lines: string[] = [];
  override _write(chunk: Buffer, _: string, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
}

describe('database errors', () => {
  let t: TestApp;
  let admin: Account;
  const logs = new LogCapture();
  beforeAll(async () => {
    t = await createTestApp({}, logs);
    admin = await account(t, 'admin');
  });
  afterAll(() => t.close());

  it('maps every constraint and unique index of the schema to an answer (the map lacks none)', async () => {
    const rows: { name: string }[] = await t.db.query(
      `SELECT conname AS name FROM pg_constraint c
         JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = 'public' AND c.contype IN ('c', 'f', 'p', 'u', 'x')
          AND c.conrelid <> 0
       UNION
       SELECT i.relname FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_class tbl ON tbl.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = tbl.relnamespace
        WHERE n.nspname = 'public' AND x.indisunique AND tbl.relname <> 'migrations'
        ORDER BY 1`,
    );
    const names = rows.map((r) => r.name).filter((name) => !name.startsWith('PK_')); // TypeORM's own table
    expect(names.length).toBeGreaterThan(20);
    expect(names.filter((name) => !(name in CONSTRAINTS))).toEqual([]);
    // …and the map names nothing the schema does not have.
    expect(Object.keys(CONSTRAINTS).filter((name) => !names.includes(name))).toEqual([]);
  });

  it('answers 401 (not 500) when the account is deleted while its keyed checkout is in flight', async () => {
    const buyer = await account(t);
    const p = await createProduct(t, admin, { stock: 5 });
    // An admin's delete of the (order-less) account is under way and holds the row…
    const deleter = new Client({ connectionString: t.databaseUrl });
    await deleter.connect();
    try {
      await deleter.query('BEGIN');
      await deleter.query('DELETE FROM users WHERE id = $1', [buyer.id]);
      // …while the checkout passes the guard (it still sees the account) and waits on the key's
      // foreign key; then the delete commits.
      const checkout = placeOrder(t, buyer, [{ productId: p.id, quantity: 1 }], randomUUID());
      const pending = checkout.then((r) => r);
      for (let i = 0; i < 100; i++) {
        const [{ n }] = await t.db.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        if (n > 0) break;
        await sleep(20);
      }
      await deleter.query('COMMIT');
      const res = await pending;
      expectProblem(res, 'UNAUTHENTICATED');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    } finally {
      await deleter.end();
    }
    const [{ n }] = await t.db.query(
      'SELECT count(*)::int AS n FROM products WHERE id = $1 AND stock = 5',
      [p.id],
    );
    expect(n).toBe(1);
  });

  it('never logs row content, query parameters or PostgreSQL detail of an unexpected database error', async () => {
    const victim = await account(t);
    // A constraint the service does not know (added to this file's own database only), so that the
    // write fails in a way nothing maps: the 500 path, whose log line is what is under test.
    await t.db.query(
      `ALTER TABLE users ADD CONSTRAINT test_unknown_check CHECK (name <> 'forbidden name')`,
    );
    try {
      const res = await t
        .http()
        .patch(`/api/v1/users/${victim.id}`)
        .set(victim.auth)
        .set('If-Match', '*')
        .send({ name: 'forbidden name' });
      expectProblem(res, 'INTERNAL');
      expect(res.text).not.toMatch(/test_unknown_check|forbidden name|Failing row/);
    } finally {
      await t.db.query('ALTER TABLE users DROP CONSTRAINT test_unknown_check');
    }
    const text = logs.lines.join('\n');
    expect(text).toMatch(/test_unknown_check/); // the constraint's name is kept…
    expect(text).toMatch(/23514/); // …and the SQLSTATE
    expect(text).not.toMatch(/Failing row|forbidden name|\$argon2|@example\.com.*argon/);
    expect(text).not.toContain(victim.email);
  });
});
