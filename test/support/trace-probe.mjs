// Run as a child process by test/e2e/tracing.e2e-spec.ts, against the built service: the real
// OpenTelemetry SDK with an in-memory exporter, started before the app loads (as main.ts does), a
// conflicting request that carries the caller's trace, and the spans and log lines as JSON. With
// PROBE_MODE=unsampled (test/e2e/observability-sampling.e2e-spec.ts, under a sampler that drops
// everything): a 201, two 409s (without and with a caller's traceparent) and a 401, and the spans.
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { ROOT } from '../../scripts/service-process.mjs';

const require = createRequire(`${ROOT}/package.json`);
const { InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace');
const { startTracing } = require('./dist/src/observability/tracing.js');

const exporter = new InMemorySpanExporter();
const sdk = startTracing({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
// Only now the app, so that http, pg and Nest load instrumented.
const { createApp } = require('./dist/src/app.factory.js');
const { loadEnv } = require('./dist/src/config/env.js');

const lines = [];
const logs = new Writable({
  write(chunk, _, done) {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    done();
  },
});
const env = loadEnv({
  NODE_ENV: 'test',
  JWT_SECRET: 'trace-probe-secret-that-is-long-enough-0123456789',
  LOG_LEVEL: 'info',
  ORDER_EXPIRY_SWEEP_SECONDS: '3600',
});
const app = await createApp({ env, databaseUrl: process.env.DATABASE_URL, logStream: logs });
await app.listen({ port: 0, host: '127.0.0.1' });
const { port } = app.getHttpServer().address();
const traceparent = process.env.PROBE_TRACEPARENT;

// A raw HTTP/1.1 request over a socket, which no instrumentation touches: the service sees exactly
// the caller's traceparent (an instrumented client would add its own span's to it).
// With `leaveWhen`, the client goes away (the socket destroyed) once that promise settles, without
// waiting for the answer: resolves with status 0.
function post(path, body, { token, trace = traceparent, headers = {}, leaveWhen } = {}) {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const auth = token ? `Authorization: Bearer ${token}\r\n` : '';
    const extra = Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n${auth}` +
          `Content-Length: ${Buffer.byteLength(payload)}\r\n${extra}` +
          (trace ? `traceparent: ${trace}\r\n` : '') +
          `Connection: close\r\n\r\n${payload}`,
      ),
    );
    leaveWhen?.then(() => {
      socket.destroy();
      resolve({ status: 0, text: '' });
    }, reject);
    let raw = '';
    socket.on('data', (chunk) => (raw += chunk.toString()));
    socket.on('error', reject);
    socket.on('end', () => {
      const [head, ...rest] = raw.split('\r\n\r\n');
      resolve({ status: Number(head.split(' ')[1]), text: rest.join('\r\n\r\n') });
    });
  });
}
const register = (options) =>
  post(
    '/api/v1/auth/register',
    { email: 'twice@example.com', password: 'a long password', name: 'Twice' },
    options,
  );

const finishedSpans = () =>
  exporter.getFinishedSpans().map((s) => ({
    name: s.name,
    kind: s.kind,
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    parentSpanId: s.parentSpanContext?.spanId,
    attributes: s.attributes,
  }));

if (process.env.PROBE_MODE === 'unsampled') {
  // Run with OTEL_TRACES_SAMPLER=parentbased_always_off: every request is dropped by the head
  // sampler; only the conflicts must come back, one span each.
  const created = await register({ trace: '' });
  const conflict = await register({ trace: '' });
  const callersConflict = await register({ trace: traceparent });
  const missing = await post(
    '/api/v1/auth/login',
    { email: 'nobody@example.com', password: 'x' },
    {
      trace: '',
    },
  );
  // Two orders, dropped by the sampler, each emitting an event: one carrying the caller's (dropped)
  // trace, one that started its own. Their outbox rows show what the deliveries would carry.
  const { Client } = require('pg');
  const db = new Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
  await db.query(`UPDATE users SET role = 'admin' WHERE email = 'twice@example.com'`);
  const { accessToken: token } = JSON.parse(
    (
      await post(
        '/api/v1/auth/login',
        { email: 'twice@example.com', password: 'a long password' },
        { trace: '' },
      )
    ).text,
  );
  const product = JSON.parse(
    (
      await post(
        '/api/v1/products',
        {
          sku: 'DROP-1',
          slug: 'drop-1',
          name: 'Dropped',
          priceCents: 100,
          currency: 'EUR',
          stock: 5,
        },
        { token, trace: '' },
      )
    ).text,
  );
  const order = (trace) =>
    post('/api/v1/orders', { items: [{ productId: product.id, quantity: 1 }] }, { token, trace });
  const callersOrder = await order(traceparent);
  const ownOrder = await order('');
  // The order's order.created rows: [traceparent, …] (exactly one when it was placed).
  const eventTrace = async (answer) =>
    (
      await db.query(
        `SELECT traceparent FROM outbox_events WHERE order_id = $1 AND type = 'order.created'`,
        [JSON.parse(answer.text).id ?? null],
      )
    ).rows.map((r) => r.traceparent);
  const eventTraceparents = {
    callers: await eventTrace(callersOrder),
    own: await eventTrace(ownOrder),
  };
  await db.end();
  await app.close();
  const spans = finishedSpans();
  await sdk.shutdown();
  process.stdout.write(
    JSON.stringify({
      statuses: [created.status, conflict.status, callersConflict.status, missing.status],
      requestIds: [conflict, callersConflict].map((r) => JSON.parse(r.text).requestId),
      orderStatuses: [callersOrder.status, ownOrder.status],
      eventTraceparents,
      spans,
      logs: lines,
    }),
  );
  process.exit(0);
}

const first = await register();
const second = await register();

// A change that emits an event, in a trace of its own: its webhook delivery must carry that trace.
const { Client } = require('pg');
const db = new Client({ connectionString: process.env.DATABASE_URL });
await db.connect();
await db.query(`UPDATE users SET role = 'admin' WHERE email = 'twice@example.com'`);
await db.end();
const login = await post('/api/v1/auth/login', {
  email: 'twice@example.com',
  password: 'a long password',
});
const token = JSON.parse(login.text).accessToken;
let delivered;
const receiver = createServer((req, res) => {
  delivered ??= req.headers.traceparent;
  res.writeHead(204).end();
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
await post(
  '/api/v1/webhooks',
  { url: `http://127.0.0.1:${receiver.address().port}/hook`, events: ['order.created'] },
  { token },
);
const product = await post(
  '/api/v1/products',
  { sku: 'TRACE-1', slug: 'trace-1', name: 'Traced', priceCents: 100, currency: 'EUR', stock: 5 },
  { token },
);
await post(
  '/api/v1/orders',
  { items: [{ productId: JSON.parse(product.text).id, quantity: 1 }] },
  { token, trace: process.env.PROBE_ORDER_TRACEPARENT },
);
for (let i = 0; i < 100 && !delivered; i++) await new Promise((r) => setTimeout(r, 50));
receiver.close();

// A checkout without a traceparent (sampled: the test runs parentbased_always_on) through a proxy.
const productId = JSON.parse(product.text).id;
const untraced = await post(
  '/api/v1/orders',
  { items: [{ productId, quantity: 1 }] },
  { token, trace: '', headers: { 'X-Forwarded-For': '203.0.113.9, 10.0.0.1' } },
);

// A checkout whose client leaves while it waits for the product's row lock (held here), then the
// lock is let go: the order is placed, and nobody reads the answer.
const holder = new Client({ connectionString: process.env.DATABASE_URL });
await holder.connect();
await holder.query('BEGIN');
await holder.query('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [productId]);
const waiting = (async () => {
  for (let i = 0; i < 200; i++) {
    const { rows } = await holder.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'`,
    );
    if (rows[0].n > 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the checkout never waited for the lock');
})();
await post(
  '/api/v1/orders',
  { items: [{ productId, quantity: 1 }] },
  { token, trace: '', leaveWhen: waiting.then(() => new Promise((r) => setTimeout(r, 100))) },
);
await holder.query('COMMIT');
await holder.end();
const isAborted = (s) => s.kind === 1 && s.attributes['http.request.aborted'] === true;
for (let i = 0; i < 100 && !finishedSpans().some(isAborted); i++)
  await new Promise((r) => setTimeout(r, 50));
const orders = new Client({ connectionString: process.env.DATABASE_URL });
await orders.connect();
const placed = (await orders.query(`SELECT count(*)::int AS n FROM orders`)).rows[0].n;
await orders.end();

await app.close();
const spans = finishedSpans();
await sdk.shutdown();
process.stdout.write(
  JSON.stringify({
    port,
    untracedStatus: untraced.status,
    ordersPlaced: placed,
    statuses: [first.status, second.status],
    body: JSON.parse(second.text),
    webhookTraceparent: delivered,
    spans,
    logs: lines,
  }),
);
