import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import {
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  type JetStreamClient,
  type StreamConfig,
} from '@nats-io/jetstream';
import {
  connect,
  headers,
  millis,
  nanos,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import { DataSource } from 'typeorm';
import { inTransaction } from '../../common/database/transaction';
import type { Env } from '../../config/env';
import { OutboxPublishingRepository } from './outbox-publishing.repository';

export const STREAM = 'ORDER_EVENTS';
export const SUBJECT_PREFIX = 'orders.events.';

/**
 * How long JetStream remembers a message id. A republication within it is dropped as a duplicate:
 * after a relay dies between publish and commit, its events come back to the next claim within a
 * second (a dead session's locks go at once; a hung one's after idle_in_transaction_session_timeout,
 * 30 s), and a commit lost to a database outage is retried when the database is back. Ten minutes
 * covers both with room; an older republication reaches consumers twice (they see one event id).
 */
const DUPLICATE_WINDOW_MS = 10 * 60_000;
/** The least duplicate window an existing stream may have without a warning. */
const MIN_DUPLICATE_WINDOW_MS = 2 * 60_000;

const BATCH = 100;
const POLL_MS = 500;
/** Per publish and per JetStream API request. Below idle_in_transaction_session_timeout (30 s). */
const REQUEST_TIMEOUT_MS = 5_000;
/** Until the first connection; after it the client reconnects by itself, forever. */
const FIRST_CONNECT_RETRY_MS = 2_000;
/** Shutdown waits this long for buffered messages to flush, then closes anyway. */
const DRAIN_TIMEOUT_MS = 5_000;

/** What one batch did. */
export interface BatchOutcome {
  /** Events claimed (locked), ready or not. */
  claimed: number;
  /** Acknowledged by JetStream and marked published: stored now, or stored before (duplicates). */
  acked: number;
  /** Acknowledged as duplicates: JetStream already had these ids and dropped the republication. */
  duplicates: number;
  /** Why the batch stopped early, or did not start; the rest of the claim waits for the next one. */
  error?: unknown;
}

/**
 * Publishes every outbox event to NATS JetStream, at least once, on every instance (NATS_URL set).
 *
 * Every ~500 ms (at once again after a full batch) one transaction claims up to 100 unpublished events
 * in commit order (FOR UPDATE SKIP LOCKED: instances never take each other's rows), publishes them one
 * by one to `orders.events.<type>` with the event id as `Nats-Msg-Id`, awaits each JetStream ack and
 * marks the acknowledged ones published before committing. Publishing one at a time keeps the stream
 * in seq order per order: the first failure ends the batch, and nothing after it overtakes it. A relay
 * that dies after a publish and before its commit leaves the events unpublished; whoever claims them
 * next republishes them, and JetStream drops those by message id (within the duplicate window).
 *
 * NATS never fails a request (requests only write the outbox) and never stops the process: an outage
 * is logged once, the events wait in the outbox, and the client reconnects by itself.
 */
@Injectable()
export class NatsRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('NatsRelay');
  private readonly url: string | undefined;
  private connection?: NatsConnection;
  /** From the connection's status: false between a disconnect and the reconnect. */
  private linkUp = false;
  private js?: JetStreamClient;
  /** False until the stream is known to exist (again after every reconnect). */
  private streamReady = false;
  private stopping = false;
  /** Set while NATS (or its stream) is unavailable: the outage has been logged. */
  private outage = false;
  /** Set while batches fail in the database: the first failure has been logged. */
  private databaseFailing = false;
  private timer?: NodeJS.Timeout;
  private running?: Promise<BatchOutcome>;
  private starting?: Promise<void>;
  private watching?: Promise<void>;
  private wake?: () => void;
  private warnedWindow = false;
  /** Set once where publishing starts is known to be written (outbox_relays). */
  private startMarked = false;
  private marking?: Promise<void>;
  private published = 0;
  private duplicates = 0;

  constructor(
    private readonly outbox: OutboxPublishingRepository,
    @InjectDataSource() private readonly dataSource: DataSource,
    config: ConfigService<Env, true>,
  ) {
    this.url = config.get('NATS_URL', { infer: true });
  }

  /** Events JetStream stored since start, and republications it dropped as duplicates (for metrics). */
  get counts(): { published: number; duplicates: number } {
    return { published: this.published, duplicates: this.duplicates };
  }

  /** Connected to NATS right now (not between a disconnect and its reconnect, not closing). */
  get connected(): boolean {
    const nc = this.connection;
    return this.linkUp && !!nc && !nc.isClosed() && !nc.isDraining();
  }

  onApplicationBootstrap(): void {
    // Without NATS_URL nothing about NATS runs; built without a database (the OpenAPI document)
    // there is no outbox to read.
    if (!this.url || !this.dataSource.isInitialized) return;
    const options = connectionOptions(this.url);
    if (!options) {
      this.logger.error(
        'NATS_URL: only nats:// and tls:// are supported by the relay; events are not published',
      );
      return;
    }
    // Publishing starts from here (the first start ever; see markStart), whether NATS is up or not.
    this.marking = this.markStart().catch(() => undefined);
    // In the background: the application starts (and serves) whether NATS is there or not.
    this.starting = this.connectFirst(options);
  }

  /** One batch, unless one is running (then that one's outcome). For tests and operators. */
  publishOnce(): Promise<BatchOutcome> {
    this.running ??= this.batch()
      .then((outcome) => {
        this.databaseFailing = false;
        this.published += outcome.acked - outcome.duplicates;
        this.duplicates += outcome.duplicates;
        if (outcome.error) this.unavailable(outcome.error);
        else if (this.connected && this.streamReady) this.available();
        return outcome;
      })
      .catch((err: unknown): BatchOutcome => {
        // The database failed (the claim or the commit): the events stay unpublished, and what was
        // published is published again later, as a duplicate JetStream drops. Logged once a streak.
        // Only the SQLSTATE and names of a database error are logged (the logger's serializer).
        if (!this.databaseFailing)
          this.logger.warn({ err }, 'NATS relay: the outbox batch failed; retrying');
        this.databaseFailing = true;
        return { claimed: 0, acked: 0, duplicates: 0, error: err };
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /** Stops claiming, lets a batch in flight finish, then drains and closes the connection. */
  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    this.wake?.();
    await this.starting;
    await this.marking;
    await this.running;
    const nc = this.connection;
    if (nc && !nc.isClosed()) {
      let bounded: NodeJS.Timeout | undefined;
      // drain() flushes what is buffered; with NATS away it would wait for a reconnect forever.
      await Promise.race([
        nc.drain().catch(() => undefined),
        new Promise<void>((resolve) => (bounded = setTimeout(resolve, DRAIN_TIMEOUT_MS))),
      ]);
      clearTimeout(bounded);
      if (!nc.isClosed()) await nc.close();
    }
    await this.watching;
  }

  /**
   * Tries until the first connection (or shutdown). The client's own reconnect logic, set to never
   * give up, takes over from there; it is not used for the first connection because a pending
   * first connect cannot be cancelled, and shutdown must not wait for NATS.
   */
  private async connectFirst(options: ConnectionOptions): Promise<void> {
    while (!this.stopping) {
      try {
        const nc = await connect(options);
        if (this.stopping) {
          await nc.close();
          return;
        }
        this.connection = nc;
        this.linkUp = true;
        this.js = jetstream(nc, { timeout: REQUEST_TIMEOUT_MS });
        this.watching = this.watch(nc);
        this.logger.log(`Publishing order events to NATS JetStream at ${nc.getServer()}`);
        this.available();
        this.schedule(0);
        return;
      } catch (err) {
        this.unavailable(err);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, FIRST_CONNECT_RETRY_MS * (0.75 + Math.random() / 2));
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
  }

  /** Follows the connection's status until it closes: outages are logged once, not per attempt. */
  private async watch(nc: NatsConnection): Promise<void> {
    try {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.linkUp = false;
          this.unavailable(new Error(`disconnected from ${s.server}`));
        } else if (s.type === 'reconnect') {
          this.linkUp = true;
          // The server may have come back without its store: look for the stream again.
          this.streamReady = false;
          this.available();
        } else if (s.type === 'error') this.logger.warn(`NATS: ${s.error.message}`);
      }
    } catch {
      // The iterator ends with the connection; nothing to report.
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      void this.publishOnce().then((o) =>
        // A full batch that made progress: more is waiting, claim it now.
        this.schedule(o.claimed === BATCH && o.acked > 0 && !o.error ? 0 : POLL_MS),
      );
    }, delayMs);
    this.timer.unref();
  }

  private async batch(): Promise<BatchOutcome> {
    const js = this.js;
    const idle: BatchOutcome = { claimed: 0, acked: 0, duplicates: 0 };
    // While disconnected a publish would only wait for its timeout, holding rows locked.
    if (this.stopping || !js || !this.connected) return idle;
    if (!this.streamReady) {
      try {
        await this.ensureStream();
      } catch (err) {
        return { ...idle, error: err };
      }
    }
    await this.marking;
    if (!this.startMarked) await this.markStart();
    return inTransaction(this.dataSource, async (m) => {
      const claimed = await this.outbox.claim(m, BATCH);
      const acked: string[] = [];
      const outcome: BatchOutcome = { ...idle, claimed: claimed.length };
      for (const event of claimed) {
        if (!event.ready) continue;
        try {
          const h = headers();
          if (event.traceparent) h.set('traceparent', event.traceparent);
          const ack = await js.publish(`${SUBJECT_PREFIX}${event.type}`, event.body, {
            msgID: event.id,
            headers: h,
            // Only our stream deduplicates by our ids; another stream on these subjects is an error.
            expect: { streamName: STREAM },
            timeout: REQUEST_TIMEOUT_MS,
          });
          acked.push(event.id);
          if (ack.duplicate) outcome.duplicates++;
        } catch (err) {
          // Stop here: a later event of the same order must not overtake this one. What was acked
          // is committed as published; the rest is claimed again next time.
          this.streamReady = false;
          outcome.error = err;
          break;
        }
      }
      await this.outbox.markPublished(m, acked);
      outcome.acked = acked.length;
      return outcome;
    });
  }

  private async markStart(): Promise<void> {
    // Written once ever: later starts only read it, and never take markStart's table lock.
    if (!(await this.outbox.startMarked(this.dataSource.manager))) {
      await inTransaction(this.dataSource, (m) => this.outbox.markStart(m));
    }
    this.startMarked = true;
  }

  /** Creates the stream when missing; an existing one is left as its operators configured it. */
  private async ensureStream(): Promise<void> {
    const nc = this.connection;
    if (!nc) throw new Error('not connected');
    const jsm = await jetstreamManager(nc, { timeout: REQUEST_TIMEOUT_MS });
    let config: StreamConfig;
    try {
      config = (await jsm.streams.info(STREAM)).config;
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound))
        throw err;
      try {
        config = (
          await jsm.streams.add({
            name: STREAM,
            subjects: [`${SUBJECT_PREFIX}>`],
            duplicate_window: nanos(DUPLICATE_WINDOW_MS),
          })
        ).config;
        this.logger.log(`Created JetStream stream ${STREAM} (${SUBJECT_PREFIX}>)`);
      } catch (addErr) {
        // Another instance created it first: fine if it is there now.
        const existing = await jsm.streams.info(STREAM).catch(() => undefined);
        if (!existing) throw addErr;
        config = existing.config;
      }
    }
    if (!this.warnedWindow && millis(config.duplicate_window) < MIN_DUPLICATE_WINDOW_MS) {
      this.warnedWindow = true;
      this.logger.warn(
        `Stream ${STREAM} keeps message ids ${millis(config.duplicate_window)} ms only: an event ` +
          'republished after a relay crash may then reach consumers twice',
      );
    }
    this.streamReady = true;
  }

  /** The first failure of an outage is logged; the rest of it is quiet. */
  private unavailable(err: unknown): void {
    if (this.outage || this.stopping) return;
    this.outage = true;
    this.logger.warn(
      `NATS unavailable (${err instanceof Error ? err.message : String(err)}): events wait in ` +
        'the outbox and are published once it is back',
    );
  }

  private available(): void {
    if (!this.outage) return;
    this.outage = false;
    this.logger.log('NATS available again: publishing the outbox');
  }
}

/**
 * The client's options for NATS_URL: the client takes host:port only, so credentials in the URL
 * become user/pass (or a token), and `tls://` requires TLS. Undefined for a scheme it cannot speak.
 */
export function connectionOptions(natsUrl: string): ConnectionOptions | undefined {
  const url = new URL(natsUrl);
  if (url.protocol !== 'nats:' && url.protocol !== 'tls:') return undefined;
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  return {
    servers: url.host,
    name: 'order-service-nats-relay',
    // Reconnect forever: an outage of any length ends with the backlog published.
    maxReconnectAttempts: -1,
    timeout: REQUEST_TIMEOUT_MS,
    ...(url.protocol === 'tls:' ? { tls: {} } : {}),
    ...(user && pass ? { user, pass } : user ? { token: user } : {}),
  };
}
