import { problem, type ProblemCode } from './problem-catalogue';

/** Extension members and headers that travel with a problem. */
export interface ProblemExtras {
  [member: string]: unknown;
}

/**
 * The one error type domain code throws. The global filter turns it into application/problem+json;
 * status and title come from the catalogue, so a throw site only says what happened.
 */
export class ProblemError extends Error {
  readonly status: number;

  readonly headers: Record<string, string>;
  /**
   * The writes made before the problem still commit (an order found overdue is expired on the way
   * to refusing a pay or an edit): the transaction helpers commit first, then answer the problem.
   */
  keepsEffects = false;

  /** `headers` may refine the catalogue's (a rate-limit window's own Retry-After). */
  constructor(
    readonly code: ProblemCode,
    readonly detail: string,
    readonly extras: ProblemExtras = {},
    headers: Record<string, string> = {},
  ) {
    // No stack trace: a problem is an answer, not a fault (it is never logged with a stack), and
    // capturing one through Nest's async frames was 3.6% of a refused PATCH's CPU (bench/README.md).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(detail);
    Error.stackTraceLimit = limit;
    this.name = 'ProblemError';
    const def = problem(code);
    this.status = def.status;
    this.headers =
      def.retryAfterSeconds === undefined
        ? headers
        : { 'Retry-After': String(def.retryAfterSeconds), ...headers };
  }
}

/** The same problem, answered after its transaction's writes so far commit. */
export function afterCommit(problem: ProblemError): ProblemError {
  problem.keepsEffects = true;
  return problem;
}

export const notFound = (what: string): ProblemError =>
  new ProblemError('NOT_FOUND', `${what} was not found.`);
