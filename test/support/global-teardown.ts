import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Client } from 'pg';
import { stopEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { getTestState } from './test-state';

export default async function globalTeardown(): Promise<void> {
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
