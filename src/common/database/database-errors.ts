import { QueryFailedError } from 'typeorm';
import type { ProblemCode } from '../problems/problem-catalogue';

/**
 * Every named constraint of the schema and what its violation means to a client. Constraint names are
 * fixed in the migrations; this is the one place that knows them.
 */
export const CONSTRAINTS = {
  users_email_lower_key: { code: 'EMAIL_TAKEN', field: 'email' },
  products_sku_upper_key: { code: 'SKU_TAKEN', field: 'sku' },
  products_slug_key: { code: 'SLUG_TAKEN', field: 'slug' },
  products_stock_nonnegative: { code: 'INSUFFICIENT_STOCK', field: 'stock' },
  products_price_nonnegative: { code: 'VALIDATION_FAILED', field: 'priceCents' },
  products_stock_max: { code: 'VALIDATION_FAILED', field: 'stock' },
  // Defence in depth: validation already refuses what these CHECKs refuse.
  products_currency_format: { code: 'VALIDATION_FAILED', field: 'currency' },
  products_slug_format: { code: 'VALIDATION_FAILED', field: 'slug' },
  products_sku_trimmed: { code: 'VALIDATION_FAILED', field: 'sku' },
  users_email_trimmed: { code: 'VALIDATION_FAILED', field: 'email' },
  orders_user_id_fkey: { code: 'RESOURCE_IN_USE', field: 'userId' },
  order_items_product_id_fkey: { code: 'RESOURCE_IN_USE', field: 'productId' },
} as const satisfies Record<string, { code: ProblemCode; field: string }>;

export type ConstraintName = keyof typeof CONSTRAINTS;

/** SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
export const SQLSTATE = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  /** PostgreSQL 18 reports ON DELETE RESTRICT violations as restrict_violation. */
  restrictViolation: '23001',
  checkViolation: '23514',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  numericValueOutOfRange: '22003',
  characterNotInRepertoire: '22021',
  untranslatableCharacter: '22P05',
} as const;

export interface DatabaseErrorInfo {
  sqlState?: string;
  constraint?: string;
}

/** The driver error behind a TypeORM error, or the error itself. */
export function databaseErrorInfo(err: unknown): DatabaseErrorInfo | undefined {
  const driver: unknown = err instanceof QueryFailedError ? err.driverError : err;
  if (typeof driver !== 'object' || driver === null) return undefined;
  const { code, constraint } = driver as { code?: unknown; constraint?: unknown };
  return {
    sqlState: typeof code === 'string' ? code : undefined,
    constraint: typeof constraint === 'string' ? constraint : undefined,
  };
}

export interface ConstraintViolation {
  constraint: ConstraintName;
  code: ProblemCode;
  field: string;
}

/** A violation of one of our named constraints, or undefined for anything else. */
export function constraintViolation(err: unknown): ConstraintViolation | undefined {
  const info = databaseErrorInfo(err);
  if (!info?.constraint || !(info.constraint in CONSTRAINTS)) return undefined;
  const name = info.constraint as ConstraintName;
  return { constraint: name, ...CONSTRAINTS[name] };
}

/** A statement that waited too long (statement_timeout, lock_timeout): busy, try again later. */
export function isTimeout(err: unknown): boolean {
  const state = databaseErrorInfo(err)?.sqlState;
  return state === SQLSTATE.queryCanceled || state === SQLSTATE.lockNotAvailable;
}

/**
 * A value the client sent that PostgreSQL cannot store (a NUL byte in text, a number past the
 * column's range): the client's mistake, answered 400, never 500.
 */
export function isUnstorableValue(err: unknown): boolean {
  const state = databaseErrorInfo(err)?.sqlState;
  return (
    state === SQLSTATE.numericValueOutOfRange ||
    state === SQLSTATE.characterNotInRepertoire ||
    state === SQLSTATE.untranslatableCharacter
  );
}

/** Transient conflicts between transactions: the same work may simply be tried again. */
export function isRetryableConflict(err: unknown): boolean {
  const state = databaseErrorInfo(err)?.sqlState;
  return state === SQLSTATE.serializationFailure || state === SQLSTATE.deadlockDetected;
}

const CONNECTION_MESSAGES = [
  'Connection terminated',
  'connection terminated',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Connection is not established',
  'the database system is',
  'not queryable',
];

/**
 * The database is away: refused or dropped connections, administrator shutdown (57P01..57P03),
 * connection exceptions (class 08), too many connections (53300).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const state = databaseErrorInfo(err)?.sqlState;
  if (state && (state.startsWith('08') || state.startsWith('57P') || state === '53300')) {
    return true;
  }
  // TypeORM releases a query runner whose connection died; using it again throws this.
  if (err instanceof Error && err.name === 'QueryRunnerAlreadyReleasedError') return true;
  const seen = new Set<unknown>();
  let e: unknown = err;
  while (e instanceof Error && !seen.has(e)) {
    seen.add(e);
    const text = `${(e as { code?: unknown }).code as string} ${e.message}`;
    if (CONNECTION_MESSAGES.some((m) => text.includes(m))) return true;
    e = err instanceof QueryFailedError && e === err ? err.driverError : e.cause;
  }
  return false;
}
