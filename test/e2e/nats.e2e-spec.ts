import { randomUUID } from 'node:crypto';
import { connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { jest } from '@jest/globals';
import {
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { ConfigService } from '@nestjs/config';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { ORDER_EVENT_TYPES } from '../../src/orders/order-state';
import { createApp } from '../../src/app.factory';
import { loadEnv, type Env } from '../../src/config/env';
import { NatsRelay, STREAM } from '../../src/events/nats/nats-relay';
import { OutboxPublishingRepository } from '../../src/events/nats/outbox-publishing.repository';
import { createProduct, paid, placeOrder } from '../support/fixtures';
import { account } from '../support/http';
import { describeWithService } from '../support/services';
import { createTestApp, type TestApp } from '../support/test-app';

const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const describeWithNats = describeWithService({
  name: 'nats',
  label: 'NATS',
  url: NATS_URL,
  defaultPort: 4222,
});

const TYPES = ORDER_EVENT_TYPES;

interface Ev {
  id: string;
  seq: number;
  type: string;
  orderId: string;
  body: string;
  traceparent: string | null;
}

/** Polls until `fn` returns something truthy. */
async function until<T>(
  what: string,
  fn: () => Promise<T | false | undefined> | T | false | undefined,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** An order row for the events' foreign key (the event rows are what the relay reads). */
async function insertOrders(db: DataSource, userId: string, n: number): Promise<string[]> {
  const rows: { id: string }[] = await db.query(
    `INSERT INTO orders (user_id, status, total_cents, currency)
     SELECT $1, 'cancelled', 0, 'EUR' FROM generate_series(1, $2) RETURNING id`,
    [userId, n],
  );
  return rows.map((r) => r.id);
}

/** Inserts events in the given order (so their seq follows it), as the service would write them. */
async function insertEvents(
  db: DataSource,
  specs: { orderId: string; type: string; traceparent?: string }[],
): Promise<Ev[]> {
  const events = specs.map((s) => {
    const id = randomUUID();
    return {
      id,
      type: s.type,
      orderId: s.orderId,
      body: JSON.stringify({
        id,
        type: s.type,
        occurredAt: new Date().toISOString(),
        data: { order: { id: s.orderId } },
      }),
      traceparent: s.traceparent ?? null,
    };
  });
  const rows: { id: string; seq: string }[] = await db.query(
    `INSERT INTO outbox_events (id, type, order_id, order_version, body, traceparent)
     SELECT u.id, u.type, u.order_id, u.n, u.body, u.traceparent
       FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[])
            WITH ORDINALITY AS u(id, type, order_id, body, traceparent, n)
      ORDER BY u.n
     RETURNING id, seq`,
    [
      events.map((e) => e.id),
      events.map((e) => e.type),
      events.map((e) => e.orderId),
      events.map((e) => e.body),
      events.map((e) => e.traceparent),
    ],
  );
  const seqOf = new Map(rows.map((r) => [r.id, Number(r.seq)]));
  return events.map((e) => ({ ...e, seq: seqOf.get(e.id)! }));
}

/** `perOrder` events for each order, interleaved across orders. */
function interleaved(orderIds: string[], perOrder: number, tracedEvery = 3) {
  const specs: { orderId: string; type: string; traceparent?: string }[] = [];
  for (let i = 0; i < perOrder; i++)
    for (const orderId of orderIds)
      specs.push({
        orderId,
        type: TYPES[(i + specs.length) % TYPES.length],
        ...(specs.length % tracedEvery === 0
          ? {
              traceparent: `00-${randomUUID().replace(/-/g, '')}-${randomUUID().slice(0, 18).replace(/-/g, '')}-01`,
            }
          : {}),
      });
  return specs;
}

async function unpublished(db: DataSource, ids: string[]): Promise<number> {
  const [{ n }] = await db.query(
    `SELECT count(*)::int AS n FROM outbox_events
      WHERE id = ANY($1::uuid[]) AND nats_published_at IS NULL`,
    [ids],
  );
  return n as number;
}

const allPublished = (db: DataSource, events: Ev[]) =>
  until(`${events.length} events marked published`, async () =>
    (await unpublished(
      db,
      events.map((e) => e.id),
    )) === 0
      ? true
      : undefined,
  );

interface Stored {
  msgId: string;
  subject: string;
  data: string;
  traceparent: string | undefined;
  streamSeq: number;
}

/**
 * Every message the stream stores from now on (an ordered consumer: each stored message exactly
 * once, in stream order). Earlier runs' messages are before its start time; other events than the
 * test's (the service's own) are there too, so tests look theirs up by event id.
 */
class StreamTap {
  readonly byId = new Map<string, Stored[]>();
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;

  async start(nc: NatsConnection, from: Date): Promise<void> {
    const consumer = await jetstream(nc).consumers.get(STREAM, {
      filter_subjects: 'orders.events.>', // one subject: `filter_subject`, which NATS 2.9 knows
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: from.toISOString(),
    });
    const messages = await consumer.consume();
    this.messages = messages;
    this.loop = (async () => {
      for await (const m of messages) {
        const msgId = m.headers?.get('Nats-Msg-Id') ?? '';
        const copies = this.byId.get(msgId) ?? [];
        copies.push({
          msgId,
          subject: m.subject,
          data: m.string(),
          traceparent: m.headers?.has('traceparent') ? m.headers.get('traceparent') : undefined,
          streamSeq: m.seq,
        });
        this.byId.set(msgId, copies);
      }
    })();
  }

  async stop(): Promise<void> {
    await this.messages?.close();
    await this.loop;
  }

  received(events: Ev[]): number {
    return events.filter((e) => this.byId.has(e.id)).length;
  }

  waitFor(events: Ev[]): Promise<true> {
    return until(`${events.length} events on the stream`, () =>
      this.received(events) === events.length ? true : undefined,
    );
  }

  /** Each event stored once, as written: subject, payload, message id, traceparent. */
  expectEachOnce(events: Ev[]): void {
    for (const e of events) {
      const copies = this.byId.get(e.id) ?? [];
      expect({ id: e.id, copies: copies.length }).toEqual({ id: e.id, copies: 1 });
      expect(copies[0]).toEqual({
        msgId: e.id,
        subject: `orders.events.${e.type}`,
        data: e.body,
        traceparent: e.traceparent ?? undefined,
        streamSeq: expect.any(Number),
      });
    }
  }

  /** Per order, the stream holds the events in seq order. */
  expectSeqOrderPerOrder(events: Ev[]): void {
    const byOrder = new Map<string, Ev[]>();
    for (const e of events) byOrder.set(e.orderId, [...(byOrder.get(e.orderId) ?? []), e]);
    for (const [, evs] of byOrder) {
      const bySeq = [...evs].sort((a, b) => a.seq - b.seq).map((e) => e.id);
      const byStream = [...evs]
        .sort((a, b) => this.byId.get(a.id)![0].streamSeq - this.byId.get(b.id)![0].streamSeq)
        .map((e) => e.id);
      expect(byStream).toEqual(bySeq);
    }
  }
}

/** The relay's counts once the batch in flight (which may have published what a test waited for) ends. */
async function settled(relay: NatsRelay): Promise<{ published: number; duplicates: number }> {
  await relay.publishOnce();
  return relay.counts;
}

/** A relay of another instance on the same database (what NatsModule provides). */
function relayOn(db: DataSource, natsUrl: string | undefined = NATS_URL): NatsRelay {
  const config = { get: () => natsUrl } as unknown as ConfigService<Env, true>;
  const relay = new NatsRelay(new OutboxPublishingRepository(), db, config);
  relay.onApplicationBootstrap();
  return relay;
}

/** A TCP proxy in front of NATS that the test can take away and bring back (an outage). */
class Outage {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async up(): Promise<void> {
    const server = createServer((client) => {
      const upstream = tcpConnect(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Collects the service's JSON log lines. */
class Lines extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString().split('\n').filter(Boolean))
      this.lines.push(JSON.parse(line));
    done();
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('NATS relay without NATS', () => {
  // First in the file: nestjs-pino keeps the first application's root logger for the whole process,
  // so only the first app's lines reach its log stream.
  it('NATS unreachable at boot: the service serves, the outage is logged once, shutdown is prompt', async () => {
    const logs = new Lines();
    const t = await createTestApp({ NATS_URL: `nats://127.0.0.1:${await freePort()}` }, logs);
    let closed = false;
    try {
      const user = await account(t); // a write, while NATS is away
      await t.http().get('/health/ready').expect(200);
      const [orderId] = await insertOrders(t.db, user.id, 1);
      const [event] = await insertEvents(t.db, [{ orderId, type: 'order.created' }]);
      await sleep(5_000); // two retries of the first connection or more
      const warnings = logs.lines.filter(
        (l) => l.context === 'NatsRelay' && typeof l.msg === 'string' && l.level === 40,
      );
      expect(warnings).toHaveLength(1);
      expect(warnings[0].msg).toMatch(/^NATS unavailable/);
      expect(await unpublished(t.db, [event.id])).toBe(1);
      const started = Date.now();
      await t.close();
      closed = true;
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      if (!closed) await t.close();
    }
  });

  it('NATS_URL unset: no connection, no timer, nothing published', async () => {
    const t = await createTestApp();
    try {
      const relay = t.app.get(NatsRelay);
      const user = await account(t);
      const [orderId] = await insertOrders(t.db, user.id, 1);
      const events = await insertEvents(t.db, [{ orderId, type: 'order.created' }]);
      await sleep(1_500); // three poll intervals
      expect(await unpublished(t.db, [events[0].id])).toBe(1);
      expect(relay.connected).toBe(false);
      expect(relay.counts).toEqual({ published: 0, duplicates: 0 });
      expect(await relay.publishOnce()).toEqual({ claimed: 0, acked: 0, duplicates: 0 });
    } finally {
      await t.close();
    }
  });

  it('built without a database (the OpenAPI generator): no connection, even with NATS_URL', async () => {
    // A NATS_URL that counts the connections it is offered.
    let offered = 0;
    const counter = createServer((s) => {
      offered++;
      s.destroy();
    });
    await new Promise<void>((resolve) => counter.listen(0, '127.0.0.1', resolve));
    const { port } = counter.address() as { port: number };
    try {
      const app = await createApp({
        env: loadEnv({
          NODE_ENV: 'development',
          LOG_LEVEL: 'silent',
          NATS_URL: `nats://127.0.0.1:${port}`,
        }),
        databaseUrl: 'postgres://unused@127.0.0.1:1/unused',
        lazyDatabase: true,
      });
      await app.init();
      const relay = app.get(NatsRelay);
      await sleep(1_000);
      expect(offered).toBe(0);
      expect(relay.connected).toBe(false);
      expect(await relay.publishOnce()).toEqual({ claimed: 0, acked: 0, duplicates: 0 });
      await app.close();
    } finally {
      await new Promise<void>((resolve) => counter.close(() => resolve()));
    }
  });
});

describeWithNats('NATS JetStream relay', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const tap = new StreamTap();
  let t: TestApp;
  let relay: NatsRelay;
  let userId: string;

  beforeAll(async () => {
    nc = await connect({ servers: new URL(NATS_URL).host });
    jsm = await jetstreamManager(nc);
    // A second back: the server's clock and ours; older messages are not ours anyway.
    const from = new Date(Date.now() - 1_000);
    t = await createTestApp({ NATS_URL });
    relay = t.app.get(NatsRelay);
    // The relay creates the stream when missing (left alone when present).
    await until('the stream', () => jsm.streams.info(STREAM).catch(() => undefined));
    await tap.start(nc, from);
    userId = (await account(t)).id;
  });

  afterAll(async () => {
    await tap.stop();
    await t?.close();
    await nc?.close();
  });

  it('keeps a stream ORDER_EVENTS on orders.events.> that deduplicates for at least 2 minutes', async () => {
    const { config } = await jsm.streams.info(STREAM);
    expect(config.subjects).toContain('orders.events.>');
    expect(config.duplicate_window).toBeGreaterThanOrEqual(2 * 60 * 1e9);
  });

  it("publishes the service's own events: an order placed and paid through the API", async () => {
    const admin = await account(t, 'admin');
    const customer = await account(t);
    const product = await createProduct(t, admin);
    const placed = await placeOrder(t, customer, [{ productId: product.id, quantity: 1 }]).expect(
      201,
    );
    await paid(t, customer, placed.body.id);
    const rows: (Omit<Ev, 'seq' | 'orderId'> & { seq: string; orderId: string })[] =
      await t.db.query(
        `SELECT id, seq, type, order_id AS "orderId", body, traceparent
           FROM outbox_events WHERE order_id = $1 ORDER BY seq`,
        [placed.body.id],
      );
    const events = rows.map((r) => ({ ...r, seq: Number(r.seq) }));
    expect(events.map((e) => e.type)).toEqual(['order.created', 'order.paid', 'payment.succeeded']);
    await allPublished(t.db, events);
    await tap.waitFor(events);
    tap.expectEachOnce(events);
    tap.expectSeqOrderPerOrder(events);
  });

  let first: Ev[];
  it('publishes every event once, in seq order per order, with its body, id and traceparent', async () => {
    // 250 events: more than two full batches, which are claimed at once one after the other.
    const orders = await insertOrders(t.db, userId, 5);
    first = await insertEvents(t.db, interleaved(orders, 50));
    await allPublished(t.db, first);
    await tap.waitFor(first);
    tap.expectEachOnce(first);
    tap.expectSeqOrderPerOrder(first);
    expect(relay.counts.published).toBeGreaterThanOrEqual(first.length);
  });

  it('republished after a crash between publish and commit: JetStream drops each as a duplicate', async () => {
    const repo = t.app.get(OutboxPublishingRepository);
    const markPublished = repo.markPublished.bind(repo);
    const orders = await insertOrders(t.db, userId, 2);
    const mine = new Set<string>();
    let crashed: string[] = [];
    // The relay publishes, then its transaction dies before marking the events: a crash.
    const spy = jest.spyOn(repo, 'markPublished').mockImplementation(async (m, ids) => {
      if (!crashed.length && ids.some((id) => mine.has(id))) {
        crashed = ids.filter((id) => mine.has(id));
        throw new Error('crashed after publishing');
      }
      return markPublished(m, ids);
    });
    try {
      const before = await settled(relay);
      const events = await insertEvents(t.db, interleaved(orders, 5));
      for (const e of events) mine.add(e.id);
      await allPublished(t.db, events);
      expect(crashed.length).toBeGreaterThan(0);
      // A sentinel published after them: the stream is in order, so any stored duplicate is before it.
      const sentinel = await insertEvents(t.db, [{ orderId: orders[0], type: 'order.paid' }]);
      await tap.waitFor(sentinel);
      tap.expectEachOnce(events);
      tap.expectSeqOrderPerOrder(events);
      // Every event published in the crashed batch was acknowledged again as a duplicate.
      expect((await settled(relay)).duplicates - before.duplicates).toBe(crashed.length);
    } finally {
      spy.mockRestore();
    }
  });

  it('republished in bulk (every published row reset, as if never committed): each id is still stored once', async () => {
    const before = await settled(relay);
    // TypeORM answers an UPDATE with [rows, row count].
    const [, reset]: [unknown[], number] = await t.db.query(
      `UPDATE outbox_events SET nats_published_at = NULL
        WHERE id = ANY($1::uuid[]) AND nats_published_at IS NOT NULL`,
      [first.map((e) => e.id)],
    );
    expect(reset).toBe(first.length);
    await allPublished(t.db, first);
    const [orderId] = await insertOrders(t.db, userId, 1);
    const sentinel = await insertEvents(t.db, [{ orderId, type: 'order.created' }]);
    await tap.waitFor(sentinel);
    tap.expectEachOnce(first);
    const after = await settled(relay);
    expect(after.duplicates - before.duplicates).toBe(first.length);
    expect(after.published - before.published).toBe(1); // the sentinel
  });

  describe('several instances on one database', () => {
    let quiet: TestApp; // NATS_URL unset: its events wait until the relays below start
    let quietUser: string;
    const relays: NatsRelay[] = [];
    beforeAll(async () => {
      quiet = await createTestApp();
      quietUser = (await account(quiet)).id;
      // NATS was turned on before these events (some instance started with NATS_URL earlier): the
      // quiet instance's events are owed to the relays below.
      await quiet.db.query(`INSERT INTO outbox_relays (name, since_seq) VALUES ('nats', 0)`);
    });

    it('turning NATS on publishes the events committed from then on, not the history before', async () => {
      const fresh = await createTestApp();
      try {
        const user = (await account(fresh)).id;
        const [x, y] = await insertOrders(fresh.db, user, 2);
        const before = await insertEvents(fresh.db, [{ orderId: x, type: 'order.created' }]);
        const r = relayOn(fresh.db);
        try {
          await until('the start recorded', async () => {
            const rows: { since_seq: string }[] = await fresh.db.query(
              `SELECT since_seq FROM outbox_relays WHERE name = 'nats'`,
            );
            return rows[0];
          });
          const after = await insertEvents(fresh.db, [
            { orderId: x, type: 'order.paid' },
            { orderId: y, type: 'order.created' },
          ]);
          await until(
            'the new events published',
            async () =>
              (await r.publishOnce()) &&
              (await unpublished(
                fresh.db,
                after.map((e) => e.id),
              )) === 0,
          );
          expect(
            await unpublished(
              fresh.db,
              before.map((e) => e.id),
            ),
          ).toBe(1);
        } finally {
          await r.onApplicationShutdown();
        }
      } finally {
        await fresh.close();
      }
    });
    afterAll(async () => {
      await Promise.all(relays.map((r) => r.onApplicationShutdown()));
      await quiet.close();
    });
    const start = (natsUrl?: string) => {
      const r = relayOn(quiet.db, natsUrl);
      relays.push(r);
      return r;
    };
    const stop = async (r: NatsRelay) => {
      await r.onApplicationShutdown();
      relays.splice(relays.indexOf(r), 1);
    };

    it('never lets one relay overtake another on an order: a held event holds back its order only', async () => {
      const [x, y] = await insertOrders(quiet.db, quietUser, 2);
      const xs = await insertEvents(quiet.db, interleaved([x], 4));
      const ys = await insertEvents(quiet.db, interleaved([y], 4));
      const xsLater = await insertEvents(quiet.db, interleaved([x], 2));
      // Another relay's claim, in flight: x's first event is locked.
      const other = new Client({ connectionString: quiet.databaseUrl });
      await other.connect();
      try {
        await other.query('BEGIN');
        await other.query('SELECT 1 FROM outbox_events WHERE id = $1 FOR UPDATE', [xs[0].id]);
        const r = start();
        await allPublished(quiet.db, ys);
        await tap.waitFor(ys);
        await sleep(1_200); // more claims: x's events still wait
        expect(
          await unpublished(
            quiet.db,
            [...xs, ...xsLater].map((e) => e.id),
          ),
        ).toBe(6);
        expect(tap.received([...xs, ...xsLater])).toBe(0);
        await other.query('ROLLBACK'); // that relay died without publishing
        await allPublished(quiet.db, [...xs, ...xsLater]);
        await tap.waitFor([...xs, ...xsLater]);
        tap.expectEachOnce([...xs, ...ys, ...xsLater]);
        tap.expectSeqOrderPerOrder([...xs, ...ys, ...xsLater]);
        await stop(r);
      } finally {
        await other.end();
      }
    });

    it('three relays at once: every event once, in seq order per order', async () => {
      const orders = await insertOrders(quiet.db, quietUser, 8);
      const events = await insertEvents(quiet.db, interleaved(orders, 75)); // 600
      const three = [start(), start(), start()];
      await allPublished(quiet.db, events);
      await tap.waitFor(events);
      tap.expectEachOnce(events);
      tap.expectSeqOrderPerOrder(events);
      const counts = await Promise.all(three.map(settled));
      const published = counts.reduce((n, c) => n + c.published, 0);
      expect(published).toBe(events.length);
      await Promise.all(three.map(stop));
    });

    it('a restarted relay republishing what it had published: all dropped as duplicates', async () => {
      const [orderId] = await insertOrders(quiet.db, quietUser, 1);
      const events = await insertEvents(quiet.db, interleaved([orderId], 10));
      const a = start();
      await allPublished(quiet.db, events);
      await stop(a);
      // As if a's commits had never happened.
      await quiet.db.query(
        'UPDATE outbox_events SET nats_published_at = NULL WHERE id = ANY($1::uuid[])',
        [events.map((e) => e.id)],
      );
      const b = start();
      await allPublished(quiet.db, events);
      const sentinel = await insertEvents(quiet.db, [{ orderId, type: 'order.paid' }]);
      await allPublished(quiet.db, sentinel);
      await tap.waitFor(sentinel);
      tap.expectEachOnce(events);
      expect(await settled(b)).toEqual({ published: 1, duplicates: events.length });
      await stop(b);
    });

    it('an outage mid-run: logged once, events wait in the outbox, published after the reconnect', async () => {
      const { hostname, port } = new URL(NATS_URL);
      const outage = new Outage({ host: hostname, port: Number(port || 4222) });
      await outage.up();
      const r = start(`nats://127.0.0.1:${outage.port}`);
      const logger = (
        r as unknown as {
          logger: { warn: (m: string) => void; log: (m: string) => void };
        }
      ).logger;
      const warn = jest.spyOn(logger, 'warn');
      const log = jest.spyOn(logger, 'log');
      try {
        const [orderId] = await insertOrders(quiet.db, quietUser, 1);
        const before = await insertEvents(quiet.db, [{ orderId, type: 'order.created' }]);
        await allPublished(quiet.db, before);

        await outage.down();
        await until('the disconnect', () => !r.connected);
        const during = await insertEvents(quiet.db, interleaved([orderId], 3));
        await sleep(4_500); // two reconnect attempts or more
        expect(
          await unpublished(
            quiet.db,
            during.map((e) => e.id),
          ),
        ).toBe(3);
        expect(warn.mock.calls.filter(([m]) => /^NATS unavailable/.test(String(m)))).toHaveLength(
          1,
        );

        await outage.up();
        await allPublished(quiet.db, during);
        await tap.waitFor(during);
        tap.expectEachOnce([...before, ...during]);
        tap.expectSeqOrderPerOrder([...before, ...during]);
        expect(log.mock.calls.filter(([m]) => /available again/.test(String(m)))).toHaveLength(1);
        await stop(r);
      } finally {
        warn.mockRestore();
        log.mockRestore();
        await outage.down();
      }
    });
  });
});
