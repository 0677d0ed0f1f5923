import { QueryFailedError } from 'typeorm';
import type { ProblemCode } from '../problems/problem-catalogue';
import { ProblemError } from '../problems/problem.error';

interface ConstraintMeaning {
  /** The answer to a violation. INTERNAL: no request can cause it; a violation is a bug. */
  code: ProblemCode;
  field: string;
  /**
   * For a foreign key: the answer when a new row names a parent that is gone. PostgreSQL reports
   * both sides of a foreign key alike (23503, same constraint and table; PostgreSQL 18 reports a
   * blocked RESTRICT delete as 23001), so the code that inserts such rows asks for this answer
   * (missingParentProblem); everywhere else a violation is the parent's blocked delete (`code`).
   */
  missingParent?: ProblemCode;
}

/**
 * Every named constraint of the schema (and unique index) and what its violation means to a client.
 * Constraint names are fixed in the migrations; this is the one place that knows them, and a test
 * fails when the database has one this map lacks.
 */
export const CONSTRAINTS = {
  // users
  users_pkey: { code: 'INTERNAL', field: 'id' },
  users_email_lower_key: { code: 'EMAIL_TAKEN', field: 'email' },
  users_email_trimmed: { code: 'VALIDATION_FAILED', field: 'email' },
  users_role_check: { code: 'VALIDATION_FAILED', field: 'role' },
  users_version_positive: { code: 'INTERNAL', field: 'version' },
  // products
  products_pkey: { code: 'INTERNAL', field: 'id' },
  products_sku_upper_key: { code: 'SKU_TAKEN', field: 'sku' },
  products_slug_key: { code: 'SLUG_TAKEN', field: 'slug' },
  products_stock_nonnegative: { code: 'INSUFFICIENT_STOCK', field: 'stock' },
  products_price_nonnegative: { code: 'VALIDATION_FAILED', field: 'priceCents' },
  // Defence in depth: validation already refuses what these CHECKs refuse.
  products_currency_format: { code: 'VALIDATION_FAILED', field: 'currency' },
  products_slug_format: { code: 'VALIDATION_FAILED', field: 'slug' },
  products_sku_trimmed: { code: 'VALIDATION_FAILED', field: 'sku' },
  products_version_positive: { code: 'INTERNAL', field: 'version' },
  products_stock_version_positive: { code: 'INTERNAL', field: 'stock.version' },
  // orders
  orders_pkey: { code: 'INTERNAL', field: 'id' },
  orders_user_id_fkey: {
    code: 'RESOURCE_IN_USE',
    field: 'userId',
    // The caller's account was deleted while its order was being placed.
    missingParent: 'UNAUTHENTICATED',
  },
  orders_status_check: { code: 'INTERNAL', field: 'status' },
  orders_expires_at_while_pending: { code: 'INTERNAL', field: 'expiresAt' },
  orders_total_nonnegative: { code: 'INTERNAL', field: 'totalCents' },
  orders_version_positive: { code: 'INTERNAL', field: 'version' },
  order_items_pkey: { code: 'INTERNAL', field: 'items' },
  order_items_order_id_fkey: { code: 'INTERNAL', field: 'orderId' },
  order_items_product_id_fkey: {
    code: 'RESOURCE_IN_USE',
    field: 'productId',
    missingParent: 'UNKNOWN_PRODUCT',
  },
  order_items_one_line_per_product: { code: 'INTERNAL', field: 'items' },
  order_items_quantity_positive: { code: 'VALIDATION_FAILED', field: 'quantity' },
  order_items_price_nonnegative: { code: 'INTERNAL', field: 'unitPriceCents' },
  order_history_pkey: { code: 'INTERNAL', field: 'id' },
  order_history_order_id_fkey: { code: 'INTERNAL', field: 'orderId' },
  order_history_action_check: { code: 'INTERNAL', field: 'action' },
  // the outbox and webhooks
  outbox_events_pkey: { code: 'INTERNAL', field: 'id' },
  outbox_events_order_id_fkey: { code: 'INTERNAL', field: 'orderId' },
  outbox_events_type_check: { code: 'INTERNAL', field: 'type' },
  webhook_subscriptions_pkey: { code: 'INTERNAL', field: 'id' },
  webhook_subscriptions_events_nonempty: { code: 'VALIDATION_FAILED', field: 'events' },
  webhook_deliveries_pkey: { code: 'INTERNAL', field: 'id' },
  webhook_deliveries_subscription_id_fkey: { code: 'INTERNAL', field: 'subscriptionId' },
  webhook_deliveries_event_id_fkey: { code: 'INTERNAL', field: 'eventId' },
  webhook_deliveries_once_per_subscription: { code: 'INTERNAL', field: 'eventId' },
  webhook_deliveries_status_check: { code: 'INTERNAL', field: 'status' },
  webhook_deliveries_attempts_nonnegative: { code: 'INTERNAL', field: 'attempts' },
  webhook_deliveries_settled_at_check: { code: 'INTERNAL', field: 'settledAt' },
  // where a bus relay starts publishing (written by the relay, never by a request)
  outbox_relays_pkey: { code: 'INTERNAL', field: 'name' },
  outbox_relays_name_check: { code: 'INTERNAL', field: 'name' },
  // idempotency keys
  idempotency_keys_pkey: { code: 'INTERNAL', field: 'key' },
  idempotency_keys_user_id_fkey: {
    code: 'INTERNAL',
    field: 'userId',
    // The caller's account was deleted while a keyed request of theirs was in flight.
    missingParent: 'UNAUTHENTICATED',
  },
  // payments (migration Payments): the use cases decide under the order's row lock first, so these
  // hold only if code were wrong
  orders_paid_nonnegative: { code: 'INTERNAL', field: 'paidCents' },
  orders_refunded_within_paid: { code: 'INTERNAL', field: 'refundedCents' },
  orders_payment_id_fkey: { code: 'INTERNAL', field: 'paymentId' },
  payments_pkey: { code: 'INTERNAL', field: 'id' },
  payments_order_id_fkey: { code: 'INTERNAL', field: 'orderId' },
  payments_provider_check: { code: 'VALIDATION_FAILED', field: 'provider' },
  payments_status_check: { code: 'INTERNAL', field: 'status' },
  payments_amount_positive: { code: 'VALIDATION_FAILED', field: 'amountCents' },
  payments_captured_when_succeeded: { code: 'INTERNAL', field: 'status' },
  payments_refunds_within_captured: { code: 'INTERNAL', field: 'amountCents' },
  payments_provider_payment_key: { code: 'INTERNAL', field: 'providerPaymentId' },
  payments_one_open_per_order: { code: 'INTERNAL', field: 'orderId' },
  refunds_pkey: { code: 'INTERNAL', field: 'id' },
  refunds_order_id_fkey: { code: 'INTERNAL', field: 'orderId' },
  refunds_payment_id_fkey: { code: 'INTERNAL', field: 'paymentId' },
  refunds_amount_positive: { code: 'VALIDATION_FAILED', field: 'amountCents' },
  refunds_reason_length: { code: 'VALIDATION_FAILED', field: 'reason' },
  refunds_status_check: { code: 'INTERNAL', field: 'status' },
  refunds_last_outcome_check: { code: 'INTERNAL', field: 'lastOutcome' },
  refunds_attempts_nonnegative: { code: 'INTERNAL', field: 'attempts' },
  refunds_provider_refund_key: { code: 'INTERNAL', field: 'providerRefundId' },
  payment_provider_events_pkey: { code: 'INTERNAL', field: 'eventId' },
  // promotions (migration Promotions, API.md §11)
  promotions_pkey: { code: 'INTERNAL', field: 'id' },
  promotions_code_key: { code: 'PROMOTION_CODE_TAKEN', field: 'code' },
  // Defence in depth: validation already refuses what these CHECKs refuse.
  promotions_code_format: { code: 'VALIDATION_FAILED', field: 'code' },
  promotions_one_discount: { code: 'VALIDATION_FAILED', field: 'percentOff' },
  promotions_percent_off_range: { code: 'VALIDATION_FAILED', field: 'percentOff' },
  promotions_amount_off_positive: { code: 'VALIDATION_FAILED', field: 'amountOffCents' },
  promotions_currency_format: { code: 'VALIDATION_FAILED', field: 'currency' },
  promotions_period_order: { code: 'VALIDATION_FAILED', field: 'endsAt' },
  promotions_usage_limit_nonnegative: { code: 'VALIDATION_FAILED', field: 'usageLimit' },
  promotions_per_customer_limit_positive: { code: 'VALIDATION_FAILED', field: 'perCustomerLimit' },
  promotions_times_used_nonnegative: { code: 'INTERNAL', field: 'timesUsed' },
  promotions_version_positive: { code: 'INTERNAL', field: 'version' },
  orders_promotion_id_fkey: { code: 'RESOURCE_IN_USE', field: 'promotionId' },
  orders_discount_nonnegative: { code: 'INTERNAL', field: 'discountCents' },
  orders_promotion_terms: { code: 'INTERNAL', field: 'promotionCode' },
  // the record of applied SQL function files (src/database/migrate.ts); no request writes it
  repeatable_migrations_pkey: { code: 'INTERNAL', field: 'name' },
  repeatable_migrations_checksum_format: { code: 'INTERNAL', field: 'checksum' },
} as const satisfies Record<string, ConstraintMeaning>;

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
  return { constraint: name, code: CONSTRAINTS[name].code, field: CONSTRAINTS[name].field };
}

const MISSING_PARENT_DETAIL: Partial<Record<ProblemCode, string>> = {
  UNAUTHENTICATED: 'The account behind this token no longer exists; nothing was changed.',
  UNKNOWN_PRODUCT: 'A product of the order no longer exists; nothing was reserved.',
};

/**
 * For code that inserts rows naming a parent (an order naming its user, a line its product): the
 * parent was deleted meanwhile. The answer, or undefined when `err` is something else.
 */
export function missingParentProblem(err: unknown): ProblemError | undefined {
  const info = databaseErrorInfo(err);
  if (info?.sqlState !== SQLSTATE.foreignKeyViolation || !info.constraint) return undefined;
  const meaning: ConstraintMeaning | undefined = (CONSTRAINTS as Record<string, ConstraintMeaning>)[
    info.constraint
  ];
  const code = meaning?.missingParent;
  if (!code) return undefined;
  return new ProblemError(
    code,
    MISSING_PARENT_DETAIL[code] ?? 'A record this change refers to no longer exists.',
    {},
    code === 'UNAUTHENTICATED' ? { 'WWW-Authenticate': 'Bearer error="invalid_token"' } : {},
  );
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

/** A PostgreSQL error as the driver reports it (a TypeORM QueryFailedError wraps one). */
function driverError(err: unknown): Record<string, unknown> | undefined {
  const driver: unknown = err instanceof QueryFailedError ? err.driverError : err;
  if (typeof driver !== 'object' || driver === null) return undefined;
  const { code, severity } = driver as { code?: unknown; severity?: unknown };
  // pg's DatabaseError always carries a five-character SQLSTATE and a severity.
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof severity === 'string'
    ? (driver as Record<string, unknown>)
    : undefined;
}

/**
 * What may be logged of a database error: the SQLSTATE and the names of the constraint, table and
 * column, never PostgreSQL's message, `detail` ("Failing row contains (…)"), the query or its
 * parameters, which can hold emails, password hashes and whatever else a row holds.
 */
export function loggableDatabaseError(err: unknown): Record<string, string> | undefined {
  const driver = driverError(err);
  if (!driver) return undefined;
  const safe: Record<string, string> = { type: 'DatabaseError' };
  for (const [from, to] of [
    ['code', 'sqlState'],
    ['constraint', 'constraint'],
    ['schema', 'schema'],
    ['table', 'table'],
    ['column', 'column'],
    ['routine', 'routine'],
  ] as const) {
    if (typeof driver[from] === 'string') safe[to] = driver[from];
  }
  return safe;
}
