import { appendFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/**
 * Tests that need a service besides PostgreSQL (Redis, later NATS). On a bare machine they are
 * skipped with a printed reason, so `npm test` passes with Node alone; CI names the services it
 * provides in REQUIRE_TEST_SERVICES (comma-separated, e.g. `redis,nats`), and there an unreachable
 * one fails the run instead, so a broken service can never pass as a skipped suite.
 */

export interface TestService {
  /** The name REQUIRE_TEST_SERVICES uses: `redis`, `nats`. */
  name: string;
  /** How people call it: `Redis`, `NATS`. */
  label: string;
  /** Where the tests will connect, e.g. `redis://127.0.0.1:6379`. */
  url: string;
  /** Used when the URL names no port. */
  defaultPort: number;
}

export const PROBE_TIMEOUT_MS = 500;

/** Headroom for starting the probing thread, on top of the probe's own bound. */
const THREAD_START_MS = 2_000;

// Runs in a worker thread, as plain JavaScript: it must not pass through the test transform.
// A timer rather than socket.setTimeout also bounds the DNS lookup, and a firewall that drops
// packets costs half a second, not the OS's connect timeout.
const PROBE_SOURCE = `
const { connect } = require('node:net');
const { workerData } = require('node:worker_threads');
const { host, port, timeoutMs, flag } = workerData;
const state = new Int32Array(flag);
let settled = false;
const socket = connect({ host, port });
const timer = setTimeout(() => done(false), timeoutMs);
function done(ok) {
  if (settled) return;
  settled = true;
  clearTimeout(timer);
  socket.destroy();
  Atomics.store(state, 0, ok ? 1 : 2);
  Atomics.notify(state, 0);
}
socket.once('connect', () => done(true));
socket.once('error', () => done(false));
`;

/**
 * Whether something accepts a TCP connection on host:port within `timeoutMs`. Never throws.
 *
 * Synchronous on purpose: Jest collects describe blocks synchronously, and the spec files are
 * CommonJS to the type checker, so a probe cannot be awaited before declaring the blocks. The
 * connection attempt runs in a worker thread while this thread waits on a shared flag.
 */
export function reachable(host: string, port: number, timeoutMs = PROBE_TIMEOUT_MS): boolean {
  const flag = new SharedArrayBuffer(4);
  const worker = new Worker(PROBE_SOURCE, {
    eval: true,
    workerData: { host, port, timeoutMs, flag },
  });
  worker.unref();
  worker.on('error', () => undefined); // a thread that cannot start leaves the flag at 0: unreachable
  const state = new Int32Array(flag);
  Atomics.wait(state, 0, 0, timeoutMs + THREAD_START_MS);
  void worker.terminate();
  return Atomics.load(state, 0) === 1;
}

/** The services this run must have, from REQUIRE_TEST_SERVICES. */
export function requiredServices(env: NodeJS.ProcessEnv = process.env): Set<string> {
  return new Set(
    (env.REQUIRE_TEST_SERVICES ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
}

/** host:port of a service URL, without the credentials a URL may carry. */
export function address(service: TestService): { host: string; port: number } {
  const url = new URL(service.url);
  // URL keeps the brackets of an IPv6 literal; net.connect wants the bare address.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  return { host, port: url.port ? Number(url.port) : service.defaultPort };
}

/**
 * Probes `service` once and returns the `describe` to declare the blocks that need it with:
 * - reachable: `describe` itself;
 * - unreachable and not required: `describe.skip`, after a console.warn saying what was skipped and
 *   why;
 * - unreachable and required: a block whose one test fails, naming the service and where it was
 *   looked for (the block's own hooks never run, so nothing waits on the missing service).
 */
export function describeWithService(
  service: TestService,
  env: NodeJS.ProcessEnv = process.env,
): (title: string, body: () => void) => void {
  const { host, port } = address(service);
  if (reachable(host, port)) return describe;
  const where = `${service.label} on ${host}:${port}`;
  if (requiredServices(env).has(service.name)) {
    return (title) =>
      describe(title, () => {
        it(`needs ${service.label}`, () => {
          throw new Error(
            `${title} needs ${where}, which accepted no connection within ${PROBE_TIMEOUT_MS} ms, ` +
              `and REQUIRE_TEST_SERVICES=${env.REQUIRE_TEST_SERVICES} makes that an error: start ` +
              `${service.label} or fix its URL.`,
          );
        });
      });
  }
  return (title, body) => {
    // One plain line (console.warn adds a stack excerpt), and a record for the run's last line.
    const line = `${title} (no ${where}; REQUIRE_TEST_SERVICES=${service.name} makes it an error)`;
    process.stderr.write(`\nskipped: ${line}\n`);
    recordSkip(line);
    describe.skip(title, body);
  };
}

/** Where this run collects what it skipped (set by the e2e global setup, printed by its teardown). */
export const SKIPS_FILE_VARIABLE = 'ORDER_SERVICE_TEST_SKIPS';

/** Notes a skipped block for the one line the global teardown prints at the end of the run. */
export function recordSkip(line: string): void {
  const file = process.env[SKIPS_FILE_VARIABLE];
  if (file) appendFileSync(file, `${line}\n`);
}
