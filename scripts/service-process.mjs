// The built service as a separate process, exactly as it runs in production: one helper for the
// tests that need processes (test/multi-instance, the seed test), the demo runner and the bench.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** The repository root (this file lives in scripts/). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A TCP port that was free a moment ago on 127.0.0.1 (the OS picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Starts `node dist/src/main.js` on a free port with `env` added to a minimal environment, and waits
 * until `/health/ready` answers 200 (failing early, with the output, if the process exits).
 */
export async function startBuiltService({
  name = 'service',
  env = {},
  nodeFlags = [],
  inheritEnv = false,
  detached = false,
  timeoutMs = 120_000,
} = {}) {
  const main = join(ROOT, 'dist/src/main.js');
  if (!existsSync(main)) throw new Error('Run `npm run build` first (dist/src/main.js is absent)');
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeFlags, main], {
    cwd: ROOT,
    detached,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...(inheritEnv ? process.env : { PATH: process.env.PATH }),
      HOST: '127.0.0.1',
      ...env,
      PORT: String(port),
    },
  });
  const output = [];
  child.stdout.on('data', (b) => output.push(b.toString()));
  child.stderr.on('data', (b) => output.push(b.toString()));
  const exited = new Promise((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited during start-up:\n${output.join('')}`);
    }
    const ready = await fetch(`${url}/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} not ready after ${timeoutMs / 1000} s:\n${output.join('')}`);
    }
    await sleep(100);
  }
  return {
    name,
    url,
    port,
    process: child,
    output,
    exited,
    /** SIGTERM: the service drains its requests (and stops its embedded PostgreSQL), then exits. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
