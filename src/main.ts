import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { API_PREFIX, createApp } from './app.factory';
import { EnvError, loadEnv } from './config/env';
import { resolveDatabase } from './database/database';
import { runMigrations } from './database/migrate';
import { DEMO_ACCOUNTS, seedDemo } from './database/seed';
import { ShutdownState } from './health/shutdown-state';
import { createRootLogger } from './observability/logger';

async function bootstrap(): Promise<void> {
  const started = performance.now();
  let env;
  try {
    env = loadEnv();
  } catch (err) {
    if (err instanceof EnvError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const root = createRootLogger(env);
  const logger = {
    log: (line: string) => root.info(line),
    error: (err: unknown) => root.error({ err }, 'shutdown failed'),
  };

  const db = await resolveDatabase(env, (line) => logger.log(line));
  await runMigrations(db.url, (line) => logger.log(line));

  const app = await createApp({ env, databaseUrl: db.url, logger: root });
  // Demo data only where it cannot surprise anyone: the embedded development database, or on request.
  if (env.SEED_DEMO ?? Boolean(db.embedded)) {
    if (await seedDemo(app.get(DataSource))) {
      logger.log('Seeded the demo catalogue and accounts:');
      for (const a of DEMO_ACCOUNTS) logger.log(`  ${a.role.padEnd(8)} ${a.email} / ${a.password}`);
    }
  }

  let closing: Promise<void> | undefined;
  const shutdown = (signal: string): void => {
    closing ??= (async () => {
      logger.log(`${signal}: draining requests, then stopping`);
      app.get(ShutdownState).draining = true;
      try {
        await app.close();
      } finally {
        await db.embedded?.stop();
      }
      logger.log('Stopped cleanly');
      process.exit(0);
    })().catch((err: unknown) => {
      logger.error(err);
      process.exit(1);
    });
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);

  await app.listen({ port: env.PORT, host: env.HOST });
  const base = `http://${env.HOST === '0.0.0.0' ? 'localhost' : env.HOST}:${env.PORT}`;
  logger.log(`API:        ${base}/${API_PREFIX}`);
  logger.log(`Swagger UI: ${base}/docs  (OpenAPI: ${base}/docs-json)`);
  logger.log(`Database:   ${db.description}`);
  logger.log(`Ready in ${Math.round(performance.now() - started)} ms`);
}

void bootstrap().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
