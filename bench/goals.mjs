// The performance goals of issue 26, each printed with its target and value by run.mjs, and the
// ratios drawn in the chart. A goal is one of:
// - a throughput ratio of two scenarios (`num / den`, taken round by round, the median of the
//   rounds' ratios: each ratio compares two runs at most a couple of minutes apart);
// - `cpu`: the service's CPU µs per request of one scenario (all rounds), at most `max`;
// - `ceiling`: a scenario's req/s against pgbench's one-statement order (db-ceiling.mjs);
// - `standby`: the read through a streaming standby against the primary (standby-read.mjs).

/** The goals, in the order of the table. */
export const GOALS = [
  {
    label: 'Keyed checkout, hot',
    num: 'e-ample-key',
    den: 'e-ample',
    goal: 0.8,
    means:
      'checkouts of one product with a new Idempotency-Key each, as the typed client sends them, ' +
      'against the same checkouts without a key',
  },
  {
    label: 'Keyed checkout, spread',
    num: 'd-key',
    den: 'd',
    goal: 0.8,
    means: 'checkouts spread over the catalogue with a new Idempotency-Key each, against without',
  },
  {
    label: 'Checkout',
    num: 'd',
    den: 'd-ref',
    goal: 1.5,
    means:
      'orders spread over the catalogue, the service against a hand-written Fastify + pg server ' +
      'with the same effects in the database',
  },
  {
    label: 'Checkout CPU',
    kind: 'cpu',
    scenario: 'd',
    max: 350,
    means: "the service process's CPU per checkout (spread), all rounds",
  },
  {
    label: 'Checkout vs the database',
    kind: 'ceiling',
    num: 'd',
    den: 'pgbench spread',
    goal: 0.35,
    means:
      "checkouts spread over the catalogue against pgbench's one-statement order on the same " +
      'database (what PostgreSQL itself commits here with no application round trip)',
  },
  {
    label: 'Hot product',
    num: 'e-ample',
    den: 'd',
    goal: 1.0,
    means:
      'every order on one product (ample stock) against orders spread over the catalogue: what ' +
      'contention on one row costs the service',
  },
  {
    label: 'Stale If-Match',
    num: 'f',
    den: 'a',
    goal: 0.75,
    means: 'a refused PATCH (412) against a read of the same product',
  },
  {
    label: 'Read',
    // Measured with wrk, which leaves the servers the CPU autocannon would take; with autocannon
    // (a / a-ref) when wrk is not installed.
    num: 'a-wrk',
    den: 'a-ref-wrk',
    fallback: { num: 'a', den: 'a-ref' },
    goal: 1.0,
    means:
      'GET one product, the service against plain Fastify + pg with the same SQL, body and ETag',
  },
  {
    label: 'Read, tracing on',
    num: 'a-otel',
    den: 'a',
    goal: 0.85,
    means:
      'GET one product on a second service with OpenTelemetry on (default sampler, OTLP/HTTP to a ' +
      'local sink) against the service without',
  },
  {
    label: 'Promotion code',
    num: 'd-promo',
    den: 'd',
    goal: 0.9,
    means: 'checkouts spread over the catalogue with a promotion code against without',
  },
  {
    label: 'Payment notification',
    num: 'pay',
    den: 'd',
    goal: 1.0,
    means:
      'signed Stripe payment_intent.succeeded events, each paying a distinct order, against checkouts',
  },
  {
    label: 'Read from a standby',
    kind: 'standby',
    num: 'standby',
    den: 'primary',
    goal: 0.95,
    means: 'GET one product through a streaming standby against the primary (standby-read.mjs)',
  },
];

const fmt = (n, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

const median = (values) => {
  const sorted = [...values].sort((x, y) => x - y);
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
};

/**
 * Each goal's value (undefined when what it needs did not run), whether it is `met`, and its
 * details. `ceiling` (pgbench's figures) and `standby` (measureStandbyRead's) when measured.
 */
export function goalRatios(runs, { ceiling, standby } = {}) {
  const run = (key) => runs.find((r) => r.scenario.key === key);
  return GOALS.map((goal) => {
    if (goal.kind === 'cpu') {
      const r = run(goal.scenario);
      if (!r) return { ...goal, value: undefined };
      const value = r.result.cpuUsPerRequest;
      const perRound = r.rounds?.length > 1 ? r.rounds.map((x) => x.cpuUsPerRequest) : undefined;
      return { ...goal, value, perRound, met: value <= goal.max };
    }
    if (goal.kind === 'ceiling') {
      const r = run(goal.num);
      if (!r || !ceiling || ceiling.skipped) return { ...goal, value: undefined };
      const value = r.result.rps / ceiling.spread.tps;
      return {
        ...goal,
        value,
        met: value >= goal.goal,
        num: { key: goal.num, ...r.result },
        den: { key: goal.den, rps: ceiling.spread.tps },
      };
    }
    if (goal.kind === 'standby') {
      if (!standby || standby.skipped) return { ...goal, value: undefined };
      const avg = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
      return {
        ...goal,
        value: standby.ratio,
        met: standby.ratio >= goal.goal,
        perRound: standby.ratios.length > 1 ? standby.ratios : undefined,
        num: { key: 'standby', rps: avg(standby.standby) },
        den: { key: 'primary', rps: avg(standby.primary) },
      };
    }
    const measured = (g) => run(g.num) && run(g.den);
    const g = !measured(goal) && goal.fallback ? { ...goal, ...goal.fallback } : goal;
    const [num, den] = [run(g.num), run(g.den)];
    if (!num || !den) return { ...g, value: undefined };
    // Round by round when both ran in rounds: each ratio compares two runs minutes apart at most.
    const n = Math.min(num.rounds?.length ?? 0, den.rounds?.length ?? 0);
    const perRound = Array.from({ length: n }, (_, i) => num.rounds[i].rps / den.rounds[i].rps);
    const value = n > 1 ? median(perRound) : num.result.rps / den.result.rps;
    return {
      ...g,
      num: { key: g.num, ...num.result },
      den: { key: g.den, ...den.result },
      value,
      met: value >= g.goal,
      perRound: n > 1 ? perRound : undefined,
    };
  });
}

/** What a goal compares, e.g. `d / d-ref` or `d CPU µs/req`. */
export const goalTerms = (r) =>
  r.kind === 'cpu' ? `${r.scenario} CPU µs/req` : `${r.num.key ?? r.num} / ${r.den.key ?? r.den}`;

/** A goal's target as printed: `≥ 0.80×` or `≤ 350 µs`. */
export const goalTarget = (r) => (r.kind === 'cpu' ? `≤ ${fmt(r.max)} µs` : `≥ ${fmt(r.goal, 2)}×`);

/** One line per goal: what it compares, its goal, its value, met or not. */
export function ratioSection(ratios) {
  const line = (r) => {
    const head = `- **${r.label}** \`${goalTerms(r)}\`: goal ${goalTarget(r)}`;
    if (r.value === undefined) return `${head}, not measured`;
    const means = `${r.means[0].toUpperCase()}${r.means.slice(1)}`;
    const verdict = `**${r.met ? 'met' : 'not met'}**`;
    if (r.kind === 'cpu') {
      const rounds = r.perRound ? ` (rounds ${r.perRound.map((v) => fmt(v)).join(', ')})` : '';
      return `${head}, value **${fmt(r.value)} µs**${rounds}: ${verdict}. ${means}.`;
    }
    const detail = r.perRound
      ? `median of ${r.perRound.length} rounds: ${r.perRound.map((v) => fmt(v, 2)).join(', ')}; ` +
        `${fmt(r.num.rps)} / ${fmt(r.den.rps)} req/s over all rounds`
      : `${fmt(r.num.rps)} / ${fmt(r.den.rps)} ${r.kind === 'ceiling' ? 'req/s / tps' : 'req/s'}`;
    const cpu =
      r.num.cpuUsPerRequest !== undefined && r.den.cpuUsPerRequest !== undefined
        ? ` CPU ${fmt(r.num.cpuUsPerRequest)} vs ${fmt(r.den.cpuUsPerRequest)} µs/req` +
          (Number.isNaN(r.num.dbCpuUsPerRequest ?? NaN) ||
          Number.isNaN(r.den.dbCpuUsPerRequest ?? NaN)
            ? '.'
            : `; PostgreSQL ${fmt(r.num.dbCpuUsPerRequest)} vs ${fmt(r.den.dbCpuUsPerRequest)} µs/req.`)
        : '';
    return `${head}, value **${fmt(r.value, 2)}×** (${detail}): ${verdict}. ${means}.${cpu}`;
  };
  return [
    '## Goals',
    '',
    ...ratios.map(line),
    '',
    'CPU µs/req is the server process only (all its threads), not PostgreSQL or the load generator; ' +
      'DB CPU µs/req is the whole PostgreSQL server (every process of it), when it runs on this machine.',
  ];
}
