import type { components } from './schema.ts';

/** Every problem body the service sends (RFC 9457), as documented in its OpenAPI document. */
export type ProblemBody = components['schemas']['ProblemDto'] & Record<string, unknown>;

/** The union of every `code`, generated from the server's catalogue: `switch` on it is exhaustive. */
export type ProblemCode = ProblemBody['code'];

/**
 * The one error type for every problem answer. Discriminated by `code`; the extension members are in
 * `body` (e.g. `body.current` on PRECONDITION_FAILED, `body.items` on INSUFFICIENT_STOCK).
 */
export class ApiProblem extends Error {
  override readonly name = 'ApiProblem';
  readonly code: ProblemCode;
  readonly status: number;
  readonly requestId: string;
  /** Seconds from `Retry-After`, when the server sent one. */
  readonly retryAfterSeconds?: number;

  constructor(
    readonly body: ProblemBody,
    headers?: Headers,
  ) {
    super(`${body.code}: ${body.detail}`);
    this.code = body.code;
    this.status = body.status;
    this.requestId = body.requestId;
    const raw = headers?.get('retry-after')?.trim();
    const seconds = raw ? Number(raw) : NaN;
    if (Number.isFinite(seconds) && seconds >= 0) this.retryAfterSeconds = seconds;
  }
}

export function isProblemBody(value: unknown): value is ProblemBody {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    typeof (value as { status?: unknown }).status === 'number'
  );
}
