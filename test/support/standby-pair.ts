import { execFile as execFileCb } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { freePort } from '../../scripts/service-process.mjs';
import { runMigrations } from '../../src/database/migrate';
import { recordSkip, requiredServices } from './services';

const execFile = promisify(execFileCb);

/** The machine's PostgreSQL 15 (Debian's postgresql-15): initdb, pg_ctl, pg_basebackup. */
export const PG15_BIN = process.env.PG15_BIN ?? '/usr/lib/postgresql/15/bin';

/**
 * A private primary and streaming standby of the machine's PostgreSQL 15, on free ports in a
 * temporary folder, created and removed by the test itself (never the shared cluster on 5432). The
 * standby is made the way PostgreSQL's documentation does it (`pg_basebackup -R`) and applies WAL
 * `applyDelayMs` late (`recovery_min_apply_delay`), so that it certainly lags.
 */
export interface StandbyPair {
  primaryUrl: string;
  standbyUrl: string;
  stopStandby(): Promise<void>;
  startStandby(): Promise<void>;
  /** What the standby has replayed, and what the primary has written (LSNs as text). */
  positions(): Promise<{ primary: string; standby: string }>;
  close(): Promise<void>;
}

/** `describe`, or a skip with a printed reason when the binaries are missing (an error in CI). */
export function describeWithStandby(): (title: string, body: () => void) => void {
  const missing = ['initdb', 'pg_ctl', 'pg_basebackup'].filter(
    (b) => !existsSync(join(PG15_BIN, b)),
  );
  if (!missing.length) return describe;
  const reason = `no PostgreSQL 15 binaries (${missing.join(', ')}) in ${PG15_BIN}; install postgresql-15 or set PG15_BIN`;
  if (requiredServices().has('standby')) {
    return (title) =>
      describe(title, () => {
        it('needs a PostgreSQL 15 primary/standby pair', () => {
          throw new Error(`${title}: ${reason}, and REQUIRE_TEST_SERVICES names standby`);
        });
      });
  }
  return (title, body) => {
    const line = `${title} (${reason}; REQUIRE_TEST_SERVICES=standby makes it an error)`;
    process.stderr.write(`\nskipped: ${line}\n`);
    recordSkip(line);
    describe.skip(title, body);
  };
}

/** PostgreSQL refuses to run as root: as root, every binary runs as the `postgres` user. */
async function run(binary: string, args: string[]): Promise<string> {
  const path = join(PG15_BIN, binary);
  const asRoot = process.getuid?.() === 0;
  const { stdout } = asRoot
    ? await execFile('runuser', ['-u', 'postgres', '--', path, ...args])
    : await execFile(path, args);
  return stdout;
}

export async function startStandbyPair({
  applyDelayMs,
  database = 'app',
}: {
  applyDelayMs: number;
  database?: string;
}): Promise<StandbyPair> {
  const dir = await mkdtemp(join(tmpdir(), 'order-service-standby-'));
  await chmod(dir, 0o777);
  const primaryDir = join(dir, 'primary');
  const standbyDir = join(dir, 'standby');
  const [primaryPort, standbyPort] = [await freePort(), await freePort()];
  const settings = (port: number) =>
    [
      `port = ${port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${dir}'`,
      'wal_level = replica',
      'max_wal_senders = 4',
      'fsync = off',
      'synchronous_commit = on',
      'max_connections = 200',
      'shared_buffers = 32MB',
      '',
    ].join('\n');
  const ctl = (dataDir: string, ...args: string[]) =>
    run('pg_ctl', ['-D', dataDir, '-l', `${dataDir}.log`, '-w', '-t', '60', ...args]);
  let primaryStarted = false;
  let standbyRunning = false;
  const close = async () => {
    if (standbyRunning) await ctl(standbyDir, '-m', 'immediate', 'stop').catch(() => undefined);
    if (primaryStarted) await ctl(primaryDir, '-m', 'immediate', 'stop').catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await run('initdb', ['-D', primaryDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
    await appendFile(join(primaryDir, 'postgresql.conf'), settings(primaryPort));
    await ctl(primaryDir, 'start');
    primaryStarted = true;
    const primaryAdmin = `postgres://postgres@127.0.0.1:${primaryPort}/postgres`;
    const admin = new Client({ connectionString: primaryAdmin });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    const primaryUrl = `postgres://postgres@127.0.0.1:${primaryPort}/${database}`;
    await runMigrations(primaryUrl);
    // As PostgreSQL's documentation makes a standby: a base backup that writes its own
    // primary_conninfo and standby.signal (-R), streaming the WAL it needs meanwhile.
    await run('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(primaryPort),
      '-U',
      'postgres',
      '-D',
      standbyDir,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
    ]);
    await appendFile(
      join(standbyDir, 'postgresql.conf'),
      `${settings(standbyPort)}hot_standby = on\nrecovery_min_apply_delay = '${applyDelayMs}ms'\n`,
    );
    const startStandby = async () => {
      await ctl(standbyDir, 'start');
      standbyRunning = true;
    };
    const stopStandby = async () => {
      await ctl(standbyDir, '-m', 'fast', 'stop');
      standbyRunning = false;
    };
    await startStandby();
    const standbyUrl = `postgres://postgres@127.0.0.1:${standbyPort}/${database}`;
    const positions = async () => {
      const p = new Client({ connectionString: primaryUrl });
      const s = new Client({ connectionString: standbyUrl });
      await Promise.all([p.connect(), s.connect()]);
      try {
        const [a, b] = await Promise.all([
          p.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn'),
          s.query<{ lsn: string }>('SELECT pg_last_wal_replay_lsn()::text AS lsn'),
        ]);
        return { primary: a.rows[0].lsn, standby: b.rows[0].lsn };
      } finally {
        await Promise.all([p.end(), s.end()]);
      }
    };
    return { primaryUrl, standbyUrl, stopStandby, startStandby, positions, close };
  } catch (err) {
    await close();
    throw err;
  }
}
