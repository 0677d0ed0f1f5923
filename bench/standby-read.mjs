// The read through a standby against the primary, in the same run (issue 24; docs/scaling.md):
// a private PostgreSQL 15 primary and streaming standby (pg_basebackup -R) on free ports, the built
// service started twice (without and with DATABASE_READ_URLS), GET /api/v1/products/{id} under
// autocannon (20 connections, interleaved rounds), and the cost of the Consistency-Token statement.
// `npm run bench` runs it after the database ceiling (a goal of its own); alone:
// `npm run build && node bench/standby-read.mjs` (as root: PostgreSQL runs as postgres).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, chmodSync, appendFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import autocannon from 'autocannon';
import { freePort, startBuiltService } from '../scripts/service-process.mjs';

const BIN = process.env.PG_STANDBY_BIN ?? '/usr/lib/postgresql/15/bin';

/**
 * Measures the product read through a standby against the primary: `{ primary: [req/s per round],
 * standby: [...], ratio, tokenUs, oneUs }`, or `{ skipped }` without PostgreSQL's server binaries.
 */
export async function measureStandbyRead({ duration = 8, rounds = 2, connections = 20 } = {}) {
  for (const b of ['initdb', 'pg_ctl', 'pg_basebackup']) {
    if (!existsSync(join(BIN, b))) return { skipped: `${join(BIN, b)} not found` };
  }
  const run = (b, a) =>
    execFileSync('runuser', ['-u', 'postgres', '--', join(BIN, b), ...a], { stdio: 'pipe' });
  const dir = mkdtempSync('/tmp/order-service-measure-');
  chmodSync(dir, 0o777);
  const [pp, sp] = [await freePort(), await freePort()];
  const conf = (p) =>
    `port=${p}\nlisten_addresses='127.0.0.1'\nunix_socket_directories='${dir}'\nmax_connections=200\n`;
  const P = join(dir, 'p'),
    S = join(dir, 's');
  try {
    run('initdb', ['-D', P, '-U', 'postgres', '--auth=trust']);
    appendFileSync(join(P, 'postgresql.conf'), conf(pp));
    run('pg_ctl', ['-D', P, '-l', P + '.log', '-w', 'start']);
    const c = new pg.Client(`postgres://postgres@127.0.0.1:${pp}/postgres`);
    await c.connect();
    await c.query('CREATE DATABASE app');
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < 5000; i++) await c.query('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    const lsnUs = Number(process.hrtime.bigint() - t0) / 5000 / 1000;
    t0 = process.hrtime.bigint();
    for (let i = 0; i < 5000; i++) await c.query('SELECT 1');
    const oneUs = Number(process.hrtime.bigint() - t0) / 5000 / 1000;
    await c.end();
    console.log(
      `[standby] token statement: ${lsnUs.toFixed(1)} µs per round trip (SELECT 1: ${oneUs.toFixed(1)} µs)`,
    );
    const url = `postgres://postgres@127.0.0.1:${pp}/app`;
    execFileSync('node', ['dist/src/cli/migrate.js'], {
      env: { ...process.env, DATABASE_URL: url },
      stdio: 'pipe',
    });
    run('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(pp),
      '-U',
      'postgres',
      '-D',
      S,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
    ]);
    appendFileSync(join(S, 'postgresql.conf'), conf(sp));
    run('pg_ctl', ['-D', S, '-l', S + '.log', '-w', 'start']);
    const standbyUrl = `postgres://postgres@127.0.0.1:${sp}/app`;
    const results = {};
    for (let round = 1; round <= rounds; round++)
      for (const target of ['primary', 'standby']) {
        const svc = await startBuiltService({
          env: {
            DATABASE_URL: url,
            NODE_ENV: 'production',
            JWT_SECRET: 'x'.repeat(40),
            LOG_LEVEL: 'warn',
            DB_POOL_SIZE: '20',
            RATE_LIMIT_MAX: '100000000',
            AUTH_RATE_LIMIT_MAX: '100000000',
            ...(target === 'standby' ? { DATABASE_READ_URLS: standbyUrl } : {}),
          },
        });
        const base = svc.url;
        const c2 = new pg.Client(url);
        await c2.connect();
        const { rows } = await c2.query(
          `INSERT INTO products (sku, slug, name, description, price_cents, currency, stock, active) VALUES ('M-${target}${round}', 'm-${target}${round}', 'M', '', 100, 'EUR', 10, true) RETURNING id`,
        );
        await c2.end();
        await new Promise((r) => setTimeout(r, 1500));
        const r = await autocannon({
          url: `${base}/api/v1/products/${rows[0].id}`,
          connections,
          duration,
        });
        const m = await (await fetch(`${base}/metrics`)).text();
        const reads = m
          .split('\n')
          .filter((l) => l.startsWith('db_reads_total{'))
          .join(' ');
        (results[target] ??= []).push(r.requests.average);
        console.log(
          `[standby] round ${round} ${target}: ${r.requests.average.toFixed(0)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}; ${reads}`,
        );
        await svc.stop();
      }
    const ratios = results.standby.map((v, i) => v / results.primary[i]).sort((a, b) => a - b);
    const ratio = ratios[Math.floor(ratios.length / 2)];
    console.log(
      `[standby] standby/primary: ${ratio.toFixed(2)}× (median of ${ratios.length} rounds)`,
    );
    return { ...results, ratios, ratio, tokenUs: lsnUs, oneUs };
  } finally {
    try {
      run('pg_ctl', ['-D', S, '-m', 'immediate', 'stop']);
    } catch {
      // not running
    }
    try {
      run('pg_ctl', ['-D', P, '-m', 'immediate', 'stop']);
    } catch {
      // not running
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await measureStandbyRead();
  if (result.skipped) console.log(`[standby] skipped: ${result.skipped}`);
}
