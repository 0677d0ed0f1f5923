import 'reflect-metadata';
import { readFile, writeFile } from 'node:fs/promises';
import pino from 'pino';
import { createApp } from '../app.factory';
import { loadEnv } from '../config/env';
import { buildOpenApiDocument } from '../openapi';
import { runCli } from './run-cli';

const FILE = 'openapi.json';

/**
 * `npm run openapi` writes openapi.json from the running code (no database needed);
 * `npm run openapi -- --check` fails when the committed file is not current.
 */
runCli(async (log) => {
  const env = loadEnv({ NODE_ENV: 'development', LOG_LEVEL: 'silent' });
  const app = await createApp({
    env,
    databaseUrl: 'postgres://unused@127.0.0.1:1/unused',
    lazyDatabase: true,
    logger: pino({ level: 'silent' }),
  });
  const text = `${JSON.stringify(buildOpenApiDocument(app), null, 2)}\n`;
  await app.close();
  if (process.argv.includes('--check')) {
    const committed = await readFile(FILE, 'utf8').catch(() => '');
    if (committed !== text) {
      throw new Error(`${FILE} is not current: run \`npm run openapi\` and commit the result.`);
    }
    log(`${FILE} is current.`);
    return;
  }
  await writeFile(FILE, text);
  log(`Wrote ${FILE}.`);
});
