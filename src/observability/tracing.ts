import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  type Sampler,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';
import { tracesSampling } from '../config/env';
import { ids, ProblemRecordingSampler, problemSpansOn } from './problem-spans';

/**
 * OpenTelemetry, configured only through the standard OTEL_* variables. It is started before the app
 * (see tracing-start.ts) so that the instrumentations patch http, undici (fetch: webhook calls) and
 * pg before they are loaded. Without an exporter asked for (OTEL_EXPORTER_OTLP_ENDPOINT, or
 * OTEL_TRACES_EXPORTER other than none), nothing starts: the API calls in the code are no-ops.
 */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim();
  return Boolean(
    env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() ||
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() ||
    (exporter && exporter !== 'none'),
  );
}

/**
 * The share of requests traced when OTEL_TRACES_SAMPLER is unset (the SDK's own default is every
 * request: on the bench's product read that cost a third of its throughput). One in ten still gives
 * a busy instance tens of whole traces a second to read latencies from, and what one most wants to
 * find, the conflicts and the errors, is recorded whatever the ratio (see recordProblemSpan).
 */
export const DEFAULT_TRACE_RATIO = 0.1;

/**
 * The sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG name (validated as loadEnv does; a bad
 * value throws EnvError), with a parent-based ratio of DEFAULT_TRACE_RATIO when the first is unset.
 * A ratio sampler named without its argument keeps every trace, OpenTelemetry's default.
 */
export function samplerFromEnv(src: NodeJS.ProcessEnv = process.env): Sampler {
  const { OTEL_TRACES_SAMPLER: name, OTEL_TRACES_SAMPLER_ARG: arg } = tracesSampling(src);
  const named = Boolean(src.OTEL_TRACES_SAMPLER?.trim());
  const ratio = arg ?? (named ? 1 : DEFAULT_TRACE_RATIO);
  const roots: Record<string, () => Sampler> = {
    always_on: () => new AlwaysOnSampler(),
    always_off: () => new AlwaysOffSampler(),
    traceidratio: () => new TraceIdRatioBasedSampler(ratio),
  };
  const sampler: Sampler = name.startsWith('parentbased_')
    ? new ParentBasedSampler({ root: roots[name.slice('parentbased_'.length)]() })
    : roots[name]();
  return new ProblemRecordingSampler(sampler);
}

/**
 * A webhook delivery already names its trace: the `traceparent` of the request that caused its event
 * (see WebhookRelay). The instrumentation would append a second one of its own, and a receiver
 * cannot continue a header holding two.
 */
const carriesItsTrace = (request: { headers: string | (string | string[])[] }): boolean =>
  String(request.headers).toLowerCase().includes('traceparent');

/**
 * Starts the SDK when tracing is asked for, or with the given span processors (tests pass an
 * in-memory exporter). Returns it, to be shut down (flushed) when the process stops. Export goes
 * through the SDK's BatchSpanProcessor (queue 2,048 spans, batches of 512 every 5 s, OTEL_BSP_*).
 * Throws EnvError when OTEL_TRACES_SAMPLER or OTEL_TRACES_SAMPLER_ARG is invalid.
 */
export function startTracing(
  options: { spanProcessors?: SpanProcessor[]; env?: NodeJS.ProcessEnv } = {},
): NodeSDK | undefined {
  const env = options.env ?? process.env;
  if (!options.spanProcessors && !tracingRequested(env)) return undefined;
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME?.trim() || 'order-service',
    sampler: samplerFromEnv(env),
    idGenerator: ids,
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
    // Traces only: the metrics are Prometheus's (/metrics).
    metricReaders: [],
    logRecordProcessors: [],
    // What runs on every request, sampled or not, is kept to what a sampled trace needs (issue 26):
    // - http for outgoing calls only (the Stripe SDK's): the server span of an incoming request is
    //   opened by a Fastify hook, which costs a fraction of what the instrumentation's wrapping of
    //   every request's emitters did (see server-spans.ts);
    // - outgoing calls (Stripe's, webhook deliveries by fetch) make spans only inside a trace: a
    //   request the sampler dropped without a caller's trace runs outside any context, and a relay
    //   outside any request; neither starts a root trace of its own at the sampler's ratio, nor sends
    //   a traceparent of a trace nobody records (a delivery sends its event's, see carriesItsTrace);
    // - no NestInstrumentation: it wrapped every handler in two async functions, each with its span
    //   and context switch, for names the server span now carries (http.route, and its name is
    //   "METHOD route": see server-spans.ts's endServerSpan);
    // - pg without its pool-connect spans (one span and one context switch per request; a slow pool
    //   still shows as the gap before the first pg.query span), and without spans for statements run
    //   outside any request (pollers, sweeps: they made one-span root traces at the sampler's ratio).
    instrumentations: [
      new HttpInstrumentation({
        disableIncomingRequestInstrumentation: true,
        requireParentforOutgoingSpans: true,
      }),
      new UndiciInstrumentation({
        ignoreRequestHook: carriesItsTrace,
        requireParentforSpans: true,
      }),
      new PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true }),
    ],
  });
  sdk.start();
  problemSpansOn();
  return sdk;
}
