import { loadEnv } from '../config/env';
import { resolveDatabase } from '../database/database';
import { runMigrations } from '../database/migrate';
import { runCli } from './run-cli';

/** `npm run migration:run`: applies pending migrations to DATABASE_URL (or the embedded database). */
runCli(async (log) => {
  const db = await resolveDatabase(loadEnv(), log);
  try {
    const applied = await runMigrations(db.url, log);
    log(
      applied
        ? `${applied} migration(s) applied to ${db.description}.`
        : `Up to date: ${db.description}.`,
    );
  } finally {
    await db.embedded?.stop();
  }
});
