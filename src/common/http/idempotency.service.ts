import { createHash } from 'node:crypto';
import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { Env } from '../../config/env';
import { databaseErrorInfo, missingParentProblem, SQLSTATE } from '../database/database-errors';
import { sql } from '../database/sql';
import { inTransaction } from '../database/transaction';
import { IdempotencyRepository, type NewKey } from './idempotency.repository';
import type { ProblemCode } from '../problems/problem-catalogue';
import { ProblemError } from '../problems/problem.error';
import {
  PROBLEM_CONTENT_TYPE,
  problemBody,
  type ProblemContext,
  problemHeaders,
} from './problem.filter';
import { validationProblem } from '../problems/validation';
import { type SerializedResponse, SerializedReply } from './responses';

export interface IdempotentRequest {
  userId: string;
  /** The raw `Idempotency-Key` header, if any. */
  key: string | string[] | undefined;
  method: string;
  /** The canonical request path without its query: equivalent URLs are the same request. */
  path: string;
  body: unknown;
  /** Where a stored problem says it happened (its `requestId` and `instance`). */
  problemContext: ProblemContext;
}

/**
 * A key to be claimed by the work itself, in the work's one statement (a keyed checkout:
 * place_order_keyed), with what the statement stores as its outcome.
 */
export interface KeyClaim extends NewKey {
  /** The request's id, stored with the outcome: a replay answers as this request did. */
  requestId: string;
}

/** How `run` may do the work and read outcomes the work stored itself. */
export interface IdempotentWork {
  /** The work opens its own transaction when it needs one (a one-statement checkout). */
  ownTransaction?: boolean;
  /**
   * With a key: first try the work as one statement that claims the key and stores its outcome
   * itself (claim_idempotency_key with p_wait false). Answers the response, or undefined when
   * the statement did nothing: the key is taken or in flight, or the work was refused (a refusal
   * is explained and stored by the usual path, which then runs).
   */
  atOnce?: (claim: KeyClaim) => Promise<SerializedResponse | undefined>;
  /** Renders an outcome `atOnce` stored (anything but a SerializedResponse), for a replay. */
  renderStored?: (stored: unknown) => SerializedResponse;
}

/** IETF draft: 1-255 printable ASCII characters. */
const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;
const WAIT_FOR_IN_FLIGHT = '5s';
const PURGE_EVERY_MS = 10 * 60 * 1000;
const PURGE_BATCH = 1000;

const keyInUse = (): ProblemError =>
  new ProblemError(
    'IDEMPOTENCY_KEY_IN_USE',
    'A request with this Idempotency-Key is still being processed. Retry after a moment with the same key to get its outcome.',
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

  private readonly ttlHours: number;
  private readonly maxKeysPerUser: number;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly keys: IdempotencyRepository,
    config: ConfigService<Env, true>,
  ) {
    this.ttlHours = config.get('IDEMPOTENCY_TTL_HOURS', { infer: true });
    this.maxKeysPerUser = config.get('IDEMPOTENCY_MAX_KEYS_PER_USER', { infer: true });
  }

  /**
   * Runs `work` once per (caller, key). Without a key it simply runs `work` in a transaction.
   * `work` returns the response, rendered to its exact bytes; replays return the stored one.
   */
  async run(
    request: IdempotentRequest,
    work: (manager: EntityManager) => Promise<SerializedResponse>,
    { ownTransaction = false, atOnce, renderStored }: IdempotentWork = {},
  ): Promise<SerializedReply> {
    const key = parseIdempotencyKey(request.key);
    if (key === undefined) {
      // Work that opens its own transaction when it needs one (a one-statement checkout) runs on
      // the pool as is: no BEGIN and COMMIT around a single statement.
      if (ownTransaction) return new SerializedReply(await work(this.dataSource.manager), false);
      // Without a key, a business problem is simply thrown and rolls the transaction back.
      return new SerializedReply(await inTransaction(this.dataSource, work), false);
    }
    const print = fingerprint(request.method, request.path, request.body);
    if (atOnce) {
      const done = await atOnce({
        userId: request.userId,
        key,
        fingerprint: print,
        method: request.method,
        path: request.path,
        ttlHours: this.ttlHours,
        maxLivePerUser: this.maxKeysPerUser,
        requestId: request.problemContext.requestId,
      });
      if (done) return new SerializedReply(done, false);
    }
    return inTransaction(this.dataSource, async (m) => {
      await this.keys.waitForKeysAtMost(m, WAIT_FOR_IN_FLIGHT);
      const claimed = await this.keys
        .claim(m, {
          userId: request.userId,
          key,
          fingerprint: print,
          method: request.method,
          path: request.path,
          ttlHours: this.ttlHours,
          maxLivePerUser: this.maxKeysPerUser,
        })
        .catch((err: unknown) => {
          // Only a lock timeout on the key itself means "the first request is still in flight"; a
          // missing parent here is the caller's account, deleted while this request was under way.
          if (databaseErrorInfo(err)?.sqlState === SQLSTATE.lockNotAvailable) throw keyInUse();
          throw missingParentProblem(err) ?? err;
        });
      if (!claimed) {
        return new SerializedReply(await this.replay(m, request, key, print, renderStored), true);
      }
      // The short lock timeout was for waiting on the key only; the work waits as usual.
      await this.keys.waitForKeysAtMost(m, 'DEFAULT');
      await sql(m, 'SAVEPOINT idempotent_work');
      let response: SerializedResponse;
      try {
        response = await work(m);
      } catch (err) {
        // Validation failures and 5xx are not stored: a corrected or later retry runs anew.
        if (
          !(err instanceof ProblemError) ||
          err.status >= 500 ||
          err.code === 'VALIDATION_FAILED'
        ) {
          throw err;
        }
        // A business problem undoes the work, unless its writes so far must stand (keepsEffects).
        if (!err.keepsEffects) await sql(m, 'ROLLBACK TO SAVEPOINT idempotent_work');
        response = serializeProblem(err, request.problemContext);
      }
      response = { ...response, requestId: request.problemContext.requestId };
      await this.keys.store(m, request.userId, key, response);
      return new SerializedReply(response, false);
    });
  }

  private async replay(
    m: EntityManager,
    r: IdempotentRequest,
    key: string,
    print: string,
    renderStored: IdempotentWork['renderStored'],
  ): Promise<SerializedResponse> {
    const stored = await this.keys.find<SerializedResponse | LegacyOutcome | object>(
      m,
      r.userId,
      key,
    );
    if (!stored) {
      // Nothing inserted and nothing stored: the caller is at its bound of live keys.
      const wait = await this.keys.secondsUntilOldestExpires(m, r.userId);
      throw new ProblemError(
        'RATE_LIMITED',
        `You hold ${this.maxKeysPerUser} live Idempotency-Keys, the most one caller may (each is kept ${this.ttlHours} h). Retry after ${wait} s, when the oldest expires.`,
        {},
        { 'Retry-After': String(wait) },
      );
    }
    if (stored.fingerprint !== print) {
      throw new ProblemError(
        'IDEMPOTENCY_KEY_REUSED',
        'This Idempotency-Key was already used for a different request (method, path or body). Use a new key for a new request.',
      );
    }
    // Only reachable if the first request's transaction were still open in this same transaction,
    // which cannot happen: the claim would have blocked. Treat it as in flight, defensively.
    if (!stored.response) throw keyInUse();
    const response = stored.response;
    if ('kind' in response) return fromLegacy(response, r.problemContext);
    if ('status' in response && 'body' in response) return response;
    // An outcome the work stored itself (atOnce): only that work knows how to render it.
    if (!renderStored) throw new Error(`No renderer for the outcome stored with key ${key}`);
    return renderStored(response);
  }

  /**
   * Deletes expired keys in batches, each its own short statement, so that a large backlog never
   * holds locks for long or runs into the statement timeout.
   */
  async purgeExpired(batch = PURGE_BATCH): Promise<number> {
    let total = 0;
    for (;;) {
      const count = await this.keys.purgeBatch(batch);
      total += count;
      if (count < batch) return total;
    }
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

/** Renders a business problem to the bytes that are sent now and replayed later. */
export function serializeProblem(problem: ProblemError, at: ProblemContext): SerializedResponse {
  return {
    status: problem.status,
    headers: {
      ...problemHeaders(problem),
      'Content-Type': `${PROBLEM_CONTENT_TYPE}; charset=utf-8`,
    },
    body: JSON.stringify(problemBody(problem, at)),
    problemCode: problem.code,
  };
}

/** A success rendered once: the body bytes sent now are the ones a replay sends. */
export function serializeJson(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): SerializedResponse {
  return {
    status,
    headers: { ...headers, 'Content-Type': 'application/json; charset=utf-8' },
    body: JSON.stringify(body),
  };
}

/** Outcomes stored before responses were kept as bytes (they expire within IDEMPOTENCY_TTL_HOURS). */
type LegacyOutcome =
  | { kind: 'success'; status: number; body: unknown; headers: Record<string, string> }
  | { kind: 'problem'; code: ProblemCode; detail: string; extras: Record<string, unknown> };

function fromLegacy(outcome: LegacyOutcome, at: ProblemContext): SerializedResponse {
  return outcome.kind === 'success'
    ? serializeJson(outcome.status, outcome.body, outcome.headers)
    : serializeProblem(new ProblemError(outcome.code, outcome.detail, outcome.extras), at);
}
