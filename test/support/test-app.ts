import { randomBytes } from 'node:crypto';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Client } from 'pg';
import type { DestinationStream } from 'pino';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createApp } from '../../src/app.factory';
import { loadEnv } from '../../src/config/env';
import { getTestState } from './test-state';

export interface TestApp {
  app: NestFastifyApplication;
  /** Base URL of the listening server: tests speak real HTTP to it. */
  baseUrl: string;
  /** The test file's own database. */
  databaseUrl: string;
  http: () => ReturnType<typeof request>;
  db: DataSource;
  close: () => Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A database of this test file's own, cloned from the migrated template. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const { serverUrl, template } = getTestState();
  const name = `${template}_f${randomBytes(5).toString('hex')}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(serverUrl, name),
    drop: async () => {
      const c = new Client({ connectionString: serverUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Boots the real application (same factory as main.ts) on its own database and a real port. */
export async function createTestApp(
  overrides: Record<string, string> = {},
  logStream?: DestinationStream,
): Promise<TestApp> {
  const database = await createTestDatabase();
  const env = loadEnv({
    NODE_ENV: 'test',
    JWT_SECRET: 'test-secret-that-is-long-enough-for-hs256-0123456789',
    DB_POOL_SIZE: '20',
    LOG_LEVEL: logStream ? 'info' : 'silent',
    // Files share 127.0.0.1; the rate-limit suite sets its own limits.
    RATE_LIMIT_MAX: '1000000',
    AUTH_RATE_LIMIT_MAX: '1000000',
    ...overrides,
  });
  const app = await createApp({ env, databaseUrl: database.url, logStream });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    app,
    baseUrl,
    databaseUrl: database.url,
    http: () => request(baseUrl),
    db: app.get(DataSource),
    close: async () => {
      await app.close();
      await database.drop();
    },
  };
}
