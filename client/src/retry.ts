import { ApiProblem, type ProblemCode } from './problem.ts';

/** What is safe to retry unchanged: the server did nothing, or will replay what it did. */
export const RETRYABLE: ReadonlySet<ProblemCode> = new Set<ProblemCode>([
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
  'IDEMPOTENCY_KEY_IN_USE',
]);

export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** No retry starts after this much time has passed since the first attempt. */
  maxTotalMs?: number;
  /**
   * Retry when no answer arrived at all (connection refused or cut). Only safe when repeating the
   * request cannot act twice: a GET, or a POST carrying an Idempotency-Key.
   */
  retryNetworkErrors?: boolean;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
}

/** fetch rejects with a TypeError (undici: "fetch failed") when no HTTP answer arrived. */
export function isNetworkError(error: unknown): boolean {
  return error instanceof TypeError || (error instanceof Error && error.name === 'AbortError');
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `operation` until it succeeds, retrying only what is safe: 429, 503 and 409
 * IDEMPOTENCY_KEY_IN_USE (and, when allowed, answers that never arrived). Waits `Retry-After` when
 * the server gave one, otherwise exponential backoff with full jitter; bounded in attempts and time.
 */
export async function retry<T>(
  operation: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const {
    attempts = 5,
    baseDelayMs = 100,
    maxDelayMs = 5_000,
    maxTotalMs = 30_000,
    retryNetworkErrors = false,
    sleep = defaultSleep,
    random = Math.random,
  } = options;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      const retryable =
        (error instanceof ApiProblem && RETRYABLE.has(error.code)) ||
        (retryNetworkErrors && isNetworkError(error));
      if (!retryable || attempt >= attempts) throw error;
      const delayMs =
        error instanceof ApiProblem && error.retryAfterSeconds !== undefined
          ? error.retryAfterSeconds * 1000
          : random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
      if (Date.now() - started + delayMs > maxTotalMs) throw error;
      options.onRetry?.({ attempt, delayMs, error });
      await sleep(delayMs);
    }
  }
}
