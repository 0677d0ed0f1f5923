// npm run bench [-- --duration 30 --connections 20 --warmup 2 --soak 60 --profile]
//
// Starts the built service on a fresh database, seeds it through the API, drives the scenarios
// against it and a reference server with autocannon (each run in its own process), checks invariants
// against the database after each scenario, prints the goal ratios, measures the database's own
// ceiling with pgbench and the service's memory over a mixed soak, and writes
// bench/results/<date>.md and a chart, <date>.svg. With --profile it instead runs scenario (a)
// against the service under `node --cpu-prof` and summarises where the CPU time goes.
// See bench/README.md.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import {
  cleanup,
  cpuTimeMs,
  expectApi,
  freshDatabase,
  onCleanup,
  postgresCpuMs,
  postmasterPid,
  ROOT,
  rssKb,
  runLoad,
  startReference,
  startOtlpSink,
  startService,
} from './harness.mjs';
import { checkoutScenarios } from './checkout-scenarios.mjs';
import { goalRatios, ratioSection } from './goals.mjs';
import {
  ceilingLine,
  chart,
  header,
  HOT_CONNECTIONS,
  invariantsSection,
  machine,
  mb,
  memoryLine,
  PGBENCH_THREADS,
  resultsTable,
  standbyLine,
  tracingLine,
  writeResult,
} from './report.mjs';
import { BENCH_STRIPE_KEY, BENCH_WEBHOOK_SECRET, startStripeDouble } from './stripe-double.mjs';
import { pgbench, pgbenchVersion, scripts as pgbenchScripts } from './db-ceiling.mjs';
import { measureStandbyRead } from './standby-read.mjs';
import { aggregateProfile, formatSummary } from './profile-summary.mjs';
import { runWrk } from './wrk.mjs';

const USAGE = `Usage: npm run bench [-- options]
  --duration <s>     measured seconds per scenario and round (default 8)
  --rounds <n>       times the scenario list runs, interleaved, a goal being the median of its
                     per-round ratios (default 5; (e) runs once: it sells out)
  --warmup <s>       discarded warm-up seconds before each scenario but (e) (default 5; 0: none)
  --connections <n>  concurrent connections of the load generator (default 20)
  --products <n>     catalogue size for the order scenarios (default 200)
  --soak <s>         seconds of the mixed memory soak at the end (default 60; 0: no soak)
  --profile          only some scenarios, with the service under --cpu-prof; summarise the profile
                     of each measured run
  --scenarios <keys> only these scenarios, comma-separated (e.g. a,a-ref,f): prints their table and
                     the goals they cover, writes no file; with --profile, which ones (default a).
                     Keys: a, a-ref, a-wrk, a-ref-wrk (with wrk), b, c, d, d-ref, d-key (keyed),
                     d-promo (promotion code), e, e-ample, e-ample-key (keyed), f, a-otel, d-otel
                     (tracing on: a second service, default sampler, local OTLP sink), pay (signed
                     Stripe payment_intent.succeeded events; prepares its orders and payments first)
  --no-standby       skip the read-from-a-standby measurement (a private PostgreSQL 15 pair)
  --no-ceiling       skip pgbench's database ceiling
Environment: DATABASE_URL (optional; otherwise the service's embedded PostgreSQL on a temp dir),
PGBENCH (the pgbench binary for the database ceiling; default pgbench on the PATH, skipped if absent),
WRK (the wrk binary; default wrk on the PATH), PG_STANDBY_BIN (PostgreSQL 15's server binaries for
the standby read; default /usr/lib/postgresql/15/bin).`;

const HOT_STOCK = 100;
/** Customers the keyed checkouts rotate over (see seed). */
const KEYED_SHOPPERS = 200;
/** The bench's Stripe account: the measured service verifies the events signed with its secret. */
const STRIPE_ENV = {
  STRIPE_SECRET_KEY: BENCH_STRIPE_KEY,
  STRIPE_WEBHOOK_SECRET: BENCH_WEBHOOK_SECRET,
};
const PLENTY = 1_000_000;
const PROFILE_ROOT = '/tmp/bench-prof';

function parseOptions() {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '5' },
      connections: { type: 'string', default: '20' },
      products: { type: 'string', default: '200' },
      soak: { type: 'string', default: '60' },
      profile: { type: 'boolean', default: false },
      scenarios: { type: 'string' },
      'no-standby': { type: 'boolean', default: false },
      'no-ceiling': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const int = (name, min) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) {
      console.error(`--${name} must be an integer >= ${min}\n\n${USAGE}`);
      process.exit(2);
    }
    return n;
  };
  return {
    duration: int('duration', 1),
    rounds: int('rounds', 1),
    warmup: int('warmup', 0),
    connections: int('connections', 1),
    products: int('products', 1),
    soak: int('soak', 0),
    profile: values.profile,
    scenarios: values.scenarios?.split(',').map((k) => k.trim()),
    standby: !values['no-standby'],
    ceiling: !values['no-ceiling'],
  };
}

const fmt = (n, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const check = (ok, text) => ({ ok, text });

/** Runs `fn` over `items` with at most `limit` calls in flight; results keep the items' order. */
async function inParallel(items, limit, fn) {
  const out = [];
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: limit }, lane));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Seeding

/**
 * Two accounts and the catalogue, through the API. The admin registers as a customer and is promoted
 * with SQL: `node dist/src/cli/admin-create.js` would reuse the embedded cluster the service is
 * running and then stop it on exit, taking the database away from the service.
 */
async function seed(base, sql, productCount) {
  const password = randomBytes(12).toString('base64url');
  const accounts = { customer: 'bench-customer@example.com', admin: 'bench-admin@example.com' };
  for (const [role, email] of Object.entries(accounts)) {
    await expectApi(201, base, 'POST', '/api/v1/auth/register', {
      body: { email, password, name: `Bench ${role}` },
    });
  }
  await sql.query(`UPDATE users SET role = 'admin' WHERE email = $1`, [accounts.admin]);
  const token = async (email) =>
    (await expectApi(200, base, 'POST', '/api/v1/auth/login', { body: { email, password } })).body
      .accessToken;
  const customer = await token(accounts.customer);
  const admin = await token(accounts.admin);
  // The keyed checkouts' shoppers: a storefront's keys are spread over its customers, a few each
  // (one customer holding every key would make the service count thousands of live keys per claim,
  // and reach IDEMPOTENCY_MAX_KEYS_PER_USER).
  const shopperEmails = Array.from(
    { length: KEYED_SHOPPERS },
    (_, i) => `bench-shopper-${i}@example.com`,
  );
  const shoppers = await inParallel(shopperEmails, 8, async (email) => {
    await expectApi(201, base, 'POST', '/api/v1/auth/register', {
      body: { email, password, name: 'Bench shopper' },
    });
    return token(email);
  });
  const shopperIds = (
    await sql.query('SELECT id FROM users WHERE email = ANY($1)', [shopperEmails])
  ).rows.map((r) => r.id);

  const create = async (tag, stock) => {
    const res = await expectApi(201, base, 'POST', '/api/v1/products', {
      token: admin,
      body: {
        sku: `BENCH-${tag}`.toUpperCase(),
        slug: `bench-${tag}`,
        name: `Bench product ${tag}`,
        priceCents: 1999,
        currency: 'EUR',
        stock,
        active: true,
      },
    });
    return { id: res.body.id, stock };
  };
  const tags = Array.from({ length: productCount }, (_, i) => String(i + 1).padStart(4, '0'));
  const products = await inParallel(tags, 8, (tag) => create(tag, PLENTY));
  const hot = await create('hot', HOT_STOCK);
  const hotAmple = await create('hot-ample', PLENTY);
  // A code every checkout of d-promo may use: 10% off, a use limit no run reaches.
  const promotion = (
    await expectApi(201, base, 'POST', '/api/v1/promotions', {
      token: admin,
      body: { code: 'BENCH10', percentOff: 10, usageLimit: 1_000_000_000, active: true },
    })
  ).body;
  // The reference server places its orders for this account (it does not verify tokens).
  const { rows } = await sql.query('SELECT id FROM users WHERE email = $1', [accounts.customer]);
  return {
    customer,
    customerId: rows[0].id,
    admin,
    products,
    hot,
    hotAmple,
    promotion,
    shoppers,
    shopperIds,
  };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/** The problem code of the first answer with `status` (samples are truncated: no JSON.parse). */
const problemCode = (result, status) => /"code":"(\w+)"/.exec(result.samples[status])?.[1];

const orderLine = (productId) => JSON.stringify({ items: [{ productId, quantity: 1 }] });

/**
 * The database-side invariants of placing orders, shared by the scenarios and pgbench: `counts()`
 * before, then `check(before, expectedOrders)` after.
 */
function orderChecks(sql, seeded) {
  const { products, hot, hotAmple } = seeded;
  const initialStock = new Map([...products, hot, hotAmple].map((p) => [p.id, p.stock]));
  const counts = async () =>
    (
      await sql.query(
        `SELECT (SELECT count(*) FROM orders)::int AS orders,
                (SELECT count(*) FROM order_history WHERE action = 'place')::int AS placed,
                (SELECT count(*) FROM outbox_events WHERE type = 'order.created')::int AS events`,
      )
    ).rows[0];
  /**
   * Orders created = `expected` (the 201s), each with its 'place' history entry and order.created
   * event; and for every product: initial stock - stock = units in order_items, never below 0.
   */
  const checkAfter = async (before, expected, what = '201s') => {
    const after = await counts();
    const created = after.orders - before.orders;
    const placed = after.placed - before.placed;
    const events = after.events - before.events;
    const { rows } = await sql.query(
      `SELECT p.id, p.stock::int AS stock, COALESCE(SUM(oi.quantity), 0)::int AS ordered
         FROM products p LEFT JOIN order_items oi ON oi.product_id = p.id GROUP BY p.id`,
    );
    const wrong = rows.filter((r) => initialStock.get(r.id) - r.stock !== r.ordered);
    const negative = rows.filter((r) => r.stock < 0);
    return {
      rows,
      checks: [
        check(created === expected, `orders created ${created} = ${what} ${expected}`),
        check(
          placed === created && events === created,
          `'place' history entries ${placed}, order.created events ${events}`,
        ),
        check(
          wrong.length === 0,
          wrong.length === 0
            ? `initial - current stock = units ordered, all ${rows.length} products`
            : `stock arithmetic broken for ${wrong.length} product(s)`,
        ),
        check(negative.length === 0, 'no stock below 0'),
      ],
    };
  };
  return { counts, checkAfter };
}

/**
 * The scenarios, in running order. Each has a `title`, a `short` one for the chart, a load `spec` (for load-worker.mjs), the statuses it may
 * answer, whether it gets a warm-up, optional `connections` (default --connections) and optional
 * `before(server)`/`check(result, before, server)` hooks for the invariants (`server`: the one the
 * scenario ran against, `{ base, pid }`).
 */
function scenarios({ sql, seeded, etag, referenceBody, referenceOrder, wrk, extras = {} }) {
  const { customer, admin, products, hot, hotAmple } = seeded;
  const one = `/api/v1/products/${products[0].id}`;
  const { counts, checkAfter } = orderChecks(sql, seeded);
  const customerHeaders = {
    authorization: `Bearer ${customer}`,
    'content-type': 'application/json',
  };
  const orderInvariants = (result, before) => checkAfter(before, result.statusCodes[201] ?? 0);
  /**
   * The service's placement statements (order_placement_batch_size: one observation per statement,
   * its size the checkouts in it), to show how many checkouts went together.
   */
  const placements = async (server) => {
    const text = await (await fetch(`${server.base}/metrics`)).text();
    const value = (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return {
      statements: value('order_placement_batch_size_count'),
      checkouts: value('order_placement_batch_size_sum'),
    };
  };
  /** Every checkout answered went through exactly one placement statement; how many shared one. */
  const placementCheck = async (result, before, server) => {
    const after = await placements(server);
    const statements = after.statements - before.statements;
    const checkouts = after.checkouts - before.checkouts;
    return check(
      checkouts === result.responses,
      `${fmt(checkouts)} checkouts in ${fmt(statements)} placement statements ` +
        `(${fmt(checkouts / statements, 2)} per statement)`,
    );
  };
  const withPlacements = (orderCheck) => ({
    before: async (server) => ({ rows: await counts(), placements: await placements(server) }),
    check: async (result, before, server) => [
      ...(await orderCheck(result, before.rows)),
      await placementCheck(result, before.placements, server),
    ],
  });
  const spread = {
    method: 'POST',
    path: '/api/v1/orders',
    headers: customerHeaders,
    // Not products[0]: an order bumps its product's version, and b (every round) and f use
    // products[0]'s ETag.
    bodies: products.slice(1).map((p) => orderLine(p.id)),
  };

  const productVersion = async (id) =>
    (await sql.query('SELECT version FROM products WHERE id = $1', [id])).rows[0].version;

  const list = [
    {
      key: 'a',
      title: 'GET /products/{id}',
      short: 'GET one product',
      target: 'service',
      spec: { method: 'GET', path: one },
      expect: [200],
      warmup: true,
    },
    {
      key: 'a-ref',
      title: 'GET /products/{id}, reference Fastify + pg',
      short: 'GET one product, reference',
      target: 'reference',
      spec: { method: 'GET', path: one },
      expect: [200],
      warmup: true,
      check: async () => [
        check(
          referenceBody.same,
          referenceBody.same
            ? 'same body and ETag as the service'
            : 'body or ETag differs from the service',
        ),
      ],
    },
    ...(wrk
      ? [
          {
            key: 'a-wrk',
            title: 'GET /products/{id}, wrk',
            short: 'GET one product, wrk',
            target: 'service',
            generator: 'wrk',
            spec: { method: 'GET', path: one },
            expect: [200],
            warmup: true,
          },
          {
            key: 'a-ref-wrk',
            title: 'GET /products/{id}, reference Fastify + pg, wrk',
            short: 'GET one product, reference, wrk',
            target: 'reference',
            generator: 'wrk',
            spec: { method: 'GET', path: one },
            expect: [200],
            warmup: true,
          },
        ]
      : []),
    {
      key: 'b',
      title: 'GET /products/{id}, If-None-Match → 304',
      short: 'GET one product, 304',
      target: 'service',
      spec: { method: 'GET', path: one, headers: { 'if-none-match': etag } },
      expect: [304],
      warmup: true,
    },
    {
      key: 'c',
      title: 'GET /products?limit=20',
      short: 'GET a list of 20',
      target: 'service',
      spec: { method: 'GET', path: '/api/v1/products?limit=20' },
      expect: [200],
      warmup: true,
    },
    {
      key: 'd',
      title: `POST /orders, 1 line, rotating over ${products.length - 1} products`,
      short: 'POST order, spread',
      target: 'service',
      spec: spread,
      expect: [201],
      warmup: true,
      ...withPlacements(async (result, before) => (await orderInvariants(result, before)).checks),
    },
    {
      key: 'd-ref',
      title: `POST /orders, 1 line, rotating over ${products.length - 1} products, reference Fastify + pg`,
      short: 'POST order, spread, reference',
      target: 'reference',
      spec: spread,
      expect: [201],
      warmup: true,
      before: counts,
      check: async (result, before) => [
        ...(await orderInvariants(result, before)).checks,
        check(referenceOrder.same, referenceOrder.text),
      ],
    },
    {
      key: 'e',
      title: `POST /orders on one hot product (stock ${HOT_STOCK})`,
      short: `POST order, hot, stock ${HOT_STOCK}`,
      target: 'service',
      spec: {
        method: 'POST',
        path: '/api/v1/orders',
        headers: customerHeaders,
        body: orderLine(hot.id),
      },
      expect: [201, 409],
      // A warm-up, or a second round, would sell the hot stock before the measured run.
      warmup: false,
      once: true,
      before: counts,
      check: async (result, before) => {
        const { rows, checks } = await orderInvariants(result, before);
        const sold = result.statusCodes[201] ?? 0;
        const hotStock = rows.find((r) => r.id === hot.id).stock;
        const code = problemCode(result, 409);
        return [
          ...checks,
          check(
            sold === Math.min(HOT_STOCK, result.responses),
            `exactly ${Math.min(HOT_STOCK, result.responses)} sold (201s: ${sold})`,
          ),
          check(hotStock === HOT_STOCK - sold && hotStock >= 0, `hot stock now ${hotStock}`),
          check(
            code === undefined || code === 'INSUFFICIENT_STOCK',
            `409 code ${code ?? '(none)'}`,
          ),
        ];
      },
    },
    {
      key: 'e-ample',
      title: `POST /orders on one hot product (stock ${fmt(PLENTY)})`,
      short: 'POST order, hot, ample stock',
      target: 'service',
      spec: {
        method: 'POST',
        path: '/api/v1/orders',
        headers: customerHeaders,
        body: orderLine(hotAmple.id),
      },
      connections: HOT_CONNECTIONS,
      expect: [201],
      warmup: true,
      ...withPlacements(async (result, before) => (await orderInvariants(result, before)).checks),
    },
    {
      key: 'f',
      title: 'PATCH /products/{id}, stale If-Match → 412',
      short: 'PATCH, stale If-Match, 412',
      target: 'service',
      spec: {
        method: 'PATCH',
        path: one,
        headers: {
          authorization: `Bearer ${admin}`,
          'content-type': 'application/json',
          'if-match': '"stale"',
        },
        body: JSON.stringify({ name: 'x' }),
      },
      expect: [412],
      warmup: true,
      before: () => productVersion(products[0].id),
      check: async (result, before) => {
        const after = await productVersion(products[0].id);
        return [
          check(after === before, `version unchanged (${before} → ${after})`),
          check(
            problemCode(result, 412) === 'PRECONDITION_FAILED',
            `412 code ${problemCode(result, 412)}`,
          ),
        ];
      },
    },
  ];
  const byKey = new Map(list.map((x) => [x.key, x]));
  // Tracing on: the same requests against a second service with OpenTelemetry (its default
  // sampler), exporting to a local OTLP sink: each run must have exported something.
  const traced = (key, extra) => {
    const plain = byKey.get(key);
    return {
      ...plain,
      ...extra,
      key: `${key}-otel`,
      title: `${plain.title}, tracing on`,
      short: `${plain.short}, tracing on`,
      target: 'traced',
      before: async (server) => ({
        plain: await plain.before?.(server),
        exports: extras.sink.received().exports,
      }),
      check: async (result, before, server) => {
        // The batch span processor exports every 5 s (or every 512 spans).
        for (let i = 0; i < 60 && extras.sink.received().exports === before.exports; i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        const exported = extras.sink.received().exports - before.exports;
        return [
          ...((await plain.check?.(result, before.plain, server)) ?? []),
          check(exported > 0, `the OTLP sink received ${exported} exports`),
        ];
      },
    };
  };
  const more = checkoutScenarios({
    sql,
    seeded,
    check,
    spread,
    hotAmpleSpec: byKey.get('e-ample').spec,
    hotConnections: HOT_CONNECTIONS,
    counts,
    orderInvariants,
    extras,
  });
  for (const x of [...more, traced('a'), traced('d', { once: true })]) byKey.set(x.key, x);
  // Each goal's two sides next to each other in a round (the machine drifts).
  const order = [
    'a',
    'a-otel',
    'a-ref',
    'a-wrk',
    'a-ref-wrk',
    'b',
    'c',
    'f',
    'd',
    'd-key',
    'd-promo',
    'pay',
    'd-ref',
    'd-otel',
    'e',
    'e-ample',
    'e-ample-key',
  ];
  return order.filter((key) => byKey.has(key)).map((key) => byKey.get(key));
}

/**
 * The memory soak: every connection sends, in turn, a read of one product (rotating over the
 * catalogue), a read of the list, an order (rotating) and a PATCH with a stale If-Match on the hot
 * product (sold out by then, so no order changes its version).
 */
function soakScenario({ sql, seeded, seconds }) {
  const { customer, admin, products, hot } = seeded;
  const { counts, checkAfter } = orderChecks(sql, seeded);
  const hotVersion = async () =>
    (await sql.query('SELECT version FROM products WHERE id = $1', [hot.id])).rows[0].version;
  return {
    key: 'soak',
    title: 'Mixed soak: GET one, GET list, POST order, stale PATCH, in turn',
    short: 'mixed soak',
    target: 'service',
    duration: seconds,
    spec: {
      requests: [
        { method: 'GET', path: '/', paths: products.map((p) => `/api/v1/products/${p.id}`) },
        { method: 'GET', path: '/api/v1/products?limit=20' },
        {
          method: 'POST',
          path: '/api/v1/orders',
          headers: { authorization: `Bearer ${customer}`, 'content-type': 'application/json' },
          bodies: products.map((p) => orderLine(p.id)),
        },
        {
          method: 'PATCH',
          path: `/api/v1/products/${hot.id}`,
          headers: {
            authorization: `Bearer ${admin}`,
            'content-type': 'application/json',
            'if-match': '"stale"',
          },
          body: JSON.stringify({ name: 'x' }),
        },
      ],
    },
    expect: [200, 201, 412],
    warmup: false,
    before: async () => ({ orders: await counts(), version: await hotVersion() }),
    check: async (result, before) => {
      const { checks } = await checkAfter(before.orders, result.statusCodes[201] ?? 0);
      const version = await hotVersion();
      return [
        ...checks,
        check(version === before.version, `hot product version unchanged (${version})`),
        check(
          problemCode(result, 412) === 'PRECONDITION_FAILED',
          `412 code ${problemCode(result, 412)}`,
        ),
      ];
    },
  };
}

/** Checks every scenario gets: only the expected statuses, and every request answered. */
function commonChecks(scenario, result) {
  const unexpected = Object.keys(result.statusCodes).filter(
    (code) => !scenario.expect.includes(Number(code)),
  );
  return [
    check(
      unexpected.length === 0,
      unexpected.length === 0
        ? `all ${scenario.expect.join('/')}`
        : `unexpected statuses: ${unexpected.join(', ')}`,
    ),
    check(
      result.errors === 0 && result.unanswered === 0,
      `socket errors ${result.errors}, timeouts ${result.timeouts}, unanswered ${result.unanswered}`,
    ),
  ];
}

/**
 * Runs one scenario (warm-up, measured run, invariants) against `servers[scenario.target]`
 * ({ base, pid }), printing progress. Also measures the server process's CPU time per request.
 */
async function runScenario(scenario, servers, opts, round = '') {
  const server = servers[scenario.target];
  const connections = scenario.connections ?? opts.connections;
  const duration = scenario.duration ?? opts.duration;
  const label = `[${scenario.key}] ${scenario.title}${round}`;
  // A scenario whose requests are used up (pay: one event per order) prepares them for each run.
  const specFor = async (seconds) => ({
    url: server.base,
    connections,
    ...(scenario.prepare ? await scenario.prepare(seconds) : scenario.spec),
  });
  const load =
    scenario.generator === 'wrk'
      ? (s) => runWrk(s) // no progress ticks: wrk reports at the end
      : (s, onTick) => runLoad(s, onTick);
  if (scenario.warmup && opts.warmup > 0) {
    console.log(`${label}: warm-up ${opts.warmup} s`);
    const warm = await load({ ...(await specFor(opts.warmup)), duration: opts.warmup }, () => {});
    scenario.afterWarmup?.(warm);
  }
  const spec = await specFor(duration);
  const before = await scenario.before?.(server);
  console.log(`${label}: ${duration} s, ${connections} connections`);
  // The measured window in the CPU profiler's clock (µs of CLOCK_MONOTONIC), for --profile.
  const window = { from: process.hrtime.bigint() / 1000n };
  const cpuBefore = await cpuTimeMs(server.pid);
  const dbCpuBefore = postmaster ? await postgresCpuMs(postmaster) : NaN;
  // Without a terminal, about ten progress lines per run.
  const every = Math.ceil(duration / 10);
  const result = await load({ ...spec, duration }, ({ second, counter }) => {
    const line = `  ${second}/${duration} s  ${fmt(counter)} req/s${scenario.onTick?.() ?? ''}`;
    if (process.stdout.isTTY) process.stdout.write(`\r${line}   `);
    else if (second % every === 0 || second === duration) console.log(line);
  });
  result.cpuUsPerRequest = ((await cpuTimeMs(server.pid)) - cpuBefore) * (1000 / result.responses);
  // The database's side of each request (NaN when it runs elsewhere): every process of the server.
  result.dbCpuUsPerRequest =
    ((postmaster ? await postgresCpuMs(postmaster) : NaN) - dbCpuBefore) *
    (1000 / result.responses);
  window.to = process.hrtime.bigint() / 1000n;
  if (process.stdout.isTTY) process.stdout.write('\n');
  const checks = [
    ...commonChecks(scenario, result),
    ...((await scenario.check?.(result, before, server, spec)) ?? []),
  ];
  const failed = checks.filter((c) => !c.ok);
  console.log(
    `  ${fmt(result.rps)} req/s, p50 ${fmt(result.latency.p50, 2)} ms, ` +
      `p99 ${fmt(result.latency.p99, 2)} ms, server CPU ${fmt(result.cpuUsPerRequest)} µs/request, ` +
      `PostgreSQL ${fmt(result.dbCpuUsPerRequest)}; ` +
      (failed.length ? `FAILED: ${failed.map((c) => c.text).join('; ')}` : 'invariants hold'),
  );
  return { scenario, result, checks, window, connections };
}

/**
 * One run from the rounds of a scenario: responses, statuses and CPU summed, req/s over the summed
 * time, latency percentiles of the median round (by req/s); each round's result is kept in
 * `rounds` for the goals. A check holds when it held in every round.
 */
function mergeRounds(list) {
  if (list.length === 1) return { ...list[0], rounds: [list[0].result] };
  const results = list.map((r) => r.result);
  const sum = (f) => results.reduce((total, r) => total + f(r), 0);
  const responses = sum((r) => r.responses);
  const elapsedS = sum((r) => r.elapsedS);
  const statusCodes = {};
  for (const r of results) {
    for (const [code, n] of Object.entries(r.statusCodes))
      statusCodes[code] = (statusCodes[code] ?? 0) + n;
  }
  const median = [...results].sort((x, y) => x.rps - y.rps)[Math.floor(results.length / 2)];
  const result = {
    ...median,
    elapsedS,
    responses,
    rps: responses / elapsedS,
    statusCodes,
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    unanswered: sum((r) => r.unanswered),
    cpuUsPerRequest: sum((r) => r.cpuUsPerRequest * r.responses) / responses,
    dbCpuUsPerRequest: sum((r) => r.dbCpuUsPerRequest * r.responses) / responses,
  };
  const checks = list[0].checks.map((_, i) => {
    const each = list.map((r) => r.checks[i]);
    const failed = each.filter((c) => !c.ok);
    return failed.length
      ? check(false, failed.map((c) => c.text).join(', '))
      : check(true, `${each.at(-1).text} (all ${list.length} rounds)`);
  });
  return { ...list[0], result, checks, rounds: results };
}

// ---------------------------------------------------------------------------------------------
// Main

/**
 * The reference's 201 against the service's for the same order: same members in the same order,
 * same lines, total, status, allowedTransitions, version and hold (expiresAt - createdAt).
 */
function sameOrder(service, reference) {
  const shape = (o) =>
    JSON.stringify({
      members: Object.keys(o),
      lineMembers: o.items.map((i) => Object.keys(i)),
      ...o,
      id: undefined,
      holdS: Math.round((Date.parse(o.expiresAt) - Date.parse(o.createdAt)) / 1000),
      expiresAt: undefined,
      createdAt: undefined,
      updatedAt: undefined,
    });
  const same = shape(service.body) === shape(reference.body);
  return {
    same,
    text: same
      ? "same order representation as the service's 201"
      : `order differs from the service's 201: ${shape(reference.body)} vs ${shape(service.body)}`,
  };
}

/** pgbench, spread over the catalogue then on the hot product, with the order invariants. */
async function dbCeiling(opts, { sql, url, seeded }) {
  const version = await pgbenchVersion();
  if (!version) {
    const skipped = 'pgbench not found; install the postgresql-client package';
    console.log(`[pgbench] ${skipped}: skipped`);
    return { ceiling: { skipped }, checks: [] };
  }
  const { counts, checkAfter } = orderChecks(sql, seeded);
  const texts = pgbenchScripts({
    productIds: seeded.products.map((p) => p.id),
    hotId: seeded.hotAmple.id,
    customerId: seeded.customerId,
  });
  const ceiling = { version };
  const checks = [];
  for (const kind of ['spread', 'hot']) {
    console.log(`[pgbench] ${kind}: ${opts.duration} s, ${HOT_CONNECTIONS} clients`);
    const before = await counts();
    const dbCpuBefore = postmaster ? await postgresCpuMs(postmaster) : NaN;
    const result = await pgbench(url, texts[kind], {
      clients: HOT_CONNECTIONS,
      threads: PGBENCH_THREADS,
      duration: opts.duration,
    });
    result.dbCpuUsPerTransaction =
      ((postmaster ? await postgresCpuMs(postmaster) : NaN) - dbCpuBefore) *
      (1000 / result.transactions);
    const after = await checkAfter(before, result.transactions, 'transactions');
    checks.push(
      ...after.checks.map((c) => ({ ...c, text: `${kind}: ${c.text}` })),
      check(result.failed === 0, `${kind}: failed transactions ${result.failed}`),
    );
    ceiling[kind] = result;
    console.log(`  ${fmt(result.tps)} tps, average latency ${fmt(result.latencyMs, 2)} ms`);
  }
  return { ceiling, checks };
}

/** The soak against the service, with its RSS sampled every second. */
async function soak(opts, { service, sql, seeded }) {
  const scenario = soakScenario({ sql, seeded, seconds: opts.soak });
  const before = await rssKb(service.pid);
  const samples = [{ second: 0, kb: before }];
  let last = before;
  const started = Date.now();
  const timer = setInterval(() => {
    void rssKb(service.pid).then(
      (kb) => {
        last = kb;
        samples.push({ second: Math.round((Date.now() - started) / 1000), kb });
      },
      () => undefined,
    );
  }, 1000);
  scenario.onTick = () => `, service RSS ${mb(last)}`;
  let run;
  try {
    run = await runScenario(scenario, { service }, opts);
  } finally {
    clearInterval(timer);
  }
  const after = await rssKb(service.pid);
  samples.push({ second: Math.round((Date.now() - started) / 1000), kb: after });
  const memory = { before, after, peak: Math.max(...samples.map((x) => x.kb)), samples };
  console.log(
    `  service RSS before ${mb(before)}, peak ${mb(memory.peak)}, after ${mb(after)} ` +
      `(growth ${mb(after - before)})`,
  );
  return { run, memory };
}

/**
 * What the selected scenarios need besides the service and the reference, started before the
 * rounds: for a-otel/d-otel the OTLP sink (`extras.sink`) and the traced service (returned as
 * `traced`); for pay the Stripe double and the service that opens payments through it
 * (`extras.opener`).
 */
async function startExtras(selected, url, extras) {
  const started = {};
  if (selected.some((s) => s.target === 'traced')) {
    // The cost of tracing: a second service on the same database with OpenTelemetry on (its default
    // sampler), exporting to a local OTLP/HTTP sink; it idles while the others run.
    extras.sink = await startOtlpSink();
    started.traced = await startService({
      databaseEnv: { DATABASE_URL: url },
      extraEnv: {
        OTEL_EXPORTER_OTLP_ENDPOINT: extras.sink.url,
        OTEL_SERVICE_NAME: 'order-service-bench',
      },
    });
  }
  if (selected.some((s) => s.key === 'pay')) {
    // Opening a Stripe payment calls Stripe: a service pointed at stripe-double.mjs opens them
    // (STRIPE_API_BASE is refused under NODE_ENV=production); the measured service only verifies
    // and applies the signed events, which calls nobody.
    const double = await startStripeDouble();
    extras.opener = await startService({
      databaseEnv: { DATABASE_URL: url },
      extraEnv: { NODE_ENV: 'test', ...STRIPE_ENV, STRIPE_API_BASE: double.url },
    });
  }
  return started;
}

/** The benchmark proper: every scenario, the table, bench/results/<date>.md and <date>.svg. */
/** The bench database's postmaster when it runs here (its CPU per request is measured), or undefined. */
let postmaster;

async function benchmark(opts, { service, sql, url, seeded, m }) {
  postmaster = await postmasterPid(sql);
  const reference = await startReference(url, { customerId: seeded.customerId });
  const one = `/api/v1/products/${seeded.products[0].id}`;
  const fromService = await expectApi(200, service.base, 'GET', one);
  const fromReference = await expectApi(200, reference.base, 'GET', one);
  const referenceBody = {
    same:
      JSON.stringify(fromService.body) === JSON.stringify(fromReference.body) &&
      fromService.headers.get('etag') === fromReference.headers.get('etag'),
  };
  const etag = fromService.headers.get('etag');
  // One order each, on the same product (the stock arithmetic holds: both write order_items). Not
  // products[0]: an order bumps its product's version, and b and f use products[0]'s ETag.
  const order = { token: seeded.customer, body: JSON.parse(orderLine(seeded.hotAmple.id)) };
  const referenceOrder = sameOrder(
    await expectApi(201, service.base, 'POST', '/api/v1/orders', order),
    await expectApi(201, reference.base, 'POST', '/api/v1/orders', order),
  );

  const runs = [];
  // Started below when a selected scenario needs them: the OTLP sink and the traced service, the
  // Stripe double and the service that opens payments through it.
  const extras = {};
  const all = scenarios({
    sql,
    seeded,
    etag,
    referenceBody,
    referenceOrder,
    wrk: Boolean(m.wrk),
    extras,
  });
  const unknown = opts.scenarios?.filter((key) => !all.some((s) => s.key === key)) ?? [];
  if (unknown.length) throw new Error(`--scenarios: no scenario ${unknown.join(', ')}`);
  const selected = all.filter((s) => !opts.scenarios || opts.scenarios.includes(s.key));
  const servers = { service, reference, ...(await startExtras(selected, url, extras)) };
  // Rounds, interleaved: the machine's speed drifts (other tenants, CPU boost), and a pair measured
  // minutes apart would compare two machines. Each goal compares its pair round by round.
  const rounds = new Map(selected.map((s) => [s.key, []]));
  for (let round = 1; round <= opts.rounds; round++) {
    for (const scenario of selected) {
      if (round > 1 && scenario.once) continue;
      const label = opts.rounds > 1 ? ` (round ${round}/${opts.rounds})` : '';
      const warmup = round === 1 ? opts.warmup : 0;
      rounds
        .get(scenario.key)
        .push(await runScenario(scenario, servers, { ...opts, warmup }, label));
    }
  }
  runs.push(...selected.map((s) => mergeRounds(rounds.get(s.key))));
  const exported = extras.sink?.received();
  // Neither their CPU nor their pools should weigh on what follows.
  await servers.traced?.stop();
  await extras.opener?.stop();
  if (opts.scenarios) {
    // A partial run, to iterate on one ratio: no soak, ceiling, standby or file (its invariants too).
    console.log(
      [
        '',
        ...header('Order service benchmark (partial: --scenarios)', m, opts),
        ...resultsTable(runs),
        '',
        ...ratioSection(goalRatios(runs)),
        '',
        ...invariantsSection(runs),
      ].join('\n'),
    );
    return runs.every((r) => r.checks.every((c) => c.ok));
  }

  let memory;
  if (opts.soak > 0) {
    const soaked = await soak(opts, { service, sql, seeded });
    runs.push(soaked.run);
    memory = soaked.memory;
  } else {
    console.log('[soak] skipped (--soak 0)');
  }

  const { ceiling, checks: ceilingChecks } = opts.ceiling
    ? await dbCeiling(opts, { sql, url, seeded })
    : { ceiling: { skipped: '--no-ceiling' }, checks: [] };
  // Reads through a streaming standby against the primary (issue 24), on a private pair of its own.
  const standby = opts.standby
    ? await measureStandbyRead({
        duration: opts.duration,
        rounds: Math.min(opts.rounds, 3),
        connections: opts.connections,
      })
    : { skipped: '--no-standby' };

  const date = new Date().toISOString().slice(0, 10);
  const ratios = goalRatios(runs, { ceiling, standby });
  const soakRun = runs.find((r) => r.scenario.key === 'soak');
  const report = [
    ...header(`Order service benchmark, ${date}`, m, opts),
    ...resultsTable(runs),
    '',
    `![The goal ratios against their goals, and req/s per scenario](${date}.svg)`,
    '',
    ...ratioSection(ratios),
    '',
    '## Context',
    '',
    tracingLine(runs, exported),
    '',
    ceilingLine(ceiling, runs, opts),
    '',
    standbyLine(standby),
    '',
    memoryLine(memory, soakRun),
    '',
    '## Invariants',
    '',
    ...invariantsSection(runs),
    ...(ceiling.skipped
      ? []
      : invariantsSection([{ scenario: { key: 'pgbench' }, checks: ceilingChecks }])),
    '',
  ];
  console.log('\n' + report.join('\n'));
  const file = await writeResult(`${date}.md`, report);
  const svg = join(ROOT, 'bench/results', `${date}.svg`);
  await writeFile(svg, chart(ratios, runs, ceiling, m));
  console.log(`Written to ${file} and ${svg}`);
  return runs.every((r) => r.checks.every((c) => c.ok)) && ceilingChecks.every((c) => c.ok);
}

/**
 * --profile: the chosen scenarios (default (a)) against the profiled service, in turn, then the
 * profile of each measured window.
 */
async function profile(opts, { service, sql, url, seeded, m, profileDir }) {
  const extras = {};
  const all = scenarios({
    sql,
    seeded,
    etag: '',
    referenceBody: {},
    wrk: Boolean(m.wrk),
    extras,
  });
  const chosen = (opts.scenarios ?? ['a']).map((key) => {
    const found = all.find((s) => s.key === key && s.target === 'service');
    if (!found) throw new Error(`--scenarios: no service scenario '${key}'`);
    return found;
  });
  // pay needs its opener service (not profiled); the -otel rows run on an unprofiled service.
  await startExtras(chosen, url, extras);
  const runs = [];
  for (const scenario of chosen) runs.push(await runScenario(scenario, { service }, opts));
  // The profile is written when the service exits.
  await service.stop();
  await extras.opener?.stop();
  const files = (await readdir(profileDir)).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) throw new Error(`expected one .cpuprofile in ${profileDir}: ${files}`);
  const file = join(profileDir, files[0]);
  const parsed = JSON.parse(await readFile(file, 'utf8'));
  const keys = chosen.map((s) => `(${s.key})`).join(', ');
  const report = [
    ...header(`Order service CPU profile, ${new Date().toISOString().slice(0, 10)}`, m, opts),
    `Scenarios ${keys} with the service under \`node --cpu-prof\` (the profiler costs ` +
      'throughput; compare with the results without it, not with these numbers). Only the samples ' +
      'of each measured run are counted; to reproduce a table, or show more rows with `--top`:',
    '',
    '```sh',
    ...runs.map(
      (run) =>
        `node bench/profile-summary.mjs ${file} --from ${run.window.from} --to ${run.window.to}  # (${run.scenario.key})`,
    ),
    '```',
    '',
    ...resultsTable(runs),
    '',
    ...runs.map((run) =>
      formatSummary(
        aggregateProfile(parsed, { from: Number(run.window.from), to: Number(run.window.to) }),
        { title: `Where the service spends its CPU during (${run.scenario.key})` },
      ),
    ),
  ];
  console.log('\n' + report.join('\n'));
  console.log(
    `Written to ${await writeResult(`${new Date().toISOString().slice(0, 10)}-profile.md`, report)}`,
  );
  return runs.every((run) => run.checks.every((c) => c.ok));
}

async function main() {
  const opts = parseOptions();
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      interrupted = true;
      console.error(`\n${signal}: stopping everything`);
      void cleanup().finally(() => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
    });
  }

  let ok = false;
  try {
    const database = await freshDatabase();
    const profileDir = opts.profile ? join(PROFILE_ROOT, String(Date.now())) : undefined;
    console.log(`Starting the service (${database.description})…`);
    // With the bench's Stripe secrets: scenario pay's events must verify (nothing calls Stripe).
    const service = await startService({
      databaseEnv: database.serviceEnv,
      profileDir,
      extraEnv: STRIPE_ENV,
    });
    const url = await database.url();
    const sql = new pg.Client({ connectionString: url });
    // The embedded database goes away with the service (--profile stops it before the end): a lost
    // connection must not crash the harness before it has cleaned up.
    sql.on('error', () => undefined);
    await sql.connect();
    onCleanup(() => sql.end());
    const m = await machine(sql, database.description);

    console.log(`Seeding ${opts.products} products, a hot product and two accounts…`);
    const seeded = await seed(service.base, sql, opts.products);
    const context = { service, sql, url, seeded, m, profileDir };
    ok = opts.profile ? await profile(opts, context) : await benchmark(opts, context);
  } catch (err) {
    if (!interrupted) console.error(err);
  } finally {
    await cleanup();
  }
  process.exitCode = ok ? 0 : 1;
}

await main();
