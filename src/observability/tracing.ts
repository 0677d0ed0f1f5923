import type { IncomingMessage } from 'node:http';
import { NestInstrumentation } from '@opentelemetry/instrumentation-nestjs-core';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanProcessor } from '@opentelemetry/sdk-trace';

/**
 * OpenTelemetry, configured only through the standard OTEL_* variables. It is started before the app
 * (see tracing-start.ts) so that the instrumentations patch http, undici (fetch: webhook calls), pg
 * and Nest before they are loaded. Without an exporter asked for (OTEL_EXPORTER_OTLP_ENDPOINT, or
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
 * A webhook delivery already names its trace: the `traceparent` of the request that caused its event
 * (see WebhookRelay). The instrumentation would append a second one of its own, and a receiver
 * cannot continue a header holding two.
 */
const carriesItsTrace = (request: { headers: string | (string | string[])[] }): boolean =>
  String(request.headers).toLowerCase().includes('traceparent');

/** Health checks and scrapes are not traced: they would drown the traces that matter. */
const untraced = (request: IncomingMessage): boolean =>
  request.url === '/metrics' || (request.url ?? '').startsWith('/health');

/**
 * Starts the SDK when tracing is asked for, or with the given span processors (tests pass an
 * in-memory exporter). Returns it, to be shut down (flushed) when the process stops.
 */
export function startTracing(
  options: { spanProcessors?: SpanProcessor[] } = {},
): NodeSDK | undefined {
  if (!options.spanProcessors && !tracingRequested()) return undefined;
  const sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME?.trim() || 'order-service',
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
    // Traces only: the metrics are Prometheus's (/metrics).
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({ ignoreIncomingRequestHook: untraced }),
      new UndiciInstrumentation({ ignoreRequestHook: carriesItsTrace }),
      new PgInstrumentation(),
      new NestInstrumentation(),
    ],
  });
  sdk.start();
  return sdk;
}
