// wrk (Debian's package) as a second load generator for the read scenarios: written in C, it leaves
// the CPU that autocannon (Node) takes on this 2-core machine to the servers it measures. Used by
// run.mjs for a-wrk and a-ref-wrk when `wrk` is on the PATH; see bench/README.md.
import { execFile as execFileCb } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFile = promisify(execFileCb);

export const WRK = process.env.WRK ?? 'wrk';

/** wrk's version line, or undefined when it is not installed. */
export async function wrkVersion() {
  try {
    // `wrk -v` prints its version and usage, and exits 1.
    const { stdout } = await execFile(WRK, ['-v']).catch((err) => err);
    return /^wrk [^\n]*/m.exec(stdout ?? '')?.[0]?.replace(/\s*\[.*$/, '');
  } catch {
    return undefined;
  }
}

/**
 * Counts every status code (per thread, summed in `done`) and prints the summary in a form `parse`
 * reads: wrk's own report says only how many answers were not 2xx/3xx.
 */
const SCRIPT = `
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do io.write(string.format("STATUS %d %d\\n", code, n)) end
  end
  io.write(string.format("LATENCY %d %d %d %d\\n", latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
  local e = summary.errors
  io.write(string.format("SUMMARY %d %d %d %d\\n", summary.duration, summary.requests,
    e.connect + e.read + e.write, e.timeout))
end
`;

function parse(stdout) {
  const statusCodes = {};
  for (const [, code, n] of stdout.matchAll(/^STATUS (\d+) (\d+)$/gm)) {
    statusCodes[code] = (statusCodes[code] ?? 0) + Number(n);
  }
  const lat = /^LATENCY (\d+) (\d+) (\d+) (\d+)$/m.exec(stdout);
  const sum = /^SUMMARY (\d+) (\d+) (\d+) (\d+)$/m.exec(stdout);
  if (!lat || !sum) throw new Error(`unexpected wrk output:\n${stdout}`);
  const ms = (us) => Number(us) / 1000;
  const elapsedS = Number(sum[1]) / 1e6;
  const responses = Number(sum[2]);
  return {
    elapsedS,
    responses,
    rps: responses / elapsedS,
    latency: { p50: ms(lat[1]), p90: ms(lat[2]), p99: ms(lat[3]), max: ms(lat[4]) },
    statusCodes,
    errors: Number(sum[3]),
    timeouts: Number(sum[4]),
    // wrk counts what was answered; requests cut at the end of the run are not reported.
    unanswered: 0,
    samples: {},
  };
}

/**
 * One wrk run: GET `path` on `url` over `connections` connections from one thread (the second core
 * belongs to the servers), for `duration` seconds.
 */
export async function runWrk({ url, path, method = 'GET', headers = {}, connections, duration }) {
  if (method !== 'GET') throw new Error('wrk runs GET scenarios only here');
  const dir = await mkdtemp(join(tmpdir(), 'bench-wrk-'));
  try {
    const script = join(dir, 'count.lua');
    await writeFile(script, SCRIPT);
    const args = ['-t1', `-c${connections}`, `-d${duration}s`, '--timeout', '10s', '-s', script];
    for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
    const { stdout } = await execFile(WRK, [...args, `${url}${path}`], {
      maxBuffer: 1 << 20,
    });
    return parse(stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
