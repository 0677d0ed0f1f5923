import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProblemError } from '../problems/problem.error';
import {
  parseEtagList,
  parseHttpDate,
  strongMatch,
  toHttpDate,
  truncateToSecond,
  weakMatch,
} from './etag';

/** What the precondition machinery needs to know about the current state of a resource. */
export interface Versioned<R> {
  version: number;
  etag: string;
  updatedAt: Date;
  /** The representation as this caller would GET it: sent back on 409/412 so clients can merge. */
  representation: R;
}

/** The version a conditional write must find, and how the client stated it. */
export type WriteCondition =
  | { kind: 'any' }
  | { kind: 'version'; version: number; via: 'if-match' | 'if-unmodified-since' | 'body' };

/**
 * Decides a mutation's precondition against the current state (API.md §3, RFC 9110 §13.2.2):
 * If-Match first, then If-Unmodified-Since, then the body's `version`; none of them is 428.
 * Throws 412 / 409 / 428 as ProblemErrors; otherwise returns the condition for the guarded write.
 */
export function requireWriteCondition<R>(
  request: FastifyRequest,
  bodyVersion: number | undefined,
  current: Versioned<R>,
  resourceName: string,
  acceptsBodyVersion = true,
): WriteCondition {
  const ifMatch = request.headers['if-match'];
  if (ifMatch !== undefined) {
    const list = parseEtagList(ifMatch);
    if (list === '*') return { kind: 'any' };
    if (list && strongMatch(list, current.etag)) {
      return { kind: 'version', version: current.version, via: 'if-match' };
    }
    throw preconditionFailed(current, resourceName);
  }
  const since = parseHttpDate(request.headers['if-unmodified-since']);
  if (since) {
    if (truncateToSecond(current.updatedAt) > since.getTime()) {
      throw preconditionFailed(current, resourceName);
    }
    return { kind: 'version', version: current.version, via: 'if-unmodified-since' };
  }
  if (bodyVersion !== undefined) {
    if (bodyVersion !== current.version) throw versionMismatch(bodyVersion, current, resourceName);
    return { kind: 'version', version: bodyVersion, via: 'body' };
  }
  throw new ProblemError(
    'PRECONDITION_REQUIRED',
    `Modifying ${resourceName} requires a precondition so that concurrent edits are not lost. GET it, then resend with \`If-Match: ${current.etag}\` (its ETag)${acceptsBodyVersion ? ` or \`"version": ${current.version}\` in the body` : ''}.`,
  );
}

/**
 * The guarded write found another version: someone changed the resource between our read and our
 * write. Answer as the client asked (412 for headers, 409 for a body version) with the fresh state.
 */
export function staleWrite<R>(
  condition: WriteCondition,
  current: Versioned<R>,
  resourceName: string,
): ProblemError {
  return condition.kind === 'version' && condition.via === 'body'
    ? versionMismatch(condition.version, current, resourceName)
    : preconditionFailed(current, resourceName);
}

function preconditionFailed<R>(current: Versioned<R>, resourceName: string): ProblemError {
  return new ProblemError(
    'PRECONDITION_FAILED',
    `${capitalize(resourceName)} has changed since you read it (now version ${current.version}); nothing was changed. Merge into \`current\` and resend with \`If-Match: ${current.etag}\`.`,
    { currentVersion: current.version, currentEtag: current.etag, current: current.representation },
  );
}

function versionMismatch<R>(
  requested: number,
  current: Versioned<R>,
  resourceName: string,
): ProblemError {
  return new ProblemError(
    'VERSION_MISMATCH',
    `You sent version ${requested} of ${resourceName}, but it is now at version ${current.version}; nothing was changed. Merge into \`current\` and resend with \`"version": ${current.version}\`.`,
    {
      requestedVersion: requested,
      currentVersion: current.version,
      currentEtag: current.etag,
      current: current.representation,
    },
  );
}

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** Sets the validators of a single-resource response. */
export function setValidators(
  reply: FastifyReply,
  current: { etag: string; updatedAt: Date },
): void {
  void reply.header('ETag', current.etag);
  void reply.header('Last-Modified', toHttpDate(current.updatedAt));
}

/**
 * Answers a single-resource GET conditionally (RFC 9110 §13.1.2): sets the validators, and with a
 * matching If-None-Match (weak comparison) or an If-Modified-Since not older than the resource,
 * answers 304 with no body (returns undefined); otherwise returns the representation.
 */
export function conditionalGet<R>(
  request: FastifyRequest,
  reply: FastifyReply,
  current: Versioned<R>,
): R | undefined {
  setValidators(reply, current);
  const list = parseEtagList(request.headers['if-none-match']);
  const since = parseHttpDate(request.headers['if-modified-since']);
  const fresh =
    list !== undefined
      ? weakMatch(list, current.etag)
      : since !== undefined && truncateToSecond(current.updatedAt) <= since.getTime();
  if (!fresh) return current.representation;
  void reply.status(304);
  return undefined;
}

export interface GuardedMutation<E, R> {
  request: FastifyRequest;
  /** The `version` member of the body, if the client sent one. */
  bodyVersion?: number;
  /** False for DELETE, which has no body: the 428 then names only the headers. */
  acceptsBodyVersion?: boolean;
  /** e.g. "product 1b0e…", used in problem details. */
  resourceName: string;
  /** Loads the current row; null means 404. */
  load: () => Promise<E | null>;
  describe: (row: E) => Versioned<R>;
  /** The guarded write (see updateIfVersion); undefined/false when no row matched the condition. */
  write: (condition: WriteCondition, current: E) => Promise<E | boolean | undefined>;
  notFound: () => Error;
}

/**
 * The whole optimistic-concurrency flow for PATCH and DELETE, shared by every versioned resource:
 * 404 before preconditions, 428/412/409 from the headers or body, then one guarded write; when the
 * write finds another version (a concurrent writer won between our read and our write), the fresh
 * state comes back in the 412/409 body.
 */
export async function guardedMutation<E, R>(m: GuardedMutation<E, R>): Promise<E | true> {
  const current = await m.load();
  if (!current) throw m.notFound();
  const condition = requireWriteCondition(
    m.request,
    m.bodyVersion,
    m.describe(current),
    m.resourceName,
  );
  const written = await m.write(condition, current);
  if (written === true || (written !== false && written !== undefined)) return written;
  const fresh = await m.load();
  if (!fresh) throw m.notFound();
  throw staleWrite(condition, m.describe(fresh), m.resourceName);
}
