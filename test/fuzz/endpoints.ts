import { randomBytes } from 'node:crypto';
import fc, { type Arbitrary } from 'fast-check';
import {
  contentType,
  etagHeader,
  type FieldSpec,
  headerJunk,
  httpDate,
  idempotencyKey,
  junkId,
  junkJson,
  junkValue,
  mutatedBody,
  mutatedValue,
  queryString,
  rawBody,
  requestIdHeader,
} from './arbitraries';
import type { BodyEndpoint } from './fields';
import { type Auth, type FuzzRequest, SPECIAL_TOKENS, type Who } from './harness';
import { type FuzzWorld, ORDERS, PRODUCTS, PROMOTIONS } from './world';

/**
 * Request generators for every endpoint of API.md §1, grouped as the suite reports them. Each
 * request mixes a plausible caller with junk, plausible targets with junk ids, and a mutated valid
 * body with arbitrary JSON and non-JSON, so that almost every request is rejected for some reason.
 */

type Method = FuzzRequest['method'];
type Target = { target: string; id: string };

const API = '/api/v1';

function callers(who: Who[]): Arbitrary<Auth> {
  const plausible = who.length ? fc.constantFrom<Auth>(...who) : fc.constant<Auth>('none');
  return fc.oneof(
    { weight: 12, arbitrary: plausible },
    { weight: 1, arbitrary: fc.constant<Auth>('none') },
    { weight: 1, arbitrary: fc.constantFrom(...SPECIAL_TOKENS).map((token): Auth => ({ token })) },
    {
      weight: 1,
      arbitrary: fc
        .oneof(
          fc.constantFrom('Bearer', 'Bearer ', 'Bearer a.b.c', 'Bearer null', 'Token abc'),
          headerJunk.map((s) => `Bearer ${s}`),
          headerJunk,
        )
        .map((header): Auth => ({ header })),
    },
  );
}

/** Named fixtures, or generated ids that name nothing. */
function targets(named: Record<string, string>): Arbitrary<Target> {
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc
        .constantFrom(...Object.entries(named))
        .chain(([target, id]) =>
          fc.constantFrom(
            { target, id },
            { target: `${target} (upper case)`, id: id.toUpperCase() },
          ),
        ),
    },
    { weight: 2, arbitrary: junkId.map((id) => ({ target: 'junk', id })) },
  );
}

function headers(etags: string[]): Arbitrary<Record<string, string>> {
  return fc.record(
    {
      'If-Match': etagHeader(etags),
      'If-None-Match': etagHeader(etags),
      'If-Unmodified-Since': httpDate,
      'Idempotency-Key': idempotencyKey,
      'X-Request-Id': requestIdHeader,
    },
    { requiredKeys: [] },
  );
}

/** A body for an endpoint that takes one: mostly a mutated valid body, else any JSON or not JSON. */
const withBody = (valid: Arbitrary<string | undefined>) =>
  fc.record({
    body: fc.oneof(
      { weight: 7, arbitrary: valid },
      { weight: 1, arbitrary: junkJson },
      { weight: 1, arbitrary: rawBody },
    ),
    contentType,
  });

/** Endpoints that take no body get one now and then. */
const withoutBody = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ body: undefined, contentType: undefined }) },
  { weight: 1, arbitrary: fc.record({ body: fc.oneof(junkJson, rawBody), contentType }) },
);

interface EndpointSpec {
  endpoint: string;
  /** Endpoints with richer bodies get more of the group's runs. */
  weight?: number;
  method: Method;
  /** Builds the path from the generated id (when the route has one). */
  path: (id: string) => string;
  ids?: Arbitrary<Target>;
  query?: string[];
  auth: Arbitrary<Auth>;
  body?: Arbitrary<string | undefined>;
  etags: string[];
}

function endpoint(spec: EndpointSpec): Arbitrary<FuzzRequest> {
  return fc
    .record({
      target: spec.ids ?? fc.constant(undefined),
      query: spec.query ? fc.option(queryString(spec.query), { freq: 2 }) : fc.constant(null),
      auth: spec.auth,
      headers: headers(spec.etags),
      payload: spec.body ? withBody(spec.body) : withoutBody,
    })
    .map(({ target, query, auth, headers: h, payload }) => {
      const path = spec.path(target?.id ?? '') + (query ? `?${query}` : '');
      const all: Record<string, string> = { ...h };
      if (payload.contentType !== undefined) all['Content-Type'] = payload.contentType;
      return {
        endpoint: spec.endpoint,
        method: spec.method,
        ...(target ? { target: target.target } : {}),
        path,
        auth,
        headers: all,
        ...(payload.body === undefined ? {} : { body: payload.body }),
      };
    });
}

const group = (...specs: EndpointSpec[]): Arbitrary<FuzzRequest> =>
  fc.oneof(...specs.map((spec) => ({ weight: spec.weight ?? 1, arbitrary: endpoint(spec) })));

// ---------------------------------------------------------------------------------------------
// The fields of every JSON body (API.md §1), with the limits of the API's DTOs: the random runs
// draw from them, and fields.ts derives its one-bad-field cases from them.

/** Unique examples (SKUs, slugs, emails) within a test file's database. */
const RUN = randomBytes(3).toString('hex');
let serial = 0;
const unique = (): string => `${RUN}${(++serial).toString(36)}`;

/** Trimmed text the API takes up to 200 characters long; the random runs make it at most `max`. */
const text = (min: number, max: number, example = 'Fuzzed text'): FieldSpec => ({
  valid: fc.string({ minLength: min, maxLength: max }),
  nearMiss: fc.constantFrom('', ' ', '\u0000', 'a\u0000b', 'x'.repeat(201), ' '.repeat(min + 1)),
  type: 'string',
  example: () => example,
  trim: true,
  minLength: min,
  maxLength: 200,
});
/** Emails as registration and PATCH /users take them: trimmed, at most 254 characters. */
const email = (taken: string[]): FieldSpec => ({
  valid: fc.oneof(
    fc.emailAddress(),
    fc
      .constantFrom(...taken)
      .chain((e) => fc.constantFrom(e, e.toUpperCase(), `  ${e}  `, `\t${e}`)),
  ),
  nearMiss: fc.constantFrom(
    'plainaddress',
    '@example.com',
    'a@',
    'a@b',
    'a b@example.com',
    `${'x'.repeat(250)}@example.com`,
    'ünï@exämple.com',
    'a@example.com\u0000',
    '',
  ),
  type: 'string',
  example: () => `fuzz-${unique()}@example.com`,
  trim: true,
  maxLength: 254,
  // Not the whole of an email address: what no accepted address lacks.
  mustMatch: /@[^@]*\./,
  malformed: ['plainaddress', '@example.com', 'a@', 'a@b', 'a b@example.com'],
});
const password: FieldSpec = {
  valid: fc.string({ minLength: 8, maxLength: 40 }),
  nearMiss: fc.constantFrom('', 'short', '1234567', 'x'.repeat(201), '\u0000'.repeat(8)),
  type: 'string',
  example: () => 'a good long password',
  minLength: 8,
  maxLength: 200,
};
const version: FieldSpec = {
  valid: fc.integer({ min: 1, max: 6 }),
  nearMiss: fc.constantFrom(0, -1, 1.5, '1', 2_147_483_648, 1e20, null),
  type: 'integer',
  example: () => 1,
  optional: true,
  min: 1,
};
const int = (min: number, max: number, example = min): FieldSpec => ({
  valid: fc.integer({ min, max }),
  nearMiss: fc.constantFrom(min - 1, max + 1, 1.5, String(min), -0, 2_147_483_648, 1e20, true),
  type: 'integer',
  example: () => example,
  min,
  max,
});

export function registerFields(w: FuzzWorld): Record<string, FieldSpec> {
  return { email: email([w.accounts.customer.email]), password, name: text(1, 30, 'Fuzz') };
}

export function loginFields(w: FuzzWorld): Record<string, FieldSpec> {
  const { customer, other } = w.accounts;
  return {
    // Login takes any string up to the limits: a wrong address is 401, not 400.
    email: {
      ...email([customer.email, other.email]),
      example: () => customer.email,
      mustMatch: undefined,
      malformed: undefined,
    },
    password: {
      valid: fc.oneof(fc.constant(customer.password), fc.string({ maxLength: 30 })),
      nearMiss: password.nearMiss,
      type: 'string',
      example: () => customer.password,
      maxLength: 200,
    },
  };
}

export function userPatchFields(w: FuzzWorld): Record<string, FieldSpec> {
  const { customer, other } = w.accounts;
  return {
    email: email([customer.email, other.email]),
    name: text(1, 30, 'Patched name'),
    password,
    role: {
      valid: fc.constantFrom('customer', 'admin'),
      nearMiss: fc.constantFrom('Admin', 'root', ''),
      type: 'string',
      example: () => 'customer',
      mustMatch: /^(customer|admin)$/,
      malformed: ['Admin', 'ADMIN', 'root', ' admin'],
    },
    version,
  };
}

export function productFields(w: FuzzWorld): Record<string, FieldSpec> {
  const taken = w.products.plentiful;
  return {
    sku: {
      valid: fc.oneof(
        { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/) },
        { weight: 1, arbitrary: fc.constantFrom(taken.sku.toLowerCase(), ` ${taken.sku} `) },
      ),
      nearMiss: fc.constantFrom('', ' ', '-abc', '.abc', 'a b', 'x'.repeat(65), 'ÄBC', 'abc\u0000'),
      type: 'string',
      example: () => `FZ-${unique()}`,
      trim: true,
      maxLength: 64,
      mustMatch: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
      malformed: ['-abc', '.abc', 'a b', 'ÄBC'],
    },
    slug: {
      valid: fc.oneof(
        { weight: 4, arbitrary: fc.stringMatching(/^[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,2}$/) },
        { weight: 1, arbitrary: fc.constant(taken.slug) },
      ),
      nearMiss: fc.constantFrom('Upper', 'a--b', '-a', 'a-', 'a_b', ' a', 'x'.repeat(121), ''),
      type: 'string',
      example: () => `fz-${unique()}`,
      maxLength: 120,
      mustMatch: /^[a-z0-9]+(-[a-z0-9]+)*$/,
      malformed: ['Upper', 'a--b', '-a', 'a-', 'a_b', ' a'],
    },
    name: text(1, 30, 'Fuzzed product'),
    description: {
      valid: fc.string({ maxLength: 40 }),
      nearMiss: fc.constant('x'.repeat(5001)),
      type: 'string',
      example: () => 'Made by the fuzzer.',
      optional: true,
      maxLength: 5000,
    },
    priceCents: int(0, 1_000_000_000, 1250),
    currency: {
      valid: fc.constantFrom('EUR', 'USD', 'JPY', 'CHF'),
      // Near misses of a real code: letter case, padding, length, symbol.
      nearMiss: fc.oneof(
        fc
          .constantFrom('EUR', 'USD', 'JPY')
          .chain((c) => fc.constantFrom(c.toLowerCase(), c[0] + c.slice(1).toLowerCase())),
        fc.constantFrom(' EUR', 'EUR ', 'EURO', 'EU', 'XYZ', '€', ''),
      ),
      type: 'string',
      example: () => 'EUR',
      // ISO 4217, any letter case (`eur` is stored as `EUR`).
      mustMatch: /^[A-Za-z]{3}$/,
      malformed: [' EUR', 'EUR ', 'EURO', 'EU', 'XYZ', '€'],
    },
    // The initial stock, on create only (API.md §13; default 0).
    stock: { ...int(0, 1_000_000_000, 100), optional: true },
    active: {
      valid: fc.boolean(),
      nearMiss: fc.constantFrom('true', 1, 0, null, 'yes'),
      type: 'boolean',
      example: () => true,
      optional: true,
    },
  };
}

/** PATCH /products/{id}: the product's own fields; `stock` is its own resource (API.md §13). */
export function productPatchFields(w: FuzzWorld): Record<string, FieldSpec> {
  const { stock, ...own } = productFields(w);
  void stock;
  return { ...own, version };
}

/**
 * `stock` where it is never taken (PATCH /products/{id}): every value is refused with 400 naming
 * `stock`, the valid-looking ones too (an empty range: no integer is at least 1 and at most 0).
 */
const stockNotTaken: FieldSpec = {
  valid: fc.constant(1),
  nearMiss: fc.constantFrom(0, 5, null, '5'),
  type: 'integer',
  example: () => 5,
  optional: true,
  min: 1,
  max: 0,
};

/** `PUT /products/{id}/stock`: a stock-take's absolute level, and the stock's `version`. */
export const stockTakeFields: Record<string, FieldSpec> = {
  stock: int(0, 1_000_000_000, 5),
  version,
};

export const stockAdjustmentFields: Record<string, FieldSpec> = {
  delta: {
    valid: fc.oneof(
      fc.integer({ min: -5, max: 5 }).filter((d) => d !== 0),
      fc.constantFrom(-1_000_000_000, 1_000_000_000),
    ),
    nearMiss: fc.constantFrom(0, -0, 1.5, '1', 1_000_000_001, -1_000_000_001, 1e20, null),
    type: 'integer',
    example: () => 1,
    min: -1_000_000_000,
    max: 1_000_000_000,
    not: [0],
  },
  reason: text(1, 30, 'cycle count'),
};

const NO_PRODUCT = '00000000-0000-4000-8000-000000000000';

/** `POST /orders`: `items`, 1 to 100 lines of `{productId, quantity}`, quantity 1 to 1,000. */
export function orderFields(w: FuzzWorld): Record<string, FieldSpec> {
  const p = w.products;
  const productId = fc.oneof(
    fc.constantFrom(p.plentiful.id, p.scarce.id, p.referenced.id, p.inactive.id, p.usd.id),
    fc.constantFrom(p.plentiful.id, p.scarce.id).map((id) => id.toUpperCase()),
    fc.uuid(),
  );
  const line: Record<string, FieldSpec> = {
    productId: {
      valid: productId,
      nearMiss: fc.constantFrom('not-a-uuid', '', `{${p.plentiful.id}}`, p.plentiful.id.slice(1)),
      type: 'string',
      example: () => p.plentiful.id,
      mustMatch: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
      malformed: [
        'not-a-uuid',
        `{${NO_PRODUCT}}`,
        NO_PRODUCT.slice(1),
        NO_PRODUCT.replace(/-/g, ''),
      ],
    },
    quantity: int(1, 1000),
  };
  const validLine = fc.record({ productId, quantity: fc.integer({ min: 1, max: 1000 }) });
  const codes = [w.promotions.held.code, w.promotions.disposable.code];
  return {
    // Any string of 1–64 is a code to look up: one that names nothing is 409 `unknown`, not 400.
    promotionCode: {
      valid: fc.oneof(
        fc.constantFrom(...codes, ...codes.map((c) => ` ${c.toLowerCase()} `)),
        fc.string({ minLength: 1, maxLength: 20 }),
      ),
      nearMiss: fc.constantFrom('', 'x'.repeat(65)),
      type: 'string',
      example: () => w.promotions.held.code,
      optional: true,
      minLength: 1,
      maxLength: 64,
    },
    expectedTotalCents: {
      ...int(0, Number.MAX_SAFE_INTEGER, 1250),
      valid: fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.constant(1150)),
      optional: true,
    },
    items: {
      valid: fc.array(validLine, { minLength: 1, maxLength: 4 }),
      nearMiss: fc.oneof(
        fc.array(mutatedValue(line), { minLength: 1, maxLength: 3 }),
        fc.constant([]),
        validLine.map((l) => Array.from({ length: 101 }, () => l)),
        validLine.map((l) => Array.from({ length: 100 }, () => ({ ...l, quantity: 1000 }))),
        fc.dictionary(fc.string({ maxLength: 3 }), junkValue, { maxKeys: 2 }),
      ),
      type: 'array',
      example: () => [{ productId: p.plentiful.id, quantity: 1 }],
      minItems: 1,
      maxItems: 100,
      element: line,
    },
  };
}

/** Untrimmed text (the API keeps it as sent), `min` to `max` characters. */
const rawText = (min: number, max: number, example: string): FieldSpec => ({
  valid: fc.string({ minLength: Math.max(min, 1), maxLength: 30 }),
  nearMiss: fc.constantFrom('', 'x'.repeat(max + 1)),
  type: 'string',
  example: () => example,
  minLength: min,
  maxLength: max,
});

/** `POST /orders/{id}/payments` as an admin records a manual payment (API.md §9). */
export const manualPaymentFields: Record<string, FieldSpec> = {
  provider: {
    valid: fc.constant('manual'),
    nearMiss: fc.constantFrom('', 'MANUAL', 'paypal'),
    type: 'string',
    example: () => 'manual',
    malformed: ['', 'paypal', 'MANUAL', 'manual ', 'stripe\u0000'],
  },
  amountCents: int(1, Number.MAX_SAFE_INTEGER, 2500),
  reference: rawText(1, 200, 'SEPA fuzz'),
};

/** `POST /orders/{id}/refunds` (API.md §10). */
export function refundFields(w: FuzzWorld): Record<string, FieldSpec> {
  return {
    amountCents: int(1, Number.MAX_SAFE_INTEGER, 1),
    reason: rawText(1, 500, 'fuzzed refund'),
    paymentId: {
      valid: fc.constant(w.payments.manual),
      type: 'string',
      example: () => w.payments.manual,
      optional: true,
      mustMatch: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
      malformed: ['not-a-uuid', w.payments.manual.slice(1), `{${w.payments.manual}}`],
    },
  };
}

export function promotionFields(w: FuzzWorld): Record<string, FieldSpec> {
  const taken = w.promotions.held.code;
  const limit = (min: number): FieldSpec => ({
    ...int(min, 1_000_000_000, 5),
    optional: true,
    nullable: true,
  });
  return {
    code: {
      valid: fc.oneof(
        { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/) },
        { weight: 1, arbitrary: fc.constantFrom(taken.toLowerCase(), ` ${taken} `) },
      ),
      nearMiss: fc.constantFrom('', ' ', '-abc', 'a b', 'x'.repeat(65), 'ÄBC', 'abc\u0000'),
      type: 'string',
      example: () => `FZ-${unique()}`,
      trim: true,
      maxLength: 64,
      mustMatch: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
      malformed: ['-abc', '.abc', 'a b', 'ÄBC'],
    },
    // The body's one discount: amountOffCents would be a second (its rule is the e2e suite's).
    percentOff: { ...int(1, 100, 10), nullable: true },
    usageLimit: limit(0),
    perCustomerLimit: limit(1),
    active: {
      valid: fc.boolean(),
      type: 'boolean',
      example: () => true,
      optional: true,
    },
  };
}

/** Every endpoint of API.md §1 that takes a JSON body. */
export const BODY_ENDPOINTS = [
  'POST /auth/register',
  'POST /auth/login',
  'PATCH /users/{id}',
  'POST /products',
  'PATCH /products/{id}',
  'POST /products/{id}/stock-adjustments',
  'PUT /products/{id}/stock',
  'POST /promotions',
  'PATCH /promotions/{id}',
  'POST /orders',
  'POST /orders/{id}/payments',
  'POST /orders/{id}/refunds',
] as const;
export type BodyEndpointName = (typeof BODY_ENDPOINTS)[number];

/**
 * Every endpoint that takes a JSON body, with a valid request for it: fields.ts sends it with one
 * field spoiled at a time. Callers are allowed and targets exist, so validation is reached; PATCH
 * targets are fixtures no other check relies on.
 */
export function bodyEndpoints(w: FuzzWorld): Record<BodyEndpointName, BodyEndpoint> {
  const { victim } = w.accounts;
  const p = w.products;
  const table: BodyEndpoint[] = [
    {
      endpoint: 'POST /auth/register',
      method: 'POST',
      path: `${API}/auth/register`,
      callers: ['none'],
      fields: registerFields(w),
    },
    {
      endpoint: 'POST /auth/login',
      method: 'POST',
      path: `${API}/auth/login`,
      callers: ['none'],
      fields: loginFields(w),
    },
    {
      endpoint: 'PATCH /users/{id}',
      method: 'PATCH',
      path: `${API}/users/${victim.id}`,
      target: 'victim',
      // An admin, and the user itself.
      callers: ['admin', 'victim'],
      fields: userPatchFields(w),
      patch: { resource: `${API}/users/${victim.id}`, companion: () => ({ name: 'Victim' }) },
    },
    {
      endpoint: 'POST /products',
      method: 'POST',
      path: `${API}/products`,
      callers: ['admin'],
      fields: productFields(w),
    },
    {
      endpoint: 'PATCH /products/{id}',
      method: 'PATCH',
      path: `${API}/products/${p.disposable.id}`,
      target: 'disposable',
      callers: ['admin'],
      fields: { ...productPatchFields(w), stock: stockNotTaken },
      patch: {
        resource: `${API}/products/${p.disposable.id}`,
        companion: () => ({ description: 'Patched by the fuzzer.' }),
      },
    },
    {
      endpoint: 'PUT /products/{id}/stock',
      method: 'PUT',
      path: `${API}/products/${p.disposable.id}/stock`,
      target: 'disposable',
      callers: ['admin'],
      fields: stockTakeFields,
      patch: {
        resource: `${API}/products/${p.disposable.id}/stock`,
        companion: () => ({ stock: 5 }),
      },
    },
    {
      endpoint: 'POST /products/{id}/stock-adjustments',
      method: 'POST',
      path: `${API}/products/${p.referenced.id}/stock-adjustments`,
      target: 'referenced',
      callers: ['admin'],
      fields: stockAdjustmentFields,
    },
    {
      endpoint: 'POST /promotions',
      method: 'POST',
      path: `${API}/promotions`,
      callers: ['admin'],
      fields: promotionFields(w),
    },
    {
      endpoint: 'PATCH /promotions/{id}',
      method: 'PATCH',
      path: `${API}/promotions/${w.promotions.disposable.id}`,
      target: 'disposable',
      callers: ['admin'],
      fields: { ...promotionFields(w), version },
      patch: {
        resource: `${API}/promotions/${w.promotions.disposable.id}`,
        companion: () => ({ active: true }),
      },
    },
    {
      endpoint: 'POST /orders',
      method: 'POST',
      path: `${API}/orders`,
      callers: ['customer', 'other'],
      fields: orderFields(w),
      idempotent: true,
    },
    {
      // An admin's manual payment (its fields are all validated): pays the other customer's order
      // once, then 409s.
      endpoint: 'POST /orders/{id}/payments',
      method: 'POST',
      path: `${API}/orders/${w.orders.othersPending}/payments`,
      target: 'othersPending',
      callers: ['admin'],
      fields: manualPaymentFields,
      idempotent: true,
    },
    {
      endpoint: 'POST /orders/{id}/refunds',
      method: 'POST',
      path: `${API}/orders/${w.orders.paid}/refunds`,
      target: 'paid',
      callers: ['admin'],
      fields: refundFields(w),
      idempotent: true,
    },
  ];
  return Object.fromEntries(table.map((e) => [e.endpoint, e])) as Record<
    BodyEndpointName,
    BodyEndpoint
  >;
}

// ---------------------------------------------------------------------------------------------
// The groups.

export function authRequests(w: FuzzWorld): Arbitrary<FuzzRequest> {
  const anyone = fc.oneof(
    { weight: 6, arbitrary: fc.constant<Auth>('none') },
    { weight: 2, arbitrary: callers(['customer']) },
  );
  return group(
    {
      endpoint: 'POST /auth/register',
      method: 'POST',
      path: () => `${API}/auth/register`,
      auth: anyone,
      body: mutatedBody(registerFields(w)),
      etags: [],
    },
    {
      endpoint: 'POST /auth/login',
      method: 'POST',
      path: () => `${API}/auth/login`,
      auth: anyone,
      body: mutatedBody(loginFields(w)),
      etags: [],
    },
  );
}

export function userRequests(w: FuzzWorld): Arbitrary<FuzzRequest> {
  const { admin, customer, other, victim } = w.accounts;
  const everyone = callers(['admin', 'customer', 'victim']);
  const etags = w.etags.users;
  return group(
    {
      endpoint: 'GET /users/me',
      method: 'GET',
      path: () => `${API}/users/me`,
      auth: everyone,
      etags,
    },
    {
      endpoint: 'GET /users',
      method: 'GET',
      path: () => `${API}/users`,
      query: ['limit', 'offset'],
      auth: everyone,
      etags,
    },
    {
      endpoint: 'GET /users/{id}',
      method: 'GET',
      path: (id) => `${API}/users/${id}`,
      ids: targets({ admin: admin.id, customer: customer.id, victim: victim.id }),
      auth: everyone,
      etags,
    },
    // Only the victim is ever changed: the accounts the other groups rely on keep their roles.
    {
      endpoint: 'PATCH /users/{id}',
      weight: 2,
      method: 'PATCH',
      path: (id) => `${API}/users/${id}`,
      ids: targets({ victim: victim.id }),
      auth: everyone,
      body: mutatedBody(userPatchFields(w), { partial: true }),
      etags,
    },
    // Every target has orders: a delete that passes its precondition is refused with 409.
    {
      endpoint: 'DELETE /users/{id}',
      method: 'DELETE',
      path: (id) => `${API}/users/${id}`,
      ids: targets({ victim: victim.id, customer: customer.id, other: other.id }),
      auth: everyone,
      etags,
    },
  );
}

export function productRequests(w: FuzzWorld): Arbitrary<FuzzRequest> {
  const p = w.products;
  const ids = (...names: (typeof PRODUCTS)[number][]) =>
    targets(Object.fromEntries(names.map((n) => [n, p[n].id])));
  const writers = callers(['admin', 'admin', 'customer']);
  const etags = w.etags.products;
  const stockEtags = [...w.etags.stock, ...etags.slice(0, 1)];
  const fields = productFields(w);
  return group(
    {
      endpoint: 'POST /products',
      weight: 3,
      method: 'POST',
      path: () => `${API}/products`,
      auth: writers,
      body: mutatedBody(fields),
      etags,
    },
    {
      endpoint: 'GET /products',
      method: 'GET',
      path: () => `${API}/products`,
      query: ['limit', 'offset', 'q', 'active', 'include'],
      auth: callers([]),
      etags,
    },
    {
      endpoint: 'GET /products/{id}',
      method: 'GET',
      path: (id) => `${API}/products/${id}`,
      ids: ids(...PRODUCTS),
      auth: callers([]),
      etags,
    },
    {
      endpoint: 'PATCH /products/{id}',
      weight: 3,
      method: 'PATCH',
      path: (id) => `${API}/products/${id}`,
      ids: ids(...PRODUCTS),
      auth: writers,
      // Now and then with `stock`, which PATCH never takes (API.md §13).
      body: mutatedBody(
        { ...productPatchFields(w), stock: { ...stockNotTaken, valid: fc.constant(undefined) } },
        { partial: true },
      ),
      etags,
    },
    // `inactive` and `usd` are kept: the order generators need them.
    {
      endpoint: 'DELETE /products/{id}',
      method: 'DELETE',
      path: (id) => `${API}/products/${id}`,
      ids: ids('referenced', 'plentiful', 'disposable'),
      auth: writers,
      etags,
    },
    {
      endpoint: 'POST /products/{id}/stock-adjustments',
      weight: 2,
      method: 'POST',
      path: (id) => `${API}/products/${id}/stock-adjustments`,
      ids: ids('scarce', 'plentiful', 'disposable'),
      auth: writers,
      body: mutatedBody(stockAdjustmentFields),
      etags: stockEtags,
    },
    {
      endpoint: 'GET /products/{id}/stock',
      method: 'GET',
      path: (id) => `${API}/products/${id}/stock`,
      ids: ids(...PRODUCTS),
      auth: callers([]),
      etags: stockEtags,
    },
    {
      endpoint: 'PUT /products/{id}/stock',
      weight: 2,
      method: 'PUT',
      path: (id) => `${API}/products/${id}/stock`,
      // Not `scarce` and `inactive`: the order generators rely on what they hold.
      ids: ids('plentiful', 'disposable', 'referenced'),
      auth: writers,
      body: mutatedBody(stockTakeFields),
      etags: stockEtags,
    },
  );
}

export function promotionRequests(w: FuzzWorld): Arbitrary<FuzzRequest> {
  const ids = targets(Object.fromEntries(PROMOTIONS.map((n) => [n, w.promotions[n].id])));
  const writers = callers(['admin', 'admin', 'customer']);
  const etags = w.etags.promotions;
  const fields = promotionFields(w);
  return group(
    {
      endpoint: 'POST /promotions',
      weight: 3,
      method: 'POST',
      path: () => `${API}/promotions`,
      auth: writers,
      body: mutatedBody(fields),
      etags,
    },
    {
      endpoint: 'GET /promotions',
      method: 'GET',
      path: () => `${API}/promotions`,
      query: ['limit', 'offset'],
      auth: writers,
      etags,
    },
    {
      endpoint: 'GET /promotions/{id}',
      method: 'GET',
      path: (id) => `${API}/promotions/${id}`,
      ids,
      auth: writers,
      etags,
    },
    {
      endpoint: 'PATCH /promotions/{id}',
      weight: 3,
      method: 'PATCH',
      path: (id) => `${API}/promotions/${id}`,
      ids,
      auth: writers,
      body: mutatedBody({ ...fields, version }, { partial: true }),
      etags,
    },
    {
      endpoint: 'DELETE /promotions/{id}',
      method: 'DELETE',
      path: (id) => `${API}/promotions/${id}`,
      ids,
      auth: writers,
      etags,
    },
  );
}

export function orderRequests(w: FuzzWorld): Arbitrary<FuzzRequest> {
  const everyone = callers(['customer', 'other', 'admin']);
  const ids = targets(w.orders);
  const etags = w.etags.orders;
  return group(
    {
      endpoint: 'POST /orders',
      weight: 3,
      method: 'POST',
      path: () => `${API}/orders`,
      auth: everyone,
      body: mutatedBody(orderFields(w)),
      etags,
    },
    {
      endpoint: 'GET /orders',
      method: 'GET',
      path: () => `${API}/orders`,
      query: ['limit', 'offset', 'status'],
      auth: everyone,
      etags,
    },
    {
      endpoint: 'GET /orders/{id}',
      method: 'GET',
      path: (id) => `${API}/orders/${id}`,
      ids,
      auth: everyone,
      etags,
    },
    {
      endpoint: 'GET /orders/{id}/history',
      method: 'GET',
      path: (id) => `${API}/orders/${id}/history`,
      ids,
      auth: everyone,
      etags,
    },
  );
}

export function transitionRequests(w: FuzzWorld): Arbitrary<FuzzRequest> {
  const everyone = callers(['customer', 'other', 'admin']);
  const named = Object.fromEntries(ORDERS.map((o) => [o, w.orders[o]]));
  const transition = (action: string, weight = 2): EndpointSpec => ({
    endpoint: `POST /orders/{id}/${action}`,
    weight,
    method: 'POST',
    path: (id) => `${API}/orders/${id}/${action}`,
    ids: targets(named),
    auth: everyone,
    etags: w.etags.orders,
  });
  // The last ones are not actions at all: 404 for an unknown route.
  return group(
    transition('pay'),
    transition('ship'),
    transition('deliver'),
    transition('cancel'),
    transition('refund', 1),
    transition('PAY', 1),
  );
}

/**
 * Payments and refunds (API.md §9, §10). The world's paid order was paid by an admin's manual payment,
 * so a refund the fuzzer gets through is `succeeded` at once (no relay changes the database behind a
 * later request's back), and test payments are completed only through ids that cannot complete.
 */
export function paymentRequests(w: FuzzWorld): Arbitrary<FuzzRequest> {
  const everyone = callers(['customer', 'other', 'admin']);
  const anyone = callers(['customer', 'other', 'admin', 'victim']);
  const ids = targets(w.orders);
  const etags = w.etags.orders;
  const paidOrder = w.orders.paid;
  const provider: FieldSpec = {
    valid: fc.constantFrom('test', 'manual', 'stripe'),
    nearMiss: fc.constantFrom('', 'TEST', 'paypal', ' test', 'manual\u0000'),
    type: 'string',
    example: () => 'test',
  };
  const amountCents = int(1, Number.MAX_SAFE_INTEGER, 2500);
  return group(
    {
      endpoint: 'POST /orders/{id}/payments',
      weight: 3,
      method: 'POST',
      path: (id) => `${API}/orders/${id}/payments`,
      ids,
      auth: everyone,
      body: mutatedBody(
        { provider, amountCents, reference: text(1, 30, 'SEPA 1') },
        { partial: true },
      ),
      etags,
    },
    {
      endpoint: 'GET /orders/{id}/payments',
      method: 'GET',
      path: (id) => `${API}/orders/${id}/payments`,
      ids,
      query: ['limit', 'offset'],
      auth: everyone,
      etags,
    },
    {
      endpoint: 'GET /orders/{id}/payments/{paymentId}',
      method: 'GET',
      path: (id) => `${API}/orders/${paidOrder}/payments/${id}`,
      ids: targets({ manual: w.payments.manual, failed: w.payments.failed }),
      auth: everyone,
      etags,
    },
    {
      endpoint: 'POST /orders/{id}/payments/{paymentId}/cancel',
      method: 'POST',
      path: (id) => `${API}/orders/${paidOrder}/payments/${id}/cancel`,
      ids: targets({ manual: w.payments.manual }),
      auth: everyone,
      etags,
    },
    {
      endpoint: 'POST /orders/{id}/refunds',
      weight: 3,
      method: 'POST',
      path: (id) => `${API}/orders/${id}/refunds`,
      ids,
      auth: everyone,
      body: mutatedBody({
        amountCents: int(1, 3, 1),
        reason: text(1, 30, 'Fuzzed refund'),
      }),
      etags,
    },
    {
      endpoint: 'GET /orders/{id}/refunds',
      method: 'GET',
      path: (id) => `${API}/orders/${id}/refunds`,
      ids,
      query: ['limit', 'offset'],
      auth: everyone,
      etags,
    },
    {
      endpoint: 'POST /orders/{id}/refunds/{refundId}/retry',
      method: 'POST',
      path: (id) => `${API}/orders/${paidOrder}/refunds/${id}/retry`,
      ids: targets({ succeeded: w.refunds.succeeded }),
      auth: everyone,
      etags,
    },
    {
      endpoint: 'POST /orders/{id}/refunds/{refundId}/complete',
      method: 'POST',
      path: (id) => `${API}/orders/${paidOrder}/refunds/${id}/complete`,
      ids: targets({ succeeded: w.refunds.succeeded }),
      auth: everyone,
      etags,
    },
    {
      endpoint: 'POST /payments/test/{paymentId}/complete',
      weight: 2,
      method: 'POST',
      path: (id) => `${API}/payments/test/${id}/complete`,
      ids: targets({ failed: w.payments.failed, manual: w.payments.manual }),
      auth: anyone,
      body: mutatedBody({
        outcome: {
          valid: fc.constantFrom('succeeded', 'failed'),
          nearMiss: fc.constantFrom('', 'SUCCEEDED', 'canceled', 1),
          type: 'string',
          example: () => 'succeeded',
        },
      }),
      etags,
    },
    {
      endpoint: 'POST /payments/stripe/webhook',
      method: 'POST',
      path: () => `${API}/payments/stripe/webhook`,
      auth: fc.constant<Auth>('none'),
      body: fc.oneof(junkJson, rawBody),
      etags,
    },
  );
}
