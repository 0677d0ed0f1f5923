import rateLimit from '@fastify/rate-limit';
import { RequestMethod } from '@nestjs/common';
import { HttpAdapterHost, NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import helmet from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Redis } from 'ioredis';
import { Logger as NestPinoLogger } from 'nestjs-pino';
import type { DestinationStream, Logger } from 'pino';
import { AppModule } from './app.module';
import { registerFormBody } from './auth/form-body';
import { STRIPE_WEBHOOK_PATH } from './payments/notifications.controller';
import { registerRawBody } from './payments/webhook-body';
import { corsPolicy, describeCorsPolicy, registerCors } from './common/http/cors';
import { assertSaneJson } from './common/http/json-depth';
import { requestId } from './common/http/request-id';
import { registerReadRouting, writeResponse } from './common/http/responses';
import { PROBLEMS } from './common/problems/problem-catalogue';
import { ProblemError } from './common/problems/problem.error';
import {
  PROBLEM_CONTENT_TYPE,
  ProblemFilter,
  problemBody,
  problemContext,
} from './common/http/problem.filter';
import { createValidationPipe } from './common/problems/validation';
import type { Env } from './config/env';
import { ReadReplicas } from './database/read-replicas';
import { createRootLogger } from './observability/logger';
import { endServerSpan, registerServerSpans } from './observability/server-spans';
import { MetricsService } from './observability/metrics.service';
import { setupOpenApi } from './openapi';

export const API_PREFIX = 'api/v1';

/** Operational routes: outside the API prefix, never rate-limited. */
const OPERATIONAL = [
  'health/live',
  'health/ready',
  'metrics',
  'problems',
  'problems/guide',
  'problems/:slug',
];

export interface CreateAppOptions {
  env: Env;
  databaseUrl: string;
  /** The root logger; created from the environment when absent. */
  logger?: Logger;
  /** Where log lines go when no logger is given (tests capture them). */
  logStream?: DestinationStream;
  /** Build without connecting to the database (generating the OpenAPI document). */
  lazyDatabase?: boolean;
}

/** Response headers a browser client must be able to read (CORS). */
const EXPOSED_HEADERS = [
  'ETag',
  'Last-Modified',
  'Location',
  'Retry-After',
  'X-Request-Id',
  'Idempotent-Replayed',
  'Consistency-Token',
  'X-RateLimit-Limit',
  'X-RateLimit-Remaining',
  'X-RateLimit-Reset',
];

/**
 * The headers a helmet middleware sets, as `[name, value, name, value, …]` in its order, read once by
 * running it on a recording response. With these options every one is a constant (no CSP nonce or
 * other per-request directive), so the request hook sets the same names and values, spelled and
 * ordered as helmet does, without its chain of eleven middlewares per request (the profile's
 * `internalNext`). A middleware that needed the request, or answered with an error, would make this
 * throw at boot rather than serve different headers.
 */
function staticSecurityHeaders(
  middleware: (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void,
): string[] {
  const headers: string[] = [];
  const recorder = {
    setHeader(name: string, value: string) {
      headers.push(name, value);
    },
    // X-Powered-By: Fastify never sets it.
    removeHeader() {},
  };
  let finished = false;
  const request = new Proxy({} as IncomingMessage, {
    get(_, property) {
      throw new Error(`helmet read the request (${String(property)}): its headers are not static`);
    },
  });
  middleware(request, recorder as unknown as ServerResponse, (err) => {
    if (err) throw err as Error;
    finished = true;
  });
  if (!finished) throw new Error('helmet did not finish synchronously: its headers are not static');
  return headers;
}

/**
 * Builds the application exactly as it serves traffic: adapter, security headers, rate limits,
 * prefix, pipes, filter, logging, metrics, docs. main.ts and the e2e tests both call this.
 */
export async function createApp(options: CreateAppOptions): Promise<NestFastifyApplication> {
  const { env } = options;
  const logger = options.logger ?? createRootLogger(env, options.logStream);
  const adapter = new FastifyAdapter({
    bodyLimit: env.BODY_LIMIT_BYTES,
    genReqId: requestId,
    requestIdHeader: false,
    logger: false,
    // Fastify answers malformed percent-encoding and over-long path parameters before any route or
    // hook runs; they get the same problem+json as everything else.
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      const problem = new ProblemError('VALIDATION_FAILED', 'The request path is malformed.', {
        errors: [
          {
            field: 'path',
            message:
              error.code === 'FST_ERR_MAX_PARAM_LENGTH'
                ? 'a path parameter is longer than 100 characters'
                : 'the path is not valid percent-encoding',
          },
        ],
      });
      request.problemCode = problem.code;
      void reply
        .code(problem.status)
        .header('X-Request-Id', request.id)
        .header('Content-Type', `${PROBLEM_CONTENT_TYPE}; charset=utf-8`)
        .send(JSON.stringify(problemBody(problem, problemContext(request))));
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot({
      env,
      databaseUrl: options.databaseUrl,
      logger,
      lazyDatabase: options.lazyDatabase,
    }),
    adapter,
    // Only JSON bodies: Fastify's own JSON parser; anything else is 415.
    { bodyParser: false, bufferLogs: true },
  );
  app.useLogger(app.get(NestPinoLogger));
  const fastify = app.getHttpAdapter().getInstance();
  // The request's server span (tracing on), opened first: its duration is the request's.
  registerServerSpans(fastify);
  fastify.removeContentTypeParser('text/plain');
  // Form bodies only where OAuth requires them: the token endpoint of the Swagger UI's Authorize.
  registerFormBody(fastify, [`/${API_PREFIX}/auth/token`], env.BODY_LIMIT_BYTES);
  // Payment providers' webhooks: verified on the raw bytes they signed.
  registerRawBody(fastify, [`/${STRIPE_WEBHOOK_PATH}`], env.BODY_LIMIT_BYTES);

  // Per-route limits, decided as routes are registered: strict on /auth, none on operations.
  fastify.addHook('onRoute', (route) => {
    const path = route.url.replace(/^\//, '');
    // A provider's notifications are never rate-limited (they are signed, and retried if refused).
    if (OPERATIONAL.includes(path) || path.startsWith('docs') || path === STRIPE_WEBHOOK_PATH) {
      route.config = { ...route.config, rateLimit: false };
    } else if (path.startsWith(`${API_PREFIX}/auth/`)) {
      route.config = {
        ...route.config,
        rateLimit: {
          max: env.AUTH_RATE_LIMIT_MAX,
          timeWindow: env.RATE_LIMIT_WINDOW_SECONDS * 1000,
        },
      };
    }
  });
  const redis = env.REDIS_URL
    ? new Redis(env.REDIS_URL, {
        connectTimeout: 1000,
        maxRetriesPerRequest: 1,
        lazyConnect: false,
      })
    : undefined;
  redis?.on('error', (err: Error) =>
    logger.warn({ err: err.message }, 'Redis unavailable; rate limits fail open'),
  );
  await app.register(rateLimit, {
    global: true,
    max: env.RATE_LIMIT_MAX,
    timeWindow: env.RATE_LIMIT_WINDOW_SECONDS * 1000,
    redis,
    nameSpace: env.RATE_LIMIT_NAMESPACE,
    // Without Redis the counters are per instance; with it, shared by every instance.
    skipOnError: true,
    errorResponseBuilder: (_request, context) =>
      new ProblemError(
        'RATE_LIMITED',
        `Too many requests: at most ${context.max} per ${context.after === '1 minute' ? 'minute' : 'window'}. Retry after ${Math.ceil(context.ttl / 1000)} s.`,
        {},
        { 'Retry-After': String(Math.ceil(context.ttl / 1000)) },
      ),
  });
  if (redis)
    fastify.addHook('onClose', async () => void (await redis.quit().catch(() => undefined)));

  // Security headers from helmet (@fastify/helmet rebuilds its middleware, CSP directives parsed
  // anew, on every request: 5% of a product read's CPU in the profile).
  const securityHeaders = staticSecurityHeaders(
    helmet({
      contentSecurityPolicy: {
        directives: {
          // Swagger UI draws its logos as data: images and would fetch a validator badge otherwise.
          'img-src': ["'self'", 'data:'],
        },
      },
    }),
  );
  fastify.addHook('onRequest', (request, reply, done) => {
    const raw = reply.raw;
    for (let i = 0; i < securityHeaders.length; i += 2) {
      raw.setHeader(securityHeaders[i], securityHeaders[i + 1]);
    }
    done();
  });
  // CORS: CORS_ORIGINS, plus any localhost port in development; a refused preflight is a 403 problem.
  const cors = corsPolicy(env);
  registerCors(fastify, cors, EXPOSED_HEADERS);
  logger.info({ cors }, describeCorsPolicy(cors));

  const metrics = app.get(MetricsService);
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header('X-Request-Id', request.id);
    done();
  });
  // What controllers return (VersionedResponse, TaggedResponse, SerializedReply) as headers,
  // status and body: the one place that writes ETag, Last-Modified, Location and 304s.
  fastify.addHook('preSerialization', (request, reply, payload, done) => {
    done(null, writeResponse(request, reply, payload));
  });
  // Reads from standbys: the Consistency-Token of writes, its check on every request, @ReadFrom().
  registerReadRouting(fastify, app.get(ReadReplicas));
  fastify.addHook('preValidation', (request, _reply, done) => {
    try {
      assertSaneJson(request.body);
      done();
    } catch (err) {
      done(err as Error);
    }
  });
  // One place sees every finished response: it writes the request line and feeds the metrics.
  fastify.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    metrics.observeResponse({
      method: request.method,
      route,
      status,
      seconds: reply.elapsedTime / 1000,
      problemCode: request.problemCode,
      replayed: reply.getHeader('idempotent-replayed') === 'true',
    });
    endServerSpan(request, reply);
    const traceId = request.serverSpan?.spanContext().traceId;
    const operational = route === '/metrics' || route.startsWith('/health');
    const level = status >= 500 ? 'error' : operational ? 'debug' : 'info';
    // The line is built only when it will be written (LOG_LEVEL=warn skips it for every 2xx-4xx).
    if (!logger.isLevelEnabled(level)) return done();
    logger[level](
      {
        requestId: request.id,
        ...(traceId ? { traceId } : {}),
        userId: request.caller?.id,
        method: request.method,
        route,
        path: request.url.split('?')[0],
        status,
        durationMs: Math.round(reply.elapsedTime * 10) / 10,
        ...(request.problemCode
          ? { code: request.problemCode, type: PROBLEMS[request.problemCode].slug }
          : {}),
      },
      'request',
    );
    done();
  });

  app.setGlobalPrefix(API_PREFIX, {
    exclude: OPERATIONAL.map((path) => ({ path, method: RequestMethod.GET })),
  });
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new ProblemFilter(app.get(HttpAdapterHost)));
  setupOpenApi(app);
  await app.init();
  return app;
}
