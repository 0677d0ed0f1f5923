import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ProblemError } from '../problems/problem.error';
import { PROBLEM_CONTENT_TYPE, problemBody, problemContext } from './problem.filter';

/** Methods and request headers a browser may use cross-origin (what the API itself accepts). */
const ALLOWED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
const ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'If-Match',
  'If-None-Match',
  'If-Modified-Since',
  'If-Unmodified-Since',
  'Idempotency-Key',
  'X-Request-Id',
  'Consistency-Token',
];
/** Request headers a browser never needs to ask for (CORS-safelisted). */
const SAFELISTED = new Set(['accept', 'accept-language', 'content-language']);
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export interface CorsPolicy {
  /** The origins of CORS_ORIGINS, exactly (scheme, host and port). */
  origins: string[];
  /** Development: any http(s) origin on localhost, 127.0.0.1 or [::1], whatever the port. */
  loopback: boolean;
}

export function corsPolicy(env: { NODE_ENV: string; CORS_ORIGINS: string[] }): CorsPolicy {
  return {
    origins: env.CORS_ORIGINS.map((o) => o.replace(/\/+$/, '')),
    loopback: env.NODE_ENV === 'development',
  };
}

/** One sentence for the start-up log: who may call the API from a browser. */
export function describeCorsPolicy(policy: CorsPolicy): string {
  const parts = [
    ...(policy.loopback
      ? ['http(s)://localhost, 127.0.0.1 and [::1] on any port (NODE_ENV=development)']
      : []),
    ...(policy.origins.length ? [`CORS_ORIGINS (${policy.origins.join(', ')})`] : []),
  ];
  return parts.length
    ? `CORS: browsers may call the API from ${parts.join(' and ')}`
    : 'CORS: closed; no browser origin may call the API (set CORS_ORIGINS to open it)';
}

export function originAllowed(policy: CorsPolicy, origin: string): boolean {
  if (policy.origins.includes(origin)) return true;
  if (!policy.loopback) return false;
  try {
    const url = new URL(origin);
    return (
      (url.protocol === 'http:' || url.protocol === 'https:') &&
      LOOPBACK_HOSTS.has(url.hostname) &&
      url.origin === origin
    );
  } catch {
    return false;
  }
}

/**
 * CORS on every route, as one onRequest hook: an allowed origin gets the CORS headers (and a
 * preflight 204); a preflight that is not allowed (origin, method or header) gets a 403 problem
 * saying which and how to allow it, instead of a bare 404. Simple requests from other origins are
 * served without CORS headers, so the browser withholds the answer from the page.
 */
export function registerCors(
  fastify: FastifyInstance,
  policy: CorsPolicy,
  exposedHeaders: string[],
): void {
  const allowHeaders = ALLOWED_HEADERS.join(', ');
  const allowMethods = ALLOWED_METHODS.join(', ');
  const exposeHeaders = exposedHeaders.join(', ');
  fastify.addHook('onRequest', (request, reply, done) => {
    const origin = request.headers.origin;
    if (origin === undefined) return done();
    const preflight =
      request.method === 'OPTIONS' &&
      request.headers['access-control-request-method'] !== undefined;
    void reply.header('Vary', 'Origin');
    const allowed = originAllowed(policy, origin);
    if (!preflight) {
      if (allowed) {
        void reply.header('Access-Control-Allow-Origin', origin);
        void reply.header('Access-Control-Expose-Headers', exposeHeaders);
      }
      return done();
    }
    const refusal = allowed ? preflightRefusal(request) : originRefusal(policy, origin);
    if (refusal) return refuse(request, reply, refusal);
    void reply
      .code(204)
      .header('Access-Control-Allow-Origin', origin)
      .header('Access-Control-Allow-Methods', allowMethods)
      .header('Access-Control-Allow-Headers', allowHeaders)
      .header('Access-Control-Max-Age', '600')
      .header('X-Request-Id', request.id)
      .send();
  });
}

function originRefusal(policy: CorsPolicy, origin: string): string {
  const allowed = describeCorsPolicy(policy).replace(/^CORS: /, '');
  return `Cross-origin requests from ${JSON.stringify(origin)} are not allowed: ${allowed}. The operator allows an origin by adding it (scheme, host and port, e.g. https://shop.example.com) to CORS_ORIGINS.`;
}

/** An allowed origin asking for a method or header the API does not take cross-origin. */
function preflightRefusal(request: FastifyRequest): string | undefined {
  const method = String(request.headers['access-control-request-method']).trim().toUpperCase();
  if (!ALLOWED_METHODS.includes(method)) {
    return `Cross-origin ${JSON.stringify(method)} requests are not allowed; the API takes ${ALLOWED_METHODS.join(', ')}.`;
  }
  const asked = String(request.headers['access-control-request-headers'] ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h && !SAFELISTED.has(h));
  const allowed = new Set(ALLOWED_HEADERS.map((h) => h.toLowerCase()));
  const refused = asked.filter((h) => !allowed.has(h));
  return refused.length
    ? `Cross-origin requests may not send ${refused.join(', ')}; the API takes ${ALLOWED_HEADERS.join(', ')}.`
    : undefined;
}

function refuse(request: FastifyRequest, reply: FastifyReply, detail: string): void {
  const problem = new ProblemError('FORBIDDEN', detail);
  request.problemCode = problem.code;
  void reply
    .code(problem.status)
    .header('X-Request-Id', request.id)
    .header('Content-Type', `${PROBLEM_CONTENT_TYPE}; charset=utf-8`)
    .send(JSON.stringify(problemBody(problem, problemContext(request))));
}
