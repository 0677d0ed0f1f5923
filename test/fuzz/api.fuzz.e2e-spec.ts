import fc, { type Arbitrary } from 'fast-check';
import {
  authRequests,
  productPatchFields,
  promotionFields,
  stockTakeFields,
  orderRequests,
  productRequests,
  promotionRequests,
  paymentRequests,
  transitionRequests,
  userRequests,
} from './endpoints';
import { checkProperty, type FuzzRequest, type Property } from './harness';
import { createWorld, type FuzzWorld } from './world';

/**
 * Property-based fuzzing of every endpoint (API.md §1) with generated bodies, headers and path
 * parameters; bodies draw on the per-field bad-value catalogue too (arbitraries.ts `badValues`),
 * which fields.fuzz.e2e-spec.ts walks systematically, one bad field at a time. Three properties, each checked per endpoint group:
 *   1. never a 5xx;
 *   2. every 4xx is an application/problem+json whose `status`, `code`, `requestId` and `instance`
 *      describe this very response and request;
 *   3. a rejected request changes nothing in the database (API.md §4's stored idempotent outcome
 *      being the one allowed exception).
 *
 * Seeds are fixed, so a run is reproducible; fast-check prints the seed and the shrunk request on
 * failure. For a longer exploratory session, FUZZ_SEED picks another seed, FUZZ_RUNS multiplies the
 * number of runs and FUZZ_STATS=1 prints what the requests reached (endpoint → status, code):
 *   FUZZ_SEED=7 FUZZ_RUNS=10 node --experimental-vm-modules node_modules/jest/bin/jest.js \
 *     --selectProjects e2e --testMatch '<rootDir>/test/fuzz/**\/*.e2e-spec.ts'
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20_251_122);
const SCALE = Number(process.env.FUZZ_RUNS ?? 1);

/**
 * Minimal counterexamples the fuzzer has found (with this or other seeds), replayed before the
 * generated requests on every run (fast-check `examples`), so that the fixed seed keeps failing
 * until the bug is fixed. Keep them afterwards: they then pass and guard against a regression.
 */
const API = '/api/v1';
const json = { 'Content-Type': 'application/json' };
const FOUND = {
  /** `currency: "eur"` passes validation (case-insensitive) but not the table's CHECK: 500. */
  lowercaseCurrency: {
    endpoint: 'POST /products',
    method: 'POST',
    path: `${API}/products`,
    auth: 'admin',
    headers: json,
    body: '{"sku":"0","slug":"a","name":"!","description":"","priceCents":0,"currency":"eur","stock":0,"active":false}',
  },
  /** Malformed percent-encoding in the path: Fastify's own 400, not a problem, no X-Request-Id. */
  badPercentEncoding: {
    endpoint: 'GET /orders/{id}/history',
    method: 'GET',
    target: 'junk',
    path: `${API}/orders/%zz/history`,
    auth: 'customer',
    headers: {},
  },
  /** A path parameter over 100 characters: Fastify's own 414, not a problem, no X-Request-Id. */
  overlongParameter: {
    endpoint: 'POST /orders/{id}/ship',
    method: 'POST',
    target: 'junk',
    path: `${API}/orders/${'a'.repeat(101)}/ship`,
    auth: 'admin',
    headers: {},
  },
  /**
   * A lone surrogate in `email`: validator.js's isEmail throws (encodeURI: URI malformed) instead
   * of refusing it: 500. Also PATCH /users/{id}.
   */
  loneSurrogateEmail: {
    endpoint: 'POST /auth/register',
    method: 'POST',
    path: `${API}/auth/register`,
    auth: 'none',
    headers: json,
    body: '{"email":"\\ud800","password":"a good long password","name":"Fuzz"}',
  },
  /** `items` holding an array: it passes validation and the service reads `productId` of it: 500. */
  nestedItemsArray: {
    endpoint: 'POST /orders',
    method: 'POST',
    path: `${API}/orders`,
    auth: 'customer',
    headers: json,
    body: '{"items":[[{"productId":"00000000-0000-4000-8000-000000000000","quantity":1}]]}',
  },
} satisfies Record<string, FuzzRequest>;

interface Group {
  name: string;
  requests: (w: FuzzWorld) => Arbitrary<FuzzRequest>;
  /** About 35 requests per endpoint, for each property. */
  numRuns: number;
  regressions?: FuzzRequest[];
}

const GROUPS: Group[] = [
  {
    name: 'auth (register, login)',
    requests: authRequests,
    numRuns: 70,
    regressions: [FOUND.loneSurrogateEmail],
  },
  { name: 'users (me, list, get, patch, delete)', requests: userRequests, numRuns: 175 },
  {
    name: 'products (create, list, get, patch, delete, stock: get, stock-take, adjustments)',
    requests: productRequests,
    numRuns: 210,
    regressions: [FOUND.lowercaseCurrency],
  },
  {
    name: 'promotions (create, list, get, patch, delete)',
    requests: promotionRequests,
    numRuns: 140,
  },
  {
    name: 'orders (create, list, get, history)',
    requests: orderRequests,
    numRuns: 140,
    regressions: [FOUND.badPercentEncoding, FOUND.nestedItemsArray],
  },
  {
    name: 'order transitions (pay, ship, deliver, cancel)',
    requests: transitionRequests,
    numRuns: 140,
    regressions: [FOUND.overlongParameter],
  },
  {
    name: 'payments and refunds (open, list, get, cancel, refund, retry, complete, test provider, Stripe webhook)',
    requests: paymentRequests,
    numRuns: 350,
  },
];

const PROPERTIES: { property: Property; sentence: string }[] = [
  { property: 'no 5xx', sentence: 'never answers with a 5xx' },
  {
    property: 'problem details',
    sentence: 'answers every 4xx with a catalogued problem+json naming this request',
  },
  {
    property: 'no state change',
    sentence: 'leaves the database unchanged when it rejects a request',
  },
];

describe('fuzzing the API with generated requests', () => {
  let world: FuzzWorld;
  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(() => world?.close());

  // The generators themselves: a body endpoint whose bodies came from another resource's fields
  // would be fuzzed only for unknown fields (PATCH /promotions once sent product fields).
  it('draws each body from the fields of its own endpoint', () => {
    const keysSent = (requests: Arbitrary<FuzzRequest>, endpoint: string): Set<string> => {
      const keys = new Set<string>();
      for (const r of fc.sample(requests, { seed: SEED, numRuns: 3000 })) {
        if (r.endpoint !== endpoint || r.body === undefined) continue;
        let body: unknown;
        try {
          body = JSON.parse(r.body);
        } catch {
          continue;
        }
        if (body && typeof body === 'object' && !Array.isArray(body))
          Object.keys(body).forEach((k) => keys.add(k));
      }
      return keys;
    };
    const cases = [
      {
        endpoint: 'PATCH /promotions/{id}',
        sent: keysSent(promotionRequests(world), 'PATCH /promotions/{id}'),
        own: Object.keys(promotionFields(world)),
        foreign: ['sku', 'slug', 'priceCents', 'currency'],
      },
      {
        endpoint: 'PATCH /products/{id}',
        sent: keysSent(productRequests(world), 'PATCH /products/{id}'),
        own: Object.keys(productPatchFields(world)),
        foreign: ['code', 'percentOff', 'usageLimit', 'perCustomerLimit'],
      },
      {
        endpoint: 'PUT /products/{id}/stock',
        sent: keysSent(productRequests(world), 'PUT /products/{id}/stock'),
        own: Object.keys(stockTakeFields),
        foreign: ['sku', 'priceCents', 'code', 'percentOff'],
      },
    ];
    for (const { endpoint, sent, own, foreign } of cases) {
      expect({ endpoint, missing: own.filter((k) => !sent.has(k)) }).toEqual({
        endpoint,
        missing: [],
      });
      expect({ endpoint, foreign: foreign.filter((k) => sent.has(k)) }).toEqual({
        endpoint,
        foreign: [],
      });
    }
  });

  GROUPS.forEach((group, g) => {
    describe(group.name, () => {
      PROPERTIES.forEach(({ property, sentence }, p) => {
        it(sentence, () =>
          checkProperty(world, group.requests(world), property, {
            seed: SEED + 10 * g + p,
            numRuns: Math.ceil(group.numRuns * SCALE),
            examples: group.regressions,
          }),
        );
      });
    });
  });
});
