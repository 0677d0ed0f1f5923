import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load as loadYaml } from 'js-yaml';
import { PROBLEM_CODES, PROBLEMS } from '../../src/common/problems/problem-catalogue';
import { recordSkip, requiredServices } from '../support/services';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * The Grafana dashboard (deploy/grafana) queries metrics by name: rename one in
 * src/observability/metrics.service.ts and its panel goes blank without a word. This file reads
 * every PromQL expression of the dashboard, asks the real service for `/metrics`, and fails naming
 * each metric (and label) the dashboard uses that the service does not expose. It also checks the
 * provisioning: every panel on the provisioned Prometheus (by uid or through the variable), and the
 * dashboards provider loading the folder the dashboard lives in. The Prometheus alert rules
 * (deploy/prometheus/alerts.yml) are held to the same: loaded as YAML, every expression on exposed
 * metrics and labels, and checked and unit-tested by promtool when it is installed.
 */
const ROOT = process.cwd();
const DEPLOY = join(ROOT, 'deploy');
const DASHBOARDS_DIR = join(DEPLOY, 'grafana/dashboards');
const DASHBOARD_FILE = join(DASHBOARDS_DIR, 'order-service.json');
const DATASOURCES_FILE = join(DEPLOY, 'grafana/provisioning/datasources/prometheus.yml');
const PROVIDERS_FILE = join(DEPLOY, 'grafana/provisioning/dashboards/dashboards.yml');
const PROMETHEUS_FILE = join(DEPLOY, 'prometheus/prometheus.yml');
const ALERTS_FILE = join(DEPLOY, 'prometheus/alerts.yml');
const ALERTS_TEST_FILE = join(DEPLOY, 'prometheus/alerts.test.yml');

// ---------------------------------------------------------------------------------------------
// PromQL, as far as telling metric names apart from everything else needs.
// ---------------------------------------------------------------------------------------------

type Token =
  | { kind: 'ident'; text: string }
  | { kind: 'string'; text: string }
  | { kind: 'number'; text: string }
  | { kind: 'variable'; text: string }
  | { kind: 'punct'; text: string };

/** Aggregation operators: `sum by (x) (…)` and `sum (…) by (x)` both have them not followed by `(`. */
const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);
/** Keywords and binary operators spelled as words; none of them is ever a metric. */
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'atan2',
  'inf',
  'nan',
]);
/** Words followed by a parenthesised list of label names (not expressions). */
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const rest = expr.slice(i);
    const space = /^\s+/.exec(rest);
    if (space) {
      i += space[0].length;
      continue;
    }
    if (rest.startsWith('#')) {
      // A comment runs to the end of the line.
      const end = expr.indexOf('\n', i);
      i = end === -1 ? expr.length : end;
      continue;
    }
    const quote = rest[0];
    if (quote === '"' || quote === "'" || quote === '`') {
      let j = i + 1;
      let text = '';
      while (j < expr.length && expr[j] !== quote) {
        if (expr[j] === '\\' && quote !== '`') j++;
        text += expr[j];
        j++;
      }
      if (j >= expr.length) throw new Error(`unterminated string in: ${expr}`);
      tokens.push({ kind: 'string', text });
      i = j + 1;
      continue;
    }
    // Grafana's variables: $name, ${name}, ${name:format}, [[name]] (old syntax).
    const variable = /^(\$\{[^}]+\}|\$[A-Za-z_]\w*|\[\[[^\]]+\]\])/.exec(rest);
    if (variable) {
      tokens.push({ kind: 'variable', text: variable[0] });
      i += variable[0].length;
      continue;
    }
    // Numbers and durations (0.95, 1e3, 0x1f, 5m, 1h30m, 250ms, .5).
    const number =
      /^(0x[0-9a-f]+|(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?)(ms|[smhdwy])?((\d+)(ms|[smhdwy]))*/i.exec(
        rest,
      );
    if (number && number[0].length > 0 && /^[\d.]/.test(rest) && !/^\.\D/.test(rest)) {
      tokens.push({ kind: 'number', text: number[0] });
      i += number[0].length;
      continue;
    }
    const ident = /^[A-Za-z_:][\w:]*/.exec(rest);
    if (ident) {
      tokens.push({ kind: 'ident', text: ident[0] });
      i += ident[0].length;
      continue;
    }
    const punct = /^(=~|!~|!=|==|>=|<=|[-+*/%^(){}[\],=<>@:])/.exec(rest);
    if (punct) {
      tokens.push({ kind: 'punct', text: punct[0] });
      i += punct[0].length;
      continue;
    }
    throw new Error(`unexpected "${rest[0]}" at ${i} in: ${expr}`);
  }
  return tokens;
}

interface PromqlNames {
  /** Metric names as written (e.g. `…_bucket`), in order of first use. */
  metrics: string[];
  /** Label names used in matchers and in by/without/on/ignoring/group_x lists. */
  labels: string[];
}

/** The metric and label names an expression uses; functions, keywords and variables are neither. */
function promqlNames(expr: string): PromqlNames {
  const tokens = tokenize(expr);
  const metrics = new Set<string>();
  const labels = new Set<string>();
  let braces = 0;
  let brackets = 0;
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    const next = tokens[k + 1];
    if (t.kind === 'punct') {
      if (t.text === '{') braces++;
      else if (t.text === '}') braces--;
      else if (t.text === '[') brackets++;
      else if (t.text === ']') brackets--;
      continue;
    }
    if (t.kind !== 'ident' || brackets > 0) continue;
    if (braces > 0) {
      // A matcher: label op "value". `__name__` names the metric itself.
      const value = tokens[k + 2];
      if (t.text === '__name__') {
        if (next?.text === '=' && value?.kind === 'string') metrics.add(value.text);
      } else {
        labels.add(t.text);
      }
      continue;
    }
    if (LABEL_LISTS.has(t.text) && next?.text === '(') {
      let j = k + 2;
      for (; j < tokens.length && tokens[j].text !== ')'; j++) {
        if (tokens[j].kind === 'ident') labels.add(tokens[j].text);
      }
      k = j;
      continue;
    }
    if (KEYWORDS.has(t.text) || AGGREGATIONS.has(t.text)) continue;
    if (next?.text === '(') continue; // a function call
    metrics.add(t.text);
  }
  return { metrics: [...metrics], labels: [...labels] };
}

// ---------------------------------------------------------------------------------------------
// The Prometheus text the service exposes.
// ---------------------------------------------------------------------------------------------

interface Exposition {
  /** Metric family name → type, from the `# TYPE` lines. */
  types: Map<string, string>;
  /** Sample name → the label names seen on its samples. */
  samples: Map<string, Set<string>>;
}

function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      types.set(type[1], type[2]);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^([A-Za-z_:][\w:]*)(\{(.*)\})?\s/.exec(line);
    if (!sample) throw new Error(`unparsable sample line: ${line}`);
    const names = samples.get(sample[1]) ?? new Set<string>();
    for (const m of (sample[3] ?? '').matchAll(/([A-Za-z_]\w*)="(?:[^"\\]|\\.)*"/g)) {
      names.add(m[1]);
    }
    samples.set(sample[1], names);
  }
  return { types, samples };
}

const HISTOGRAM_SUFFIX = /^(.+)_(bucket|sum|count)$/;

/** The family a used name belongs to: `x_bucket` is `x` only when `x` is a histogram. */
function familyOf(name: string, types: Map<string, string>): string {
  const m = HISTOGRAM_SUFFIX.exec(name);
  return m && types.get(m[1]) === 'histogram' ? m[1] : name;
}

// ---------------------------------------------------------------------------------------------
// The dashboard.
// ---------------------------------------------------------------------------------------------

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; refId: string; datasource?: { type?: string; uid?: string } }[];
  panels?: Panel[];
}

interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: {
    list: {
      type: string;
      name: string;
      query?: string | { query?: string };
      definition?: string;
      current?: { value?: string | string[] };
    }[];
  };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;

/** Every panel, rows' collapsed children included. */
function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}
const panels = allPanels(dashboard.panels);
const queryPanels = panels.filter((p) => p.type !== 'row');

/**
 * Each PromQL query of the dashboard: the panels' targets, and the query variables'
 * `label_values(selector, label)` (its label is checked as if grouped by).
 */
const queries: { where: string; expr: string; labels: string[] }[] = [
  ...queryPanels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({
      where: `panel "${p.title}" ${t.refId}`,
      expr: t.expr ?? '',
      labels: [],
    })),
  ),
  ...dashboard.templating.list
    .filter((v) => v.type === 'query')
    .map((v) => {
      const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? v.definition ?? '');
      const labelValues = /^\s*label_values\((?:(.*),)?\s*([A-Za-z_]\w*)\s*\)\s*$/s.exec(q);
      return labelValues
        ? { where: `variable $${v.name}`, expr: labelValues[1] ?? '', labels: [labelValues[2]] }
        : {
            where: `variable $${v.name}`,
            expr: q.replace(/^\s*query_result\((.*)\)\s*$/s, '$1'),
            labels: [],
          };
    }),
];

/** Labels Prometheus adds to every scraped series: the service never exposes them itself. */
const TARGET_LABELS = new Set(['job', 'instance']);

/** One `key: value` of a small YAML file (these files have each key once). */
function yamlValue(text: string, key: string): string | undefined {
  const m = new RegExp(`^\\s*-?\\s*${key}:\\s*['"]?([^'"#\\n]*?)['"]?\\s*(#.*)?$`, 'm').exec(text);
  return m?.[1];
}

describe('PromQL names', () => {
  it.each([
    {
      case: 'grouping labels, matchers and Grafana variables',
      expr: 'sum by (method, route) (rate(http_request_duration_seconds_count{job=~"$job", route=~"/api/.*"}[$__rate_interval]))',
      metrics: ['http_request_duration_seconds_count'],
      labels: ['method', 'route', 'job'],
    },
    {
      case: 'a string that looks like PromQL, by after the aggregation, vector matching',
      expr: 'histogram_quantile(0.95, sum(rate(a_bucket{x="sum(b)"}[5m])) by (le)) * on (instance) group_left (version) build_info',
      metrics: ['a_bucket', 'build_info'],
      labels: ['x', 'le', 'instance', 'version'],
    },
    {
      case: 'without, offset, bool, set operators and ${variable}',
      expr: 'sort_desc(round(sum without (pod) (increase(c_total[${__range}] offset 1h))) > bool 0) or vector(0)',
      metrics: ['c_total'],
      labels: ['pod'],
    },
    {
      case: '__name__ matchers, topk, numbers with exponents, compound durations',
      expr: '{__name__="up", job="x"} and topk(3, rate(d_total[1h30m]) / 1e3)',
      metrics: ['up', 'd_total'],
      labels: ['job'],
    },
    {
      case: 'comments',
      expr: 'max(outbox_lag_seconds) # the lag\n  > $threshold',
      metrics: ['outbox_lag_seconds'],
      labels: [],
    },
  ])('$case', ({ expr, metrics, labels }) => {
    expect(promqlNames(expr)).toEqual({ metrics, labels });
  });
});

describe('Grafana dashboard (deploy/grafana)', () => {
  let t: TestApp;
  let exposition: Exposition;
  beforeAll(async () => {
    t = await createTestApp();
    // Routes appear in http_request_duration_seconds once they have answered once.
    await t.http().get('/health/live').expect(200);
    const res = await t.http().get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    exposition = parseExposition(res.text);
  });
  afterAll(() => t.close());

  it('has PromQL in every target of every panel', () => {
    expect(queryPanels.length).toBeGreaterThanOrEqual(10);
    const empty = queryPanels
      .filter((p) => !p.targets?.length || p.targets.some((x) => !x.expr?.trim()))
      .map((p) => p.title);
    expect(empty).toEqual([]);
  });

  it('uses only metrics the service exposes', () => {
    const used = new Map<string, string[]>(); // metric as written → where
    for (const q of queries) {
      for (const m of promqlNames(q.expr).metrics) used.set(m, [...(used.get(m) ?? []), q.where]);
    }
    // The ones the task names, so that a parser that finds nothing cannot pass.
    expect([...used.keys()].map((m) => familyOf(m, exposition.types)).sort()).toEqual(
      expect.arrayContaining([
        'conflicts_total',
        'db_pool_connections',
        'http_request_duration_seconds',
        'idempotent_replays_total',
        'order_hold_oldest_overdue_seconds',
        'order_holds_expired_total',
        'order_placement_batch_size',
        'order_placements_shed_total',
        'order_placements_waiting',
        'outbox_lag_seconds',
        'stock_reservation_failures_total',
        'webhook_deliveries_total',
      ]),
    );
    const missing = [...used]
      .filter(([name]) => {
        const family = familyOf(name, exposition.types);
        return !exposition.types.has(family) || !exposition.samples.has(name);
      })
      .map(([name, where]) => `${name} (${where.join('; ')})`);
    expect(missing).toEqual([]);
  });

  it('groups and filters only by labels the service exposes (or Prometheus adds)', () => {
    const problems: string[] = [];
    for (const q of queries) {
      const names = promqlNames(q.expr);
      const metrics = names.metrics;
      const labels = [...names.labels, ...q.labels];
      const available = new Set(metrics.flatMap((m) => [...(exposition.samples.get(m) ?? [])]));
      for (const label of labels) {
        if (!TARGET_LABELS.has(label) && !available.has(label)) {
          problems.push(`${q.where}: label "${label}" is on none of ${metrics.join(', ')}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('queries counters through rate()/increase() and never rates a gauge', () => {
    const problems: string[] = [];
    for (const q of queries.filter((x) => x.where.startsWith('panel'))) {
      const tokens = tokenize(q.expr);
      for (const m of promqlNames(q.expr).metrics) {
        const type = exposition.types.get(familyOf(m, exposition.types));
        const at = tokens.findIndex((tok) => tok.kind === 'ident' && tok.text === m);
        // The function applied to the selector: `rate(` `m` … or nothing.
        const fn = tokens[at - 1]?.text === '(' ? tokens[at - 2]?.text : undefined;
        const rated = fn === 'rate' || fn === 'increase' || fn === 'irate';
        if ((type === 'counter' || type === 'histogram') && !rated)
          problems.push(`${q.where}: ${type} ${m} without rate()/increase()`);
        if (type === 'gauge' && rated) problems.push(`${q.where}: ${fn}() of gauge ${m}`);
      }
      if (/\[\s*\d+[smhdwy]\s*\]/.test(q.expr))
        problems.push(`${q.where}: a fixed range; use $__rate_interval (or $__range)`);
    }
    expect(problems).toEqual([]);
  });

  it('shows conflicts (409/412/428) apart from the other refusals (401/404, …), each with exactly its codes', () => {
    /** The codes a panel's conflicts_total queries select with `code=~"A|B"`, sorted. */
    const codesOf = (p: Panel): string[] => {
      const lists = (p.targets ?? []).map(
        (x) => /conflicts_total\{[^}]*code=~"([^"]*)"/.exec(x.expr ?? '')?.[1] ?? '',
      );
      expect(new Set(lists).size).toBe(1);
      return lists[0].split('|').filter(Boolean).sort();
    };
    const statusOf = (code: string): number => PROBLEMS[code as keyof typeof PROBLEMS].status;
    const conflicts = PROBLEM_CODES.filter((c) => [409, 412, 428].includes(statusOf(c))).sort();
    const refusals = PROBLEM_CODES.filter(
      (c) => statusOf(c) < 500 && !conflicts.includes(c),
    ).sort();
    expect(conflicts).toEqual(expect.arrayContaining(['INSUFFICIENT_STOCK', 'VERSION_MISMATCH']));
    expect(refusals).toEqual(expect.arrayContaining(['UNAUTHENTICATED', 'NOT_FOUND']));
    const byCode = queryPanels.filter((p) =>
      (p.targets ?? []).some((x) => /\bconflicts_total\b/.test(x.expr ?? '')),
    );
    const selected = byCode.map((p) => ({ title: p.title, codes: codesOf(p) }));
    // Every panel on conflicts_total selects either the conflicts or the other refusals, never
    // both, and only the conflicts' panels say "Conflicts".
    const kind = (codes: string[]): string =>
      codes.join() === conflicts.join()
        ? 'conflicts'
        : codes.join() === refusals.join()
          ? 'refusals'
          : `other: ${codes.join()}`;
    expect(selected.map((x) => ({ title: x.title, kind: kind(x.codes) }))).toEqual(
      selected.map((x) => ({
        title: x.title,
        kind: x.title.startsWith('Conflicts') ? 'conflicts' : 'refusals',
      })),
    );
    expect(selected.map((x) => kind(x.codes)).sort()).toEqual(
      expect.arrayContaining(['conflicts', 'refusals']),
    );
  });

  it('has a 5xx panel and an error-rate panel, and the placement queue', () => {
    const exprs = (p: Panel) => (p.targets ?? []).map((x) => x.expr ?? '').join('\n');
    const fiveXx = queryPanels.filter((p) => /status_code(=~|!~)"5\.\."/.test(exprs(p)));
    expect(fiveXx.map((p) => p.title)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/5xx/),
        expect.stringMatching(/[Ee]rror rate/),
      ]),
    );
    // The rate is a share of all answers of the same selection: 1 - the others' (0 before any 5xx).
    const rate = fiveXx.find((p) => /[Ee]rror rate/.test(p.title))!;
    expect(exprs(rate)).toMatch(
      /^1 - sum\(rate\(http_request_duration_seconds_count\{[^}]*status_code!~"5\.\."\}\[\$__rate_interval\]\)\) \/ sum\(rate\(http_request_duration_seconds_count\{/,
    );
    for (const metric of [
      'order_placement_batch_size_bucket',
      'order_placement_batch_size_sum',
      'order_placement_batch_size_count',
      'order_placements_waiting',
      'order_placements_shed_total',
    ]) {
      expect(
        queryPanels.filter((p) => new RegExp(`\\b${metric}\\b`).test(exprs(p))).length,
      ).toBeGreaterThanOrEqual(1);
    }
  });

  it('puts every panel on the provisioned Prometheus, by uid or through the datasource variable', () => {
    const provisioned = readFileSync(DATASOURCES_FILE, 'utf8');
    const uid = yamlValue(provisioned, 'uid');
    expect({
      uid,
      type: yamlValue(provisioned, 'type'),
      url: yamlValue(provisioned, 'url'),
    }).toEqual({ uid: expect.any(String), type: 'prometheus', url: 'http://prometheus:9090' });

    const variable = dashboard.templating.list.find((v) => v.type === 'datasource');
    expect(variable).toMatchObject({ query: 'prometheus', current: { value: uid } });
    const allowed = [uid, `$${variable!.name}`, `\${${variable!.name}}`];

    const wrong: string[] = [];
    const check = (where: string, ds?: { type?: string; uid?: string }) => {
      if (!ds || ds.type !== 'prometheus' || !allowed.includes(ds.uid))
        wrong.push(`${where}: ${JSON.stringify(ds)}`);
    };
    for (const p of queryPanels) {
      check(`panel "${p.title}"`, p.datasource);
      for (const target of p.targets ?? [])
        if (target.datasource) check(`panel "${p.title}" ${target.refId}`, target.datasource);
    }
    for (const v of dashboard.templating.list.filter((x) => x.type === 'query'))
      check(
        `variable $${v.name}`,
        (v as { datasource?: { type?: string; uid?: string } }).datasource,
      );
    expect(wrong).toEqual([]);
    // Rows only group panels: a query on one would be a panel no datasource check covers.
    for (const row of panels.filter((p) => p.type === 'row')) expect(row.targets ?? []).toEqual([]);
  });

  it('has unique panel ids and no panel overlapping another', () => {
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const boxes = panels.map((p) => ({
      title: p.title,
      ...(p as unknown as { gridPos: { x: number; y: number; w: number; h: number } }).gridPos,
    }));
    const overlaps: string[] = [];
    for (const [i, a] of boxes.entries()) {
      expect(a.x + a.w).toBeLessThanOrEqual(24);
      for (const b of boxes.slice(i + 1)) {
        if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h)
          overlaps.push(`${a.title} / ${b.title}`);
      }
    }
    expect(overlaps).toEqual([]);
  });

  it('is loaded by the dashboards provider from the folder it lives in', () => {
    const providers = readFileSync(PROVIDERS_FILE, 'utf8');
    expect(yamlValue(providers, 'type')).toBe('file');
    const path = yamlValue(providers, 'path');
    expect(path).toMatch(/^\/[\w/.-]+$/);
    expect(readdirSync(DASHBOARDS_DIR)).toContain('order-service.json');
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);

    // Prometheus scrapes the service under the job the dashboard selects by default.
    const prometheus = readFileSync(PROMETHEUS_FILE, 'utf8');
    const job = dashboard.templating.list.find((v) => v.name === 'job')?.current?.value;
    expect({
      job: yamlValue(prometheus, 'job_name'),
      interval: yamlValue(prometheus, 'scrape_interval'),
      path: yamlValue(prometheus, 'metrics_path'),
      target: /targets:\s*\[\s*'([^']+)'\s*\]/.exec(prometheus)?.[1],
    }).toEqual({ job, interval: '5s', path: '/metrics', target: 'app:3000' });
  });

  // The compose services are added to docker-compose.yml separately: checked once they are there.
  const compose = existsSync(join(ROOT, 'docker-compose.yml'))
    ? readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')
    : '';
  (/^ {2}grafana:/m.test(compose) ? it : it.skip)(
    'docker-compose.yml mounts the provisioning and the dashboards where the provider looks',
    () => {
      const mount = (dir: string) =>
        new RegExp(`^\\s*-\\s*['"]?\\./${dir}:([^:'"\\s]+)`, 'm').exec(compose)?.[1];
      expect({
        provisioning: mount('deploy/grafana/provisioning'),
        dashboards: mount('deploy/grafana/dashboards'),
        prometheus: mount('deploy/prometheus'),
      }).toEqual({
        provisioning: '/etc/grafana/provisioning',
        dashboards: yamlValue(readFileSync(PROVIDERS_FILE, 'utf8'), 'path'),
        prometheus: expect.stringMatching(/^\//),
      });
    },
  );

  describe('Prometheus alert rules (deploy/prometheus/alerts.yml)', () => {
    interface Rule {
      alert?: string;
      record?: string;
      expr: string;
      for?: string;
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    }
    const prometheus = loadYaml(readFileSync(PROMETHEUS_FILE, 'utf8')) as {
      rule_files?: string[];
      scrape_configs: { job_name: string }[];
    };
    const alerts = loadYaml(readFileSync(ALERTS_FILE, 'utf8')) as {
      groups: { name: string; rules: Rule[] }[];
    };
    const rules = alerts.groups.flatMap((g) => g.rules);

    it('is loaded by prometheus.yml, and every rule is a complete alert', () => {
      expect(prometheus.rule_files).toEqual(['alerts.yml']);
      expect(alerts.groups.length).toBeGreaterThanOrEqual(1);
      for (const rule of rules) {
        expect(rule).toEqual({
          alert: expect.stringMatching(/^[A-Z][A-Za-z]+$/),
          expr: expect.any(String),
          ...(rule.for === undefined ? {} : { for: expect.stringMatching(/^\d+[smh]$/) }),
          labels: { severity: expect.stringMatching(/^(warning|critical)$/) },
          annotations: { summary: expect.any(String), description: expect.any(String) },
        });
      }
      expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
    });

    it('alerts on a stalled sweeper, outbox lag and failed deliveries, with only exposed metrics and labels', () => {
      const job = prometheus.scrape_configs[0].job_name;
      const problems: string[] = [];
      const used = new Set<string>();
      for (const rule of rules) {
        const { metrics, labels } = promqlNames(rule.expr);
        const tokens = tokenize(rule.expr);
        for (const m of metrics) {
          used.add(familyOf(m, exposition.types));
          const type = exposition.types.get(familyOf(m, exposition.types));
          if (!type || !exposition.samples.has(m))
            problems.push(`${rule.alert}: ${m} is not exposed`);
          const at = tokens.findIndex((tok) => tok.kind === 'ident' && tok.text === m);
          const fn = tokens[at - 1]?.text === '(' ? tokens[at - 2]?.text : undefined;
          const rated = fn === 'rate' || fn === 'increase' || fn === 'irate';
          if ((type === 'counter' || type === 'histogram') && !rated)
            problems.push(`${rule.alert}: ${type} ${m} without rate()/increase()`);
          if (type === 'gauge' && rated) problems.push(`${rule.alert}: ${fn}() of gauge ${m}`);
        }
        const available = new Set(metrics.flatMap((m) => [...(exposition.samples.get(m) ?? [])]));
        for (const label of labels) {
          if (!TARGET_LABELS.has(label) && !available.has(label))
            problems.push(`${rule.alert}: label "${label}" is on none of ${metrics.join(', ')}`);
        }
        // Scoped to the service's scrape job, by its name in prometheus.yml.
        const jobs = [...rule.expr.matchAll(/\bjob\s*=\s*"([^"]*)"/g)].map((m) => m[1]);
        if (!jobs.length || jobs.some((j) => j !== job))
          problems.push(`${rule.alert}: not on job="${job}" (${jobs.join(', ')})`);
      }
      expect(problems).toEqual([]);
      expect([...used].sort()).toEqual(
        expect.arrayContaining([
          'order_hold_oldest_overdue_seconds',
          'outbox_lag_seconds',
          'webhook_deliveries_total',
        ]),
      );
      expect(rules.find((r) => r.expr.includes('webhook_deliveries_total'))?.expr).toMatch(
        /outcome\s*=\s*"failed"/,
      );
    });

    // promtool (Debian: apt-get install prometheus) checks the syntax Prometheus itself accepts and
    // runs alerts.test.yml: each alert fires on its series and stays silent on a healthy service.
    const promtool = spawnSync('promtool', ['--version']).status === 0;
    const needed = requiredServices().has('promtool');
    if (!promtool && !needed) {
      const line =
        'promtool check/test of the alert rules (no promtool on PATH; REQUIRE_TEST_SERVICES=promtool makes it an error)';
      process.stderr.write(`\nskipped: ${line}\n`);
      recordSkip(line);
    }
    (promtool || needed ? it : it.skip)(
      'passes promtool check config, check rules and test rules',
      () => {
        expect(promtool).toBe(true);
        for (const args of [
          ['check', 'config', PROMETHEUS_FILE],
          ['check', 'rules', ALERTS_FILE],
          ['test', 'rules', ALERTS_TEST_FILE],
        ]) {
          const run = spawnSync('promtool', args, { encoding: 'utf8' });
          expect({
            args,
            status: run.status,
            output: run.status === 0 ? '' : run.stdout + run.stderr,
          }).toEqual({
            args,
            status: 0,
            output: '',
          });
        }
      },
    );
  });
});
