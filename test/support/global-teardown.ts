import { readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Client } from 'pg';
import { stopEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { SKIPS_FILE_VARIABLE } from './services';
import { getTestState } from './test-state';

/** One line naming every block this run skipped and why (nothing when it skipped none). */
async function reportSkips(): Promise<void> {
  const file = process.env[SKIPS_FILE_VARIABLE];
  if (!file) return;
  const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  await rm(file, { force: true });
  if (lines.length) console.log(`\nskipped (${lines.length}): ${[...new Set(lines)].join('; ')}`);
}

export default async function globalTeardown(): Promise<void> {
  await reportSkips();
  const state = getTestState();
  if (state.embeddedDataDir) {
    // The whole throwaway cluster goes: stop it, then remove its folder.
    await stopEmbeddedPostgres(state.embeddedDataDir, 'immediate');
    await rm(dirname(state.embeddedDataDir), { recursive: true, force: true });
    return;
  }
  // On a server we were pointed at, drop only what this run created.
  const admin = new Client({ connectionString: state.serverUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname = $1 OR datname LIKE $2`,
      [state.template, `${state.template}_f%`],
    );
    for (const { datname } of rows) {
      await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
}
