import {
  type Attributes,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
} from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { recordProblemSpan, tracingStarted } from './problem-spans';

declare module 'fastify' {
  interface FastifyRequest {
    /** The HTTP server span of this request, when tracing is on. */
    serverSpan?: Span;
    /** The caller's context with serverSpan in it: what the route handler runs in. */
    traceContext?: Context;
    /** Set once a recorded serverSpan has been ended (by its answer, or by the client leaving). */
    serverSpanEnded?: boolean;
  }
}

/** Health checks and scrapes are not traced: they would drown the traces that matter. */
const untraced = (url: string): boolean => url === '/metrics' || url.startsWith('/health');

/** Methods semantic conventions name as they are; any other is `_OTHER` (its name kept apart). */
const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'CONNECT',
  'TRACE',
]);

const first = (value: string | string[] | undefined): string | undefined =>
  (Array.isArray(value) ? value[0] : value)?.split(',')[0].trim() || undefined;

/** A `Forwarded` header's first element as key → value (RFC 7239), quotes removed. */
function forwarded(header: string | undefined): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const pair of first(header)?.split(';') ?? []) {
    const at = pair.indexOf('=');
    if (at > 0)
      pairs[pair.slice(0, at).trim().toLowerCase()] = pair
        .slice(at + 1)
        .trim()
        .replace(/^"|"$/g, '');
  }
  return pairs;
}

/** `host[:port]` (or `[v6]:port`) split as the http instrumentation does; the port as a number. */
function hostAndPort(value: string | undefined): { host?: string; port?: number } {
  if (!value) return {};
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  const [host, port] = v6 ? [v6[1], v6[2]] : value.split(':');
  return { host, ...(port && /^\d+$/.test(port) ? { port: Number(port) } : {}) };
}

/**
 * The attributes the SDK's http instrumentation set on a server span (semantic conventions 1.27),
 * for a recorded span only: the server as the client addressed it (Forwarded, X-Forwarded-Host or
 * Host), the client as proxies report it (Forwarded, X-Forwarded-For, else the socket's peer).
 */
function requestAttributes(request: FastifyRequest): Attributes {
  const headers = request.headers;
  const proxy = forwarded(headers.forwarded);
  const server = hostAndPort(proxy.host ?? first(headers['x-forwarded-host']) ?? headers.host);
  const socket = request.raw.socket;
  const query = request.url.indexOf('?');
  const method = KNOWN_METHODS.has(request.method) ? request.method : '_OTHER';
  const client =
    hostAndPort(proxy.for).host ?? first(headers['x-forwarded-for']) ?? socket.remoteAddress;
  return {
    'http.request.method': method,
    ...(method === '_OTHER' ? { 'http.request.method_original': request.method } : {}),
    'url.scheme': request.protocol,
    'url.path': query === -1 ? request.url : request.url.slice(0, query),
    ...(query === -1 ? {} : { 'url.query': request.url.slice(query + 1) }),
    ...(server.host ? { 'server.address': server.host } : {}),
    ...(server.port ? { 'server.port': server.port } : {}),
    ...(client ? { 'client.address': client } : {}),
    ...(socket.remoteAddress ? { 'network.peer.address': socket.remoteAddress } : {}),
    ...(socket.remotePort ? { 'network.peer.port': socket.remotePort } : {}),
    'network.protocol.version': request.raw.httpVersion,
    ...(headers['user-agent'] ? { 'user_agent.original': headers['user-agent'] } : {}),
  };
}

/**
 * The HTTP server span of each request, opened and closed by Fastify hooks (issue 26). The SDK's http
 * instrumentation did it at the socket, and cost a product read about 40% of its throughput whatever
 * the sampler decided: it binds the request's and the response's event emitters to the context, wraps
 * `end`, and computes a dozen attributes for every request. Here a request costs one sampling
 * decision and one span object (a non-recording one when the sampler drops it); attributes (those the
 * instrumentation set) are computed only for recorded spans; and only the route handler (Nest's
 * guards, pipes, interceptors, the controller and everything it awaits: the SQL spans' parent) runs
 * inside the span's context. A recorded span ends with its answer, or when the connection closes
 * without one (the client gave up: `http.request.aborted`), so its SQL spans never lose their parent.
 *
 * A request enters its span's context when the span is recorded, or when the caller sent a valid
 * trace (W3C: a trace the caller or the sampler dropped is propagated all the same): what it causes
 * then carries that trace, an event's `traceparent` (order-changes.ts), the placement batch it joins.
 * A request that started a trace the sampler dropped has nothing to pass on (nobody records that
 * trace) and runs outside any context: its SQL statements skip the pg instrumentation at once
 * (requireParentSpan), and its outgoing calls make no spans (tracing.ts: requireParentfor…). Entering
 * a context for every request instead cost a read 106 µs of CPU on Node 24 and 211 µs on Node 20
 * (where propagation is async hooks), against 44–78 and 94–125 µs this way (bench a/a-otel, two runs
 * each, issue 26). Its log line and its problem span still name its trace id. Registered only when
 * the SDK runs (tracing-start.ts): otherwise nothing is added to a request.
 */
export function registerServerSpans(fastify: FastifyInstance): void {
  if (!tracingStarted()) return;
  const tracer = trace.getTracer('order-service');
  fastify.addHook('onRequest', (request, reply, done) => {
    if (untraced(request.url)) return done();
    const parent = propagation.extract(ROOT_CONTEXT, request.headers);
    const span = tracer.startSpan(request.method, { kind: SpanKind.SERVER }, parent);
    request.serverSpan = span;
    if (span.isRecording()) {
      span.setAttributes(requestAttributes(request));
      // Closed without an answer written (the client left while the handler ran): ended here, or its
      // SQL spans would be exported under a parent that never comes.
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) endServerSpan(request, reply, { aborted: true });
      });
    }
    if (span.isRecording() || trace.getSpanContext(parent) !== undefined)
      request.traceContext = trace.setSpan(parent, span);
    done();
  });
  // Each route's handler runs in its request's context. Body parsing and hooks run outside it (the
  // body arrives in the socket's own callbacks): none of them queries the database.
  fastify.addHook('onRoute', (route) => {
    const handler = route.handler;
    route.handler = function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      const ctx = request.traceContext;
      return ctx
        ? context.with(ctx, handler, this, request, reply)
        : handler.call(this, request, reply);
    };
  });
}

/**
 * Ends the request's server span once its answer is written (the onResponse hook), or when its
 * connection closed first (`aborted`): named by its route, with its status, request id and problem
 * code. A request the sampler dropped that ended in a conflict or a 5xx is recorded all the same
 * (one span, see problem-spans.ts).
 */
export function endServerSpan(
  request: FastifyRequest,
  reply: FastifyReply,
  how: { aborted?: boolean } = {},
): void {
  const span = request.serverSpan;
  if (!span) return;
  const route = request.routeOptions.url ?? 'unmatched';
  const status = reply.statusCode;
  if (span.spanContext().traceFlags & TraceFlags.SAMPLED) {
    if (request.serverSpanEnded) return;
    request.serverSpanEnded = true;
    span.updateName(`${request.method} ${route}`);
    span.setAttributes({
      'http.route': route,
      'request.id': request.id,
      ...(how.aborted ? { 'http.request.aborted': true } : { 'http.response.status_code': status }),
      // Which rule refused the request, findable in the trace viewer by code.
      ...(request.problemCode ? { 'problem.code': request.problemCode } : {}),
    });
    if (!how.aborted && status >= 500) {
      span.setAttribute('error.type', String(status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
    return;
  }
  if (how.aborted) return;
  recordProblemSpan(span, {
    method: request.method,
    route,
    status,
    problemCode: request.problemCode,
    requestId: request.id,
    headers: request.headers,
    startTimeMs: Date.now() - reply.elapsedTime,
  });
}
