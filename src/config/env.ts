import { randomBytes } from 'node:crypto';

/**
 * The environment, validated once at boot. A bad value stops the process with the variable's name:
 * a typo in production must not quietly fall back to a default.
 */
export interface Env {
  /** Run mode: outside `development`, `JWT_SECRET` is required. */
  NODE_ENV: 'development' | 'production' | 'test';
  /** HTTP port. */
  PORT: number;
  /** Interface to listen on. */
  HOST: string;
  /** `postgres://…`; unset: an embedded PostgreSQL under `EMBEDDED_PG_DIR` is started and used. */
  DATABASE_URL: string | undefined;
  /** Data folder of the embedded PostgreSQL. */
  EMBEDDED_PG_DIR: string;
  /** Port of the embedded PostgreSQL (on 127.0.0.1 only). */
  EMBEDDED_PG_PORT: number;
  /**
   * Comma-separated `postgres://…` URLs of streaming standbys of the primary: reads that are not part
   * of a write go to one that has replayed the client's `Consistency-Token` (API.md §12; each gets
   * `DB_POOL_SIZE` connections per instance). Unset: every read on the primary.
   * @default empty
   */
  DATABASE_READ_URLS: string[];
  /** A standby further behind the primary than this (or unreachable) is skipped until it catches up. */
  READ_REPLICA_MAX_LAG_MS: number;
  /** Database connections per instance. */
  DB_POOL_SIZE: number;
  /** A statement running longer (e.g. waiting behind a lock) is cancelled and answered 503. */
  DB_STATEMENT_TIMEOUT_MS: number;
  /**
   * How long a checkout may wait in the instance behind a placement of the same products
   * (PlacementQueue) before it is answered 503 and not placed. Default 5 s: as long as a request
   * may wait for a pool connection.
   */
  PLACEMENT_QUEUE_WAIT_MS: number;
  /** The most checkouts that queue so per product set; the next one is answered 503 at once. */
  PLACEMENT_QUEUE_MAX: number;
  /**
   * Seed the demo catalogue and accounts (with random passwords, printed once, under
   * `NODE_ENV=production`).
   * @default embedded: `true`, else `false`
   */
  SEED_DEMO: boolean | undefined;
  /** `redis://…`: rate-limit counters shared by every instance (unset: each instance counts alone). */
  REDIS_URL: string | undefined;
  /** With it, order events are also published to NATS JetStream (`orders.events.<type>`). */
  NATS_URL: string | undefined;
  /** Wait before webhook attempt n+1: base × 2^(n−1), ±25% jitter, capped at 6 h. */
  WEBHOOK_BACKOFF_BASE_SECONDS: number;
  /** After this many attempts a delivery is `failed` (until redelivered). */
  WEBHOOK_MAX_ATTEMPTS: number;
  /** After this many attempts at the provider a refund is `failed` (an admin may retry it). */
  REFUND_MAX_ATTEMPTS: number;
  /** Wait before refund attempt n+1: base × 2^(n−1), ±25% jitter, capped at 6 h. */
  REFUND_BACKOFF_BASE_SECONDS: number;
  /**
   * How long the refund relay holds a claimed refund; a crashed relay's claims come back after it
   * (then attempted again with the same idempotency key). At least 45: a Stripe attempt (at most two
   * listings and one request of 10 s each) must end, and be recorded, before its claim can run out.
   */
  REFUND_LEASE_SECONDS: number;
  /**
   * How long a relay holds a claimed delivery; a crashed relay's claims come back after it. At least
   * 15: an attempt (address lookup, connection and answer) is cut off after 10 s, so a live relay
   * settles its attempt before its claim can run out.
   */
  WEBHOOK_LEASE_SECONDS: number;
  /**
   * Webhook attempts one instance makes at once: a fixed pool of workers, each claiming the next due
   * delivery as soon as it is free, so a slow receiver holds only its own workers.
   */
  WEBHOOK_RELAY_CONCURRENCY: number;
  /**
   * Attempts in flight per subscription on one instance (at most WEBHOOK_RELAY_CONCURRENCY): an
   * unresponsive receiver ties up this many workers, the rest keep serving every other subscription.
   * @default `4` (at most `WEBHOOK_RELAY_CONCURRENCY`)
   */
  WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION: number;
  /**
   * Hours delivered webhook deliveries, and outbox events nothing is waiting for, are kept; older
   * ones are purged in batches by every instance (failed deliveries stay until redelivered).
   */
  OUTBOX_RETENTION_HOURS: number;
  /** Accept webhook URLs on loopback, private or link-local addresses outside development/test. */
  WEBHOOK_ALLOW_PRIVATE_URLS: boolean;
  /**
   * HS256 key that signs every access token, 32+ characters; **required** outside development.
   * @default random per start in development
   */
  JWT_SECRET: string;
  /** Access-token lifetime. */
  JWT_EXPIRES_IN_SECONDS: number;
  /** How long `Idempotency-Key` outcomes are kept. */
  IDEMPOTENCY_TTL_HOURS: number;
  /** How long a pending order holds its units (then it expires and they go back on sale). */
  ORDER_HOLD_SECONDS: number;
  /** How often each instance expires due holds (at most this late after expiresAt). */
  ORDER_EXPIRY_SWEEP_SECONDS: number;
  /** Live Idempotency-Keys one caller may hold: bounds what one caller can make us store. */
  IDEMPOTENCY_MAX_KEYS_PER_USER: number;
  /** Larger request bodies get 413. */
  BODY_LIMIT_BYTES: number;
  /**
   * Comma-separated origins whose browser pages may call the API (under `NODE_ENV=development`,
   * also any port of localhost, 127.0.0.1 and [::1]).
   */
  CORS_ORIGINS: string[];
  /** Log level. */
  LOG_LEVEL: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Requests per window per client IP, for everything under /api/v1. */
  RATE_LIMIT_MAX: number;
  /**
   * Requests per window per client IP to `/api/v1/auth/*` (login brute force): a storefront's test
   * suite that logs in more often than this gets 429.
   */
  AUTH_RATE_LIMIT_MAX: number;
  /** The window both rate limits count in. */
  RATE_LIMIT_WINDOW_SECONDS: number;
  /** Key prefix in Redis, so that several services can share one Redis. */
  RATE_LIMIT_NAMESPACE: string;
  /**
   * Stripe secret API key (`sk_…` or a restricted `rk_…`). With `STRIPE_WEBHOOK_SECRET` (both or
   * neither) it enables `provider: "stripe"`.
   */
  STRIPE_SECRET_KEY: string | undefined;
  /**
   * Signing secret of the Stripe webhook endpoint `/api/v1/payments/stripe/webhook` (`whsec_…`, the
   * whole string is the key). Set with `STRIPE_SECRET_KEY` or not at all.
   */
  STRIPE_WEBHOOK_SECRET: string | undefined;
  /**
   * Tests and local development only: `http(s)://host:port` of a local double of Stripe's API that
   * the Stripe SDK talks to instead of api.stripe.com; refused under `NODE_ENV=production`.
   */
  STRIPE_API_BASE: string | undefined;
  /**
   * Which requests are traced when tracing is on (`OTEL_EXPORTER_OTLP_ENDPOINT` set), by the
   * OpenTelemetry name of the sampler; `parentbased_*` follows the caller's `traceparent` decision.
   * Whatever it decides, a conflict (409, 412, 428 with a problem code) or a 5xx is recorded (one
   * span per request, without its SQL children).
   */
  OTEL_TRACES_SAMPLER: TracesSampler;
  /**
   * The share of traces (0 to 1) a `traceidratio` sampler keeps.
   * @default `0.1` under the default sampler; `1` under a ratio sampler you name (OpenTelemetry's default)
   */
  OTEL_TRACES_SAMPLER_ARG: number | undefined;
}

/** The samplers the OpenTelemetry Node SDK knows by name (OTEL_TRACES_SAMPLER). */
export type TracesSampler =
  | 'parentbased_traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'traceidratio'
  | 'always_on'
  | 'always_off';

export class EnvError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid environment variable ${variable}: ${message}`);
  }
}

type Source = Record<string, string | undefined>;

function str(src: Source, name: string): string | undefined {
  const v = src[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function int(src: Source, name: string, def: number, min: number, max: number): number {
  const v = str(src, name);
  if (v === undefined) return def;
  if (!/^\d+$/.test(v)) throw new EnvError(name, `expected an integer, got "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw new EnvError(name, `expected ${min}..${max}, got ${n}`);
  return n;
}

function oneOf<T extends string>(src: Source, name: string, allowed: readonly T[], def: T): T {
  const v = str(src, name);
  if (v === undefined) return def;
  if (!(allowed as readonly string[]).includes(v)) {
    throw new EnvError(name, `expected one of ${allowed.join(', ')}, got "${v}"`);
  }
  return v as T;
}

function bool(src: Source, name: string): boolean | undefined {
  const v = str(src, name)?.toLowerCase();
  if (v === undefined) return undefined;
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new EnvError(name, `expected true or false, got "${v}"`);
}

function url(src: Source, name: string, protocols: string[]): string | undefined {
  const v = str(src, name);
  if (v === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(v);
  } catch {
    throw new EnvError(name, 'not a valid URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new EnvError(name, `expected a ${protocols.join(' or ')} URL`);
  }
  return v;
}

/** A Stripe key or secret: its prefix tells a swapped or mistyped variable at boot. */
function stripeSecret(src: Source, name: string, prefixes: string[]): string | undefined {
  const v = str(src, name);
  if (v !== undefined && !prefixes.some((p) => v.startsWith(p) && v.length > p.length)) {
    throw new EnvError(name, `expected a value starting with ${prefixes.join(' or ')}`);
  }
  return v;
}

/** The SDK takes host, port and protocol, so the URL may have nothing else; never in production. */
function stripeApiBase(src: Source, name: string, nodeEnv: Env['NODE_ENV']): string | undefined {
  const v = url(src, name, ['http:', 'https:']);
  if (v === undefined) return undefined;
  if (nodeEnv === 'production') {
    throw new EnvError(
      name,
      'a local Stripe double is for tests and development only; unset it under NODE_ENV=production',
    );
  }
  const u = new URL(v);
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash || u.username || u.password) {
    throw new EnvError(name, 'expected only protocol, host and port, e.g. http://127.0.0.1:12111');
  }
  return v;
}

/** A comma-separated list of URLs, each checked as `url()` does; unset or empty: none. */
function urls(src: Source, name: string, protocols: string[]): string[] {
  const list = (str(src, name) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return list.map((v, i) => {
    try {
      return url({ [name]: v }, name, protocols)!;
    } catch (err) {
      throw new EnvError(
        name,
        `entry ${i + 1} (${JSON.stringify(v.replace(/\/\/[^@/]*@/, '//…@'))}): ${(err as Error).message.replace(/^Invalid environment variable [A-Z_]+: /, '')}`,
      );
    }
  });
}

/** A number from 0 to 1 (a sampling ratio); unset: undefined. */
function ratio(src: Source, name: string): number | undefined {
  const v = str(src, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(v) || n > 1) {
    throw new EnvError(name, `expected a number from 0 to 1, got "${v}"`);
  }
  return n;
}

/** A development secret that changes on every start: tokens do not survive a restart, by design. */
const developmentSecret = randomBytes(32).toString('hex');

export function loadEnv(src: Source = process.env): Env {
  const NODE_ENV = oneOf(src, 'NODE_ENV', ['development', 'production', 'test'], 'development');
  let JWT_SECRET = str(src, 'JWT_SECRET');
  if (JWT_SECRET === undefined) {
    if (NODE_ENV !== 'development') {
      throw new EnvError(
        'JWT_SECRET',
        `required when NODE_ENV=${NODE_ENV} (only development has a default)`,
      );
    }
    JWT_SECRET = developmentSecret;
  } else if (JWT_SECRET.length < 32) {
    throw new EnvError('JWT_SECRET', 'must be at least 32 characters');
  }
  const WEBHOOK_RELAY_CONCURRENCY = int(src, 'WEBHOOK_RELAY_CONCURRENCY', 16, 1, 256);
  const STRIPE_SECRET_KEY = stripeSecret(src, 'STRIPE_SECRET_KEY', ['sk_', 'rk_']);
  const STRIPE_WEBHOOK_SECRET = stripeSecret(src, 'STRIPE_WEBHOOK_SECRET', ['whsec_']);
  if ((STRIPE_SECRET_KEY === undefined) !== (STRIPE_WEBHOOK_SECRET === undefined)) {
    const missing = STRIPE_SECRET_KEY === undefined ? 'STRIPE_SECRET_KEY' : 'STRIPE_WEBHOOK_SECRET';
    throw new EnvError(
      missing,
      'Stripe needs both STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET (or neither: stripe disabled)',
    );
  }
  const STRIPE_API_BASE = stripeApiBase(src, 'STRIPE_API_BASE', NODE_ENV);
  return {
    NODE_ENV,
    PORT: int(src, 'PORT', 3000, 0, 65535),
    HOST: str(src, 'HOST') ?? '0.0.0.0',
    DATABASE_URL: url(src, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    EMBEDDED_PG_DIR: str(src, 'EMBEDDED_PG_DIR') ?? '.data/postgres',
    EMBEDDED_PG_PORT: int(src, 'EMBEDDED_PG_PORT', 54329, 1, 65535),
    DATABASE_READ_URLS: urls(src, 'DATABASE_READ_URLS', ['postgres:', 'postgresql:']),
    READ_REPLICA_MAX_LAG_MS: int(src, 'READ_REPLICA_MAX_LAG_MS', 1000, 0, 3_600_000),
    DB_POOL_SIZE: int(src, 'DB_POOL_SIZE', 10, 1, 200),
    DB_STATEMENT_TIMEOUT_MS: int(src, 'DB_STATEMENT_TIMEOUT_MS', 15_000, 100, 600_000),
    PLACEMENT_QUEUE_WAIT_MS: int(src, 'PLACEMENT_QUEUE_WAIT_MS', 5_000, 50, 60_000),
    // 32 full batches (of 32): at the ~50 ms a batch of a hot product takes on the bench machine,
    // the last of them is placed after ~1.6 s, well inside the wait; far beyond that a checkout
    // would mostly wait only to time out, and an unbounded queue is unbounded memory.
    PLACEMENT_QUEUE_MAX: int(src, 'PLACEMENT_QUEUE_MAX', 1024, 1, 100_000),
    SEED_DEMO: bool(src, 'SEED_DEMO'),
    REDIS_URL: url(src, 'REDIS_URL', ['redis:', 'rediss:']),
    // The Node client speaks the NATS protocol over TCP (and TLS), not WebSockets.
    NATS_URL: url(src, 'NATS_URL', ['nats:', 'tls:']),
    WEBHOOK_BACKOFF_BASE_SECONDS: int(src, 'WEBHOOK_BACKOFF_BASE_SECONDS', 30, 1, 21_600),
    WEBHOOK_MAX_ATTEMPTS: int(src, 'WEBHOOK_MAX_ATTEMPTS', 8, 1, 100),
    REFUND_MAX_ATTEMPTS: int(src, 'REFUND_MAX_ATTEMPTS', 8, 1, 100),
    REFUND_BACKOFF_BASE_SECONDS: int(src, 'REFUND_BACKOFF_BASE_SECONDS', 30, 1, 21_600),
    // Longer than a refund attempt may take (3 × the Stripe timeout) plus the record's write.
    REFUND_LEASE_SECONDS: int(src, 'REFUND_LEASE_SECONDS', 60, 45, 3600),
    // Longer than the 10 s an attempt may take in all (lookup included) plus its settling write, so
    // a live relay never loses its claim mid-attempt.
    WEBHOOK_LEASE_SECONDS: int(src, 'WEBHOOK_LEASE_SECONDS', 30, 15, 3600),
    WEBHOOK_RELAY_CONCURRENCY,
    WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION: int(
      src,
      'WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION',
      Math.min(4, WEBHOOK_RELAY_CONCURRENCY),
      1,
      WEBHOOK_RELAY_CONCURRENCY,
    ),
    OUTBOX_RETENTION_HOURS: int(src, 'OUTBOX_RETENTION_HOURS', 168, 1, 24 * 3650),
    WEBHOOK_ALLOW_PRIVATE_URLS: bool(src, 'WEBHOOK_ALLOW_PRIVATE_URLS') ?? false,
    JWT_SECRET,
    JWT_EXPIRES_IN_SECONDS: int(src, 'JWT_EXPIRES_IN_SECONDS', 3600, 60, 7 * 24 * 3600),
    IDEMPOTENCY_TTL_HOURS: int(src, 'IDEMPOTENCY_TTL_HOURS', 24, 1, 24 * 365),
    ORDER_HOLD_SECONDS: int(src, 'ORDER_HOLD_SECONDS', 1800, 1, 30 * 86_400),
    ORDER_EXPIRY_SWEEP_SECONDS: int(src, 'ORDER_EXPIRY_SWEEP_SECONDS', 5, 1, 3600),
    IDEMPOTENCY_MAX_KEYS_PER_USER: int(src, 'IDEMPOTENCY_MAX_KEYS_PER_USER', 1000, 1, 1_000_000),
    BODY_LIMIT_BYTES: int(src, 'BODY_LIMIT_BYTES', 256 * 1024, 1024, 64 * 1024 * 1024),
    CORS_ORIGINS: (str(src, 'CORS_ORIGINS') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    LOG_LEVEL: oneOf(
      src,
      'LOG_LEVEL',
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      'info',
    ),
    RATE_LIMIT_MAX: int(src, 'RATE_LIMIT_MAX', 600, 1, 1_000_000_000),
    AUTH_RATE_LIMIT_MAX: int(src, 'AUTH_RATE_LIMIT_MAX', 20, 1, 1_000_000_000),
    RATE_LIMIT_WINDOW_SECONDS: int(src, 'RATE_LIMIT_WINDOW_SECONDS', 60, 1, 86_400),
    RATE_LIMIT_NAMESPACE: str(src, 'RATE_LIMIT_NAMESPACE') ?? 'order-service:rate:',
    STRIPE_SECRET_KEY,
    STRIPE_WEBHOOK_SECRET,
    STRIPE_API_BASE,
    OTEL_TRACES_SAMPLER: oneOf(
      src,
      'OTEL_TRACES_SAMPLER',
      [
        'parentbased_traceidratio',
        'parentbased_always_on',
        'parentbased_always_off',
        'traceidratio',
        'always_on',
        'always_off',
      ],
      'parentbased_traceidratio',
    ),
    OTEL_TRACES_SAMPLER_ARG: ratio(src, 'OTEL_TRACES_SAMPLER_ARG'),
  };
}

/**
 * The tracing sampler's two variables, validated by loadEnv's own rules (the SDK would log a bad
 * value and sample everything). tracing.ts needs them before loadEnv runs in main.ts: only these
 * two are read here, every other variable takes its development default.
 */
export function tracesSampling(
  src: Source = process.env,
): Pick<Env, 'OTEL_TRACES_SAMPLER' | 'OTEL_TRACES_SAMPLER_ARG'> {
  const { OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG } = loadEnv({
    NODE_ENV: 'development',
    OTEL_TRACES_SAMPLER: src.OTEL_TRACES_SAMPLER,
    OTEL_TRACES_SAMPLER_ARG: src.OTEL_TRACES_SAMPLER_ARG,
  });
  return { OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG };
}
