import { type ServiceProcess, startBuiltService } from '../../scripts/service-process.mjs';

export const JWT_SECRET = 'multi-instance-secret-shared-by-every-instance-0123456789';

export type Instance = ServiceProcess;

/**
 * Starts the built service (`node dist/src/main.js`) as a separate process, exactly as in production,
 * against the given database, and waits until it is ready. Every instance shares JWT_SECRET: the
 * service keeps no state of its own, so any instance can serve any request.
 */
export function startInstance(
  name: string,
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<Instance> {
  return startBuiltService({
    name,
    timeoutMs: 60_000,
    env: {
      NODE_ENV: 'production',
      DATABASE_URL: databaseUrl,
      JWT_SECRET,
      LOG_LEVEL: 'warn',
      SEED_DEMO: 'false',
      DB_POOL_SIZE: '15',
      RATE_LIMIT_MAX: '100000000',
      AUTH_RATE_LIMIT_MAX: '100000000',
      ...env,
    },
  });
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
