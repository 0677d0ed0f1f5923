import 'reflect-metadata';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { runMigrations } from '../../src/database/migrate';
import { startEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { freePort } from '../../scripts/service-process.mjs';
import { SKIPS_FILE_VARIABLE } from './services';
import { setTestState, type TestState } from './test-state';

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

const PREFIX = 'order-service-test-';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops and removes throwaway clusters left by runs that died before their teardown. */
async function reapStaleClusters(): Promise<void> {
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const owner = Number(await readFile(join(dir, 'owner.pid'), 'utf8').catch(() => '0'));
    if (owner && alive(owner)) continue;
    await stopEmbeddedPostgres(join(dir, 'pgdata'), 'immediate').catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Once per run: a PostgreSQL server (DATABASE_URL, or an embedded PostgreSQL 18 in a temporary
 * folder), and a template database with every migration applied. Each test file then clones the
 * template (CREATE DATABASE … TEMPLATE), so files run in parallel on their own rows.
 */
export default async function globalSetup(): Promise<void> {
  // Test files note what they skip here; the teardown prints it as the run's last line.
  const skips = join(tmpdir(), `order-service-test-skips-${process.pid}.txt`);
  await writeFile(skips, '');
  process.env[SKIPS_FILE_VARIABLE] = skips;
  let serverUrl = process.env.DATABASE_URL;
  let embeddedDataDir: string | undefined;
  if (!serverUrl) {
    await reapStaleClusters();
    const dir = await mkdtemp(join(tmpdir(), PREFIX));
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'owner.pid'), String(process.pid));
    embeddedDataDir = join(dir, 'pgdata');
    const pg = await startEmbeddedPostgres({ dataDir: embeddedDataDir, port: await freePort() });
    serverUrl = pg.url;
  }
  const template = `order_service_tpl_${process.pid}_${Date.now()}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${template}`);
  } finally {
    await admin.end();
  }
  const templateUrl = withDatabase(serverUrl, template);
  await runMigrations(templateUrl);
  const state: TestState = { serverUrl, template, embeddedDataDir };
  setTestState(state);
}
