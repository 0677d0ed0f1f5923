// npm run bench [-- --duration 30 --connections 20 --warmup 2 --profile]
//
// Starts the built service on a fresh database, seeds it through the API, drives six scenarios and a
// reference server with autocannon (each run in its own process), checks invariants against the
// database after each scenario, and writes bench/results/<date>.md. With --profile it instead runs
// scenario (a) against the service under `node --cpu-prof` and summarises where the CPU time goes.
// See bench/README.md.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import * as prettier from 'prettier';
import {
  cleanup,
  cpuTimeMs,
  expectApi,
  freshDatabase,
  onCleanup,
  ROOT,
  runLoad,
  startReference,
  startOtlpSink,
  startService,
} from './harness.mjs';
import { aggregateProfile, formatSummary } from './profile-summary.mjs';

const USAGE = `Usage: npm run bench [-- options]
  --duration <s>     measured seconds per scenario (default 8)
  --warmup <s>       discarded warm-up seconds before each scenario but (e) (default 5; 0: none)
  --connections <n>  concurrent connections of the load generator (default 20)
  --products <n>     catalogue size for the order scenario (default 200)
  --profile          only scenario (a), with the service under --cpu-prof; summarise the profile
Environment: DATABASE_URL (optional; otherwise the service's embedded PostgreSQL on a temp dir).`;

const HOT_STOCK = 100;
const PLENTY = 1_000_000;
const PROFILE_ROOT = '/tmp/bench-prof';

function parseOptions() {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '5' },
      connections: { type: 'string', default: '20' },
      products: { type: 'string', default: '200' },
      profile: { type: 'boolean', default: false },
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
    warmup: int('warmup', 0),
    connections: int('connections', 1),
    products: int('products', 1),
    profile: values.profile,
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
  return { customer, admin, products, hot };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/**
 * The scenarios, in running order. Each has a load `spec` (for load-worker.mjs), the statuses it may
 * answer, whether it gets a warm-up, and optional `before`/`check` hooks for the invariants.
 */
function scenarios({ sql, seeded, etag, referenceBody }) {
  const { customer, admin, products, hot } = seeded;
  const one = `/api/v1/products/${products[0].id}`;
  const initialStock = new Map([...products, hot].map((p) => [p.id, p.stock]));
  const orderCount = async () =>
    (await sql.query('SELECT count(*)::int AS n FROM orders')).rows[0].n;
  const orderLine = (productId) => JSON.stringify({ items: [{ productId, quantity: 1 }] });
  const customerHeaders = {
    authorization: `Bearer ${customer}`,
    'content-type': 'application/json',
  };

  /** Orders created = 201s, and for every product: initial stock - stock = units ordered. */
  const orderInvariants = async (result, before) => {
    const created = (await orderCount()) - before;
    const answered201 = result.statusCodes[201] ?? 0;
    const { rows } = await sql.query(
      `SELECT p.id, p.stock::int AS stock, COALESCE(SUM(oi.quantity), 0)::int AS ordered
         FROM products p LEFT JOIN order_items oi ON oi.product_id = p.id GROUP BY p.id`,
    );
    const wrong = rows.filter((r) => initialStock.get(r.id) - r.stock !== r.ordered);
    const negative = rows.filter((r) => r.stock < 0);
    return {
      rows,
      checks: [
        check(created === answered201, `orders created ${created} = 201s ${answered201}`),
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
  /** The problem code of the first answer with `status` (samples are truncated: no JSON.parse). */
  const problemCode = (result, status) => /"code":"(\w+)"/.exec(result.samples[status])?.[1];
  const productVersion = async (id) =>
    (await sql.query('SELECT version FROM products WHERE id = $1', [id])).rows[0].version;

  return [
    {
      key: 'a',
      title: 'GET /products/{id}',
      target: 'service',
      spec: { method: 'GET', path: one },
      expect: [200],
      warmup: true,
    },
    {
      key: 'a-ref',
      title: 'GET /products/{id}, reference Fastify + pg',
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
    {
      key: 'b',
      title: 'GET /products/{id}, If-None-Match → 304',
      target: 'service',
      spec: { method: 'GET', path: one, headers: { 'if-none-match': etag } },
      expect: [304],
      warmup: true,
    },
    {
      key: 'c',
      title: 'GET /products?limit=20',
      target: 'service',
      spec: { method: 'GET', path: '/api/v1/products?limit=20' },
      expect: [200],
      warmup: true,
    },
    {
      key: 'd',
      title: `POST /orders, 1 line, rotating over ${products.length} products`,
      target: 'service',
      spec: {
        method: 'POST',
        path: '/api/v1/orders',
        headers: customerHeaders,
        bodies: products.map((p) => orderLine(p.id)),
      },
      expect: [201],
      warmup: true,
      before: orderCount,
      check: async (result, before) => (await orderInvariants(result, before)).checks,
    },
    {
      key: 'e',
      title: `POST /orders on one hot product (stock ${HOT_STOCK})`,
      target: 'service',
      spec: {
        method: 'POST',
        path: '/api/v1/orders',
        headers: customerHeaders,
        body: orderLine(hot.id),
      },
      expect: [201, 409],
      // A warm-up would sell the hot stock before the measured run.
      warmup: false,
      before: orderCount,
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
      key: 'f',
      title: 'PATCH /products/{id}, stale If-Match → 412',
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
async function runScenario(scenario, servers, opts) {
  const server = servers[scenario.target];
  const spec = { url: server.base, connections: opts.connections, ...scenario.spec };
  const label = `[${scenario.key}] ${scenario.title}`;
  if (scenario.warmup && opts.warmup > 0) {
    console.log(`${label}: warm-up ${opts.warmup} s`);
    await runLoad({ ...spec, duration: opts.warmup }, () => undefined);
  }
  const before = await scenario.before?.();
  console.log(`${label}: ${opts.duration} s, ${opts.connections} connections`);
  // The measured window in the CPU profiler's clock (µs of CLOCK_MONOTONIC), for --profile.
  const window = { from: process.hrtime.bigint() / 1000n };
  const cpuBefore = await cpuTimeMs(server.pid);
  const result = await runLoad({ ...spec, duration: opts.duration }, ({ second, counter }) => {
    const line = `  ${second}/${opts.duration} s  ${fmt(counter)} req/s`;
    if (process.stdout.isTTY) process.stdout.write(`\r${line}   `);
    else console.log(line);
  });
  result.cpuUsPerRequest = ((await cpuTimeMs(server.pid)) - cpuBefore) * (1000 / result.responses);
  window.to = process.hrtime.bigint() / 1000n;
  if (process.stdout.isTTY) process.stdout.write('\n');
  const checks = [
    ...commonChecks(scenario, result),
    ...((await scenario.check?.(result, before)) ?? []),
  ];
  const failed = checks.filter((c) => !c.ok);
  console.log(
    `  ${fmt(result.rps)} req/s, p50 ${fmt(result.latency.p50, 2)} ms, ` +
      `p99 ${fmt(result.latency.p99, 2)} ms, server CPU ${fmt(result.cpuUsPerRequest)} µs/request; ` +
      (failed.length ? `FAILED: ${failed.map((c) => c.text).join('; ')}` : 'invariants hold'),
  );
  return { scenario, result, checks, window };
}

// ---------------------------------------------------------------------------------------------
// Report

function git(...args) {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
}

async function machine(sql, database) {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8');
  const autocannon = JSON.parse(
    await readFile(join(ROOT, 'node_modules/autocannon/package.json'), 'utf8'),
  );
  const pgVersion = (await sql.query('SELECT version() AS v')).rows[0].v;
  // Tracked files changed but not committed: dist/ was built from them, not from the commit alone.
  const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
  return {
    commit: git('rev-parse', '--short', 'HEAD') + (dirty ? ' (with uncommitted changes)' : ''),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    cores: availableParallelism(),
    node: process.version,
    postgres: pgVersion.split(' on ')[0],
    database,
    autocannon: autocannon.version,
    // Other work on the machine (CI, tests) competes for the same cores.
    loadavg: loadavg()
      .map((l) => l.toFixed(2))
      .join(' / '),
  };
}

function header(title, m, opts) {
  return [
    `# ${title}`,
    '',
    '| | |',
    '| --- | --- |',
    `| Date | ${new Date().toISOString()} |`,
    `| Service commit | ${m.commit} |`,
    `| CPU | ${m.cpu}, ${m.cores} cores (shared by the service, PostgreSQL and the load generator) |`,
    `| Load average at start (1/5/15 min) | ${m.loadavg} |`,
    `| Node | ${m.node} |`,
    `| PostgreSQL | ${m.postgres}, ${m.database} |`,
    `| Load | autocannon ${m.autocannon} in a separate process, ${opts.connections} connections, ` +
      `${opts.duration} s per scenario after ${opts.warmup} s of warm-up (none for e) |`,
    `| Service | NODE_ENV=production, LOG_LEVEL=warn, DB_POOL_SIZE=20, rate limits out of reach |`,
    '',
  ];
}

function resultsTable(runs, opts) {
  const rows = runs.map(({ scenario, result, checks }) => {
    const statuses = Object.entries(result.statusCodes)
      .map(([code, n]) => `${code}: ${fmt(n)}`)
      .join(', ');
    const failed = checks.filter((c) => !c.ok).length;
    return (
      `| ${scenario.key} | ${scenario.title} | ${fmt(result.elapsedS, 1)} | ${opts.connections} | ` +
      `${fmt(result.rps)} | ${fmt(result.latency.p50, 2)} | ${fmt(result.latency.p90, 2)} | ` +
      `${fmt(result.latency.p99, 2)} | ${fmt(result.cpuUsPerRequest)} | ${statuses} | ` +
      `${failed ? `✗ ${failed} failed` : '✓'} |`
    );
  });
  return [
    '| # | Scenario | Time s | Conns | Req/s | p50 ms | p90 ms | p99 ms | CPU µs/req | Statuses | Invariants |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    ...rows,
  ];
}

function ratioLine(runs) {
  const result = (key) => runs.find((r) => r.scenario.key === key).result;
  const [service, reference] = [result('a'), result('a-ref')];
  const ratio = service.rps / reference.rps;
  return (
    `**Service / reference, GET one product:** ${fmt(service.rps)} / ${fmt(reference.rps)} req/s ` +
    `= **${fmt(ratio, 2)}×**: the service serves ${fmt(ratio * 100)}% of the throughput of plain ` +
    'Fastify + pg running the same SQL and answering the same body and ETag, and spends ' +
    `${fmt(service.cpuUsPerRequest / reference.cpuUsPerRequest, 1)}× its CPU per request ` +
    `(${fmt(service.cpuUsPerRequest)} vs ${fmt(reference.cpuUsPerRequest)} µs). ` +
    'CPU µs/req is the server process only (all its threads), not PostgreSQL or the load generator.'
  );
}

function tracingLine(runs, exported) {
  const result = (key) => runs.find((r) => r.scenario.key === key).result;
  const part = (key) => {
    const [off, on] = [result(key), result(`${key}-otel`)];
    return (
      `${key}: ${fmt(off.rps)} → ${fmt(on.rps)} req/s (**${fmt(on.rps / off.rps, 2)}×**), ` +
      `CPU ${fmt(off.cpuUsPerRequest)} → ${fmt(on.cpuUsPerRequest)} µs/req`
    );
  };
  return (
    `**Tracing on vs off** (OpenTelemetry SDK with the http, undici, pg and Nest instrumentations, ` +
    `OTLP/HTTP to a local sink that received ${exported.exports} exports, ${fmt(exported.bytes / 1024)} kB): ` +
    `${part('a')}; ${part('d')}. Off (no OTEL_* variables) the SDK is not started at all.`
  );
}

function invariantsSection(runs) {
  return runs.flatMap(({ scenario, checks }) => [
    `- **${scenario.key}**: ` + checks.map((c) => `${c.ok ? '✓' : '✗'} ${c.text}`).join('; '),
  ]);
}

async function writeResult(name, lines) {
  const dir = join(ROOT, 'bench/results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, name);
  // Formatted as `prettier --check .` (npm run check) expects it.
  const options = { ...(await prettier.resolveConfig(file)), filepath: file };
  await writeFile(file, await prettier.format(lines.join('\n') + '\n', options));
  return file;
}

// ---------------------------------------------------------------------------------------------
// Main

/** The benchmark proper: every scenario, the table, bench/results/<date>.md. */
async function benchmark(opts, { service, sql, url, seeded, m }) {
  const reference = await startReference(url);
  const one = `/api/v1/products/${seeded.products[0].id}`;
  const fromService = await expectApi(200, service.base, 'GET', one);
  const fromReference = await expectApi(200, reference.base, 'GET', one);
  const referenceBody = {
    same:
      JSON.stringify(fromService.body) === JSON.stringify(fromReference.body) &&
      fromService.headers.get('etag') === fromReference.headers.get('etag'),
  };
  const etag = fromService.headers.get('etag');

  const runs = [];
  const all = scenarios({ sql, seeded, etag, referenceBody });
  for (const scenario of all) {
    runs.push(await runScenario(scenario, { service, reference }, opts));
  }

  // The cost of tracing: a second service on the same database with OpenTelemetry on, exporting to
  // a local OTLP sink, running the read and the order scenarios again.
  const sink = await startOtlpSink();
  const traced = await startService({
    databaseEnv: { DATABASE_URL: url },
    extraEnv: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_SERVICE_NAME: 'order-service-bench' },
  });
  for (const key of ['a', 'd']) {
    const plain = all.find((s) => s.key === key);
    const scenario = { ...plain, key: `${key}-otel`, title: `${plain.title}, tracing on` };
    runs.push(await runScenario(scenario, { service: traced }, opts));
  }
  const exported = sink.received();

  const report = [
    ...header(`Order service benchmark, ${new Date().toISOString().slice(0, 10)}`, m, opts),
    ...resultsTable(runs, opts),
    '',
    ratioLine(runs),
    '',
    tracingLine(runs, exported),
    '',
    '## Invariants',
    '',
    ...invariantsSection(runs),
    '',
  ];
  console.log('\n' + report.join('\n'));
  const file = await writeResult(`${new Date().toISOString().slice(0, 10)}.md`, report);
  console.log(`Written to ${file}`);
  return runs.every((r) => r.checks.every((c) => c.ok));
}

/** --profile: scenario (a) against the profiled service, then the profile of the measured window. */
async function profile(opts, { service, sql, seeded, m, profileDir }) {
  const [a] = scenarios({ sql, seeded, etag: '', referenceBody: {} });
  const run = await runScenario(a, { service }, opts);
  // The profile is written when the service exits.
  await service.stop();
  const files = (await readdir(profileDir)).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) throw new Error(`expected one .cpuprofile in ${profileDir}: ${files}`);
  const file = join(profileDir, files[0]);
  const agg = aggregateProfile(JSON.parse(await readFile(file, 'utf8')), {
    from: Number(run.window.from),
    to: Number(run.window.to),
  });
  const report = [
    ...header(`Order service CPU profile, ${new Date().toISOString().slice(0, 10)}`, m, opts),
    `Scenario (a) with the service under \`node --cpu-prof\` (the profiler costs throughput; ` +
      'compare with the results without it, not with these numbers). Only the samples of the ' +
      'measured run are counted; to reproduce the tables, or show more rows with `--top`:',
    '',
    '```sh',
    `node bench/profile-summary.mjs ${file} --from ${run.window.from} --to ${run.window.to}`,
    '```',
    '',
    ...resultsTable([run], opts),
    '',
    formatSummary(agg, { title: 'Where the service spends its CPU during (a)' }),
  ];
  console.log('\n' + report.join('\n'));
  console.log(
    `Written to ${await writeResult(`${new Date().toISOString().slice(0, 10)}-profile.md`, report)}`,
  );
  return run.checks.every((c) => c.ok);
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
    const service = await startService({ databaseEnv: database.serviceEnv, profileDir });
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
