// First: tracing must patch http, pg and Nest before they load (see tracing-start.ts).
import { tracingSdk } from './observability/tracing-start';
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { API_PREFIX, createApp } from './app.factory';
import { type Env, EnvError, loadEnv } from './config/env';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { type ResolvedDatabase, resolveDatabase } from './database/database';
import { runMigrations } from './database/migrate';
import { seedDemo } from './database/seed';
import { ShutdownState } from './health/shutdown-state';
import { createRootLogger } from './observability/logger';

async function bootstrap(): Promise<void> {
  const started = performance.now();
  let env: Env;
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

  // Signals are handled from the first moment: a Ctrl-C during start-up (initdb, migrations) must
  // still stop the embedded PostgreSQL, which runs detached from this process.
  const parts: { db?: ResolvedDatabase; app?: NestFastifyApplication } = {};
  let ready = false;
  let pending: string | undefined;
  let closing: Promise<void> | undefined;
  const stop = (signal: string): Promise<void> =>
    (closing ??= (async () => {
      logger.log(`${signal}: ${parts.app ? 'draining requests, then stopping' : 'stopping'}`);
      try {
        if (parts.app) {
          parts.app.get(ShutdownState).draining = true;
          await parts.app.close();
        }
      } finally {
        await parts.db?.embedded?.stop();
        // Spans of the last requests are exported before the process goes.
        await tracingSdk?.shutdown().catch(() => undefined);
      }
      logger.log('Stopped cleanly');
      process.exit(0);
    })().catch((err: unknown) => {
      logger.error(err);
      process.exit(1);
    }));
  const onSignal = (signal: string): void => {
    if (ready) void stop(signal);
    else pending ??= signal; // acted on at the next safe point of start-up
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const interrupted = (): boolean => pending !== undefined;

  try {
    await start();
  } catch (err) {
    // A start-up failure (port in use, bad migration…) must not leave the embedded PostgreSQL behind.
    root.error({ err }, 'start-up failed');
    await parts.db?.embedded?.stop().catch(() => undefined);
    process.exit(1);
  }

  async function start(): Promise<void> {
    const db = (parts.db = await resolveDatabase(env, (line) => logger.log(line)));
    if (interrupted()) return stop(pending!);
    await runMigrations(db.url, (line) => logger.log(line));
    if (interrupted()) return stop(pending!);

    const app = (parts.app = await createApp({ env, databaseUrl: db.url, logger: root }));
    // Demo data only where it cannot surprise anyone: the embedded development database, or on request.
    if (env.SEED_DEMO ?? Boolean(db.embedded)) {
      const created = await seedDemo(app.get(DataSource), env.NODE_ENV);
      if (created.length) {
        // Only this run knows production's random passwords: at warn level, so that LOG_LEVEL=warn
        // does not swallow the one chance to read them.
        const production = env.NODE_ENV === 'production';
        const say = production ? (line: string) => root.warn(line) : logger.log;
        say(
          production
            ? 'Seeded the demo catalogue and accounts, with random passwords shown only this once:'
            : 'Seeded the demo catalogue and accounts:',
        );
        for (const a of created) say(`  ${a.role.padEnd(8)} ${a.email} / ${a.password}`);
      }
    }
    if (interrupted()) return stop(pending!);

    await app.listen({ port: env.PORT, host: env.HOST });
    const base = `http://${env.HOST === '0.0.0.0' ? 'localhost' : env.HOST}:${env.PORT}`;
    logger.log(`API:        ${base}/${API_PREFIX}`);
    logger.log(`Swagger UI: ${base}/docs  (OpenAPI: ${base}/docs-json)`);
    logger.log(`Database:   ${db.description}`);
    logger.log(`Ready in ${Math.round(performance.now() - started)} ms`);
    ready = true;
    if (interrupted()) await stop(pending!);
  }
}

void bootstrap().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
