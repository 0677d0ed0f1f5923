import { createHash } from 'node:crypto';
import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { Env } from '../../config/env';
import { databaseErrorInfo, SQLSTATE } from '../database/database-errors';
import { inTransaction } from '../database/transaction';
import type { ProblemCode } from '../problems/problem-catalogue';
import { ProblemError } from '../problems/problem.error';
import { validationProblem } from '../problems/validation';

/** What a handler produced, in a form that can be stored and replayed. */
export type Outcome =
  | { kind: 'success'; status: number; body: unknown; headers: Record<string, string> }
  | { kind: 'problem'; code: ProblemCode; detail: string; extras: Record<string, unknown> };

export interface IdempotentRequest {
  userId: string;
  /** The raw `Idempotency-Key` header, if any. */
  key: string | string[] | undefined;
  method: string;
  /** The request path without its query. */
  path: string;
  body: unknown;
}

export interface IdempotentResult<T> {
  value: T;
  replayed: boolean;
}

/** IETF draft: 1-255 printable ASCII characters. */
const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;
const WAIT_FOR_IN_FLIGHT = '5s';
const PURGE_EVERY_MS = 10 * 60 * 1000;

const keyInUse = (): ProblemError =>
  new ProblemError(
    'IDEMPOTENCY_KEY_IN_USE',
    'A request with this Idempotency-Key is still being processed. Retry after a moment with the same key to get its outcome.',
    {},
    { 'Retry-After': '1' },
  );

/** Stable JSON: object keys sorted, so that `{a,b}` and `{b,a}` are the same request. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function fingerprint(method: string, path: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method}\n${path}\n${canonical(body ?? null)}`)
    .digest('hex');
}

/** Validates the header: absent → undefined, malformed → 400 naming the header. */
export function parseIdempotencyKey(raw: string | string[] | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw === 'string' && KEY_PATTERN.test(raw)) return raw;
  throw validationProblem([
    {
      field: 'Idempotency-Key',
      message: 'Idempotency-Key must be 1-255 printable ASCII characters',
    },
  ]);
}

/**
 * `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header, Stripe's behaviour), kept in
 * PostgreSQL so it holds across any number of instances.
 *
 * The key is claimed by an INSERT in the same transaction as the work and its stored outcome, so
 * they commit together or not at all: a crash never leaves a key without its effect, nor an effect
 * without its key. A second request with the same key blocks on the first one's uncommitted row
 * and then replays its outcome (for up to 5 s; past that it gets 409 IDEMPOTENCY_KEY_IN_USE with
 * Retry-After). Business problems (4xx) are stored and replayed; the work they interrupted is rolled
 * back to a savepoint. Anything else (5xx) rolls back everything, key included, so a retry runs anew.
 */
@Injectable()
export class IdempotencyService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Idempotency');
  private purgeTimer?: NodeJS.Timeout;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly config: ConfigService<Env, true>,
  ) {}

  /**
   * Runs `work` once per (caller, key). Without a key it simply runs `work` in a transaction.
   * `work` returns the outcome to store; replays return the stored one.
   */
  async run(
    request: IdempotentRequest,
    work: (manager: EntityManager) => Promise<Outcome>,
  ): Promise<IdempotentResult<Outcome>> {
    const key = parseIdempotencyKey(request.key);
    if (key === undefined) {
      // Without a key, a business problem is simply thrown and rolls the transaction back.
      return { value: await inTransaction(this.dataSource, work), replayed: false };
    }
    const print = fingerprint(request.method, request.path, request.body);
    return inTransaction(this.dataSource, async (m) => {
      await m.query(`SET LOCAL lock_timeout = '${WAIT_FOR_IN_FLIGHT}'`);
      const claimed = await this.claim(m, request, key, print).catch((err: unknown) => {
        // Only a lock timeout on the key itself means "the first request is still in flight".
        throw databaseErrorInfo(err)?.sqlState === SQLSTATE.lockNotAvailable ? keyInUse() : err;
      });
      if (!claimed)
        return { value: await this.replay(m, request.userId, key, print), replayed: true };
      // The short lock timeout was for waiting on the key only; the work waits as usual.
      await m.query('SET LOCAL lock_timeout = DEFAULT');
      await m.query('SAVEPOINT idempotent_work');
      let outcome: Outcome;
      try {
        outcome = await work(m);
      } catch (err) {
        // Validation failures and 5xx are not stored: a corrected or later retry runs anew.
        if (
          !(err instanceof ProblemError) ||
          err.status >= 500 ||
          err.code === 'VALIDATION_FAILED'
        ) {
          throw err;
        }
        await m.query('ROLLBACK TO SAVEPOINT idempotent_work');
        outcome = { kind: 'problem', code: err.code, detail: err.detail, extras: err.extras };
      }
      await m.query('UPDATE idempotency_keys SET response = $3 WHERE user_id = $1 AND key = $2', [
        request.userId,
        key,
        JSON.stringify(outcome),
      ]);
      return { value: outcome, replayed: false };
    });
  }

  /** Inserts the key, or re-claims an expired one; false when a live record already exists. */
  private async claim(
    m: EntityManager,
    r: IdempotentRequest,
    key: string,
    print: string,
  ): Promise<boolean> {
    const ttlHours = this.config.get('IDEMPOTENCY_TTL_HOURS', { infer: true });
    const rows: unknown[] = await m.query(
      `INSERT INTO idempotency_keys (user_id, key, fingerprint, method, path, expires_at)
       VALUES ($1, $2, $3, $4, $5, now() + make_interval(hours => $6))
       ON CONFLICT (user_id, key) DO UPDATE
         SET fingerprint = EXCLUDED.fingerprint, method = EXCLUDED.method, path = EXCLUDED.path,
             response = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
         WHERE idempotency_keys.expires_at <= now()
       RETURNING 1`,
      [r.userId, key, print, r.method, r.path, ttlHours],
    );
    return rows.length > 0;
  }

  private async replay(
    m: EntityManager,
    userId: string,
    key: string,
    print: string,
  ): Promise<Outcome> {
    const [stored] = await m.query<{ fingerprint: string; response: Outcome | null }[]>(
      'SELECT fingerprint, response FROM idempotency_keys WHERE user_id = $1 AND key = $2',
      [userId, key],
    );
    if (stored.fingerprint !== print) {
      throw new ProblemError(
        'IDEMPOTENCY_KEY_REUSED',
        'This Idempotency-Key was already used for a different request (method, path or body). Use a new key for a new request.',
      );
    }
    if (!stored.response) {
      // Only reachable if the first request's transaction is still open in this same transaction,
      // which cannot happen: the claim would have blocked. Treat it as in flight, defensively.
      throw new ProblemError(
        'IDEMPOTENCY_KEY_IN_USE',
        'The first request is still in flight.',
        {},
        { 'Retry-After': '1' },
      );
    }
    return stored.response;
  }

  /** Deletes expired keys. Safe to run on every instance at once. */
  async purgeExpired(): Promise<number> {
    const [, count] = await this.dataSource.query<[unknown, number]>(
      'DELETE FROM idempotency_keys WHERE expires_at <= now()',
    );
    return count;
  }

  onModuleInit(): void {
    this.purgeTimer = setInterval(() => {
      this.purgeExpired().then(
        (n) => n && this.logger.log(`Purged ${n} expired idempotency key(s)`),
        (err: unknown) => this.logger.warn(`Purge failed: ${String(err)}`),
      );
    }, PURGE_EVERY_MS);
    this.purgeTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.purgeTimer);
  }
}

/**
 * Writes an outcome to the reply: status, stored headers and `Idempotent-Replayed: true` on replays.
 * A problem outcome is thrown so that the global filter renders it for this request (its own
 * requestId and instance), with the replay header already set.
 */
export function sendOutcome(
  { value, replayed }: IdempotentResult<Outcome>,
  reply: { status(code: number): unknown; header(name: string, value: string): unknown },
): unknown {
  if (replayed) reply.header('Idempotent-Replayed', 'true');
  if (value.kind === 'problem') {
    const def = new ProblemError(value.code, value.detail, value.extras);
    throw def;
  }
  for (const [name, v] of Object.entries(value.headers)) reply.header(name, v);
  reply.status(value.status);
  return value.body;
}
