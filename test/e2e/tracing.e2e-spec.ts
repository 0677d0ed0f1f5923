import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { createTestDatabase } from '../support/test-app';

const run = promisify(execFile);

interface Probe {
  port: number;
  untracedStatus: number;
  ordersPlaced: number;
  statuses: number[];
  body: { code: string; requestId: string };
  spans: {
    name: string;
    kind: number;
    traceId: string;
    spanId: string;
    parentSpanId?: string;
    attributes: Record<string, unknown>;
  }[];
  logs: string[];
  webhookTraceparent?: string;
}

const SERVER = 1; // SpanKind.SERVER
const CLIENT = 2; // SpanKind.CLIENT

/**
 * Tracing with the real OpenTelemetry SDK and its in-memory exporter, in a process of its own
 * (test/support/trace-probe.mjs): the instrumentations patch modules as Node loads them, which only a
 * plain Node process started like main.ts shows faithfully.
 */
const built = existsSync('dist/src/observability/tracing.js');
if (!built) console.log('tracing test skipped: dist/ is absent (npm run build)');

(built ? describe : describe.skip)('tracing (OpenTelemetry)', () => {
  let probe: Probe;
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const orderTraceId = '0af7651916cd43dd8448eb211c80319c';
  beforeAll(async () => {
    const db = await createTestDatabase();
    try {
      const { stdout } = await run(process.execPath, ['test/support/trace-probe.mjs'], {
        env: {
          PATH: process.env.PATH,
          DATABASE_URL: db.url,
          // Every new trace recorded, so that a request without a traceparent is traced too.
          OTEL_TRACES_SAMPLER: 'parentbased_always_on',
          PROBE_TRACEPARENT: `00-${traceId}-00f067aa0ba902b7-01`,
          PROBE_ORDER_TRACEPARENT: `00-${orderTraceId}-00f067aa0ba902b7-01`,
        },
        maxBuffer: 64 * 1024 * 1024,
      });
      probe = JSON.parse(stdout) as Probe;
    } finally {
      await db.drop();
    }
  }, 60_000);

  it('continues the incoming traceparent and marks the server span of a conflict with its problem code', () => {
    expect(probe.statuses).toEqual([201, 409]);
    const servers = probe.spans.filter(
      (s) => s.kind === SERVER && s.attributes['http.route'] === '/api/v1/auth/register',
    );
    expect(servers).toHaveLength(2);
    for (const span of servers) expect(span.traceId).toBe(traceId);
    const conflict = servers.find((s) => s.attributes['problem.code'] === 'EMAIL_TAKEN');
    expect(conflict).toBeDefined();
    expect(
      conflict!.attributes['http.response.status_code'] ?? conflict!.attributes['http.status_code'],
    ).toBe(409);
    expect(conflict!.attributes['http.route']).toBe('/api/v1/auth/register');
    // Named by its route: the only name a request has in the trace (no Nest handler spans).
    expect(conflict!.name).toBe('POST /api/v1/auth/register');
    expect(conflict!.attributes['request.id']).toBe(probe.body.requestId);
  });

  it('has a child span per SQL statement of the request, in the same trace', () => {
    const conflict = probe.spans.find((s) => s.attributes['problem.code'] === 'EMAIL_TAKEN')!;
    const inTrace = probe.spans.filter((s) => s.traceId === traceId);
    // pg's spans: one per statement (pg.query:…), besides taking a pooled connection.
    const sql = inTrace.filter(
      (s) => s.kind === CLIENT && s.name.startsWith('pg.query') && s.attributes['db.query.text'],
    );
    expect(sql.length).toBeGreaterThanOrEqual(2); // the failed INSERT and the lookup explaining it
    const descends = (span: { parentSpanId?: string }): boolean => {
      let parent = span.parentSpanId;
      for (let hops = 0; parent && hops < 20; hops++) {
        if (parent === conflict.spanId) return true;
        parent = inTrace.find((s) => s.spanId === parent)?.parentSpanId;
      }
      return false;
    };
    expect(sql.filter(descends).length).toBeGreaterThanOrEqual(2);
  });

  it('carries the trace of the request that caused an event to its webhook delivery', () => {
    expect(probe.webhookTraceparent).toMatch(new RegExp(`^00-${orderTraceId}-[0-9a-f]{16}-0[01]$`));
  });

  /** Whether `span` descends from `ancestor` in the probe's spans. */
  const descendsFrom = (span: { parentSpanId?: string }, ancestor: string): boolean => {
    let parent = span.parentSpanId;
    for (let hops = 0; parent && hops < 20; hops++) {
      if (parent === ancestor) return true;
      parent = probe.spans.find((s) => s.spanId === parent)?.parentSpanId;
    }
    return false;
  };

  it('traces a request that came without a traceparent, with its SQL under it and the attributes the http instrumentation set', () => {
    expect(probe.untracedStatus).toBe(201);
    const servers = probe.spans.filter(
      (s) => s.kind === SERVER && s.attributes['client.address'] === '203.0.113.9',
    );
    expect(servers).toHaveLength(1);
    const [span] = servers;
    expect(span.parentSpanId).toBeUndefined();
    expect(span.name).toBe('POST /api/v1/orders');
    expect(span.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/api/v1/orders',
      'http.response.status_code': 201,
      'url.scheme': 'http',
      'url.path': '/api/v1/orders',
      'server.address': '127.0.0.1',
      'server.port': probe.port,
      'network.peer.address': '127.0.0.1',
      'network.protocol.version': '1.1',
    });
    const sql = probe.spans.filter(
      (s) => s.kind === CLIENT && s.name.startsWith('pg.query') && descendsFrom(s, span.spanId),
    );
    expect(sql.length).toBeGreaterThanOrEqual(1);
  });

  it('ends the server span of a request whose client left before the answer, its SQL spans under it', () => {
    // Placed all the same (the client left while it waited for a row lock): 2 orders before it.
    expect(probe.ordersPlaced).toBe(3);
    const aborted = probe.spans.filter(
      (s) => s.kind === SERVER && s.attributes['http.request.aborted'] === true,
    );
    expect(aborted).toHaveLength(1);
    expect(aborted[0].name).toBe('POST /api/v1/orders');
    expect(aborted[0].attributes['http.route']).toBe('/api/v1/orders');
    expect(aborted[0].attributes['http.response.status_code']).toBeUndefined();
    // Every SQL span of its trace hangs under it: none waits for a parent that never comes.
    const sql = probe.spans.filter((s) => s.kind === CLIENT && s.traceId === aborted[0].traceId);
    expect(sql.length).toBeGreaterThanOrEqual(1);
    for (const span of sql) expect(descendsFrom(span, aborted[0].spanId)).toBe(true);
  });

  it('writes the trace id into the request log line', () => {
    const lines = probe.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const conflictLine = lines.find((l) => l.msg === 'request' && l.code === 'EMAIL_TAKEN');
    expect(conflictLine).toMatchObject({ traceId, requestId: probe.body.requestId, status: 409 });
  });
});
