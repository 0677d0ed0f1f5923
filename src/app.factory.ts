import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type LoggerService, type LogLevel, RequestMethod } from '@nestjs/common';
import { HttpAdapterHost, NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule, type AppOptions } from './app.module';
import { ProblemFilter } from './common/problems/problem.filter';
import { createValidationPipe } from './common/problems/validation';
import { setupOpenApi } from './openapi';

export const API_PREFIX = 'api/v1';

/** A client's X-Request-Id is kept when it is short and plain; anything else gets a fresh UUID. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

export interface CreateAppOptions extends AppOptions {
  logger?: LoggerService | LogLevel[] | false;
}

/**
 * Builds the application exactly as it serves traffic: adapter, prefix, pipes, filter, docs. main.ts
 * and the e2e tests both call this, so tests exercise the real pipeline.
 */
export async function createApp(options: CreateAppOptions): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: options.env.BODY_LIMIT_BYTES,
    genReqId: requestId,
    requestIdHeader: false,
    // The problem filter logs what matters; Fastify's per-request logger stays off.
    logger: false,
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(options),
    adapter,
    {
      logger: options.logger ?? ['error', 'warn', 'log'],
      // Only JSON bodies: Fastify's own JSON parser; anything else is 415.
      bodyParser: false,
    },
  );
  const fastify = app.getHttpAdapter().getInstance();
  fastify.removeContentTypeParser('text/plain');
  fastify.addHook('onRequest', async (request, reply) => {
    void reply.header('X-Request-Id', request.id);
  });

  app.setGlobalPrefix(API_PREFIX, {
    exclude: [
      { path: 'health/live', method: RequestMethod.GET },
      { path: 'health/ready', method: RequestMethod.GET },
      { path: 'metrics', method: RequestMethod.GET },
      { path: 'problems', method: RequestMethod.GET },
      { path: 'problems/:slug', method: RequestMethod.GET },
    ],
  });
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new ProblemFilter(app.get(HttpAdapterHost)));
  setupOpenApi(app);
  await app.init();
  return app;
}
