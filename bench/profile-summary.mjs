// Summarises a V8 .cpuprofile (node --cpu-prof): self time by package and by function, and inclusive
// time of the service's own functions and of each package, as Markdown.
//
//   node bench/profile-summary.mjs <file.cpuprofile> [--from <µs>] [--to <µs>] [--top <n>]
//
// --from/--to keep only the samples taken in that window, in the profile's clock (CLOCK_MONOTONIC in
// microseconds on Linux, the same clock as process.hrtime), e.g. the measured part of a scenario.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const NODE_MODULES = '/node_modules/';
const SERVICE_CODE = '/dist/src/';

/** The package (or Node core module, or the service's file) a frame belongs to. */
function packageOf({ url, functionName }) {
  if (!url) return /^\(.*\)$/.test(functionName) ? functionName : '(native)';
  if (url.startsWith('node:')) return `node:${/^node:(?:internal\/)?([^/]+)/.exec(url)[1]}`;
  const nm = url.lastIndexOf(NODE_MODULES);
  if (nm >= 0) {
    const [first, second] = url.slice(nm + NODE_MODULES.length).split('/');
    return first.startsWith('@') ? `${first}/${second}` : first;
  }
  const src = url.indexOf(SERVICE_CODE);
  return src >= 0 ? `service ${url.slice(src + '/dist/'.length)}` : url;
}

/** A short, readable location: the path inside its package, or inside dist/. */
function locationOf({ url, lineNumber }) {
  if (!url) return '';
  const nm = url.lastIndexOf(NODE_MODULES);
  const src = url.indexOf(SERVICE_CODE);
  const path =
    nm >= 0
      ? url.slice(nm + NODE_MODULES.length)
      : src >= 0
        ? url.slice(src + '/dist/'.length)
        : url.replace(/^file:\/\//, '');
  return `${path}:${lineNumber + 1}`;
}

const functionKey = (frame) => `${frame.functionName || '(anonymous)'}|${locationOf(frame)}`;
const isService = (frame) => frame.url.includes(SERVICE_CODE);

/**
 * Aggregates a parsed .cpuprofile. Each sample weighs the time until the next one (as DevTools does).
 * Percentages are of busy time: everything but `(idle)`.
 */
export function aggregateProfile(profile, { from = -Infinity, to = Infinity } = {}) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const selfByFunction = new Map();
  const selfByPackage = new Map();
  const inclusiveService = new Map();
  const inclusivePackage = new Map();
  const add = (map, key, us) => map.set(key, (map.get(key) ?? 0) + us);
  let busyUs = 0;
  let idleUs = 0;
  let samples = 0;

  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (t < from || t > to) continue;
    const weight = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i];
    const leaf = byId.get(profile.samples[i]).callFrame;
    samples += 1;
    if (leaf.functionName === '(idle)') {
      idleUs += weight;
      continue;
    }
    busyUs += weight;
    add(selfByFunction, functionKey(leaf), weight);
    add(selfByPackage, packageOf(leaf), weight);
    // Inclusive: each function or package counts once per sample, however deep it recurses.
    const functions = new Set();
    const packages = new Set();
    for (let id = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id).callFrame;
      if (frame.functionName === '(root)') continue;
      if (isService(frame)) functions.add(functionKey(frame));
      packages.add(packageOf(frame));
    }
    for (const key of functions) add(inclusiveService, key, weight);
    for (const key of packages) add(inclusivePackage, key, weight);
  }
  return {
    samples,
    busyUs,
    idleUs,
    selfByFunction,
    selfByPackage,
    inclusiveService,
    inclusivePackage,
  };
}

/** The aggregate as Markdown tables, top `top` rows each. */
export function formatSummary(agg, { top = 25, title = 'CPU profile' } = {}) {
  const pct = (us) => ((100 * us) / agg.busyUs).toFixed(1);
  const ms = (us) => (us / 1000).toFixed(0);
  const sorted = (map) => [...map].sort((a, b) => b[1] - a[1]).slice(0, top);
  const wall = agg.busyUs + agg.idleUs;
  const lines = [
    `## ${title}`,
    '',
    `${agg.samples} samples over ${(wall / 1e6).toFixed(1)} s: busy ${ms(agg.busyUs)} ms ` +
      `(${((100 * agg.busyUs) / wall).toFixed(0)}% of the main thread), idle ${ms(agg.idleUs)} ms. ` +
      'Percentages are of busy time.',
    '',
    // The sampler records wall-clock state: a thread preempted inside a syscall still counts as in
    // it. Socket writes wake the reader (PostgreSQL, the client), which often preempts the writer.
    `Native \`writev\` (socket writes) takes ${pct(agg.selfByFunction.get('writev|') ?? 0)}% of ` +
      'busy time; on contended cores this includes time the thread was preempted inside the syscall.',
    '',
    '### Self time by package',
    '',
    '| Package | Self ms | % |',
    '| --- | ---: | ---: |',
    ...sorted(agg.selfByPackage).map(([k, us]) => `| ${k} | ${ms(us)} | ${pct(us)} |`),
    '',
    '### Self time by function',
    '',
    '| Function | Where | Self ms | % |',
    '| --- | --- | ---: | ---: |',
    ...sorted(agg.selfByFunction).map(([k, us]) => {
      const [name, where] = k.split('|');
      return `| ${name} | ${where} | ${ms(us)} | ${pct(us)} |`;
    }),
    '',
    "### Inclusive time of the service's own functions",
    '',
    '| Function | Where | Incl. ms | % |',
    '| --- | --- | ---: | ---: |',
    ...sorted(agg.inclusiveService).map(([k, us]) => {
      const [name, where] = k.split('|');
      return `| ${name} | ${where} | ${ms(us)} | ${pct(us)} |`;
    }),
    '',
    '### Inclusive time by package (a frame of it anywhere on the stack)',
    '',
    '| Package | Incl. ms | % |',
    '| --- | ---: | ---: |',
    ...sorted(agg.inclusivePackage).map(([k, us]) => `| ${k} | ${ms(us)} | ${pct(us)} |`),
    '',
  ];
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { from: { type: 'string' }, to: { type: 'string' }, top: { type: 'string' } },
  });
  if (positionals.length !== 1) {
    console.error(
      'Usage: node bench/profile-summary.mjs <file.cpuprofile> [--from µs] [--to µs] [--top n]',
    );
    process.exit(2);
  }
  const profile = JSON.parse(await readFile(positionals[0], 'utf8'));
  const agg = aggregateProfile(profile, {
    from: values.from === undefined ? undefined : Number(values.from),
    to: values.to === undefined ? undefined : Number(values.to),
  });
  console.log(formatSummary(agg, { top: Number(values.top ?? 25), title: positionals[0] }));
}
