// `node scripts/dashboard-snapshot.mjs` (after `npm run build`): the picture of the Grafana dashboard
// in the README, from real data. Starts the built service on a throwaway embedded PostgreSQL, drives
// ~30 s of mixed traffic that produces conflicts (a flash sale that runs out of stock, abandoned
// orders whose holds expire, stale If-Match edits, idempotent retries, a webhook receiver that fails
// and then goes down for a while), scrapes /metrics every second, evaluates the dashboard's own
// PromQL (deploy/grafana/dashboards/order-service.json) over those scrapes, and draws its panels as
// an SVG (docs/dashboard.svg). No Prometheus, no Grafana, no library: a small PromQL evaluator for
// what the dashboard uses, and SVG written by hand.
//
// Options: --seconds N (traffic, default 30), --out FILE (default docs/dashboard.svg), --seed N.
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { freePort, ROOT, startBuiltService } from './service-process.mjs';
import { escapeXml } from './svg.mjs';

const { values: options } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    out: { type: 'string', default: join(ROOT, 'docs/dashboard.svg') },
    seed: { type: 'string', default: '7' },
  },
});
const TRAFFIC_SECONDS = Number(options.seconds);
if (!(TRAFFIC_SECONDS >= 10 && TRAFFIC_SECONDS <= 600)) throw new Error('--seconds: 10..600');
const DASHBOARD_FILE = join(ROOT, 'deploy/grafana/dashboards/order-service.json');
/**
 * Scraped every second. What `$__rate_interval` stands for here: Grafana would make it 4 s at this
 * scrape interval (max(interval + scrape, 4 × scrape)); 5 s smooths the jitter of the scrapes.
 */
const SCRAPE_MS = 1000;
const RATE_WINDOW_SECONDS = 5;
/** Quiet scrapes before the traffic and after it (holds still expiring, retries still due). */
const LEAD_SECONDS = 2;
const TAIL_SECONDS = 5;
const HOLD_SECONDS = 2;

// ---------------------------------------------------------------------------------------------
// Randomness that repeats (--seed): the same choices in the same order (the timing still varies).
// ---------------------------------------------------------------------------------------------

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = mulberry32(Number(options.seed));
const chance = (p) => random() < p;
const pick = (list) => list[Math.floor(random() * list.length)];
const between = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));

// ---------------------------------------------------------------------------------------------
// The Prometheus text format.
// ---------------------------------------------------------------------------------------------

/** One scrape: series key → {name, labels, value}, and the `# TYPE` of each family. */
function parseExposition(text) {
  const series = new Map();
  const types = new Map();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = { __name__: m[1] };
    for (const l of (m[2] ?? '').matchAll(/([A-Za-z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    series.set(seriesKey(labels), { labels, value });
  }
  return { series, types };
}

function seriesKey(labels) {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',');
}

// ---------------------------------------------------------------------------------------------
// PromQL: the subset the dashboard uses (selectors with matchers and ranges, rate, increase,
// histogram_quantile, round, sort_desc, sum/min/max/avg/count by|without, comparisons and
// arithmetic with scalars or one-to-one), evaluated at each scrape.
// ---------------------------------------------------------------------------------------------

function tokenize(expr) {
  const tokens = [];
  let i = 0;
  while (i < expr.length) {
    const rest = expr.slice(i);
    const m =
      /^\s+/.exec(rest) ??
      /^"(?:[^"\\]|\\.)*"|^'(?:[^'\\]|\\.)*'/.exec(rest) ??
      /^(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?((ms|[smhdwy])(\d+(ms|[smhdwy]))*)?/i.exec(rest) ??
      /^[A-Za-z_:][\w:]*/.exec(rest) ??
      /^(=~|!~|!=|==|>=|<=|[-+*/(){}[\],=<>])/.exec(rest);
    if (!m) throw new Error(`PromQL: unexpected "${rest[0]}" in ${expr}`);
    const text = m[0];
    i += text.length;
    if (/^\s/.test(text)) continue;
    if (text[0] === '"' || text[0] === "'") {
      const inner = text.slice(1, -1).replace(/\\(.)/g, (_, c) => ({ n: '\n', t: '\t' })[c] ?? c);
      tokens.push({ kind: 'string', text: inner });
    } else if (/^[\d.]/.test(text)) tokens.push({ kind: 'number', text });
    else if (/^[A-Za-z_:]/.test(text)) tokens.push({ kind: 'ident', text });
    else tokens.push({ kind: 'punct', text });
  }
  return tokens;
}

function seconds(duration) {
  const units = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  let total = 0;
  for (const m of duration.matchAll(/(\d+(?:\.\d+)?)(ms|[smhdwy])/g))
    total += Number(m[1]) * units[m[2]];
  return total;
}

const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'count']);
const COMPARISONS = new Set(['>', '<', '>=', '<=', '==', '!=']);

function parsePromql(expr) {
  const tokens = tokenize(expr);
  let k = 0;
  const peek = () => tokens[k];
  const next = () => tokens[k++];
  const expect = (text) => {
    const t = next();
    if (t?.text !== text)
      throw new Error(`PromQL: expected "${text}", got "${t?.text}" in ${expr}`);
    return t;
  };
  const labelList = () => {
    expect('(');
    const names = [];
    while (peek()?.text !== ')') {
      names.push(next().text);
      if (peek()?.text === ',') next();
    }
    expect(')');
    return names;
  };
  function binary(minPrecedence) {
    const precedence = (op) =>
      COMPARISONS.has(op) ? 1 : op === '+' || op === '-' ? 2 : op === '*' || op === '/' ? 3 : 0;
    let lhs = primary();
    for (;;) {
      const op = peek()?.text;
      const p = precedence(op);
      if (!p || p < minPrecedence || peek().kind !== 'punct') return lhs;
      next();
      const bool = peek()?.text === 'bool' ? (next(), true) : false;
      lhs = { type: 'binary', op, bool, lhs, rhs: binary(p + 1) };
    }
  }
  function primary() {
    const t = next();
    if (!t) throw new Error(`PromQL: unexpected end of ${expr}`);
    if (t.kind === 'number') return { type: 'number', value: Number(t.text) };
    if (t.text === '-')
      return { type: 'binary', op: '*', lhs: { type: 'number', value: -1 }, rhs: primary() };
    if (t.text === '(') {
      const inner = binary(1);
      expect(')');
      return inner;
    }
    if (t.kind !== 'ident') throw new Error(`PromQL: unexpected "${t.text}" in ${expr}`);
    if (AGGREGATIONS.has(t.text)) {
      let grouping;
      if (peek()?.text === 'by' || peek()?.text === 'without')
        grouping = { mode: next().text, labels: labelList() };
      expect('(');
      const inner = binary(1);
      expect(')');
      if (peek()?.text === 'by' || peek()?.text === 'without')
        grouping = { mode: next().text, labels: labelList() };
      return { type: 'aggregate', op: t.text, grouping, expr: inner };
    }
    if (peek()?.text === '(') {
      next();
      const args = [];
      while (peek()?.text !== ')') {
        args.push(binary(1));
        if (peek()?.text === ',') next();
      }
      expect(')');
      return { type: 'call', fn: t.text, args };
    }
    const selector = { type: 'selector', name: t.text, matchers: [], range: undefined };
    if (peek()?.text === '{') {
      next();
      while (peek()?.text !== '}') {
        const label = next().text;
        const op = next().text;
        const value = next().text;
        selector.matchers.push({
          label,
          op,
          value,
          regex: op === '=~' || op === '!~' ? new RegExp(`^(?:${value})$`) : undefined,
        });
        if (peek()?.text === ',') next();
      }
      expect('}');
    }
    if (peek()?.text === '[') {
      next();
      selector.range = seconds(next().text);
      expect(']');
    }
    return selector;
  }
  const ast = binary(1);
  if (k !== tokens.length) throw new Error(`PromQL: trailing "${tokens[k].text}" in ${expr}`);
  return ast;
}

function matches(labels, matchers) {
  return matchers.every(({ label, op, value, regex }) => {
    const v = labels[label] ?? '';
    if (op === '=') return v === value;
    if (op === '!=') return v !== value;
    if (op === '=~') return regex.test(v);
    return !regex.test(v);
  });
}

const withoutName = (labels) => {
  const rest = { ...labels };
  delete rest.__name__;
  return rest;
};

/**
 * The value of `ast` at scrape `i` of `scrapes`: {kind: 'scalar', value} or {kind: 'vector',
 * samples: [{labels, value}]}. A counter series absent from earlier scrapes did not exist yet: it
 * counts from 0 there (Prometheus would miss its first increments; the picture should not).
 */
function evaluate(ast, scrapes, i) {
  switch (ast.type) {
    case 'number':
      return { kind: 'scalar', value: ast.value };
    case 'selector': {
      if (ast.range !== undefined)
        throw new Error('PromQL: a range selector outside rate()/increase()');
      const samples = [];
      for (const { labels, value } of scrapes[i].series.values()) {
        if (labels.__name__ === ast.name && matches(labels, ast.matchers))
          samples.push({ labels, value });
      }
      return { kind: 'vector', samples };
    }
    case 'call':
      return call(ast, scrapes, i);
    case 'aggregate': {
      const inner = evaluate(ast.expr, scrapes, i);
      const groups = new Map();
      for (const s of inner.samples) {
        let labels = {};
        if (ast.grouping?.mode === 'by') {
          for (const l of ast.grouping.labels) if (s.labels[l]) labels[l] = s.labels[l];
        } else if (ast.grouping?.mode === 'without') {
          labels = withoutName(s.labels);
          for (const l of ast.grouping.labels) delete labels[l];
        }
        const key = seriesKey(labels);
        const g = groups.get(key) ?? { labels, values: [] };
        g.values.push(s.value);
        groups.set(key, g);
      }
      const reduce = {
        sum: (v) => v.reduce((a, b) => a + b, 0),
        min: (v) => Math.min(...v),
        max: (v) => Math.max(...v),
        avg: (v) => v.reduce((a, b) => a + b, 0) / v.length,
        count: (v) => v.length,
      }[ast.op];
      return {
        kind: 'vector',
        samples: [...groups.values()].map((g) => ({ labels: g.labels, value: reduce(g.values) })),
      };
    }
    case 'binary':
      return binaryOp(ast, evaluate(ast.lhs, scrapes, i), evaluate(ast.rhs, scrapes, i));
    default:
      throw new Error(`PromQL: ${ast.type}`);
  }
}

function call(ast, scrapes, i) {
  const [first, second] = ast.args;
  if (ast.fn === 'rate' || ast.fn === 'increase') {
    if (first?.type !== 'selector' || first.range === undefined)
      throw new Error(`${ast.fn}() needs a range`);
    const now = scrapes[i].t;
    const window = scrapes.filter((s, j) => j <= i && s.t > now - first.range - 1e-9);
    const samples = [];
    for (const { labels } of scrapes[i].series.values()) {
      if (labels.__name__ !== first.name || !matches(labels, first.matchers)) continue;
      const key = seriesKey(labels);
      const points = window.map((s) => [s.t, s.series.get(key)?.value ?? 0]);
      if (points.length < 2) continue;
      let increase = 0;
      for (let j = 1; j < points.length; j++) {
        const [prev, cur] = [points[j - 1][1], points[j][1]];
        increase += cur >= prev ? cur - prev : cur; // a reset starts again from 0
      }
      const span = points.at(-1)[0] - points[0][0];
      samples.push({
        labels: withoutName(labels),
        value: ast.fn === 'rate' ? increase / span : increase,
      });
    }
    return { kind: 'vector', samples };
  }
  if (ast.fn === 'histogram_quantile') {
    const q = evaluate(first, scrapes, i).value;
    const groups = new Map();
    for (const s of evaluate(second, scrapes, i).samples) {
      const { le, ...labels } = withoutName(s.labels);
      const key = seriesKey(labels);
      const g = groups.get(key) ?? { labels, buckets: [] };
      g.buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: s.value });
      groups.set(key, g);
    }
    const samples = [...groups.values()].map((g) => ({
      labels: g.labels,
      value: bucketQuantile(q, g.buckets),
    }));
    return { kind: 'vector', samples: samples.filter((s) => !Number.isNaN(s.value)) };
  }
  const inner = evaluate(first, scrapes, i);
  if (ast.fn === 'round')
    return {
      kind: 'vector',
      samples: inner.samples.map((s) => ({ ...s, value: Math.round(s.value) })),
    };
  if (ast.fn === 'sort_desc')
    return { kind: 'vector', samples: [...inner.samples].sort((a, b) => b.value - a.value) };
  throw new Error(`PromQL: function ${ast.fn}() is not implemented here`);
}

/** Prometheus's histogram_quantile for one series: linear within the bucket the rank falls in. */
function bucketQuantile(q, buckets) {
  buckets.sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.count ?? 0;
  if (buckets.length < 2 || buckets.at(-1).le !== Infinity || total === 0) return NaN;
  const rank = q * total;
  const b = buckets.findIndex((x) => x.count >= rank);
  if (b === buckets.length - 1) return buckets[b - 1].le;
  const start = b === 0 ? 0 : buckets[b - 1].le;
  const below = b === 0 ? 0 : buckets[b - 1].count;
  const inBucket = buckets[b].count - below;
  return inBucket === 0
    ? buckets[b].le
    : start + ((buckets[b].le - start) * (rank - below)) / inBucket;
}

function binaryOp(ast, lhs, rhs) {
  const apply = (a, b) =>
    ({
      '+': a + b,
      '-': a - b,
      '*': a * b,
      '/': a / b,
      '>': a > b,
      '<': a < b,
      '>=': a >= b,
      '<=': a <= b,
      '==': a === b,
      '!=': a !== b,
    })[ast.op];
  const comparison = COMPARISONS.has(ast.op);
  if (lhs.kind === 'scalar' && rhs.kind === 'scalar')
    return { kind: 'scalar', value: Number(apply(lhs.value, rhs.value)) };
  const combine = (s, a, b) => {
    const r = apply(a, b);
    if (!comparison) return { labels: withoutName(s.labels), value: r };
    if (ast.bool) return { labels: withoutName(s.labels), value: r ? 1 : 0 };
    return r ? s : undefined; // a filter keeps the left-hand sample as it is
  };
  let samples;
  if (rhs.kind === 'scalar') samples = lhs.samples.map((s) => combine(s, s.value, rhs.value));
  else if (lhs.kind === 'scalar') samples = rhs.samples.map((s) => combine(s, lhs.value, s.value));
  else {
    const right = new Map(rhs.samples.map((s) => [seriesKey(withoutName(s.labels)), s]));
    samples = lhs.samples.map((s) => {
      const other = right.get(seriesKey(withoutName(s.labels)));
      return other ? combine(s, s.value, other.value) : undefined;
    });
  }
  return { kind: 'vector', samples: samples.filter(Boolean) };
}

// ---------------------------------------------------------------------------------------------
// The dashboard's panels, evaluated over the scrapes.
// ---------------------------------------------------------------------------------------------

/** Grafana's variables, as the dashboard's "All" would set them (there is one instance here). */
function substitute(expr, dashboard, rangeSeconds) {
  const values = {
    __rate_interval: `${RATE_WINDOW_SECONDS}s`,
    __range: `${Math.ceil(rangeSeconds)}s`,
  };
  for (const v of dashboard.templating.list) {
    if (v.type === 'query' || v.type === 'custom')
      values[v.name] = v.includeAll ? (v.allValue ?? '.*') : '.*';
  }
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (whole, a, b) => values[a ?? b] ?? whole);
}

const legendOf = (format, labels) =>
  format
    ? format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, l) => labels[l] ?? '')
    : seriesKey(labels) || 'value';

/** Each panel: its series (legend → value per scrape) or, for an instant query, its bars. */
function evaluatePanels(dashboard, scrapes) {
  const range = scrapes.at(-1).t - scrapes[0].t;
  const panels = [];
  for (const panel of dashboard.panels) {
    if (panel.type === 'row') continue;
    const series = new Map();
    const bars = [];
    for (const target of panel.targets ?? []) {
      const ast = parsePromql(substitute(target.expr, dashboard, range));
      if (target.instant) {
        const result = evaluate(ast, scrapes, scrapes.length - 1);
        for (const s of result.samples)
          bars.push({ name: legendOf(target.legendFormat, s.labels), value: s.value });
        continue;
      }
      scrapes.forEach((_, i) => {
        if (
          scrapes[i].t - scrapes[0].t < RATE_WINDOW_SECONDS - 1e-9 &&
          /rate|increase/.test(target.expr)
        )
          return;
        const result = evaluate(ast, scrapes, i);
        for (const s of result.kind === 'vector'
          ? result.samples
          : [{ labels: {}, value: result.value }]) {
          const name = legendOf(target.legendFormat, s.labels);
          const values = series.get(name) ?? new Array(scrapes.length).fill(null);
          values[i] = Number.isFinite(s.value) ? s.value : null;
          series.set(name, values);
        }
      });
    }
    panels.push({ panel, series, bars });
  }
  return panels;
}

// ---------------------------------------------------------------------------------------------
// Traffic.
// ---------------------------------------------------------------------------------------------

/** What the client saw, for the caption (status and problem code of every answer). */
const seen = { requests: 0, byStatus: new Map(), byCode: new Map() };

function client(baseUrl) {
  return async function api(method, path, { token, body, headers = {} } = {}) {
    const res = await fetch(baseUrl + path, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    seen.requests++;
    seen.byStatus.set(res.status, (seen.byStatus.get(res.status) ?? 0) + 1);
    if (json?.code) seen.byCode.set(json.code, (seen.byCode.get(json.code) ?? 0) + 1);
    return { status: res.status, body: json, etag: res.headers.get('etag') ?? undefined };
  };
}

/** A shop's webhook endpoint: 204, a 500 now and then, and 503 throughout an outage. */
function startReceiver(state) {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const status = state.down ? 503 : chance(0.12) ? 500 : 204;
      setTimeout(() => res.writeHead(status).end(), between(2, 25));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${server.address().port}/hooks/orders` }),
    );
  });
}

async function setUp(api) {
  const login = async (email, password) =>
    (await api('POST', '/api/v1/auth/login', { body: { email, password } })).body.accessToken;
  const admin = await login('admin@example.com', 'admin-demo-password');
  if (!admin) throw new Error('the development seed did not create admin@example.com');
  const tag = randomUUID().slice(0, 8);
  const product = async (sku, stock, priceCents) => {
    const res = await api('POST', '/api/v1/products', {
      token: admin,
      body: {
        sku: `${sku}-${tag}`,
        slug: `${sku.toLowerCase()}-${tag}`,
        name: sku,
        priceCents,
        currency: 'EUR',
        stock,
      },
    });
    if (res.status !== 201)
      throw new Error(`creating ${sku}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  // Stock is its own resource (API.md §13): the list carries it only when asked.
  const catalogue = (await api('GET', '/api/v1/products?limit=100&include=stock')).body.items;
  const everyday = catalogue.filter((p) => p.stock >= 20);
  const flash = await product('FLASH', 0, 2500); // restocked when the sale opens
  const retired = await product('RETIRED', 5, 700);
  const stale = await api('GET', `/api/v1/products/${retired.id}`);
  await api('PATCH', `/api/v1/products/${retired.id}`, {
    token: admin,
    headers: { 'if-match': stale.etag },
    body: { active: false },
  });
  // Plenty of everyday stock: those orders should succeed; the conflicts come from the scenarios.
  for (const p of everyday)
    await api('POST', `/api/v1/products/${p.id}/stock-adjustments`, {
      token: admin,
      body: { delta: 5000, reason: 'dashboard snapshot' },
    });
  const customers = [];
  for (let n = 0; n < 10; n++) {
    const email = `shopper-${tag}-${n}@example.com`;
    const password = 'a long enough password';
    await api('POST', '/api/v1/auth/register', { body: { email, password, name: `Shopper ${n}` } });
    customers.push({ email, password, token: await login(email, password) });
  }
  return { admin, everyday, flash, retired, customers };
}

/** One shopper's session; which one depends on the phase the run is in. */
function scenarios(api, world) {
  const order = (who, items, key = randomUUID()) =>
    api('POST', '/api/v1/orders', {
      token: who.token,
      body: { items },
      headers: { 'idempotency-key': key },
    });
  const line = (p = pick(world.everyday), quantity = between(1, 3)) => ({
    productId: p.id,
    quantity,
  });
  // Paying (API.md §9): a test payment opened (keyed) and confirmed at the "provider"; answers the
  // opening's problem when it could not open, else the confirmation.
  const pay = async (who, id, key = randomUUID()) => {
    const opened = await api('POST', `/api/v1/orders/${id}/payments`, {
      token: who.token,
      headers: { 'idempotency-key': key },
      body: { provider: 'test' },
    });
    if (opened.status !== 201) return opened;
    return api('POST', `/api/v1/payments/test/${opened.body.id}/complete`, {
      token: who.token,
      body: { outcome: 'succeeded' },
    });
  };
  const abandoned = [];

  return {
    async browse(who) {
      const page = await api('GET', `/api/v1/products?limit=${between(5, 20)}`);
      const p = pick(page.body?.items ?? world.everyday);
      const one = await api('GET', `/api/v1/products/${p.id}`);
      if (chance(0.5))
        await api('GET', `/api/v1/products/${p.id}`, { headers: { 'if-none-match': one.etag } });
      if (chance(0.2)) await api('GET', '/api/v1/orders?limit=10', { token: who.token });
    },
    async login(who) {
      // Mostly right, sometimes a typo: 401 UNAUTHENTICATED.
      const password = chance(0.2) ? `${who.password}!` : who.password;
      const res = await api('POST', '/api/v1/auth/login', { body: { email: who.email, password } });
      if (res.status === 200) who.token = res.body.accessToken;
    },
    async buy(who) {
      const key = randomUUID();
      const items = [line(), ...(chance(0.3) ? [line()] : [])];
      let placed = await order(who, items, key);
      // The response got lost: the retry with the same key replays the first outcome.
      if (chance(0.3)) placed = await order(who, items, key);
      if (placed.status !== 201) return;
      const payKey = randomUUID();
      const paid = await pay(who, placed.body.id, payKey);
      if (chance(0.25)) await pay(who, placed.body.id, payKey);
      // Paying twice without the key: 409 ILLEGAL_STATE_TRANSITION (or PAYMENT_IN_PROGRESS).
      if (chance(0.1)) await pay(who, placed.body.id);
      if (paid.status === 200 && chance(0.4))
        await api('POST', `/api/v1/orders/${placed.body.id}/ship`, { token: world.admin });
    },
    async abandon(who) {
      const placed = await order(who, [line()]);
      if (placed.status === 201) abandoned.push({ who, id: placed.body.id, at: Date.now() });
      // Coming back to an order whose hold ended: opening a payment is 409 ILLEGAL_STATE_TRANSITION.
      const late = abandoned.findIndex((o) => Date.now() - o.at > (HOLD_SECONDS + 1.5) * 1000);
      if (late >= 0 && chance(0.5)) {
        const [o] = abandoned.splice(late, 1);
        await pay(o.who, o.id);
      }
    },
    async mistakes(who) {
      const roll = random();
      if (roll < 0.3)
        await order(who, [line(world.retired, 1)]); // PRODUCT_UNAVAILABLE
      else if (roll < 0.55)
        await order(who, [{ productId: randomUUID(), quantity: 1 }]); // UNKNOWN_PRODUCT
      else if (roll < 0.75) {
        const key = randomUUID(); // the same key for another body: 422 IDEMPOTENCY_KEY_REUSED
        await order(who, [line()], key);
        await order(who, [line()], key);
      } else if (roll < 0.9)
        await order(who, [line(pick(world.everyday), 100000)]); // INSUFFICIENT_STOCK
      else await api('GET', `/api/v1/orders/${randomUUID()}`, { token: who.token }); // NOT_FOUND
    },
    /** The flash sale: everyone wants the one product; most are refused, some abandon. */
    async flash(who) {
      const placed = await order(who, [line(world.flash, between(1, 2))]);
      if (placed.status === 201) {
        if (chance(0.5)) await pay(who, placed.body.id);
        else abandoned.push({ who, id: placed.body.id, at: Date.now() });
      }
    },
    /**
     * Editing from a stale read: the second PATCH carries the ETag the first one made stale (412),
     * then a stale `version` (409), sometimes no precondition at all (428).
     */
    async edit(who) {
      const placed = await order(who, [line()]);
      if (placed.status !== 201) return;
      const path = `/api/v1/orders/${placed.body.id}`;
      const first = await api('PATCH', path, {
        token: who.token,
        headers: { 'if-match': placed.etag },
        body: { items: [line()] },
      });
      await api('PATCH', path, {
        token: who.token,
        headers: { 'if-match': placed.etag },
        body: { items: [line()] },
      });
      if (chance(0.5))
        await api('PATCH', path, {
          token: who.token,
          body: { items: [line()], version: placed.body.version },
        });
      if (chance(0.2)) await api('PATCH', path, { token: who.token, body: { items: [line()] } }); // 428
      if (first.status === 200 && chance(0.5))
        await api('POST', `${path}/cancel`, { token: who.token });
    },
    /**
     * Back office: a price change from a page loaded before a colleague's edit of the description
     * (412). A delivery booked in between does not make the page stale: stock is its own resource
     * (API.md §13), its adjustments never move the product's ETag.
     */
    async backOffice() {
      const p = pick(world.everyday);
      const before = await api('GET', `/api/v1/products/${p.id}`);
      await api('POST', `/api/v1/products/${p.id}/stock-adjustments`, {
        token: world.admin,
        body: { delta: between(1, 5), reason: 'delivery' },
      });
      await api('PATCH', `/api/v1/products/${p.id}`, {
        token: world.admin,
        headers: { 'if-match': before.etag },
        body: { description: `Checked on ${new Date().toISOString()}.` },
      });
      await api('PATCH', `/api/v1/products/${p.id}`, {
        token: world.admin,
        headers: { 'if-match': before.etag },
        body: { priceCents: before.body.priceCents + 1 },
      });
    },
  };
}

/** The phases of the run, as fractions of the traffic time (also shaded in the picture). */
const PHASES = [
  { name: 'flash sale', from: 0.2, to: 0.45, color: '#F2495C' },
  { name: 'webhook receiver down', from: 0.45, to: 0.62, color: '#FF9830' },
  { name: 'concurrent edits', from: 0.62, to: 0.82, color: '#5794F2' },
];
const inPhase = (name, f) => PHASES.some((p) => p.name === name && f >= p.from && f < p.to);

async function driveTraffic(api, world, receiverState) {
  const s = scenarios(api, world);
  const started = Date.now();
  const fraction = () => (Date.now() - started) / (TRAFFIC_SECONDS * 1000);
  let restocked = false;
  const failures = [];
  const worker = async (n, role) => {
    const who = world.customers[n % world.customers.length];
    while (fraction() < 1) {
      const f = fraction();
      const active =
        role === 'shopper'
          ? n < 2 || f < 0.85
          : role === 'flash'
            ? inPhase('flash sale', f)
            : inPhase('concurrent edits', f);
      if (active) {
        const run =
          role === 'flash'
            ? s.flash
            : role === 'editor'
              ? chance(0.6)
                ? s.edit
                : s.backOffice
              : pick([
                  s.browse,
                  s.browse,
                  s.browse,
                  s.buy,
                  s.buy,
                  s.buy,
                  s.abandon,
                  s.abandon,
                  s.login,
                  s.mistakes,
                ]);
        await run(who).catch((e) => failures.push(e));
      }
      await sleep(active ? between(40, 220) : 100);
    }
  };
  const control = async () => {
    while (fraction() < 1) {
      const f = fraction();
      if (!restocked && inPhase('flash sale', f)) {
        restocked = true;
        await api('POST', `/api/v1/products/${world.flash.id}/stock-adjustments`, {
          token: world.admin,
          body: { delta: 12, reason: 'flash sale opens' },
        });
      }
      receiverState.down = inPhase('webhook receiver down', f);
      await sleep(100);
    }
    receiverState.down = false;
  };
  await Promise.all([
    control(),
    ...[0, 1, 2, 3].map((n) => worker(n, 'shopper')),
    ...[4, 5, 6, 7, 8, 9, 0, 1].map((n) => worker(n, 'flash')),
    ...[2, 3, 4].map((n) => worker(n, 'editor')),
  ]);
  if (failures.length)
    console.warn(`${failures.length} requests failed on the client side: ${failures[0]}`);
}

// ---------------------------------------------------------------------------------------------
// The picture.
// ---------------------------------------------------------------------------------------------

const THEME = {
  background: '#111217',
  panel: '#181b1f',
  border: '#2c3235',
  grid: '#2c3235',
  text: '#ccccdc',
  dim: '#8e8e9e',
  font: "Inter, 'Helvetica Neue', Helvetica, Arial, sans-serif",
};
/** Grafana's named colours and its classic palette. */
const NAMED = {
  green: '#73BF69',
  orange: '#FF9830',
  red: '#F2495C',
  blue: '#5794F2',
  purple: '#B877D9',
  yellow: '#FADE2A',
};
const PALETTE = [
  '#7EB26D',
  '#EAB839',
  '#6ED0E0',
  '#EF843C',
  '#E24D42',
  '#1F78C1',
  '#BA43A9',
  '#705DA0',
  '#508642',
  '#CCA300',
  '#447EBC',
  '#C15C17',
];

const esc = escapeXml;
const round = (n) => Math.round(n * 10) / 10;

/** Tick values for 0..max: 1, 2 or 5 × 10^n steps, about four of them. */
function ticks(max) {
  if (!(max > 0)) return { top: 1, steps: [0, 0.25, 0.5, 0.75, 1] };
  const raw = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const top = Math.ceil(max / step) * step;
  const steps = [];
  for (let v = 0; v <= top + step / 2; v += step) steps.push(v);
  return { top, steps };
}

/** A value with the panel's unit, short (tick labels and legends). */
function formatValue(v, unit, decimals) {
  const fixed = (x) => {
    if (decimals !== undefined) return x.toFixed(decimals);
    if (x === 0) return '0';
    const abs = Math.abs(x);
    return abs >= 100
      ? x.toFixed(0)
      : abs >= 10
        ? x.toFixed(1).replace(/\.0$/, '')
        : x.toFixed(2).replace(/\.?0+$/, '');
  };
  switch (unit) {
    case 's':
      if (v === 0) return '0';
      return Math.abs(v) < 1 ? `${fixed(v * 1000)} ms` : `${fixed(v)} s`;
    case 'reqps':
      return `${fixed(v)} req/s`;
    case 'ops':
      return `${fixed(v)}/s`;
    default:
      return fixed(v);
  }
}

/** At most this many lines in one chart: more (routes) and only the busiest are drawn. */
const MAX_LINES = 9;
const UNIT_TITLES = { s: 'seconds', reqps: 'requests / s', ops: 'per second', short: 'count' };

function seriesStyle(panel, name, index) {
  const style = { color: PALETTE[index % PALETTE.length], dash: undefined };
  for (const o of panel.fieldConfig?.overrides ?? []) {
    const { id, options: pattern } = o.matcher;
    const hit =
      id === 'byName'
        ? pattern === name
        : id === 'byRegexp'
          ? new RegExp(pattern).test(name)
          : false;
    if (!hit) continue;
    for (const p of o.properties) {
      if (p.id === 'color') style.color = NAMED[p.value.fixedColor] ?? p.value.fixedColor;
      if (p.id === 'custom.lineStyle' && p.value.fill === 'dash')
        style.dash = p.value.dash.join(' ');
    }
  }
  return style;
}

/** About how wide a label is in a sans-serif font (capitals and digits are wider). */
const textWidth = (text, size) =>
  [...text].reduce(
    (w, c) => w + (/[A-Z0-9_]/.test(c) ? 0.68 : /[ il.:/|]/.test(c) ? 0.3 : 0.55),
    0,
  ) * size;

/** Legend entries laid out in lines; what does not fit in `maxLines` becomes "+N more". */
function layoutLegend(entries, width, maxLines) {
  const lines = [[]];
  let x = 0;
  let shown = 0;
  for (const e of entries) {
    const w = 18 + textWidth(e.label, 10.5) + 14;
    if (x + w > width && lines.at(-1).length) {
      if (lines.length === maxLines) break;
      lines.push([]);
      x = 0;
    }
    lines.at(-1).push({ ...e, x });
    x += w;
    shown++;
  }
  return { lines, hidden: entries.length - shown };
}

function drawTimeseries(out, { panel, series }, box, scrapes, trafficStart) {
  const unit = panel.fieldConfig?.defaults?.unit;
  const decimals = panel.fieldConfig?.defaults?.decimals;
  const custom = panel.fieldConfig?.defaults?.custom ?? {};
  const stacked = custom.stacking?.mode === 'normal';
  const fill = (custom.fillOpacity ?? 0) / 100;
  // Keep the picture legible: with many series (routes) only the busiest colour groups are drawn.
  const groupOf = (name) => name.replace(/^p\d+ /, '');
  const weight = new Map();
  for (const [name, values] of series) {
    const peak = Math.max(0, ...values.filter((v) => v !== null));
    weight.set(groupOf(name), Math.max(weight.get(groupOf(name)) ?? 0, peak));
  }
  const groups = [...weight.keys()];
  const limit = Math.max(1, Math.floor(MAX_LINES / (series.size / groups.length)));
  const kept = [...groups].sort((a, b) => weight.get(b) - weight.get(a)).slice(0, limit);
  const colourIndex = new Map(kept.map((g, i) => [g, i]));
  const drawn = [...series].filter(([name]) => colourIndex.has(groupOf(name)));
  const hiddenGroups = groups.length - kept.length;
  const styleOf = (name) => seriesStyle(panel, name, colourIndex.get(groupOf(name)));
  // Quantiles of several routes: one colour per route, one dash per quantile, each keyed once.
  const quantiled = drawn.length > 0 && drawn.every(([name]) => /^p\d+ ./.test(name));
  const legend = quantiled
    ? [
        ...[...new Set(drawn.map(([name]) => name.split(' ')[0]))].map((q) => ({
          label: q,
          color: THEME.text,
          dash: styleOf(`${q} `).dash,
        })),
        ...kept.map((g) => ({ label: g, color: styleOf(g).color })),
      ]
    : drawn.map(([name]) => ({ label: name, ...styleOf(name) }));
  const plotLeft = box.x + 62;
  const plotRight = box.x + box.w - 14;
  const { lines, hidden } = layoutLegend(legend, plotRight - box.x - 12, 4);
  const legendHeight = lines.length * 15 + (hidden + hiddenGroups > 0 ? 15 : 0);
  const plotTop = box.y + 34;
  const plotBottom = box.y + box.h - 30 - legendHeight;
  const n = scrapes.length;
  const t0 = trafficStart;
  const tMin = scrapes[0].t - t0;
  const tMax = scrapes[n - 1].t - t0;
  const xOf = (i) =>
    plotLeft + ((scrapes[i].t - t0 - tMin) / (tMax - tMin)) * (plotRight - plotLeft);

  // Stacking: each series on top of the previous ones (nulls count as 0 below, gaps in the line).
  const base = new Array(n).fill(0);
  const plotted = drawn.map(([name, values]) => {
    const lower = [...base];
    const upper = values.map((v, i) => (v === null ? null : (stacked ? base[i] : 0) + v));
    if (stacked) values.forEach((v, i) => (base[i] += v ?? 0));
    return { name, lower, upper };
  });
  const max = Math.max(0, ...plotted.flatMap((p) => p.upper.filter((v) => v !== null)));
  const thresholds = (panel.fieldConfig?.defaults?.thresholds?.steps ?? []).filter(
    (s) => s.value !== null,
  );
  const { top, steps } = ticks(max * 1.08);
  const yOf = (v) => plotBottom - (v / top) * (plotBottom - plotTop);

  // Phases (shaded, behind everything).
  for (const p of PHASES) {
    const a = Math.max(
      plotLeft,
      plotLeft + ((p.from * TRAFFIC_SECONDS - tMin) / (tMax - tMin)) * (plotRight - plotLeft),
    );
    const b = Math.min(
      plotRight,
      plotLeft + ((p.to * TRAFFIC_SECONDS - tMin) / (tMax - tMin)) * (plotRight - plotLeft),
    );
    out.push(
      `<rect x="${round(a)}" y="${plotTop}" width="${round(b - a)}" height="${round(plotBottom - plotTop)}" fill="${p.color}" fill-opacity="0.08"/>`,
      `<rect x="${round(a)}" y="${plotTop - 3}" width="${round(b - a)}" height="3" fill="${p.color}" fill-opacity="0.7"/>`,
    );
  }
  // Y axis: grid lines and values.
  for (const v of steps) {
    const y = round(yOf(v));
    out.push(
      `<line x1="${plotLeft}" x2="${plotRight}" y1="${y}" y2="${y}" stroke="${THEME.grid}" stroke-width="1"/>`,
    );
    out.push(
      `<text x="${plotLeft - 6}" y="${y + 3.5}" text-anchor="end" font-size="10" fill="${THEME.dim}">${esc(formatValue(v, unit, v % 1 === 0 && decimals === 0 ? 0 : undefined))}</text>`,
    );
  }
  const axisTitle = custom.axisLabel || UNIT_TITLES[unit] || '';
  if (axisTitle) {
    const cy = round((plotTop + plotBottom) / 2);
    out.push(
      `<text transform="translate(${box.x + 11} ${cy}) rotate(-90)" text-anchor="middle" font-size="10" fill="${THEME.dim}">${esc(axisTitle)}</text>`,
    );
  }
  // X axis: seconds since the traffic started.
  const xStep = tMax - tMin > 40 ? 10 : 5;
  for (let s = Math.ceil(tMin / xStep) * xStep; s <= tMax; s += xStep) {
    const x = round(plotLeft + ((s - tMin) / (tMax - tMin)) * (plotRight - plotLeft));
    out.push(
      `<line x1="${x}" x2="${x}" y1="${plotBottom}" y2="${plotBottom + 4}" stroke="${THEME.dim}"/>`,
    );
    out.push(
      `<text x="${x}" y="${plotBottom + 15}" text-anchor="middle" font-size="10" fill="${THEME.dim}">${s}s</text>`,
    );
  }
  out.push(
    `<line x1="${plotLeft}" x2="${plotRight}" y1="${plotBottom}" y2="${plotBottom}" stroke="${THEME.dim}" stroke-width="1"/>`,
  );
  out.push(
    `<text x="${plotRight}" y="${plotBottom + 26}" text-anchor="end" font-size="9.5" fill="${THEME.dim}">time since the traffic started</text>`,
  );
  for (const t of thresholds) {
    if (t.value > top) continue;
    const y = round(yOf(t.value));
    out.push(
      `<line x1="${plotLeft}" x2="${plotRight}" y1="${y}" y2="${y}" stroke="${NAMED[t.color] ?? t.color}" stroke-dasharray="4 3"/>`,
    );
  }
  // The series: an area (when the panel fills) and a line, broken where there is no value.
  plotted.forEach(({ name, lower, upper }) => {
    const style = styleOf(name);
    const runs = [];
    let run = [];
    upper.forEach((v, i) => {
      if (v === null) {
        if (run.length) runs.push(run);
        run = [];
      } else run.push(i);
    });
    if (run.length) runs.push(run);
    for (const r of runs) {
      const line = r
        .map((i, k) => `${k ? 'L' : 'M'}${round(xOf(i))},${round(yOf(upper[i]))}`)
        .join('');
      if (fill > 0) {
        const back = [...r]
          .reverse()
          .map((i) => `L${round(xOf(i))},${round(yOf(stacked ? lower[i] : 0))}`)
          .join('');
        out.push(
          `<path d="${line}${back}Z" fill="${style.color}" fill-opacity="${stacked ? fill : fill * 1.5}" stroke="none"/>`,
        );
      }
      if (r.length === 1) {
        out.push(
          `<circle cx="${round(xOf(r[0]))}" cy="${round(yOf(upper[r[0]]))}" r="1.8" fill="${style.color}"/>`,
        );
      }
      out.push(
        `<path d="${line}" fill="none" stroke="${style.color}" stroke-width="${style.dash ? 1.4 : 1.8}" stroke-linejoin="round"${style.dash ? ` stroke-dasharray="${style.dash}"` : ''}/>`,
      );
    }
  });
  // Legend.
  lines.forEach((entries, li) => {
    const y = plotBottom + 40 + li * 15;
    for (const e of entries) {
      const x = box.x + 12 + e.x;
      out.push(
        `<line x1="${round(x)}" x2="${round(x + 14)}" y1="${y - 3.5}" y2="${y - 3.5}" stroke="${e.color}" stroke-width="3"${
          e.dash
            ? ` stroke-dasharray="${e.dash
                .split(' ')
                .map((d) => Math.max(1, Number(d) / 2))
                .join(' ')}"`
            : ''
        }/>`,
      );
      out.push(
        `<text x="${round(x + 18)}" y="${y}" font-size="10.5" fill="${THEME.text}">${esc(e.label)}</text>`,
      );
    }
  });
  if (hidden + hiddenGroups > 0) {
    const more =
      hiddenGroups > 0
        ? `+ ${hiddenGroups} more series with lower peaks, not drawn`
        : `+ ${hidden} more`;
    out.push(
      `<text x="${box.x + 12}" y="${plotBottom + 40 + lines.length * 15}" font-size="10" fill="${THEME.dim}">${esc(more)}</text>`,
    );
  }
  if (!drawn.length) {
    out.push(
      `<text x="${round((plotLeft + plotRight) / 2)}" y="${round((plotTop + plotBottom) / 2)}" text-anchor="middle" font-size="12" fill="${THEME.dim}">No data</text>`,
    );
  }
}

function drawBars(out, { panel, bars }, box) {
  const decimals = panel.fieldConfig?.defaults?.decimals;
  const unit = panel.fieldConfig?.defaults?.unit;
  const left = box.x + 12;
  const right = box.x + box.w - 12;
  const rowHeight = 30;
  const fits = Math.floor((box.h - 44) / rowHeight);
  const shown = bars.slice(0, bars.length > fits ? fits - 1 : fits);
  const max = Math.max(1, ...bars.map((b) => b.value));
  shown.forEach((b, i) => {
    const y = box.y + 36 + i * rowHeight;
    const f = b.value / max;
    // Grafana's continuous yellow → red scheme.
    const colour = `rgb(${Math.round(250 - 8 * f)},${Math.round(222 - 149 * f)},${Math.round(42 + 50 * f)})`;
    out.push(
      `<text x="${left}" y="${y + 9}" font-size="10.5" fill="${THEME.text}">${esc(b.name)}</text>`,
    );
    out.push(
      `<rect x="${left}" y="${y + 13}" width="${round(right - left - 44)}" height="11" rx="2" fill="${THEME.grid}"/>`,
    );
    out.push(
      `<rect x="${left}" y="${y + 13}" width="${round(Math.max(2, (right - left - 44) * f))}" height="11" rx="2" fill="${colour}"/>`,
    );
    out.push(
      `<text x="${right}" y="${y + 22}" text-anchor="end" font-size="11" font-weight="600" fill="${colour}">${esc(formatValue(b.value, unit, decimals))}</text>`,
    );
  });
  if (shown.length < bars.length) {
    const rest = bars.slice(shown.length).reduce((a, b) => a + b.value, 0);
    out.push(
      `<text x="${left}" y="${box.y + 36 + shown.length * rowHeight + 10}" font-size="10" fill="${THEME.dim}">+ ${bars.length - shown.length} more codes (${rest} responses)</text>`,
    );
  }
  if (!bars.length)
    out.push(
      `<text x="${box.x + box.w / 2}" y="${box.y + box.h / 2}" text-anchor="middle" font-size="12" fill="${THEME.dim}">No conflicts</text>`,
    );
}

function render(dashboard, evaluated, scrapes, trafficStart, caption) {
  const width = 1680;
  const margin = 16;
  const unitW = (width - 2 * margin) / 24;
  const unitH = 34;
  const header = 92;
  const rows = dashboard.panels.filter((p) => p.type === 'row');
  const bottom = Math.max(...dashboard.panels.map((p) => p.gridPos.y + p.gridPos.h));
  const height = header + bottom * unitH + 46;
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${esc(THEME.font)}">`,
  );
  out.push(`<title>${esc(dashboard.title)}: ${esc(caption.title)}</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="${THEME.background}"/>`);
  out.push(
    `<text x="${margin}" y="30" font-size="20" font-weight="600" fill="#ffffff">${esc(dashboard.title)}</text>`,
  );
  out.push(
    `<text x="${margin}" y="52" font-size="12.5" fill="${THEME.text}">${esc(caption.title)}</text>`,
  );
  out.push(
    `<text x="${margin}" y="70" font-size="11.5" fill="${THEME.dim}">${esc(caption.detail)}</text>`,
  );
  // The phases' key, top right.
  let kx = width - margin;
  for (const p of [...PHASES].reverse()) {
    const label = `${p.name} (${Math.round(p.from * TRAFFIC_SECONDS)}–${Math.round(p.to * TRAFFIC_SECONDS)} s)`;
    const w = label.length * 6.3 + 22;
    kx -= w;
    out.push(
      `<rect x="${round(kx)}" y="21" width="12" height="12" fill="${p.color}" fill-opacity="0.35" stroke="${p.color}"/>`,
    );
    out.push(
      `<text x="${round(kx + 17)}" y="31" font-size="11.5" fill="${THEME.text}">${esc(label)}</text>`,
    );
    kx -= 8;
  }
  out.push(
    `<text x="${width - margin}" y="52" text-anchor="end" font-size="11.5" fill="${THEME.dim}">shaded in every chart</text>`,
  );
  for (const r of rows) {
    const y = header + r.gridPos.y * unitH;
    out.push(
      `<text x="${margin + 2}" y="${y + 22}" font-size="14" font-weight="600" fill="#ffffff">${esc(r.title)}</text>`,
    );
  }
  for (const e of evaluated) {
    const g = e.panel.gridPos;
    const box = {
      x: margin + g.x * unitW + 4,
      y: header + g.y * unitH + 4,
      w: g.w * unitW - 8,
      h: g.h * unitH - 8,
    };
    out.push(
      `<rect x="${round(box.x)}" y="${round(box.y)}" width="${round(box.w)}" height="${round(box.h)}" rx="4" fill="${THEME.panel}" stroke="${THEME.border}"/>`,
    );
    out.push(
      `<text x="${round(box.x + 12)}" y="${round(box.y + 21)}" font-size="13" font-weight="600" fill="${THEME.text}">${esc(e.panel.title)}</text>`,
    );
    if (e.panel.type === 'bargauge') drawBars(out, e, box);
    else drawTimeseries(out, e, box, scrapes, trafficStart);
  }
  out.push(
    `<text x="${margin}" y="${height - 16}" font-size="11" fill="${THEME.dim}">${esc(caption.footer)}</text>`,
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------------------------

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8'));
// Parse every query before starting anything: an expression this evaluator cannot read fails fast.
for (const p of dashboard.panels)
  for (const t of p.targets ?? []) parsePromql(substitute(t.expr, dashboard, 60));

let service;
let receiver;
const dir = mkdtempSync(join(tmpdir(), 'order-service-dashboard-'));
chmodSync(dir, 0o755); // the embedded server runs as `postgres` when we are root
async function cleanUp() {
  const [s, r] = [service, receiver];
  receiver = undefined;
  await s?.stop();
  r?.server.closeAllConnections();
  r?.server.close();
  rmSync(dir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => void cleanUp().finally(() => process.exit(130)));
}

try {
  const receiverState = { down: false };
  receiver = await startReceiver(receiverState);
  console.log('Starting the built service on a throwaway embedded PostgreSQL…');
  service = await startBuiltService({
    name: 'dashboard snapshot service',
    inheritEnv: true,
    env: {
      NODE_ENV: 'development',
      DATABASE_URL: '',
      EMBEDDED_PG_DIR: join(dir, 'pgdata'),
      EMBEDDED_PG_PORT: String(await freePort()),
      LOG_LEVEL: 'warn',
      // Unpaid orders expire within the run: a 2 s hold, swept every second.
      ORDER_HOLD_SECONDS: String(HOLD_SECONDS),
      ORDER_EXPIRY_SWEEP_SECONDS: '1',
      // Failed webhook attempts are retried (and given up) within the run too.
      WEBHOOK_BACKOFF_BASE_SECONDS: '1',
      WEBHOOK_MAX_ATTEMPTS: '3',
      DB_POOL_SIZE: '8',
      // One client IP plays every shopper: the per-IP limits would only add 429s.
      RATE_LIMIT_MAX: '1000000',
      AUTH_RATE_LIMIT_MAX: '1000000',
      OTEL_SDK_DISABLED: 'true',
    },
  });
  const api = client(service.url);
  const world = await setUp(api);
  const hook = await api('POST', '/api/v1/webhooks', {
    token: world.admin,
    body: { url: receiver.url, events: ['*'] },
  });
  if (hook.status !== 201)
    throw new Error(`webhook subscription: ${hook.status} ${JSON.stringify(hook.body)}`);

  const scrapes = [];
  let types = new Map();
  let scraping = true;
  const t0 = Date.now();
  let scrapeError;
  const scraper = (async () => {
    for (let n = 0; scraping; n++) {
      const due = t0 + n * SCRAPE_MS;
      await sleep(Math.max(0, due - Date.now()));
      const text = await (await fetch(`${service.url}/metrics`)).text();
      const parsed = parseExposition(text);
      types = parsed.types;
      scrapes.push({ t: (Date.now() - t0) / 1000, series: parsed.series });
    }
  })().catch((error) => {
    scrapeError = error;
  });
  await sleep(LEAD_SECONDS * 1000);
  const trafficStart = (Date.now() - t0) / 1000;
  console.log(
    `Driving ${TRAFFIC_SECONDS} s of traffic (scraping /metrics every ${SCRAPE_MS / 1000} s)…`,
  );
  await driveTraffic(api, world, receiverState);
  await sleep(TAIL_SECONDS * 1000);
  scraping = false;
  await scraper;
  if (scrapeError) throw new Error(`scraping /metrics failed: ${scrapeError}`);
  await cleanUp();

  if (![...types.keys()].includes('conflicts_total'))
    throw new Error('no conflicts_total in /metrics');
  const evaluated = evaluatePanels(dashboard, scrapes);
  const problems = [...seen.byCode.values()].reduce((a, b) => a + b, 0);
  const codes = [...seen.byCode].sort((a, b) => b[1] - a[1]);
  const svg = render(dashboard, evaluated, scrapes, trafficStart, {
    title: `${TRAFFIC_SECONDS} s of synthetic traffic against the built service (${seen.requests} requests, ${problems} problem answers), /metrics scraped every ${SCRAPE_MS / 1000} s: the dashboard's own PromQL, evaluated over those scrapes.`,
    detail: `Shoppers browse, log in, buy (retrying with the same Idempotency-Key), abandon orders (2 s holds); a flash sale on 12 units; edits with stale If-Match; a webhook receiver that fails 12% of attempts. Rates over ${RATE_WINDOW_SECONDS} s windows.`,
    footer: `Drawn by scripts/dashboard-snapshot.mjs from ${relative(ROOT, DASHBOARD_FILE)}, the dashboard Grafana loads from deploy/grafana. The client saw most: ${codes
      .slice(0, 4)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ')}.`,
  });
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(options.out, svg);
  console.log(
    `Wrote ${relative(process.cwd(), options.out)} (${scrapes.length} scrapes, ${evaluated.length} panels).`,
  );
  for (const e of evaluated) {
    const peak = Math.max(
      0,
      ...[...e.series.values()].flat().filter((v) => v !== null),
      ...e.bars.map((b) => b.value),
    );
    console.log(
      `  ${e.panel.title}: ${e.series.size || e.bars.length} series, peak ${formatValue(peak, e.panel.fieldConfig?.defaults?.unit)}`,
    );
  }
} catch (error) {
  await cleanUp().catch(() => undefined);
  if (service) console.error(service.output.join('').slice(-4000));
  process.exitCode = 1;
  throw error;
}
