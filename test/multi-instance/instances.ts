import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../support/net';

export const JWT_SECRET = 'multi-instance-secret-shared-by-every-instance-0123456789';

export interface Instance {
  name: string;
  url: string;
  process: ChildProcess;
  /** Lines the instance printed, for diagnosis. */
  output: string[];
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/**
 * Starts the built service (`node dist/src/main.js`) as a separate process, exactly as in production,
 * against the given database, and waits until it is ready. Every instance shares JWT_SECRET: the
 * service keeps no state of its own, so any instance can serve any request.
 */
export async function startInstance(
  name: string,
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<Instance> {
  if (!existsSync('dist/src/main.js'))
    throw new Error('Run `npm run build` first (dist/src/main.js)');
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      JWT_SECRET,
      LOG_LEVEL: 'warn',
      SEED_DEMO: 'false',
      DB_POOL_SIZE: '15',
      RATE_LIMIT_MAX: '100000000',
      AUTH_RATE_LIMIT_MAX: '100000000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout.on('data', (b: Buffer) => output.push(b.toString()));
  child.stderr.on('data', (b: Buffer) => output.push(b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited at start:\n${output.join('')}`);
    const ready = await fetch(`${url}/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) throw new Error(`${name} did not become ready:\n${output.join('')}`);
    await sleep(100);
  }
  return {
    name,
    url,
    process: child,
    output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface Reply {
  status: number;
  body: any;
  headers: Headers;
}

/** A small JSON client over fetch, for traffic against child processes. */
export async function call(
  base: string,
  method: string,
  path: string,
  options: {
    token?: string;
    body?: unknown;
    headers?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<Reply> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: kept as text
  }
  return { status: res.status, body, headers: res.headers };
}

let n = 0;
/** Registers a customer through one instance and logs in through another. */
export async function customer(
  via: Instance,
  loginVia: Instance = via,
): Promise<{ id: string; token: string }> {
  const email = `mi-${process.pid}-${Date.now()}-${++n}@example.com`;
  const password = 'a good long password';
  const reg = await call(via.url, 'POST', '/api/v1/auth/register', {
    body: { email, password, name: 'mi' },
  });
  if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`);
  const login = await call(loginVia.url, 'POST', '/api/v1/auth/login', {
    body: { email, password },
  });
  return { id: reg.body.id as string, token: login.body.accessToken as string };
}

export const tally = (replies: Reply[]): Record<number, number> =>
  replies.reduce<Record<number, number>>(
    (acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }),
    {},
  );
