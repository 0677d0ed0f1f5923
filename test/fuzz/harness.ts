import fc, { type Arbitrary } from 'fast-check';
import type { Response } from 'supertest';
import { PROBLEM_CODES, PROBLEMS } from '../../src/common/problems/problem-catalogue';
import type { Account } from '../support/http';
import type { TestApp } from '../support/test-app';

/** Who sends a request: one of the fixture accounts, nobody, a special token or a raw header. */
export type Who = 'admin' | 'customer' | 'other' | 'victim';
export const SPECIAL_TOKENS = [
  'expired',
  'ghost',
  'wrongSecret',
  'algNone',
  'tampered',
  'lowercaseScheme',
  'trailingGarbage',
  'basic',
] as const;
export type SpecialToken = (typeof SPECIAL_TOKENS)[number];
export type Auth = Who | 'none' | { token: SpecialToken } | { header: string };

/** One generated request, kept symbolic where that makes a counterexample readable. */
export interface FuzzRequest {
  /** e.g. `PATCH /users/{id}`. */
  endpoint: string;
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** What the path parameter names, e.g. `victim`, or `junk` for a generated id. */
  target?: string;
  /** Path and query as sent. */
  path: string;
  auth: Auth;
  headers: Record<string, string>;
  /** Raw body text (JSON or not); undefined sends none. */
  body?: string;
}

export interface World {
  t: TestApp;
  accounts: Record<Who, Account>;
  /** Authorization header values for the special tokens. */
  tokens: Record<SpecialToken, string>;
}

/**
 * The content a rejected request must leave alone: every table of the schema, as the migrations
 * left it (read once per app, so the check follows renames and new tables).
 */
export type Snapshot = Record<string, string>;
const tableLists = new WeakMap<TestApp, Promise<string[]>>();

function tablesOf(t: TestApp): Promise<string[]> {
  let tables = tableLists.get(t);
  if (!tables) {
    tables = t.db
      .query<{ name: string }[]>(
        `SELECT table_name AS name FROM information_schema.tables
          WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`,
      )
      .then((rows) => rows.map((r) => r.name));
    tableLists.set(t, tables);
  }
  return tables;
}

/** Row count plus a digest of every row of every table, in one round trip. */
export async function snapshot(t: TestApp): Promise<Snapshot> {
  const sql = (await tablesOf(t))
    .map(
      (name) =>
        `SELECT '${name}' AS name, count(*)::int || ':' || md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) AS state FROM "${name}" x`,
    )
    .join(' UNION ALL ');
  const rows: { name: string; state: string }[] = await t.db.query(sql);
  return Object.fromEntries(rows.map((r) => [r.name, r.state]));
}

const rowCount = (state: string): number => Number(state.split(':')[0]);

function authorization(world: World, auth: Auth): string | undefined {
  if (auth === 'none') return undefined;
  if (typeof auth === 'string') return world.accounts[auth].auth.Authorization;
  return 'token' in auth ? world.tokens[auth.token] : auth.header;
}

export async function send(world: World, r: FuzzRequest): Promise<Response> {
  const http = world.t.http();
  let req =
    r.method === 'GET'
      ? http.get(r.path)
      : r.method === 'POST'
        ? http.post(r.path)
        : r.method === 'PATCH'
          ? http.patch(r.path)
          : r.method === 'PUT'
            ? http.put(r.path)
            : http.delete(r.path);
  const header = authorization(world, r.auth);
  if (header !== undefined) req = req.set('Authorization', header);
  for (const [name, value] of Object.entries(r.headers)) req = req.set(name, value);
  return r.body === undefined ? req : req.send(r.body);
}

const clip = (s: string | undefined, n = 600): string =>
  s === undefined ? '(none)' : s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s;

/** The request and response, for a failure message a person can replay with curl. */
export function describeExchange(r: FuzzRequest, res: Response, problems: string[]): string {
  const auth = typeof r.auth === 'string' ? r.auth : JSON.stringify(r.auth);
  return [
    `${r.method} ${r.path}   [${r.endpoint}${r.target ? `, id=${r.target}` : ''}, auth=${clip(auth, 80)}]`,
    `  headers: ${clip(JSON.stringify(r.headers), 300)}`,
    `  body: ${clip(r.body, 300)}`,
    `→ ${res.status} ${res.headers['content-type'] ?? '(no content-type)'}`,
    `  ${clip(res.text)}`,
    ...problems.map((p) => `  ✗ ${p}`),
  ].join('\n');
}

/** The response body as a JSON object, if it is one. */
export function parsed(res: Response): Record<string, unknown> | undefined {
  try {
    const body: unknown = JSON.parse(res.text);
    return body !== null && typeof body === 'object'
      ? (body as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Property 2: a 4xx is a catalogued RFC 9457 problem about this very request. */
export function problemViolations(res: Response): string[] {
  const out: string[] = [];
  const type = String(res.headers['content-type'] ?? '');
  if (!/^application\/problem\+json(;|$)/.test(type)) out.push(`content-type is "${type}"`);
  const body = parsed(res);
  if (!body) return [...out, 'the body is not a JSON object'];
  if (body.status !== res.status) out.push(`status member ${String(body.status)} ≠ ${res.status}`);
  const code = body.code;
  if (typeof code !== 'string' || !(PROBLEM_CODES as string[]).includes(code)) {
    out.push(`code ${JSON.stringify(code)} is not in the catalogue`);
  } else if (PROBLEMS[code as keyof typeof PROBLEMS].status !== res.status) {
    out.push(`code ${code} is catalogued as ${PROBLEMS[code as keyof typeof PROBLEMS].status}`);
  }
  const requestId = res.headers['x-request-id'];
  if (typeof requestId !== 'string' || body.requestId !== requestId) {
    out.push(`requestId ${JSON.stringify(body.requestId)} ≠ X-Request-Id ${String(requestId)}`);
  }
  const path = (res as Response & { req: { path: string } }).req.path.split('?')[0];
  if (body.instance !== path) out.push(`instance ${JSON.stringify(body.instance)} ≠ "${path}"`);
  return out;
}

/**
 * The problem code of a stored idempotent outcome, whichever way the service stores it: an outcome
 * `{kind: "problem", code}`, or the response as sent `{status, body, problemCode}`.
 */
function storedProblemCode(response: unknown): unknown {
  if (response === null || typeof response !== 'object') return undefined;
  const stored = response as {
    kind?: unknown;
    code?: unknown;
    problemCode?: unknown;
    body?: unknown;
  };
  if (stored.kind === 'problem') return stored.code;
  if (stored.problemCode !== undefined) return stored.problemCode;
  try {
    return typeof stored.body === 'string'
      ? (JSON.parse(stored.body) as { code?: unknown } | null)?.code
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Property 3. The one change a rejected request may make is the one API.md §4 asks for: an
 * Idempotency-Key request whose handler ran and ended in a business 4xx stores that outcome.
 */
export async function stateViolations(
  world: World,
  r: FuzzRequest,
  res: Response,
  before: Snapshot,
  after: Snapshot,
): Promise<string[]> {
  const changed = Object.keys(after).filter((name) => before[name] !== after[name]);
  if (!changed.length) return [];
  const key = r.headers['Idempotency-Key']?.replace(/^[ \t]+|[ \t]+$/g, '');
  const storesOutcome =
    (r.endpoint === 'POST /orders' ||
      r.endpoint === 'POST /orders/{id}/payments' ||
      r.endpoint === 'POST /orders/{id}/refunds') &&
    typeof r.auth === 'string' &&
    r.auth !== 'none' &&
    key !== undefined &&
    res.status !== 400;
  if (
    storesOutcome &&
    changed.length === 1 &&
    changed[0] === 'idempotency_keys' &&
    rowCount(after.idempotency_keys) === rowCount(before.idempotency_keys) + 1
  ) {
    const [row] = await world.t.db.query(
      'SELECT response FROM idempotency_keys WHERE user_id = $1 AND key = $2',
      [world.accounts[r.auth as Who].id, key],
    );
    if (storedProblemCode(row?.response) === parsed(res)?.code) return [];
  }
  return [`a rejected request changed ${changed.join(', ')}`];
}

export type Property = 'no 5xx' | 'problem details' | 'no state change';

/** One fast-check property over generated requests; the seed is fixed and printed on failure. */
export async function checkProperty(
  world: World,
  requests: Arbitrary<FuzzRequest>,
  property: Property,
  params: { seed: number; numRuns: number; examples?: FuzzRequest[] },
): Promise<void> {
  let current = property === 'no state change' ? await snapshot(world.t) : undefined;
  const seen = new Map<string, number>();
  try {
    await fc.assert(
      fc.asyncProperty(requests, async (r) => {
        const res = await send(world, r);
        const outcome = `${r.endpoint} → ${res.status} ${JSON.stringify(parsed(res)?.code ?? '')}`;
        seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
        let problems: string[] = [];
        if (property === 'no 5xx' && res.status >= 500) problems = ['a 5xx'];
        if (property === 'problem details' && res.status >= 400 && res.status < 500) {
          problems = problemViolations(res);
        }
        if (current) {
          const after = await snapshot(world.t);
          if (res.status >= 400) problems = await stateViolations(world, r, res, current, after);
          // A success may change state: later requests are compared with the state it left.
          current = after;
        }
        if (problems.length) throw new Error(describeExchange(r, res, problems));
      }),
      {
        seed: params.seed,
        numRuns: params.numRuns,
        examples: (params.examples ?? []).map((r) => [r]),
      },
    );
  } finally {
    // FUZZ_STATS=1 shows what the generators reached: a guide when tuning them.
    if (process.env.FUZZ_STATS) {
      const lines = [...seen].sort(([a], [b]) => a.localeCompare(b)).map(([o, n]) => `${n}\t${o}`);
      process.stdout.write(`\n${property}:\n${lines.join('\n')}\n`);
    }
  }
}
