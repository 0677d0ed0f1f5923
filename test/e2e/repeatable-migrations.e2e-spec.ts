import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions, MIGRATIONS } from '../../src/database/data-source';
import {
  FUNCTIONS_ROOT,
  type FunctionFile,
  readFunctionFiles,
  runMigrations,
} from '../../src/database/migrate';
import { getTestState } from '../support/test-state';

/**
 * SQL functions are repeatable migrations (issue 21): each function's current text is one file,
 * `src/<feature>/sql/<name>.sql`, applied after the versioned migrations whenever its checksum
 * differs from the recorded one.
 */

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

const created: string[] = [];

async function admin<T>(work: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: getTestState().serverUrl });
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}

/** An empty database of this test's own (not the migrated template). */
async function emptyDatabase(): Promise<string> {
  const name = `repeatable_${randomBytes(5).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  created.push(name);
  return withDatabase(getTestState().serverUrl, name);
}

async function query<R>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, values)).rows as R[];
  } finally {
    await c.end();
  }
}

/** Every function of the public schema (extensions' too), as PostgreSQL would recreate it. */
async function functionDefinitions(url: string): Promise<{ name: string; def: string }[]> {
  return query(
    url,
    `SELECT p.proname AS name, pg_get_functiondef(p.oid) AS def
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'public'
      ORDER BY p.proname, pg_get_function_identity_arguments(p.oid)`,
  );
}

/** The functions of the public schema that belong to no extension: the service's own. */
async function ownFunctions(url: string): Promise<string[]> {
  const rows = await query<{ name: string }>(
    url,
    `SELECT p.proname AS name
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'public'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d
                         WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
      ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

async function recorded(
  url: string,
): Promise<Map<string, { checksum: string; appliedAt: string }>> {
  const rows = await query<{ name: string; checksum: string; applied_at: string }>(
    url,
    `SELECT name, checksum, applied_at::text AS applied_at FROM repeatable_migrations`,
  );
  return new Map(rows.map((r) => [r.name, { checksum: r.checksum, appliedAt: r.applied_at }]));
}

/** Runs the versioned migrations one at a time, as a database that lived through them did. */
async function migrateStepByStep(url: string, upTo: number): Promise<void> {
  for (let k = 1; k <= upTo; k++) {
    const ds = new DataSource({
      ...dataSourceOptions({ url, poolSize: 1 }),
      migrations: MIGRATIONS.slice(0, k),
    });
    await ds.initialize();
    try {
      const done = await ds.runMigrations({ transaction: 'each' });
      expect(done.map((m) => m.name)).toEqual([MIGRATIONS[k - 1].name]);
    } finally {
      await ds.destroy();
    }
  }
}

/** A copy of the service's function files in a folder of its own, to change one of them. */
async function copyOfFunctionFiles(files: FunctionFile[]): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'order-service-functions-'));
  for (const f of files) {
    await mkdir(dirname(join(root, f.path)), { recursive: true });
    await writeFile(join(root, f.path), f.text);
  }
  return root;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

afterAll(async () => {
  await admin(async (c) => {
    for (const name of created) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
});

describe('SQL functions as repeatable migrations', () => {
  let files: FunctionFile[];
  let fresh: string;
  let freshLog: string[];
  let old: string;
  let oldLog: string[];

  beforeAll(async () => {
    files = await readFunctionFiles();
    [fresh, old] = await Promise.all([emptyDatabase(), emptyDatabase()]);
    freshLog = [];
    await runMigrations(fresh, (line) => freshLog.push(line));
    // A database of before issue 21: every versioned migration up to the one that introduced the
    // function files, one at a time; then the service of today starts on it.
    const introduced = MIGRATIONS.findIndex((m) => m.name === 'RepeatableMigrations1763791100000');
    expect(introduced).toBeGreaterThan(0);
    await migrateStepByStep(old, introduced);
    oldLog = [];
    await runMigrations(old, (line) => oldLog.push(line));
  });

  it('finds the function files of the sources, each after what it requires', () => {
    const names = files.map((f) => f.name);
    expect([...names].sort()).toEqual([
      'apply_payment_succeeded',
      'claim_idempotency_key',
      'idempotency_key_free',
      'iso_utc',
      'outbox_append',
      'place_order',
      'place_order_keyed',
      'place_order_locked',
      'place_orders',
      'touch_product_version',
      'touch_version',
      'write_idempotency_key',
    ]);
    for (const f of files) {
      for (const r of f.requires) expect(names.indexOf(r)).toBeLessThan(names.indexOf(f.name));
    }
    expect(files.find((f) => f.name === 'place_order')?.path).toBe(
      join('orders', 'sql', 'place_order.sql'),
    );
    expect(FUNCTIONS_ROOT.endsWith('src')).toBe(true);
  });

  it('applies every function file to a fresh database, in dependency order, and records it', async () => {
    expect(freshLog.filter((l) => l.startsWith('Applied function'))).toEqual(
      files.map((f) => `Applied function ${f.name}`),
    );
    const rows = await recorded(fresh);
    expect(new Map([...rows].map(([name, r]) => [name, r.checksum]))).toEqual(
      new Map(files.map((f) => [f.name, f.checksum])),
    );
  });

  it('gives a fresh database and one migrated step by step from the oldest migration the same functions', async () => {
    expect(oldLog).toEqual([
      'Applied migration RepeatableMigrations1763791100000',
      ...MIGRATIONS.slice(
        MIGRATIONS.findIndex((m) => m.name === 'RepeatableMigrations1763791100000') + 1,
      ).map((m) => `Applied migration ${m.name}`),
      ...files.map((f) => `Applied function ${f.name}`),
    ]);
    const [a, b] = await Promise.all([functionDefinitions(fresh), functionDefinitions(old)]);
    expect(a.length).toBeGreaterThanOrEqual(files.length);
    expect(b).toEqual(a);
  });

  it('has a file for every function of the service, and a function for every file', async () => {
    expect(await ownFunctions(fresh)).toEqual(files.map((f) => f.name).sort());
  });

  // (Issue 21's check that moving the functions into files changed no definition held until the
  // first change of a file, issue 22's payment fields in place_order's event; it is gone as it said.)

  describe('after a change of one function file', () => {
    let root: string;
    let before: Map<string, { checksum: string; appliedAt: string }>;
    let changedText: string;
    let log: string[];

    beforeAll(async () => {
      root = await copyOfFunctionFiles(files);
      const file = files.find((f) => f.name === 'place_orders')!;
      changedText = file.text.replace(
        'RETURN array_to_json(v_answers);',
        'RETURN array_to_json(v_answers); -- changed by the test',
      );
      expect(changedText).not.toBe(file.text);
      await writeFile(join(root, file.path), changedText);
      before = await recorded(fresh);
      log = [];
      await runMigrations(fresh, (line) => log.push(line), { functionsRoot: root });
    });
    afterAll(() => rm(root, { recursive: true, force: true }));

    it('re-applies exactly that function and records its new checksum; the others stay as they were', async () => {
      expect(log).toEqual(['Applied function place_orders']);
      const after = await recorded(fresh);
      expect(after.get('place_orders')?.checksum).toBe(sha256(changedText));
      expect(after.get('place_orders')?.appliedAt).not.toBe(before.get('place_orders')?.appliedAt);
      for (const f of files.filter((f) => f.name !== 'place_orders')) {
        expect(after.get(f.name)).toEqual(before.get(f.name));
      }
      const defs = await functionDefinitions(fresh);
      const olds = await functionDefinitions(old);
      expect(defs.find((d) => d.name === 'place_orders')?.def).toContain('-- changed by the test');
      expect(defs.filter((d) => d.name !== 'place_orders')).toEqual(
        olds.filter((d) => d.name !== 'place_orders'),
      );
    });

    it('applies nothing when run again', async () => {
      const again: string[] = [];
      const before2 = await recorded(fresh);
      expect(await runMigrations(fresh, (line) => again.push(line), { functionsRoot: root })).toBe(
        0,
      );
      expect(again).toEqual([]);
      expect(await recorded(fresh)).toEqual(before2);
    });

    it('applies nothing of a batch in which one file fails, and says which', async () => {
      const broken = await copyOfFunctionFiles(files);
      try {
        const iso = files.find((f) => f.name === 'iso_utc')!;
        await writeFile(
          join(broken, iso.path),
          iso.text.replace('SELECT to_char', 'SELECT /* changed */ to_char'),
        );
        const locked = files.find((f) => f.name === 'place_order_locked')!;
        await writeFile(join(broken, locked.path), locked.text.replace('END $$;', 'END; $$;'));
        const before3 = await recorded(fresh);
        const defs = await functionDefinitions(fresh);
        await expect(
          runMigrations(fresh, () => undefined, { functionsRoot: broken }),
        ).rejects.toThrow(/place_order_locked\.sql/);
        expect(await recorded(fresh)).toEqual(before3);
        expect(await functionDefinitions(fresh)).toEqual(defs);
      } finally {
        await rm(broken, { recursive: true, force: true });
      }
    });
  });

  it('orders files by their requires header, not by name', async () => {
    const root = await mkdtemp(join(tmpdir(), 'order-service-functions-'));
    try {
      await mkdir(join(root, 'x', 'sql'), { recursive: true });
      // A LANGUAGE sql body is checked at creation: a_first fails unless z_last exists already.
      await writeFile(
        join(root, 'x', 'sql', 'a_first.sql'),
        '-- requires: z_last\nCREATE OR REPLACE FUNCTION a_first() RETURNS integer LANGUAGE sql AS $$ SELECT z_last() + 1 $$;\n',
      );
      await writeFile(
        join(root, 'x', 'sql', 'z_last.sql'),
        'CREATE OR REPLACE FUNCTION z_last() RETURNS integer LANGUAGE sql AS $$ SELECT 41 $$;\n',
      );
      expect((await readFunctionFiles(root)).map((f) => f.name)).toEqual(['z_last', 'a_first']);
      const db = await emptyDatabase();
      const log: string[] = [];
      await runMigrations(db, (line) => log.push(line), { functionsRoot: root });
      expect(log.filter((l) => l.startsWith('Applied function'))).toEqual([
        'Applied function z_last',
        'Applied function a_first',
      ]);
      expect(await query(db, 'SELECT a_first() AS n')).toEqual([{ n: 42 }]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('refuses an unknown requirement, a cycle, a misnamed file and a folder without files', async () => {
    const root = await mkdtemp(join(tmpdir(), 'order-service-functions-'));
    const put = (name: string, text: string) => writeFile(join(root, 'sql', `${name}.sql`), text);
    const fn = (name: string) =>
      `CREATE OR REPLACE FUNCTION ${name}() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;\n`;
    try {
      await expect(readFunctionFiles(root)).rejects.toThrow(/No SQL function files/);
      await mkdir(join(root, 'sql'));
      await put('a', `-- requires: nowhere\n${fn('a')}`);
      await expect(readFunctionFiles(root)).rejects.toThrow(/requires nowhere, which has no file/);
      await put('a', `-- requires: b\n${fn('a')}`);
      await put('b', `-- requires: a\n${fn('b')}`);
      await expect(readFunctionFiles(root)).rejects.toThrow(/cycle: a -> b -> a/);
      await put('b', fn('c'));
      await expect(readFunctionFiles(root)).rejects.toThrow(
        /must hold CREATE OR REPLACE FUNCTION b/,
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
