import { Client } from 'pg';
import { createDataSource } from './data-source';

/** Arbitrary but fixed: every instance of this service takes the same lock before migrating. */
const MIGRATION_LOCK = 727_001;

/**
 * Runs pending migrations, serialised across instances by an advisory lock, so that several
 * instances starting at once against one database never race each other's DDL.
 */
export async function runMigrations(
  url: string,
  log: (line: string) => void = () => undefined,
): Promise<number> {
  const lock = new Client({ connectionString: url, application_name: 'order-service-migrate' });
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const ds = createDataSource({ url, poolSize: 1, applicationName: 'order-service-migrate' });
    await ds.initialize();
    try {
      const done = await ds.runMigrations({ transaction: 'each' });
      for (const m of done) log(`Applied migration ${m.name}`);
      return done.length;
    } finally {
      await ds.destroy();
    }
  } finally {
    await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await lock.end();
  }
}
