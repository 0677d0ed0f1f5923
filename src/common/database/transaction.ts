import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource, EntityManager } from 'typeorm';
import { ProblemError } from '../problems/problem.error';
import { isDatabaseUnavailable, isRetryableConflict, isTimeout } from './database-errors';

export interface TransactionOptions {
  /** How many times the whole transaction runs at most when PostgreSQL reports 40001/40P01. */
  attempts?: number;
  isolation?: 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE';
}

const BASE_DELAY_MS = 10;
const MAX_DELAY_MS = 250;

/**
 * Runs `work` in one transaction, retrying the whole of it with full-jitter backoff when PostgreSQL
 * aborts it for a serialization failure or deadlock. When the budget is spent, or the database is
 * unreachable, the caller gets 503 SERVICE_UNAVAILABLE with Retry-After; a rolled-back transaction
 * never leaves partial writes behind.
 */
export async function inTransaction<T>(
  dataSource: DataSource,
  work: (manager: EntityManager) => Promise<T>,
  { attempts = 5, isolation = 'READ COMMITTED' }: TransactionOptions = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let deferred: ProblemError | undefined;
    try {
      const result = await dataSource.transaction(isolation, async (m) => {
        try {
          return await work(m);
        } catch (err) {
          // Commit what was done, then answer (see ProblemError.keepsEffects).
          if (err instanceof ProblemError && err.keepsEffects) deferred = err;
          else throw err;
          return undefined as T;
        }
      });
      if (deferred) throw deferred;
      return result;
    } catch (err) {
      if (err === deferred) throw err;
      if (isRetryableConflict(err)) {
        if (attempt >= attempts) throw serviceUnavailable('contention');
        const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
        await sleep(Math.random() * cap);
        continue;
      }
      throw err;
    }
  }
}

const TRANSIENT = {
  contention:
    'The request kept colliding with concurrent transactions; nothing was changed. Retry shortly.',
  unreachable: 'The database is unavailable right now; nothing was changed. Retry shortly.',
  busy: 'The database is too busy to answer in time; nothing was changed. Retry shortly.',
} as const;

/** The one 503: what went wrong differs, what a client does (retry after Retry-After) does not. */
export function serviceUnavailable(reason: keyof typeof TRANSIENT): ProblemError {
  return new ProblemError('SERVICE_UNAVAILABLE', TRANSIENT[reason]);
}

/** A database failure that a later retry may not meet: 503, or undefined for anything else. */
export function transientProblem(err: unknown): ProblemError | undefined {
  if (isDatabaseUnavailable(err)) return serviceUnavailable('unreachable');
  if (isTimeout(err)) return serviceUnavailable('busy');
  if (isRetryableConflict(err)) return serviceUnavailable('contention');
  return undefined;
}
