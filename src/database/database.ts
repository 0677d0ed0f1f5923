import type { Env } from '../config/env';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './embedded-postgres';

export interface ResolvedDatabase {
  url: string;
  /** Set when we started the embedded server; the caller stops it after the app has drained. */
  embedded?: EmbeddedPostgres;
  description: string;
}

/** DATABASE_URL when given, else the embedded development server under EMBEDDED_PG_DIR. */
export async function resolveDatabase(
  env: Env,
  log: (line: string) => void,
): Promise<ResolvedDatabase> {
  if (env.DATABASE_URL) {
    const u = new URL(env.DATABASE_URL);
    return {
      url: env.DATABASE_URL,
      description: `PostgreSQL at ${u.hostname}:${u.port || 5432}${u.pathname} (DATABASE_URL)`,
    };
  }
  const embedded = await startEmbeddedPostgres({
    dataDir: env.EMBEDDED_PG_DIR,
    port: env.EMBEDDED_PG_PORT,
    log,
  });
  return {
    url: embedded.url,
    embedded,
    description: `embedded PostgreSQL 18 on 127.0.0.1:${env.EMBEDDED_PG_PORT} (data in ${embedded.dataDir})`,
  };
}
