// The report of a run (run.mjs): the machine, the results table, the context lines (tracing,
// database ceiling, standby read, memory), the invariants, the results file and its chart. The goals'
// section is goals.mjs's.
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import * as prettier from 'prettier';
import { chartSvg } from './chart.mjs';
import { ROOT } from './harness.mjs';
import { wrkVersion } from './wrk.mjs';

/** Connections of e-ample and e-ample-key (and of pgbench): the service's pool is 20. */
export const HOT_CONNECTIONS = 16;
export const PGBENCH_THREADS = 2;

const fmt = (n, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function git(...args) {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
}

/** This Node's version, marked when package.json's engines (a list of `^x.y.z`) leave it out. */
async function nodeWithinEngines() {
  const engines = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).engines.node;
  const version = process.versions.node.split('.').map(Number);
  const within = engines.split('||').some((range) => {
    const floor = range.trim().replace(/^\^/, '').split('.').map(Number);
    if (floor[0] !== version[0]) return false;
    for (let i = 1; i < 3; i++) if (version[i] !== floor[i]) return version[i] > floor[i];
    return true;
  });
  return within
    ? process.version
    : `${process.version} (outside package.json's engines: ${engines})`;
}

export async function machine(sql, database) {
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
    // The service, the reference and the load generator all run on this Node. Outside package.json's
    // engines (the machine's Node 20, say) tracing costs more: context propagation is async hooks.
    node: await nodeWithinEngines(),
    postgres: pgVersion.split(' on ')[0],
    database,
    autocannon: autocannon.version,
    wrk: await wrkVersion(),
    // Other work on the machine (CI, tests) competes for the same cores.
    loadavg: loadavg()
      .map((l) => l.toFixed(2))
      .join(' / '),
  };
}

export function header(title, m, opts) {
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
    `| Load | autocannon ${m.autocannon} in a separate process` +
      (m.wrk
        ? ` (${m.wrk}, one thread, for the \`-wrk\` rows)`
        : ' (wrk not installed: no `-wrk` rows)') +
      `, ${opts.connections} connections ` +
      `(${HOT_CONNECTIONS} for e-ample and e-ample-key), ${opts.rounds} interleaved round${opts.rounds > 1 ? 's' : ''} ` +
      `of ${opts.duration} s per scenario (e: one), the first after ${opts.warmup} s of warm-up ` +
      `(none for e)${opts.soak ? `; soak ${opts.soak} s` : ''} |`,
    `| Service | NODE_ENV=production, LOG_LEVEL=warn, DB_POOL_SIZE=20, rate limits out of reach |`,
    '',
  ];
}

export function resultsTable(runs) {
  const rows = runs.map(({ scenario, result, checks, connections }) => {
    const statuses = Object.entries(result.statusCodes)
      .map(([code, n]) => `${code}: ${fmt(n)}`)
      .join(', ');
    const failed = checks.filter((c) => !c.ok).length;
    return (
      `| ${scenario.key} | ${scenario.title} | ${fmt(result.elapsedS, 1)} | ${connections} | ` +
      `${fmt(result.rps)} | ${fmt(result.latency.p50, 2)} | ${fmt(result.latency.p90, 2)} | ` +
      `${fmt(result.latency.p99, 2)} | ${fmt(result.cpuUsPerRequest)} | ` +
      `${Number.isNaN(result.dbCpuUsPerRequest ?? NaN) ? '–' : fmt(result.dbCpuUsPerRequest)} | ${statuses} | ` +
      `${failed ? `✗ ${failed} failed` : '✓'} |`
    );
  });
  return [
    '| # | Scenario | Time s | Conns | Req/s | p50 ms | p90 ms | p99 ms | CPU µs/req | DB CPU µs/req | Statuses | Invariants |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    ...rows,
  ];
}

export function tracingLine(runs, exported) {
  const result = (key) => runs.find((r) => r.scenario.key === key)?.result;
  const part = (key) => {
    const [off, on] = [result(key), result(`${key}-otel`)];
    if (!off || !on) return `${key}: not measured`;
    return (
      `${key}: ${fmt(off.rps)} → ${fmt(on.rps)} req/s (**${fmt(on.rps / off.rps, 2)}×** over all ` +
      `rounds), CPU ${fmt(off.cpuUsPerRequest)} → ${fmt(on.cpuUsPerRequest)} µs/req`
    );
  };
  if (!exported) return '**Tracing on vs off:** not measured.';
  return (
    `**Tracing on vs off** (a second service: OpenTelemetry SDK with the http, undici and pg ` +
    `instrumentations, its default sampler (parent-based, 10% of new traces; conflicts and 5xx ` +
    `always), batch export over OTLP/HTTP to a local sink that received ${fmt(exported.exports)} ` +
    `exports, ${fmt(exported.bytes / 1024)} kB): ${part('a')}; ${part('d')}. Off (no OTEL_* ` +
    `variables) the SDK is not started at all.`
  );
}

/** The pgbench figures, against the service's and the reference's order throughput. */
export function ceilingLine(ceiling, runs, opts) {
  if (ceiling.skipped) return `**Database ceiling:** skipped (${ceiling.skipped}).`;
  const rps = (key) => runs.find((r) => r.scenario.key === key)?.result.rps;
  const part = ({ tps, latencyMs, failed, dbCpuUsPerTransaction: db }) =>
    `**${fmt(tps)} tps** (average latency ${fmt(latencyMs, 2)} ms` +
    `${Number.isNaN(db ?? NaN) ? '' : `, PostgreSQL CPU ${fmt(db)} µs per transaction`}` +
    `${failed ? `, ${fmt(failed)} failed` : ''})`;
  const share = (key, of) =>
    rps(key) === undefined
      ? ''
      : `, ${key} ${fmt(rps(key))} req/s = ${fmt((100 * rps(key)) / of)}%`;
  return (
    `**Database ceiling** (${ceiling.version}; a whole one-line order as ONE SQL statement: ` +
    'conditional decrement, order, line, history entry and outbox event in one CTE; ' +
    `${HOT_CONNECTIONS} clients, -j ${PGBENCH_THREADS}, -M prepared, ${opts.duration} s each): ` +
    `spread over ${opts.products} products (a random one per transaction) ${part(ceiling.spread)}` +
    `${share('d', ceiling.spread.tps)}${share('d-ref', ceiling.spread.tps)} of it; ` +
    `one hot product ${part(ceiling.hot)}${share('e-ample', ceiling.hot.tps)} of it. ` +
    'pgbench competes for the same 2 cores as PostgreSQL, but no application server runs meanwhile.'
  );
}

export const mb = (kb) => `${fmt(kb / 1024, 1)} MB`;

/** The soak's RSS figures. */
export function memoryLine(memory, run) {
  if (!memory) return '**Memory:** no soak (`--soak 0`).';
  const growth = memory.after - memory.before;
  const series = memory.samples
    .filter((_, i) => i % 10 === 0 || i === memory.samples.length - 1)
    .map((x) => `${x.second} s ${mb(x.kb)}`)
    .join(', ');
  return (
    `**Memory** (service RSS, VmRSS from /proc, sampled every second over ` +
    `${run.scenario.duration} s of mixed load, row \`soak\`: ${fmt(run.result.rps)} req/s): ` +
    `before **${mb(memory.before)}**, peak **${mb(memory.peak)}**, after **${mb(memory.after)}**; ` +
    `growth **${growth >= 0 ? '+' : '−'}${mb(Math.abs(growth))}** ` +
    `(${growth >= 0 ? '+' : '−'}${fmt((100 * Math.abs(growth)) / memory.before, 1)}%). ` +
    `Samples: ${series}.`
  );
}

export function invariantsSection(runs) {
  return runs.flatMap(({ scenario, checks }) => [
    `- **${scenario.key}**: ` + checks.map((c) => `${c.ok ? '✓' : '✗'} ${c.text}`).join('; '),
  ]);
}

export async function writeResult(name, lines) {
  const dir = join(ROOT, 'bench/results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, name);
  // Formatted as `prettier --check .` (npm run check) expects it.
  const options = { ...(await prettier.resolveConfig(file)), filepath: file };
  await writeFile(file, await prettier.format(lines.join('\n') + '\n', options));
  return file;
}

/** The standby read against the primary's, measured by bench/standby-read.mjs in this run. */
export function standbyLine(standby) {
  if (standby.skipped) return `**Read from a standby:** skipped (${standby.skipped}).`;
  const rounds = standby.ratios.map((r) => fmt(r, 2)).join(', ');
  return (
    `**Read from a standby** (GET one product, ${standby.primary.length} interleaved rounds, a ` +
    `private PostgreSQL 15 primary and streaming standby): **${fmt(standby.ratio, 2)}×** the ` +
    `same read on the primary (rounds ${rounds}; ${standby.standby.map((v) => fmt(v)).join(' / ')} ` +
    `vs ${standby.primary.map((v) => fmt(v)).join(' / ')} req/s). A write's Consistency-Token ` +
    `costs one statement after the commit: ${fmt(standby.tokenUs)} µs per round trip ` +
    `(SELECT 1: ${fmt(standby.oneUs)} µs).`
  );
}

/** The chart's data: the goal ratios, then req/s per scenario and pgbench's tps. */
export function chart(ratios, runs, ceiling, m) {
  const kind = (key) =>
    key === 'soak'
      ? 'soak'
      : key.endsWith('-ref')
        ? 'reference'
        : key.endsWith('-otel')
          ? 'traced'
          : 'service';
  const rates = runs.map(({ scenario, result }) => ({
    label: `${scenario.key}: ${scenario.short}`,
    value: result.rps,
    kind: kind(scenario.key),
  }));
  if (!ceiling.skipped) {
    rates.push(
      { label: 'pgbench: one-statement order, spread', value: ceiling.spread.tps, kind: 'db' },
      { label: 'pgbench: one-statement order, hot product', value: ceiling.hot.tps, kind: 'db' },
    );
  }
  return chartSvg({
    title: `Order service benchmark, ${new Date().toISOString().slice(0, 10)}`,
    subtitle: `commit ${m.commit}; ${m.cpu}, ${m.cores} cores; load average at start ${m.loadavg}`,
    ratios: ratios
      .filter((r) => r.value !== undefined && r.kind !== 'cpu')
      .map((r) => ({
        label: r.label,
        detail: `${r.num.key} / ${r.den.key}: ${fmt(r.num.rps)} / ${fmt(r.den.rps)} req/s`,
        value: r.value,
        goal: r.goal,
      })),
    rates,
  });
}
