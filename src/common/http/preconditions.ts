import type { WriteCondition } from '../database/sql';
import { ProblemError } from '../problems/problem.error';
import {
  computeEtag,
  type EtagList,
  etagVersion,
  invalidEtagListReason,
  parseEtagList,
  strongMatch,
  weakMatch,
} from './etag';
import { parseHttpDate, truncateToSecond } from './http-date';

/**
 * Conditional requests (RFC 9110 §13) as plain values: the controller layer parses the headers once
 * (see preconditions.decorator.ts) and services decide with these pure functions, so that a service
 * never reads a request and can be called by a sweeper, a relay or a CLI.
 */
export interface Preconditions {
  /** A malformed If-Match is kept as an empty list: it matches nothing (412), never "no header". */
  ifMatch?: EtagList;
  /** The raw If-Match when it was malformed, so that the 412 can say what is wrong with it. */
  ifMatchInvalid?: string;
  ifNoneMatch?: EtagList;
  /** Only a valid HTTP-date; anything else is ignored (RFC 9110 §13.1.4). */
  ifUnmodifiedSince?: Date;
  ifModifiedSince?: Date;
}

type Headers = Record<string, string | string[] | undefined>;

export function parsePreconditions(headers: Headers): Preconditions {
  const pre: Preconditions = {};
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined) {
    const parsed = parseEtagList(ifMatch);
    pre.ifMatch = parsed ?? [];
    if (!parsed || (parsed !== '*' && !parsed.length))
      pre.ifMatchInvalid = Array.isArray(ifMatch) ? ifMatch.join(', ') : ifMatch;
  }
  if (headers['if-none-match'] !== undefined) {
    pre.ifNoneMatch = parseEtagList(headers['if-none-match']) ?? [];
  }
  const ius = parseHttpDate(headers['if-unmodified-since']);
  if (ius) pre.ifUnmodifiedSince = ius;
  const ims = parseHttpDate(headers['if-modified-since']);
  if (ims) pre.ifModifiedSince = ims;
  return pre;
}

/** What the precondition machinery needs to know about the current state of a resource. */
export interface Versioned<R> {
  version: number;
  etag: string;
  updatedAt: Date;
  /** When the version before this one was made (null for the first version): see ifUnmodifiedSince. */
  previousUpdatedAt: Date | null;
  /** The representation as this caller would GET it: sent back on 409/412 so clients can merge. */
  representation: R;
  /** The ETag this caller was given for another version: tells a stale If-Match from a foreign one. */
  etagOf?: (version: number) => string;
  /**
   * A view a standby computed (an overdue order shown expired) rather than a stored version: a
   * conditional read of it is answered by the primary (API.md §12).
   */
  computed?: boolean;
}

/**
 * A versioned row as the precondition machinery and the ETag see it. `variant` names what else the
 * representation depends on (the caller's capacities, for an order).
 */
export function versioned<R>(
  kind: string,
  row: { id: string; version: number; updatedAt: Date; previousUpdatedAt: Date | null },
  representation: R,
  variant = '',
): Versioned<R> {
  return {
    version: row.version,
    etag: computeEtag(kind, row.id, row.version, variant),
    updatedAt: row.updatedAt,
    previousUpdatedAt: row.previousUpdatedAt,
    representation,
    etagOf: (version) => computeEtag(kind, row.id, version, variant),
  };
}

export interface WriteCheck {
  /** e.g. "product 1b0e…", used in problem details. */
  resourceName: string;
  /** The body's `version`, where the operation accepts one. */
  bodyVersion?: number;
  /** False where the body has no `version` (DELETE, PUT): the 428 then names only the headers. */
  acceptsBodyVersion?: boolean;
  /** True for PATCH/DELETE/PUT (none → 428); false for transitions, where a precondition is optional. */
  required?: boolean;
}

/**
 * Decides a write's preconditions against the current state (RFC 9110 §13.2.2): If-Match, else
 * If-Unmodified-Since; then If-None-Match (a match, `*` included, is 412); then the body's `version`
 * (stale → 409). With none that names a version: 428 when required, else no condition (undefined).
 */
export function decideWrite<R>(
  pre: Preconditions,
  current: Versioned<R>,
  check: WriteCheck,
): WriteCondition | undefined {
  const { resourceName, bodyVersion, acceptsBodyVersion = true, required = true } = check;
  let condition: WriteCondition | undefined;
  if (pre.ifMatch !== undefined) {
    if (pre.ifMatch === '*') condition = { kind: 'any' };
    else if (strongMatch(pre.ifMatch, current.etag)) {
      condition = { kind: 'version', version: current.version, via: 'if-match' };
    } else throw ifMatchFailed(pre, current, resourceName);
  } else if (pre.ifUnmodifiedSince !== undefined) {
    condition = unmodifiedSince(pre.ifUnmodifiedSince, current, resourceName);
  }
  if (pre.ifNoneMatch !== undefined && weakMatch(pre.ifNoneMatch, current.etag)) {
    throw preconditionFailed(
      current,
      resourceName,
      `If-None-Match matches the current ${pre.ifNoneMatch === '*' ? 'resource (`*`)' : 'ETag'}`,
    );
  }
  if (condition) return condition;
  if (bodyVersion !== undefined && acceptsBodyVersion) {
    if (bodyVersion !== current.version) throw versionMismatch(bodyVersion, current, resourceName);
    return { kind: 'version', version: bodyVersion, via: 'body' };
  }
  if (!required) return undefined;
  throw new ProblemError(
    'PRECONDITION_REQUIRED',
    `Modifying ${resourceName} requires a precondition so that concurrent edits are not lost. GET it, then resend with \`If-Match: ${current.etag}\` (its ETag)${acceptsBodyVersion ? ` or \`"version": ${current.version}\` in the body` : ''}.`,
  );
}

/**
 * If-Unmodified-Since has one-second resolution, versions do not. The write goes through only when
 * the date proves the client saw the current version: the resource has not changed after that second,
 * and the current version is the only one made within it. When an earlier version also falls in
 * that second, a client holding the date may hold that older version: 412, and use If-Match.
 */
function unmodifiedSince<R>(
  since: Date,
  current: Versioned<R>,
  resourceName: string,
): WriteCondition {
  const changed = truncateToSecond(current.updatedAt);
  if (changed > since.getTime()) throw preconditionFailed(current, resourceName);
  const previous = current.previousUpdatedAt;
  if (changed === since.getTime() && previous && truncateToSecond(previous) === changed) {
    throw preconditionFailed(
      current,
      resourceName,
      'It changed more than once within the second If-Unmodified-Since names, so that date cannot tell which version you hold; use If-Match',
    );
  }
  return { kind: 'version', version: current.version, via: 'if-unmodified-since' };
}

/** GET: is the client's copy current (If-None-Match, else If-Modified-Since)? Then 304. */
export function isFresh<R>(pre: Preconditions, current: Versioned<R>): boolean {
  if (pre.ifNoneMatch !== undefined) return weakMatch(pre.ifNoneMatch, current.etag);
  return (
    pre.ifModifiedSince !== undefined &&
    truncateToSecond(current.updatedAt) <= pre.ifModifiedSince.getTime()
  );
}

/**
 * The guarded write found another version: someone changed the resource between our read and our
 * write. Answer as the client asked (412 for headers, 409 for a body version) with the fresh state.
 */
export function staleWrite<R>(
  condition: WriteCondition | undefined,
  current: Versioned<R>,
  resourceName: string,
): ProblemError {
  return condition?.kind === 'version' && condition.via === 'body'
    ? versionMismatch(condition.version, current, resourceName)
    : preconditionFailed(current, resourceName);
}

export function preconditionFailed<R>(
  current: Versioned<R>,
  resourceName: string,
  reason = `It has changed since you read it (now version ${current.version})`,
  advice = `Merge into \`current\` and resend with \`If-Match: ${current.etag}\`.`,
): ProblemError {
  return new ProblemError(
    'PRECONDITION_FAILED',
    `${capitalize(resourceName)}: ${reason}; nothing was changed. ${advice}`,
    { currentVersion: current.version, currentEtag: current.etag, current: current.representation },
  );
}

/** How the header is quoted back in a detail: bounded, and unable to close the code span. */
function quoted(raw: string): string {
  const clean = raw.replace(/`/g, "'");
  return clean.length > 80 ? `${clean.slice(0, 80)}…` : clean;
}

/**
 * An If-Match that matched nothing, told apart as a client needs it (always 412 with `current`):
 * a header that is not a valid entity-tag list, a weak tag (never matches If-Match), a tag of an
 * earlier version of this resource (someone changed it since: merge), or a well-formed tag this
 * service never issued for this resource as this caller reads it (another resource's, a version it
 * has not reached, or made up).
 */
function ifMatchFailed<R>(
  pre: Preconditions,
  current: Versioned<R>,
  resourceName: string,
): ProblemError {
  const resend = `Send an ETag exactly as this service sent it, quotes included: \`If-Match: ${current.etag}\` is the ETag of \`current\`.`;
  if (pre.ifMatchInvalid !== undefined) {
    return preconditionFailed(
      current,
      resourceName,
      `\`If-Match: ${quoted(pre.ifMatchInvalid)}\` is not a valid entity-tag: ${invalidEtagListReason(pre.ifMatchInvalid)}`,
      resend,
    );
  }
  const tags = pre.ifMatch === '*' || pre.ifMatch === undefined ? [] : pre.ifMatch;
  const etagOf = current.etagOf;
  if (!etagOf) return preconditionFailed(current, resourceName);
  // The newest earlier version among the tags that this service really gave this caller.
  let held: number | undefined;
  for (const { weak, tag } of tags) {
    const v = weak ? undefined : etagVersion(tag);
    if (
      v !== undefined &&
      v < current.version &&
      etagOf(v) === tag &&
      (held === undefined || v > held)
    ) {
      held = v;
    }
  }
  if (held !== undefined) {
    return preconditionFailed(
      current,
      resourceName,
      `It has changed since you read it (you hold version ${held}, now version ${current.version})`,
    );
  }
  if (tags.length && tags.every((t) => t.weak)) {
    return preconditionFailed(
      current,
      resourceName,
      'A weak ETag (`W/"…"`) never matches `If-Match`, which compares strongly',
      resend,
    );
  }
  const named = tags.map((t) => etagVersion(t.tag)).find((v) => v !== undefined);
  const sent = tags.map((t) => t.tag).join(', ');
  return preconditionFailed(
    current,
    resourceName,
    named !== undefined && named > current.version
      ? `\`If-Match: ${quoted(sent)}\` is not an ETag this service issued: it names version ${named}, and ${resourceName} is at version ${current.version}`
      : `\`If-Match: ${quoted(sent)}\` is not an ETag this service issued for ${resourceName} as you read it (another resource's, or made up)`,
    resend,
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

export interface GuardedMutation<E, R> extends WriteCheck {
  preconditions: Preconditions;
  /** Loads the current row; null means 404. */
  load: () => Promise<E | null>;
  describe: (row: E) => Versioned<R>;
  /**
   * The guarded write (see updateIfVersion); undefined/false when no row matched the condition.
   * Expensive preparation (hashing a password) belongs here: it runs only once the checks passed.
   */
  write: (condition: WriteCondition, current: E) => Promise<E | boolean | undefined>;
  notFound: () => Error;
}

/**
 * The whole optimistic-concurrency flow for PATCH, PUT and DELETE, shared by every versioned
 * resource: 404 before preconditions, 428/412/409 from the headers or body, then one guarded write;
 * when the write finds another version (a concurrent writer won between our read and our write), the
 * fresh state comes back in the 412/409 body.
 */
export async function guardedMutation<E, R>(m: GuardedMutation<E, R>): Promise<E | true> {
  const current = await m.load();
  if (!current) throw m.notFound();
  const condition = decideWrite(m.preconditions, m.describe(current), m)!;
  const written = await m.write(condition, current);
  if (written === true || (written !== false && written !== undefined)) return written;
  const fresh = await m.load();
  if (!fresh) throw m.notFound();
  throw staleWrite(condition, m.describe(fresh), m.resourceName);
}
