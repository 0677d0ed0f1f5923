import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { recordProblemSpan, tracingStarted } from './problem-spans';

declare module 'fastify' {
  interface FastifyRequest {
    /** The HTTP server span of this request, when tracing is on. */
    serverSpan?: Span;
    /** The caller's context with serverSpan in it: what the route handler runs in. */
    traceContext?: Context;
  }
}

/** Health checks and scrapes are not traced: they would drown the traces that matter. */
const untraced = (url: string): boolean => url === '/metrics' || url.startsWith('/health');

/**
 * The HTTP server span of each request, opened and closed by Fastify hooks (issue 26). The SDK's http
 * instrumentation did it at the socket, and cost a product read about 40% of its throughput whatever
 * the sampler decided: it binds the request's and the response's event emitters to the context, wraps
 * `end`, and computes a dozen attributes for every request. Here a request costs one sampling
 * decision and one span object (a non-recording one when the sampler drops it); attributes are set
 * only on recorded spans; and only the route handler (Nest's guards, pipes, interceptors, the
 * controller and everything it awaits: the SQL spans' parent) runs inside the span's context.
 *
 * A request enters its span's context when the span is recorded, or when the caller sent a trace
 * (W3C: a trace the caller or the sampler dropped is propagated all the same): what it causes then
 * carries that trace, an event's `traceparent` (order-changes.ts), the placement batch it joins. A
 * request that started a trace the sampler dropped has nothing to pass on (nobody records that
 * trace) and runs outside any context: its SQL statements skip the pg instrumentation at once
 * (requireParentSpan). Entering a context for every request instead cost a read 106 µs of CPU on
 * Node 24 and 211 µs on Node 20 (where propagation is async hooks), against 44–78 and 94–125 µs
 * this way (bench a/a-otel, two runs each, issue 26). Its log line and its problem span still name
 * its trace id. Registered only when the SDK runs (tracing-start.ts): otherwise nothing is added to
 * a request.
 */
export function registerServerSpans(fastify: FastifyInstance): void {
  if (!tracingStarted()) return;
  const tracer = trace.getTracer('order-service');
  fastify.addHook('onRequest', (request, _reply, done) => {
    if (untraced(request.url)) return done();
    const parent = propagation.extract(ROOT_CONTEXT, request.headers);
    const span = tracer.startSpan(request.method, { kind: SpanKind.SERVER }, parent);
    if (span.isRecording()) {
      const path = request.url.split('?')[0];
      span.setAttributes({
        'http.request.method': request.method,
        'url.path': path,
        'url.scheme': request.protocol,
        'network.protocol.version': request.raw.httpVersion,
        'client.address': request.ip,
        ...(request.headers['user-agent']
          ? { 'user_agent.original': request.headers['user-agent'] }
          : {}),
      });
    }
    request.serverSpan = span;
    if (span.isRecording() || request.headers.traceparent !== undefined)
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
  // A client that goes away before the answer: the span ends, marked so.
  fastify.addHook('onRequestAbort', (request, done) => {
    const span = request.serverSpan;
    if (span?.isRecording()) {
      span.setAttribute('http.request.aborted', true);
      span.end();
    }
    done();
  });
}

/**
 * Ends the request's server span once its answer is written (the onResponse hook): named by its route,
 * with its status, request id and problem code. A request the sampler dropped that ended in a conflict
 * or a 5xx is recorded all the same (one span, see problem-spans.ts).
 */
export function endServerSpan(
  request: FastifyRequest,
  answer: { route: string; status: number; elapsedMs: number },
): void {
  const span = request.serverSpan;
  if (!span) return;
  const { route, status } = answer;
  if (span.isRecording()) {
    span.updateName(`${request.method} ${route}`);
    span.setAttributes({
      'http.route': route,
      'http.response.status_code': status,
      'request.id': request.id,
      // Which rule refused the request, findable in the trace viewer by code.
      ...(request.problemCode ? { 'problem.code': request.problemCode } : {}),
    });
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
    return;
  }
  recordProblemSpan(span, {
    method: request.method,
    route,
    status,
    problemCode: request.problemCode,
    requestId: request.id,
    headers: request.headers,
    startTimeMs: Date.now() - answer.elapsedMs,
  });
}
