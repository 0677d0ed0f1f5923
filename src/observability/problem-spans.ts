import type { IncomingHttpHeaders } from 'node:http';
import {
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanKind as Kind,
  createContextKey,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import {
  type IdGenerator,
  RandomIdGenerator,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
} from '@opentelemetry/sdk-trace';

// Conflicts and 5xx recorded when the head sampler dropped their request (see recordProblemSpan).
// Apart from tracing.ts so that the app, which calls recordProblemSpan on every response, does not
// load the SDK's exporters and instrumentations (main.ts has loaded them first when tracing is on).

/** The context value that makes ProblemRecordingSampler keep a span the head sampler dropped. */
const RECORD_PROBLEM = createContextKey('order-service.record-problem');

/** The configured sampler, except that a span started under RECORD_PROBLEM is always kept. */
export class ProblemRecordingSampler implements Sampler {
  constructor(readonly inner: Sampler) {}

  shouldSample(
    ctx: Context,
    traceId: string,
    name: string,
    kind: Kind,
    attributes: Attributes,
    links: Link[],
  ): SamplingResult {
    if (ctx.getValue(RECORD_PROBLEM) === true)
      return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    return this.inner.shouldSample(ctx, traceId, name, kind, attributes, links);
  }

  toString(): string {
    return `ProblemRecording{${this.inner.toString()}}`;
  }
}

/**
 * Random ids, except while recordProblemSpan pins those of the request's unsampled span: the span
 * it records then has the very trace and span ids the request's log line and traceparent named.
 */
class PinnableIdGenerator implements IdGenerator {
  private readonly random = new RandomIdGenerator();
  pinned: { traceId: string; spanId: string } | undefined;

  generateTraceId(): string {
    return this.pinned?.traceId ?? this.random.generateTraceId();
  }

  generateSpanId(): string {
    return this.pinned?.spanId ?? this.random.generateSpanId();
  }
}

export const ids = new PinnableIdGenerator();
let started = false;

/** Called by startTracing: from then on recordProblemSpan records. */
export function problemSpansOn(): void {
  started = true;
}

/** Whether the SDK runs in this process (startTracing was called): server-spans.ts asks. */
export function tracingStarted(): boolean {
  return started;
}

/** Conflicts, as the dashboard counts them: a state-dependent refusal with a problem code. */
const CONFLICT_STATUSES = new Set([409, 412, 428]);

/**
 * A request the head sampler dropped and that ended in a conflict (409, 412, 428 with a problem
 * code) or a 5xx is recorded after all, as one SERVER span: same trace and span ids as the dropped
 * span (so the log line's traceId finds it), the caller's span as parent when a traceparent came in,
 * the request's start time, route, status, problem code and request id. Its SQL and Nest children
 * were not recorded: knowing the outcome only at the end, recording them for every request would
 * cost what sampling saves (a RECORD_ONLY sampler records every span; a tail decision needs a
 * collector). A sampled request is left alone: its span already carries all this.
 */
export function recordProblemSpan(
  span: Span | undefined,
  request: {
    method: string;
    route: string;
    status: number;
    problemCode?: string;
    requestId: string;
    headers: IncomingHttpHeaders;
    startTimeMs: number;
  },
): void {
  if (!started || !span || span.isRecording()) return;
  const { status, problemCode } = request;
  if (status < 500 && !(CONFLICT_STATUSES.has(status) && problemCode)) return;
  const { traceId, spanId } = span.spanContext();
  if (!trace.isSpanContextValid(span.spanContext())) return;
  const caller = propagation.extract(ROOT_CONTEXT, request.headers);
  const parent =
    trace.getSpanContext(caller)?.traceId === traceId ? caller : trace.deleteSpan(caller);
  ids.pinned = { traceId, spanId };
  let recorded: Span;
  try {
    recorded = trace.getTracer('order-service').startSpan(
      `${request.method} ${request.route}`,
      {
        kind: SpanKind.SERVER,
        startTime: request.startTimeMs,
        attributes: {
          'http.request.method': request.method,
          'http.route': request.route,
          'http.response.status_code': status,
          'request.id': request.requestId,
          ...(problemCode ? { 'problem.code': problemCode } : {}),
          // Why an unsampled request has a span: findable, and not counted as a sampled one.
          'sampling.recorded_because': status >= 500 ? 'error' : 'conflict',
        },
      },
      parent.setValue(RECORD_PROBLEM, true),
    );
  } finally {
    ids.pinned = undefined;
  }
  if (status >= 500) recorded.setStatus({ code: SpanStatusCode.ERROR });
  recorded.end();
}
