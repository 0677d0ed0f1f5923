import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  Logger,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  constraintViolation,
  isUnstorableValue,
  loggableDatabaseError,
} from '../database/database-errors';
import { transientProblem } from '../database/transaction';
import { PROBLEMS, type ProblemCode, problemType } from '../problems/problem-catalogue';
import { ProblemError } from '../problems/problem.error';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set when the answer is a problem: read by the request log line and the metrics. */
    problemCode?: ProblemCode;
  }
}

const STATUS_CODES: Record<number, ProblemCode> = {
  400: 'VALIDATION_FAILED',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'NOT_FOUND',
  412: 'PRECONDITION_FAILED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  428: 'PRECONDITION_REQUIRED',
  429: 'RATE_LIMITED',
  503: 'SERVICE_UNAVAILABLE',
};

/** Fastify's own errors (body parsing, limits) carry a `statusCode` and an `FST_` code. */
function fastifyError(err: unknown): { statusCode: number; code?: string } | undefined {
  if (!(err instanceof Error)) return undefined;
  const { statusCode, code } = err as { statusCode?: unknown; code?: unknown };
  if (typeof statusCode !== 'number' || statusCode < 400 || statusCode > 599) return undefined;
  return { statusCode, code: typeof code === 'string' ? code : undefined };
}

function fromFastify(statusCode: number, code: string | undefined): ProblemError {
  switch (code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ProblemError('VALIDATION_FAILED', 'The body is not valid JSON.', {
        errors: [{ field: 'body', message: 'must be valid JSON' }],
      });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ProblemError('VALIDATION_FAILED', 'The body is empty but declared as JSON.', {
        errors: [{ field: 'body', message: 'must not be empty when Content-Type is JSON' }],
      });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ProblemError('PAYLOAD_TOO_LARGE', 'The request body is larger than allowed.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return statusCode === 415
        ? new ProblemError('UNSUPPORTED_MEDIA_TYPE', 'The body must be sent as application/json.')
        : new ProblemError('VALIDATION_FAILED', 'The request body is malformed.', {
            errors: [{ field: 'body', message: 'Content-Length does not match the body' }],
          });
    default:
      return fromStatus(statusCode, undefined);
  }
}

function fromStatus(status: number, message: string | undefined): ProblemError {
  const code = STATUS_CODES[status] ?? (status >= 500 ? 'INTERNAL' : 'VALIDATION_FAILED');
  if (code === 'VALIDATION_FAILED') {
    const text = message ?? 'The request is malformed.';
    return new ProblemError(code, text, { errors: [{ field: 'body', message: text }] });
  }
  const detail =
    code === 'NOT_FOUND'
      ? 'No such resource or route.'
      : code === 'INTERNAL'
        ? 'An unexpected error occurred.'
        : (message ?? PROBLEMS[code].title);
  return new ProblemError(code, detail);
}

/**
 * Turns everything thrown anywhere in a request into an RFC 9457 application/problem+json body:
 * ProblemErrors, Nest HttpExceptions, Fastify's parsing errors, database errors (by SQLSTATE and
 * constraint name) and, as 500 INTERNAL, anything else, which is logged but never echoed.
 */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemFilter');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const request = ctx.getRequest<FastifyRequest>();
    const reply = ctx.getResponse<FastifyReply>();
    const problem = this.toProblem(exception, request);
    writeProblem(this.adapterHost, request, reply, problem);
  }

  private toProblem(exception: unknown, request: FastifyRequest): ProblemError {
    if (exception instanceof ProblemError) return exception;
    if (exception instanceof HttpException) {
      const response = exception.getResponse();
      const message =
        typeof response === 'object' && response !== null && 'message' in response
          ? String(response.message)
          : exception.message;
      return fromStatus(exception.getStatus(), message);
    }
    const violation = constraintViolation(exception);
    if (violation?.code === 'VALIDATION_FAILED') {
      return new ProblemError(
        'VALIDATION_FAILED',
        `The value of ${violation.field} is not valid.`,
        {
          errors: [{ field: violation.field, message: `${violation.field} is not valid` }],
        },
      );
    }
    if (violation && violation.code !== 'INTERNAL') {
      return new ProblemError(
        violation.code,
        `The change conflicts with existing data (${violation.field}).`,
        violation.code.endsWith('_TAKEN') ? { field: violation.field } : {},
      );
    }
    const transient = transientProblem(exception);
    if (transient) return transient;
    if (isUnstorableValue(exception)) {
      return new ProblemError(
        'VALIDATION_FAILED',
        'A value in the request cannot be stored (a NUL character, or a number out of range).',
        {
          errors: [{ field: 'body', message: 'contains a value that cannot be stored' }],
        },
      );
    }
    const fst = fastifyError(exception);
    if (fst && fst.statusCode < 500) return fromFastify(fst.statusCode, fst.code);
    const database = loggableDatabaseError(exception);
    this.logger.error(
      { requestId: request.id, err: database ?? exception },
      database
        ? `Unexpected database error ${database.sqlState}`
        : exception instanceof Error
          ? exception.stack
          : String(exception),
    );
    return fromStatus(500, undefined);
  }
}

/** Where a problem happened: the request's id and path (RFC 9457 `instance`). */
export interface ProblemContext {
  requestId: string;
  instance: string;
}

export const problemContext = (request: FastifyRequest): ProblemContext => ({
  requestId: request.id,
  instance: request.url.split('?')[0],
});

/** The same, from the plain request values a controller passes down. */
export const problemContextOf = (request: { requestId: string; path: string }): ProblemContext => ({
  requestId: request.requestId,
  instance: request.path,
});

/** The RFC 9457 body, members in one fixed order (idempotent replays send these exact bytes again). */
export function problemBody(problem: ProblemError, at: ProblemContext): Record<string, unknown> {
  const def = PROBLEMS[problem.code];
  return {
    type: problemType(problem.code),
    title: def.title,
    status: def.status,
    detail: problem.detail,
    instance: at.instance,
    code: problem.code,
    requestId: at.requestId,
    ...problem.extras,
  };
}

/** The headers a problem response carries besides its content type. */
export function problemHeaders(problem: ProblemError): Record<string, string> {
  // RFC 9110 §11.6.1: every 401 names the scheme; a problem may refine it (error="invalid_token").
  if (problem.status !== 401) return problem.headers;
  return { 'WWW-Authenticate': 'Bearer', ...problem.headers };
}

export function writeProblem(
  adapterHost: HttpAdapterHost,
  request: FastifyRequest,
  reply: FastifyReply,
  problem: ProblemError,
): void {
  const adapter = adapterHost.httpAdapter;
  request.problemCode = problem.code;
  for (const [name, value] of Object.entries(problemHeaders(problem)))
    adapter.setHeader(reply, name, value);
  adapter.setHeader(reply, 'Content-Type', `${PROBLEM_CONTENT_TYPE}; charset=utf-8`);
  adapter.reply(
    reply,
    JSON.stringify(problemBody(problem, problemContext(request))),
    problem.status,
  );
}
