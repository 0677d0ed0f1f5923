import fc, { type Arbitrary } from 'fast-check';

/**
 * Generic generators for hostile HTTP input: JSON junk, near-miss values, mutated valid bodies,
 * header values and path ids. Nothing here knows the API; endpoints.ts combines them per endpoint.
 */

// ---------------------------------------------------------------------------------------------
// Raw JSON tokens. JSON.stringify cannot write `1e999` or `-0`; a placeholder string carries the
// token through JSON.stringify and `toJson` splices it in afterwards.

const RAW = /"@@raw\((.*?)\)@@"/g;
const raw = (token: string): string => `@@raw(${token})@@`;

/** Serialises a generated value, splicing raw number tokens in. */
export function toJson(value: unknown): string | undefined {
  const text = JSON.stringify(value);
  return text === undefined ? undefined : text.replace(RAW, '$1');
}

/** Numbers a validator may mishandle: edges of int4/int8/float64, overflow, underflow, -0. */
export const nastyNumber: Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    0,
    1,
    -1,
    0.5,
    -0.5,
    1.0000001,
    999,
    1000,
    1001,
    100_000,
    999_999_999,
    1_000_000_000,
    1_000_000_001,
    2_147_483_647,
    2_147_483_648,
    -2_147_483_649,
    Number.MAX_SAFE_INTEGER,
    -Number.MAX_SAFE_INTEGER,
    1e20,
    -1e20,
    1e308,
    Number.MIN_VALUE,
  ),
  fc
    .constantFrom(
      '-0',
      '1e999',
      '-1e999',
      '1e-400',
      '9007199254740993',
      '1.0',
      '1E3',
      '12345678901234567890123456789',
    )
    .map(raw),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** Strings that look like numbers, booleans or nothing: type confusion. */
const confusingString = fc.constantFrom(
  'NaN',
  'Infinity',
  '-Infinity',
  '1',
  '0x10',
  '1e3',
  ' 5 ',
  'true',
  'false',
  'null',
  'undefined',
  '[]',
  '{}',
);

/** Long, unicode, NUL-bearing and injection-looking strings. */
export const nastyString: Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  confusingString,
  fc.constantFrom(
    '',
    ' ',
    '\t\n',
    '\u0000',
    'a\u0000b',
    '\uFEFFbom',
    '\u202Eevil',
    'İstanbul',
    'Straße',
    '🙂🙂🙂',
    "' OR '1'='1",
    'x"; DROP TABLE users; --',
    '%_\\',
    '<script>alert(1)</script>',
    '../../etc/passwd',
    '\ud800',
  ),
  fc
    .record({
      s: fc.constantFrom('x', 'é', '🙂', '\u0000', ' '),
      n: fc.constantFrom(199, 200, 201, 254, 255, 5001, 20_000),
    })
    .map(({ s, n }) => s.repeat(n)),
);

/** Any JSON-ish value: leaves of every type plus nested junk. */
export const junkValue: Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: nastyString },
  { weight: 3, arbitrary: nastyNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.array(fc.oneof(nastyString, nastyNumber), { maxLength: 3 }) },
);

/** Field names a mass-assignment bug would honour. */
const evilKey = fc.oneof(
  fc.constantFrom(
    'id',
    'role',
    'version',
    'passwordHash',
    'password_hash',
    'userId',
    'status',
    'createdAt',
    'totalCents',
    'isAdmin',
    'stock',
    'constructor',
    '__proto__',
    'toString',
    '',
  ),
  fc.string({ maxLength: 12 }),
);

// ---------------------------------------------------------------------------------------------
// Bodies.

/** The JSON type a field takes; `integer` is a JSON number without a fraction. */
export type JsonType = 'string' | 'integer' | 'boolean' | 'array' | 'object';

/**
 * One field of a JSON body: generators for the random runs (`valid`, `nearMiss`) and what the field
 * accepts, from which `badValues` derives every value it must refuse (the one-bad-field cases).
 * The limits restate the API's DTOs; a value outside them must be refused with 400 naming the field.
 */
export interface FieldSpec {
  valid: Arbitrary<unknown>;
  /** Plausible but wrong: off-by-one, wrong case, wrong format. */
  nearMiss?: Arbitrary<unknown>;
  type: JsonType;
  /** A valid value, new on every call (unique where the API wants it unique). */
  example: () => unknown;
  /** May be left out of a create body (every field of a PATCH body may be). */
  optional?: boolean;
  /** The representation allows `null` here (API.md §3): null may be accepted (a limit cleared). */
  nullable?: boolean;
  /** Integers: the accepted range, and values refused inside it (a stock delta of 0). */
  min?: number;
  max?: number;
  not?: number[];
  /** Strings: the accepted length, after trimming when `trim`. */
  minLength?: number;
  maxLength?: number;
  trim?: boolean;
  /** Strings: a test every accepted value passes (a necessary condition, not always sufficient). */
  mustMatch?: RegExp;
  /** Values of the right type that are refused all the same (a bad email, an unknown role). */
  malformed?: unknown[];
  /** Arrays: the accepted number of elements, and the fields of each element. */
  minItems?: number;
  maxItems?: number;
  element?: Record<string, FieldSpec>;
}

/**
 * What a careless or hostile client puts in a field: `null`, another JSON type, nothing at all (a
 * required field left out), an edge value (out of range, non-integer, overflowing, empty, long,
 * NUL, unicode), or a malformed value of the right type.
 */
export type BadKind = 'null' | 'wrong type' | 'missing' | 'edge' | 'malformed';

export interface BadValue {
  kind: BadKind;
  /** The value as a person reads it in test output, e.g. `2^53+1` or `"x"×201`. */
  label: string;
  /** The JSON value to send (raw number tokens are spliced in by toJson); undefined: left out. */
  value: unknown;
  /**
   * `refuse`: the API must answer 400 VALIDATION_FAILED naming the field. `survive`: the value may
   * be acceptable (a unicode name, a zero stock): any answer but a 5xx, and state kept on a 4xx.
   */
  expect: 'refuse' | 'survive';
}

/** What the server's JSON parser makes of a value: raw tokens parsed (`1e999` is Infinity). */
function parsedValue(value: unknown): unknown {
  const token = typeof value === 'string' ? /^@@raw\((.*)\)@@$/.exec(value) : null;
  return token ? JSON.parse(token[1]) : value;
}

const isObject = (v: unknown): boolean => v !== null && typeof v === 'object' && !Array.isArray(v);

/** True when the field's limits say the API must refuse this (parsed) value. */
export function mustRefuse(spec: FieldSpec, v: unknown): boolean {
  if (v === undefined) return !spec.optional;
  // No field of this API takes null unless its representation allows null (API.md §3).
  if (v === null) return !spec.nullable;
  if (spec.malformed?.some((m) => Object.is(m, v))) return true;
  switch (spec.type) {
    case 'integer':
      return (
        typeof v !== 'number' ||
        !Number.isInteger(v) ||
        v < (spec.min ?? -Infinity) ||
        v > (spec.max ?? Infinity) ||
        (spec.not ?? []).includes(v)
      );
    case 'string': {
      if (typeof v !== 'string') return true;
      const t = spec.trim ? v.trim() : v;
      return (
        t.length < (spec.minLength ?? 0) ||
        t.length > (spec.maxLength ?? Infinity) ||
        (spec.mustMatch !== undefined && !spec.mustMatch.test(t))
      );
    }
    case 'boolean':
      return typeof v !== 'boolean';
    case 'object':
      return !isObject(v);
    case 'array':
      return (
        !Array.isArray(v) ||
        v.length < (spec.minItems ?? 0) ||
        v.length > (spec.maxItems ?? Infinity) ||
        (spec.element !== undefined && !v.every(isObject))
      );
  }
}

/** A short rendering of a value for test output: long strings and arrays are summarised. */
export function preview(value: unknown): string {
  if (value === undefined) return '(left out)';
  if (typeof value === 'string') {
    const token = /^@@raw\((.*)\)@@$/.exec(value);
    if (token) return token[1];
    const run = /^(.)\1{39,}$/su.exec(value);
    if (run) return `${JSON.stringify(run[1])}×${value.length}`;
  }
  if (Array.isArray(value) && value.length > 3) return `[${value.length} elements]`;
  const text = toJson(value) ?? typeof value;
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/** One value of each other JSON type, made from a valid value so that a lax coercion would pass. */
const WRONG_TYPES: Record<
  'string' | 'number' | 'boolean' | 'array' | 'object',
  (ok: unknown) => unknown
> = {
  string: (ok) => (typeof ok === 'string' ? ok : JSON.stringify(ok)),
  number: () => 12_345_678,
  boolean: () => true,
  array: (ok) => [ok],
  object: (ok) => ({ value: ok }),
};

/** Numbers at the edges: sign, zero, fractions, int4/float64 limits, overflow, and number-ish strings. */
const INTEGER_EDGES: [string, unknown][] = [
  ['-1', -1],
  ['0', 0],
  ['-0', raw('-0')],
  ['1.5', 1.5],
  ['2^31 (int4 overflow)', 2_147_483_648],
  ['2^53+1', raw('9007199254740993')],
  ['1e308', 1e308],
  ['1e999 (Infinity)', raw('1e999')],
  ['1E3', raw('1E3')],
  ['"NaN"', 'NaN'],
  ['"Infinity"', 'Infinity'],
  ['"" (empty string)', ''],
];

const STRING_EDGES: [string, unknown][] = [
  ['"" (empty)', ''],
  ['"   " (blank)', '   '],
  ['"x"×20000 (very long)', 'x'.repeat(20_000)],
  ['"a\\u0000b" (NUL)', 'a\u0000b'],
  ['unicode "İstanbul Straße 🙂 \\u202E"', 'İstanbul Straße 🙂 \u202Eevil'],
  ['"\\ud800" (lone surrogate)', '\ud800'],
  ['"NaN"', 'NaN'],
  ["\"' OR '1'='1\"", "' OR '1'='1"],
];

/**
 * Every value the field must be tried with, each with what the API must do with it: null, one value
 * of each other JSON type, left out (when required), the edges of its type and its malformed values.
 */
export function badValues(spec: FieldSpec, { optional = false } = {}): BadValue[] {
  const out: BadValue[] = [];
  const add = (kind: BadKind, label: string, value: unknown): void => {
    const refuse = mustRefuse({ ...spec, optional: optional || spec.optional }, parsedValue(value));
    out.push({ kind, label, value, expect: refuse ? 'refuse' : 'survive' });
  };
  add('null', 'null', null);
  const own = spec.type === 'integer' ? 'number' : spec.type;
  for (const [type, make] of Object.entries(WRONG_TYPES)) {
    if (type === own) continue;
    const value = make(spec.example());
    add('wrong type', `${type} ${preview(value)}`, value);
  }
  if (!optional && !spec.optional) add('missing', '(left out)', undefined);
  const edges: [string, unknown][] = [];
  if (spec.type === 'integer') {
    edges.push(...INTEGER_EDGES);
    // min − 1 is often -1 or 0, already there.
    if (spec.min !== undefined && spec.min - 1 !== -1 && spec.min - 1 !== 0) {
      edges.push([`${spec.min - 1} (min − 1)`, spec.min - 1]);
    }
    if (spec.max !== undefined) edges.push([`${spec.max + 1} (max + 1)`, spec.max + 1]);
  } else if (spec.type === 'string') {
    edges.push(...STRING_EDGES);
    if (spec.minLength !== undefined && spec.minLength > 1) {
      edges.push([`"x"×${spec.minLength - 1} (too short)`, 'x'.repeat(spec.minLength - 1)]);
    }
    if (spec.maxLength !== undefined) {
      edges.push([`"x"×${spec.maxLength + 1} (too long)`, 'x'.repeat(spec.maxLength + 1)]);
    }
  } else if (spec.type === 'boolean') {
    edges.push(['0', 0], ['"false"', 'false'], ['"" (empty string)', '']);
  } else if (spec.type === 'array') {
    const ok = spec.example();
    const first: unknown = Array.isArray(ok) ? ok[0] : ok;
    edges.push(
      ['[] (empty)', []],
      ['[null]', [null]],
      ['[1]', [1]],
      ['["x"]', ['x']],
      ['[[…]] (nested)', [ok]],
    );
    if (spec.maxItems !== undefined) {
      edges.push([
        `${spec.maxItems + 1} elements (max + 1)`,
        Array.from({ length: spec.maxItems + 1 }, () => first),
      ]);
    }
  }
  for (const [label, value] of edges) add('edge', label, value);
  for (const value of spec.malformed ?? []) add('malformed', preview(value), value);
  return out;
}

type Mutation =
  | { drop: string }
  | { set: string; to: unknown }
  | { add: string; to: unknown }
  | { replaceWith: unknown };

/**
 * A valid value, mutated: most often one field set to a near miss or to a value of its bad-value
 * catalogue (null, wrong type, edge) with every other field valid (which reaches deepest into the
 * handler), else one field dropped or set to junk of any type, else
 * several mutations at once, unknown fields included, or the whole value replaced by junk. With
 * `partial`, the valid value has any subset of the fields (PATCH bodies).
 */
export function mutatedValue(
  fields: Record<string, FieldSpec>,
  { partial = false } = {},
): Arbitrary<unknown> {
  const names = Object.keys(fields);
  const valid = fc.record(
    Object.fromEntries(names.map((n) => [n, fields[n].valid])),
    partial ? { requiredKeys: [] } : {},
  );
  const field = fc.constantFrom(...names);
  const nearMiss: Arbitrary<Mutation> = field.chain((name) =>
    (fields[name].nearMiss ?? junkValue).map((to) => ({ set: name, to })),
  );
  // The one-bad-field catalogue, drawn at random here: a kind first (null, a wrong type, an edge or
  // malformed value, about equally often), then one of its values for the field.
  const catalogue = Object.fromEntries(
    names.map((n) => {
      const bad = badValues(fields[n], { optional: true });
      const kinds = [['null'], ['wrong type'], ['edge', 'malformed']]
        .map((k) => bad.filter((b) => k.includes(b.kind)).map((b) => b.value))
        .filter((values) => values.length > 0);
      return [n, fc.oneof(...kinds.map((values) => fc.constantFrom(...values)))];
    }),
  );
  const badValue: Arbitrary<Mutation> = field.chain((name) =>
    catalogue[name].map((to) => ({ set: name, to })),
  );
  const wrongType: Arbitrary<Mutation> = fc.oneof(
    field.map((name) => ({ drop: name })),
    fc.record({ set: field, to: junkValue }),
  );
  const anything: Arbitrary<Mutation> = fc.oneof(
    nearMiss,
    badValue,
    wrongType,
    fc.record({ add: evilKey, to: junkValue }),
    fc.record({ replaceWith: junkValue }),
  );
  const mutations: Arbitrary<Mutation[]> = fc.oneof(
    { weight: 2, arbitrary: fc.constant<Mutation[]>([]) },
    { weight: 4, arbitrary: fc.tuple(nearMiss) },
    { weight: 3, arbitrary: fc.tuple(badValue) },
    { weight: 2, arbitrary: fc.tuple(wrongType) },
    { weight: 2, arbitrary: fc.array(anything, { minLength: 1, maxLength: 3 }) },
  );
  return fc.record({ value: valid, mutations }).map(({ value, mutations: applied }) => {
    let out: unknown = { ...value };
    for (const m of applied) {
      // Generated values are shared with fast-check (shrinking replays them): copy, never mutate.
      if ('replaceWith' in m) out = structuredClone(m.replaceWith);
      else if (out === null || typeof out !== 'object' || Array.isArray(out)) continue;
      else if ('drop' in m) delete (out as Record<string, unknown>)[m.drop];
      else if ('set' in m) (out as Record<string, unknown>)[m.set] = structuredClone(m.to);
      else
        Object.defineProperty(out, m.add, {
          value: structuredClone(m.to),
          enumerable: true,
          writable: true,
          configurable: true,
        });
    }
    return out;
  });
}

/** A mutated valid body, as the JSON text to send. */
export const mutatedBody = (
  fields: Record<string, FieldSpec>,
  options?: { partial?: boolean },
): Arbitrary<string | undefined> => mutatedValue(fields, options).map(toJson);

/** Text that is not valid JSON, or JSON that is hostile as a whole. */
export const rawBody: Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    'NaN',
    '{',
    '}',
    '[',
    '{"a":1,}',
    "{'a':1}",
    '{"a":1}{"b":2}',
    '"unterminated',
    '\u0000',
    '\uFEFF{}',
    'null',
    'true',
    '0',
    '"a string"',
    '[]',
    '[1,2,3]',
    '{"__proto__":{"role":"admin"}}',
    '{"constructor":{"prototype":{"role":"admin"}}}',
    '{"a":"\\ud800"}',
    '{"a":"\\u0000"}',
    '{"items":[{"productId":"00000000-0000-4000-8000-000000000000","quantity":1e999}]}',
    '{"delta":-0,"reason":"x"}',
  ),
  fc.integer({ min: 30, max: 3000 }).map((d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d)),
  fc.integer({ min: 30, max: 3000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
  fc.constant(`{"x":"${'y'.repeat(300 * 1024)}"}`),
  fc.string({ maxLength: 40 }),
);

/** Arbitrary JSON documents, unrelated to the endpoint. */
export const junkJson: Arbitrary<string | undefined> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map(toJson),
  fc.object({ maxDepth: 2 }).map(toJson),
  fc.anything({ maxDepth: 2 }).map(toJson),
);

// ---------------------------------------------------------------------------------------------
// Headers. Node's HTTP client refuses control characters and anything above U+00FF in header
// values, so header junk stays within tab, printable ASCII and Latin-1.

const headerChar = fc
  .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(9))
  .map((c) => String.fromCharCode(c));
export const headerJunk: Arbitrary<string> = fc.oneof(
  fc.string({ unit: headerChar, maxLength: 40 }),
  fc.constantFrom('', ' ', ',', ';', '""', '*', 'null', 'x'.repeat(4000)),
);

const printable = fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c));

export const contentType: Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.constantFrom(
        'application/json; charset=utf-8',
        'application/json; charset=latin1',
        'application/json; charset=utf-16',
        'APPLICATION/JSON',
        'application/json;',
        'application/problem+json',
        'application/merge-patch+json',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'text/plain',
        'text/json',
        'application/octet-stream',
        'application/xml',
        '*/*',
        'json',
        '',
      ),
      headerJunk,
    ),
  },
);

export const httpDate: Arbitrary<string> = fc.oneof(
  fc
    .date({ min: new Date(0), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
    .map((d) => d.toUTCString()),
  fc.constantFrom(
    'Thu, 01 Jan 1970 00:00:00 GMT',
    'Fri, 31 Dec 9999 23:59:59 GMT',
    'Sunday, 06-Nov-94 08:49:37 GMT',
    'Sun Nov  6 08:49:37 1994',
    '2100-01-01',
    '0',
    '-1',
    '1e309',
    'yesterday',
    '',
  ),
  headerJunk,
);

/** If-Match / If-None-Match values; `etags` are real ones worth trying. */
export function etagHeader(etags: string[]): Arbitrary<string> {
  const real = fc.constantFrom('"not-a-real-etag"', ...etags);
  return fc.oneof(
    fc.constantFrom(
      '*',
      '"x"',
      'W/"x"',
      '""',
      'W/*',
      '"a", "b"',
      '"unterminated',
      ', ,',
      '"a" "b"',
    ),
    { weight: 2, arbitrary: real },
    real.map((e) => `W/${e}`),
    real.map((e) => `"nope", ${e}`),
    real.map((e) => e.slice(1, -1)),
    headerJunk,
  );
}

export const idempotencyKey: Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: printable, minLength: 1, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constant('fuzz-reused-key') },
  {
    weight: 2,
    arbitrary: fc.oneof(fc.constantFrom('', ' ', 'x'.repeat(255), 'x'.repeat(256)), headerJunk),
  },
);

export const requestIdHeader: Arbitrary<string> = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/),
  fc.constantFrom('x'.repeat(129), 'has space', 'ünïcode', ''),
  headerJunk,
);

// ---------------------------------------------------------------------------------------------
// Path parameters and query strings.

/** Ids that name nothing: well-formed UUIDs of nothing, malformed ids and encoded junk. */
export const junkId: Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.uuid() },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'not-a-uuid',
      '0',
      '-1',
      'null',
      'undefined',
      'me',
      '00000000-0000-0000-0000-000000000000',
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
      '%00',
      '%',
      '%zz',
      '%E0%A4%A',
      '%2F',
      '%2e%2e',
      '..',
      '.',
      '%20',
      "1'%20OR%20'1'='1",
      'a'.repeat(300),
      '',
    ),
  },
  {
    weight: 2,
    arbitrary: fc
      .uuid()
      .chain((u) =>
        fc.constantFrom(
          u.toUpperCase(),
          `{${u}}`,
          u.replace(/-/g, ''),
          `${u}x`,
          u.slice(1),
          encodeURIComponent(` ${u}`),
          `${u}%00`,
        ),
      ),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }).map(encodeURIComponent) },
);

/** Lone surrogates become U+FFFD, so that encodeURIComponent accepts the string. */
const wellFormed = (s: string): string =>
  s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');

const queryValue = fc.oneof(
  fc.constantFrom(
    '',
    '0',
    '1',
    '20',
    '100',
    '101',
    '-1',
    '1.5',
    '1e2',
    '1e999',
    'abc',
    'NaN',
    '0x10',
  ),
  fc.constantFrom(
    'true',
    'false',
    'TRUE',
    'pending',
    'paid',
    'PAID',
    'cancelled',
    '%',
    '_',
    '\u0000',
  ),
  nastyString.filter((s) => s.length < 500),
);

/** A query string (without `?`) built from the given parameter names plus junk. */
export function queryString(names: string[]): Arbitrary<string> {
  const pair = fc
    .tuple(fc.oneof(fc.constantFrom(...names), evilKey), queryValue)
    .map(([k, v]) => `${encodeURIComponent(wellFormed(k))}=${encodeURIComponent(wellFormed(v))}`);
  return fc.oneof(
    { weight: 4, arbitrary: fc.array(pair, { maxLength: 4 }).map((p) => p.join('&')) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'limit=1&limit=2',
        'q[]=x',
        'q[a]=b',
        'active[]=true',
        '%zz=1',
        'limit=%zz',
        '&&&',
        '=x',
        'offset=1000001',
        'limit=5&offset=999999',
      ),
    },
  );
}
