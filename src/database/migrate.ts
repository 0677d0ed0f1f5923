import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import { Client } from 'pg';
import { createDataSource } from './data-source';

/** Arbitrary but fixed: every instance of this service takes the same lock before migrating. */
const MIGRATION_LOCK = 727_001;

/**
 * The folder below which every `sql/<name>.sql` is a function file: `src/` when the sources run,
 * `dist/src/` in the build (nest-cli.json copies the files there). This module is
 * `<that folder>/database/migrate.{ts,js}`. Jest runs the sources as ES modules, which have no
 * `__dirname` (and the build, CommonJS, cannot name `import.meta`); Jest runs from the project root.
 */
export const FUNCTIONS_ROOT =
  typeof __dirname === 'string' ? resolve(__dirname, '..') : resolve('src');

/** One SQL function's current text: `src/<feature>/sql/<name>.sql`, one `CREATE OR REPLACE FUNCTION`. */
export interface FunctionFile {
  /** The function's name, and the file's. */
  name: string;
  /** Relative to the root it was found under, for messages. */
  path: string;
  text: string;
  /** sha256 of the file's bytes, hex: what repeatable_migrations records. */
  checksum: string;
  /** From the header line `-- requires: a, b`: functions to apply before this one. */
  requires: string[];
}

const REQUIRES = /^--\s*requires:(.*)$/im;

/**
 * Every function file below `root`, in dependency order (each after what it `requires`, otherwise
 * by name). Throws on none found, a duplicate name, a file that does not define the function it is
 * named for, an unknown requirement or a cycle: a mistake stops the start-up, never half-applies.
 */
export async function readFunctionFiles(root: string = FUNCTIONS_ROOT): Promise<FunctionFile[]> {
  const paths = (await readdir(root, { recursive: true }))
    .filter(
      (p) => /(^|[\\/])sql[\\/][^\\/]+\.sql$/.test(p) && !p.split(sep).includes('node_modules'),
    )
    .sort();
  const byName = new Map<string, FunctionFile>();
  for (const path of paths) {
    const bytes = await readFile(join(root, path));
    const text = bytes.toString('utf8');
    const name = basename(path, '.sql');
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) {
      throw new Error(`${path}: a function file is named for its function (lower case, digits, _)`);
    }
    const other = byName.get(name);
    if (other) throw new Error(`Two function files named ${name}: ${other.path} and ${path}`);
    if (
      !new RegExp(
        `^\\s*CREATE\\s+OR\\s+REPLACE\\s+FUNCTION\\s+(public\\.)?${name}\\s*\\(`,
        'im',
      ).test(text)
    ) {
      throw new Error(`${path} must hold CREATE OR REPLACE FUNCTION ${name}(…)`);
    }
    const requires = (REQUIRES.exec(text)?.[1] ?? '')
      .split(',')
      .map((r) => r.trim())
      .filter(Boolean);
    const checksum = createHash('sha256').update(bytes).digest('hex');
    byName.set(name, { name, path, text, checksum, requires });
  }
  if (!byName.size) throw new Error(`No SQL function files (sql/<name>.sql) under ${root}`);

  const ordered: FunctionFile[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (file: FunctionFile, chain: string[]): void => {
    if (state.get(file.name) === 'done') return;
    if (state.get(file.name) === 'visiting') {
      throw new Error(
        `Function files require each other in a cycle: ${[...chain, file.name].join(' -> ')}`,
      );
    }
    state.set(file.name, 'visiting');
    for (const required of file.requires) {
      const dependency = byName.get(required);
      if (!dependency) throw new Error(`${file.path} requires ${required}, which has no file`);
      visit(dependency, [...chain, file.name]);
    }
    state.set(file.name, 'done');
    ordered.push(file);
  };
  for (const name of [...byName.keys()].sort()) visit(byName.get(name)!, []);
  return ordered;
}

export interface MigrateOptions {
  /** Where the function files are (tests); the service's own by default. */
  functionsRoot?: string;
}

/**
 * Runs pending migrations, serialised across instances by an advisory lock, so that several
 * instances starting at once against one database never race each other's DDL: first the versioned
 * migrations (migrations/, each once, in order), then the repeatable ones (Flyway's model): every
 * SQL function file whose checksum differs from the one repeatable_migrations records is applied,
 * in dependency order, all in one transaction, and its checksum recorded. Returns how many of both
 * were applied.
 */
export async function runMigrations(
  url: string,
  log: (line: string) => void = () => undefined,
  options: MigrateOptions = {},
): Promise<number> {
  // Read (and checked) before anything runs: a broken file changes nothing.
  const files = await readFunctionFiles(options.functionsRoot);
  const lock = new Client({ connectionString: url, application_name: 'order-service-migrate' });
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const ds = createDataSource({ url, poolSize: 1, applicationName: 'order-service-migrate' });
    await ds.initialize();
    let versioned: number;
    try {
      const done = await ds.runMigrations({ transaction: 'each' });
      for (const m of done) log(`Applied migration ${m.name}`);
      versioned = done.length;
    } finally {
      await ds.destroy();
    }
    const applied = await applyFunctionFiles(lock, files);
    for (const f of applied) log(`Applied function ${f.name}`);
    return versioned + applied.length;
  } finally {
    await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await lock.end();
  }
}

/** The files whose checksum differs from the recorded one, applied and recorded in one transaction. */
async function applyFunctionFiles(db: Client, files: FunctionFile[]): Promise<FunctionFile[]> {
  await db.query('BEGIN');
  try {
    const { rows } = await db.query<{ name: string; checksum: string }>(
      'SELECT name, checksum FROM repeatable_migrations',
    );
    const recorded = new Map(rows.map((r) => [r.name, r.checksum]));
    const due = files.filter((f) => recorded.get(f.name) !== f.checksum);
    for (const f of due) {
      try {
        await db.query(f.text);
      } catch (err) {
        throw new Error(`Function file ${f.path}: ${(err as Error).message}`, { cause: err });
      }
      await db.query(
        `INSERT INTO repeatable_migrations (name, checksum) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = clock_timestamp()`,
        [f.name, f.checksum],
      );
    }
    await db.query('COMMIT');
    return due;
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
