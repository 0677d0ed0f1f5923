import type { Response } from 'supertest';
import { type BadValue, badValues, type FieldSpec, toJson } from './arbitraries';
import {
  type FuzzRequest,
  parsed,
  problemViolations,
  send,
  type Snapshot,
  snapshot,
  stateViolations,
  type Who,
} from './harness';
import type { FuzzWorld } from './world';

/**
 * One bad field at a time, on an otherwise valid body: for every field of every JSON body (nested
 * ones included, as `items[0].quantity`), every value of its bad-value catalogue (arbitraries.ts:
 * null, each other JSON type, left out, edges, malformed values), deterministically.
 *
 * Each case must: never be a 5xx; answer a 4xx as a problem+json about this request; change
 * nothing when refused; and, when the catalogue says the value must be refused (null, a wrong type,
 * out of range…), answer 400 VALIDATION_FAILED whose `errors[]` names that field and no other.
 */

/** An endpoint that takes a JSON body, with what a valid request to it needs. */
export interface BodyEndpoint {
  /** e.g. `PATCH /products/{id}`. */
  endpoint: string;
  method: 'POST' | 'PATCH' | 'PUT';
  path: string;
  /** The fixture the path names, for the output. */
  target?: string;
  /** Callers allowed to make the request; cases take turns. */
  callers: (Who | 'none')[];
  fields: Record<string, FieldSpec>;
  /**
   * PATCH (and a PUT that takes a precondition, the stock-take): every field is optional; the body
   * is the bad field plus `companion`, and a precondition
   * read fresh from `resource` (If-Match or `version`) or none, so that validation is reached with
   * the preconditions right as well as wrong.
   */
  patch?: { resource: string; companion: () => Record<string, unknown> };
  /** Half of the cases carry an Idempotency-Key: a refused body must not store an outcome (§4). */
  idempotent?: boolean;
}

export type Precondition = 'If-Match' | 'version' | 'none';
const PRECONDITIONS: Precondition[] = ['If-Match', 'version', 'none'];

type Path = (string | number)[];

export interface FieldCase {
  endpoint: BodyEndpoint;
  /** The field as the API names it in `errors[]`, e.g. `items[0].quantity`. */
  field: string;
  path: Path;
  bad: BadValue;
  caller: Who | 'none';
  precondition?: Precondition;
  idempotencyKey?: string;
}

export const fieldName = (path: Path): string =>
  path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i ? `.${p}` : p)).join('');

/** Every field, nested ones included (at index 0 of their array), with whether it may be left out. */
function* walk(
  fields: Record<string, FieldSpec>,
  prefix: Path,
  partial: boolean,
): Generator<{ path: Path; spec: FieldSpec; optional: boolean }> {
  for (const [name, spec] of Object.entries(fields)) {
    const path = [...prefix, name];
    yield { path, spec, optional: partial || spec.optional === true };
    if (spec.element) yield* walk(spec.element, [...path, 0], false);
  }
}

let keys = 0;

/**
 * The cases of one endpoint: every field × every bad value. Callers take turns;
 * PATCH cases take turns over If-Match / `version` / no precondition, and `null` is sent with each.
 * A nested field's `null` is also sent in the second element, behind a valid first one.
 */
export function fieldCases(ep: BodyEndpoint): FieldCase[] {
  const cases: FieldCase[] = [];
  let turn = 0;
  for (const { path, spec, optional } of walk(ep.fields, [], ep.patch !== undefined)) {
    const field = fieldName(path);
    const push = (bad: BadValue, at: Path, precondition?: Precondition): void => {
      const i = turn++;
      cases.push({
        endpoint: ep,
        field: fieldName(at),
        path: at,
        bad,
        caller: ep.callers[i % ep.callers.length],
        ...(precondition ? { precondition } : {}),
        ...(ep.idempotent && i % 2 === 0 ? { idempotencyKey: `field-fuzz-${++keys}` } : {}),
      });
    };
    for (const bad of badValues(spec, { optional })) {
      if (!ep.patch) push(bad, path);
      else {
        // `version` is the bad field itself: its precondition can only be If-Match or none.
        const usable = PRECONDITIONS.filter((p) => !(p === 'version' && field === 'version'));
        if (bad.kind === 'null') for (const p of usable) push(bad, path, p);
        else push(bad, path, usable[turn % usable.length]);
      }
      const second = path.map((p) => (p === 0 ? 1 : p));
      if (bad.kind === 'null' && path.includes(0)) push(bad, second);
    }
  }
  return cases;
}

/** A copy of `body` with the value at `path` replaced (undefined: removed); arrays grow as needed. */
function setAt(body: Record<string, unknown>, path: Path, value: unknown): Record<string, unknown> {
  const root = structuredClone(body);
  let node: unknown = root;
  path.forEach((key, i) => {
    const last = i === path.length - 1;
    if (Array.isArray(node) && typeof key === 'number') {
      while (node.length <= key) node.push(structuredClone(node[0]));
      if (last) node[key] = value;
      else node = node[key];
    } else if (node !== null && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      if (last) {
        if (value === undefined) delete record[key];
        else record[key] = value;
      } else node = record[key];
    }
  });
  return root;
}

/** `name` is `field` or inside it. */
const within = (name: string, field: string): boolean =>
  name === field || name.startsWith(`${field}.`) || name.startsWith(`${field}[`);

/** What a refused value must get: 400 VALIDATION_FAILED naming the field, and only it. */
function refusalViolations(c: FieldCase, res: Response): string[] {
  const body = parsed(res);
  const expected = `expected 400 VALIDATION_FAILED naming ${c.field}`;
  if (res.status < 400) return [`accepted with ${res.status}: ${expected}`];
  // Documented earlier 4xx: with no precondition at all, telling the client to add one first is
  // acceptable (the app currently validates first).
  if (c.precondition === 'none' && res.status === 428) return [];
  if (res.status !== 400 || body?.code !== 'VALIDATION_FAILED') {
    return [`${expected}, got ${res.status} ${JSON.stringify(body?.code ?? null)}`];
  }
  const errors = Array.isArray(body.errors) ? (body.errors as unknown[]) : [];
  const named = errors.map((e) => {
    const name = e !== null && typeof e === 'object' ? (e as { field?: unknown }).field : e;
    return typeof name === 'string' ? name : JSON.stringify(name);
  });
  if (!named.some((n) => within(n, c.field))) {
    return [`errors[] does not name ${c.field}: it names ${JSON.stringify(named)}`];
  }
  // The rest of the body is valid: nothing else may be blamed (a parent, e.g. `items`, may be).
  const others = named.filter((n) => !within(n, c.field) && !within(c.field, n));
  return others.length ? [`errors[] also names ${others.join(', ')}, which were valid`] : [];
}

export interface CaseOutcome {
  request: FuzzRequest;
  res: Response;
  problems: string[];
  /** The database after the case: the next case's `before`. */
  after: Snapshot;
}

/** Sends one case and checks it; `before` is the database state before it. */
export async function runFieldCase(
  world: FuzzWorld,
  c: FieldCase,
  before: Snapshot,
): Promise<CaseOutcome> {
  const ep = c.endpoint;
  let body: Record<string, unknown> = ep.patch
    ? ep.patch.companion()
    : Object.fromEntries(Object.entries(ep.fields).map(([name, spec]) => [name, spec.example()]));
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (ep.patch && c.precondition && c.precondition !== 'none') {
    const current = await world.t.http().get(ep.patch.resource).set(world.accounts.admin.auth);
    if (current.status !== 200) throw new Error(`GET ${ep.patch.resource} → ${current.status}`);
    if (c.precondition === 'If-Match') headers['If-Match'] = String(current.headers.etag);
    else body.version = (current.body as { version: number }).version;
  }
  if (c.idempotencyKey) headers['Idempotency-Key'] = c.idempotencyKey;
  body = setAt(body, c.path, c.bad.value);
  const request: FuzzRequest = {
    endpoint: ep.endpoint,
    method: ep.method,
    ...(ep.target ? { target: ep.target } : {}),
    path: ep.path,
    auth: c.caller,
    headers,
    body: toJson(body),
  };
  const res = await send(world, request);
  const after = await snapshot(world.t);
  const problems: string[] = [];
  if (res.status >= 500) problems.push(`a ${res.status}`);
  if (res.status >= 400) problems.push(...problemViolations(res));
  if (c.bad.expect === 'refuse') problems.push(...refusalViolations(c, res));
  if (res.status >= 400)
    problems.push(...(await stateViolations(world, request, res, before, after)));
  return { request, res, problems, after };
}

/** One line per case: endpoint, field, bad kind and value, how it was sent. */
export function describeCase(c: FieldCase): string {
  const how = [c.precondition && `precondition: ${c.precondition}`, `caller: ${c.caller}`];
  if (c.idempotencyKey) how.push('Idempotency-Key');
  const value = c.bad.label === c.bad.kind ? c.bad.kind : `${c.bad.kind}: ${c.bad.label}`;
  return `${c.endpoint.endpoint} · ${c.field} ← ${value} [${how.filter(Boolean).join(', ')}]`;
}

/** The line of a case: what was sent, what came back, what is wrong with it (if anything). */
export function describeOutcome(c: FieldCase, o: CaseOutcome): string {
  const code = parsed(o.res)?.code;
  const named = typeof code === 'string' ? ` ${code}` : '';
  const verdict = o.problems.length ? `: ${o.problems.join('; ')}` : '';
  return `${describeCase(c)} → ${o.res.status}${named}${verdict}`;
}
