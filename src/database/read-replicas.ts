import {
  Global,
  Injectable,
  Logger,
  Module,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { Client, Pool } from 'pg';
import { Counter, Gauge } from 'prom-client';
import { DataSource, EntityManager } from 'typeorm';
import { isDatabaseUnavailable } from '../common/database/database-errors';
import {
  markStandby,
  NeedsPrimary,
  parseConsistencyToken,
  primaryReader,
  type Reader,
  type ReadRouting,
  tokenOfLsn,
} from '../common/database/reader';
import { etagVersion, parseEtagList } from '../common/http/etag';
import { ProblemError } from '../common/problems/problem.error';
import type { Env } from '../config/env';
import { MetricsService } from '../observability/metrics.service';
import { ResilientClient, TYPE_PARSERS } from './data-source';
import { PrimaryPosition } from './primary-position';

/** How often each instance asks every standby how far it has replayed (and the primary where it is). */
export const HEALTH_INTERVAL_MS = 250;
/** A health check (or a standby connection) that takes longer counts the standby as unreachable. */
const HEALTH_TIMEOUT_MS = 1_000;
/** How long a read waits for a standby connection before it is served by the primary instead. */
const STANDBY_POOL_WAIT_MS = 1_000;

type FallbackReason = 'unavailable' | 'error' | 'not_found' | 'needs_primary' | 'newer_version';

interface Standby {
  /** `standby-<n>`, in the order of DATABASE_READ_URLS: the metrics' label, never the URL. */
  readonly name: string;
  readonly url: string;
  readonly host: string;
  readonly pool: Pool;
  /** `sql()` on this manager runs on the standby's pool; `onStandby(manager)` is true. */
  readonly manager: EntityManager;
  /** Its own connection for the health check, so a busy pool never looks like a dead standby. */
  health?: Client;
  /** Answered the last health check as a standby in recovery. */
  up: boolean;
  /** What it has replayed (a token, comparable with the clients' tokens); '' before the first check. */
  replayed: string;
  /** How long ago the primary was at a position this standby has not replayed yet (0: caught up). */
  lagMs: number;
  reads: { inc(): void };
  timer?: NodeJS.Timeout;
}

/** The primary's WAL position (its insert position) at one moment, as seen by this instance. */
interface Sample {
  at: number;
  token: string;
}

/**
 * Reads from streaming standbys (API.md §12). DATABASE_READ_URLS names them; each gets a pool of
 * DB_POOL_SIZE connections and a health check every 250 ms that reads how far it has replayed
 * (`pg_last_wal_replay_lsn()`) and how far behind the primary that is. A GET is routed, when its
 * Reader is asked for (`@ReadFrom()`), to a standby that answered its last check, lags at most
 * READ_REPLICA_MAX_LAG_MS and has replayed the request's `Consistency-Token`; else to the primary.
 * Unset: every Reader is the primary's, and nothing here runs but the token's one statement.
 */
@Injectable()
export class ReadReplicas implements ReadRouting, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = new Logger('ReadReplicas');
  private readonly standbys: Standby[];
  private readonly maxLagMs: number;
  private readonly position: PrimaryPosition;
  private readonly primary: Reader;
  private readonly primaryReads: { inc(value?: number): void };
  private readonly fallbacks: Counter<'reason'>;
  private samples: Sample[] = [];
  private turn = 0;
  private stopped = false;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    config: ConfigService<Env, true>,
    metrics: MetricsService,
  ) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- read by the gauges' collect()
    const replicas = this;
    const env = config.get('DATABASE_READ_URLS', { infer: true }) ?? [];
    this.maxLagMs = config.get('READ_REPLICA_MAX_LAG_MS', { infer: true });
    const primaryUrl = (dataSource.options as { url?: string }).url ?? '';
    this.position = new PrimaryPosition(primaryUrl, (err) =>
      this.log.warn(`The primary's WAL position could not be read after a write: ${String(err)}`),
    );
    const reads = new Counter({
      name: 'db_reads_total',
      help: 'Reads outside a write (GET requests), by the server that answered: primary, or standby-<n> (API.md §12).',
      labelNames: ['target'] as const,
      registers: [metrics.registry],
    });
    this.fallbacks = new Counter({
      name: 'db_standby_fallbacks_total',
      help: 'Reads routed to a standby and answered by the primary instead, by reason: unavailable, error, not_found, needs_primary (an overdue hold), newer_version (If-None-Match names a newer version).',
      labelNames: ['reason'] as const,
      registers: [metrics.registry],
    });
    this.primaryReads = reads.labels('primary');
    this.primaryReads.inc(0);
    this.primary = primaryReader(dataSource.manager, () => this.primaryReads.inc());
    const settings = dataSource.options as { extra?: { max?: number; statement_timeout?: number } };
    this.standbys = env.map((url, index) => {
      const pool = new Pool({
        connectionString: url,
        Client: ResilientClient,
        types: TYPE_PARSERS,
        max: settings.extra?.max ?? 10,
        connectionTimeoutMillis: STANDBY_POOL_WAIT_MS,
        statement_timeout: settings.extra?.statement_timeout,
        application_name: 'order-service-read',
      });
      pool.on('error', () => undefined);
      const name = `standby-${index}`;
      const standbyReads = reads.labels(name);
      standbyReads.inc(0);
      return {
        name,
        url,
        host: new URL(url).host,
        pool,
        manager: standbyManager(dataSource, pool),
        up: false,
        replayed: '',
        lagMs: Number.POSITIVE_INFINITY,
        reads: standbyReads,
      };
    });
    if (this.standbys.length) {
      const up = new Gauge({
        name: 'db_standby_up',
        help: 'Whether reads may go to this standby now: 1 when it answered its last health check and lags at most READ_REPLICA_MAX_LAG_MS.',
        labelNames: ['standby'] as const,
        registers: [metrics.registry],
      });
      new Gauge({
        name: 'db_standby_lag_seconds',
        help: 'How long ago the primary was at a WAL position this standby has not replayed yet (0: caught up); -1 while it is unreachable.',
        labelNames: ['standby'] as const,
        registers: [metrics.registry],
        collect() {
          for (const s of replicas.standbys) {
            up.labels(s.name).set(replicas.usable(s) ? 1 : 0);
            this.labels(s.name).set(s.up ? s.lagMs / 1000 : -1);
          }
        },
      });
    }
  }

  get configured(): number {
    return this.standbys.length;
  }

  onApplicationBootstrap(): void {
    if (!this.standbys.length) return;
    this.log.log(
      `Reads outside writes go to ${this.standbys.length} standby(s) (${this.standbys.map((s) => `${s.name} at ${s.host}`).join(', ')}) while they lag at most ${this.maxLagMs} ms`,
    );
    for (const s of this.standbys) void this.watch(s);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.position.close();
    await Promise.all(
      this.standbys.map(async (s) => {
        clearTimeout(s.timer);
        await s.health?.end().catch(() => undefined);
        await s.pool.end().catch(() => undefined);
      }),
    );
  }

  /** The token of a successful write's response. */
  token(): Promise<string> {
    return this.position.token();
  }

  /** Where this request's reads go (see the class comment). */
  reader(request: {
    method: string;
    headers: Record<string, string | string[] | undefined>;
  }): Reader {
    if (!this.standbys.length || (request.method !== 'GET' && request.method !== 'HEAD')) {
      return this.primary;
    }
    const token = parseConsistencyToken(request.headers['consistency-token']) ?? '';
    const n = this.standbys.length;
    for (let i = 0; i < n; i++) {
      const s = this.standbys[(this.turn + i) % n];
      if (this.usable(s) && s.replayed >= token) {
        this.turn = (this.turn + i + 1) % n;
        return new StandbyReader(this, s, request.headers['if-none-match']);
      }
    }
    return this.primary;
  }

  /** What StandbyReader does when the standby cannot answer: the same work on the primary. */
  onPrimary<T>(work: (m: EntityManager) => Promise<T>, reason?: FallbackReason): Promise<T> {
    if (reason) this.fallbacks.labels(reason).inc();
    return this.primary.one(work);
  }

  /** A read on the standby failed for want of the standby: skip it until a health check finds it. */
  lost(s: Standby, err: unknown): void {
    if (s.up)
      this.log.warn(`${s.name} (${s.host}) is unreachable, reads go elsewhere: ${String(err)}`);
    s.up = false;
  }

  private usable(s: Standby): boolean {
    return s.up && s.lagMs <= this.maxLagMs;
  }

  private async watch(s: Standby): Promise<void> {
    if (this.stopped) return;
    await this.check(s);
    if (this.stopped) return;
    s.timer = setTimeout(() => void this.watch(s), HEALTH_INTERVAL_MS);
    s.timer.unref();
  }

  private async check(s: Standby): Promise<void> {
    // The primary first: a standby that has replayed what the primary had a moment ago lags 0.
    await this.position
      .current()
      .then((token) => this.sample(token))
      .catch(() => undefined);
    const wasUsable = this.usable(s);
    try {
      s.health ??= await connectHealth(s);
      const { rows } = await s.health.query<{ recovery: boolean; replay: string | null }>(
        'SELECT pg_is_in_recovery() AS recovery, pg_last_wal_replay_lsn()::text AS replay',
      );
      const { recovery, replay } = rows[0];
      if (!recovery || !replay) throw new Error('it is not a standby in recovery (promoted?)');
      s.replayed = tokenOfLsn(replay);
      s.lagMs = this.lagOf(s.replayed);
      s.up = true;
    } catch (err) {
      const health = s.health;
      s.health = undefined;
      void health?.end().catch(() => undefined);
      if (s.up) this.log.warn(`${s.name} (${s.host}) is unreachable: ${String(err)}`);
      s.up = false;
    }
    const usable = this.usable(s);
    if (usable !== wasUsable) {
      this.log.log(
        usable
          ? `${s.name} (${s.host}) takes reads again (lag ${s.lagMs} ms)`
          : `${s.name} (${s.host}) is skipped (${s.up ? `lag ${s.lagMs} ms > ${this.maxLagMs} ms` : 'unreachable'})`,
      );
    }
  }

  /** Remembers when the primary first stood at a position (positions only move forward). */
  private sample(token: string): void {
    const now = Date.now();
    const last = this.samples[this.samples.length - 1];
    if (!last || token > last.token) this.samples.push({ at: now, token });
    // Keep what can tell a lag beyond the limit; one sample older than that stands for the rest.
    const horizon = now - Math.max(4 * this.maxLagMs, 10_000);
    let drop = 0;
    while (drop < this.samples.length - 1 && this.samples[drop + 1].at < horizon) drop++;
    if (drop) this.samples = this.samples.slice(drop);
  }

  /** How long ago the primary was first at a position beyond `replayed` (0: none is). */
  private lagOf(replayed: string): number {
    const behind = this.samples.find((sample) => sample.token > replayed);
    return behind ? Date.now() - behind.at : 0;
  }
}

/** Reads on one standby, with the primary behind it (Reader's contract). */
class StandbyReader implements Reader {
  constructor(
    private readonly replicas: ReadReplicas,
    private readonly standby: Standby,
    private readonly ifNoneMatch: string | string[] | undefined,
  ) {}

  get target(): string {
    return this.standby.name;
  }

  one<T>(work: (m: EntityManager) => Promise<T>): Promise<T> {
    return this.run(work, true);
  }

  list<T>(work: (m: EntityManager) => Promise<T>): Promise<T> {
    // A list's ETag is a digest of its bytes: nothing tells how old the client's copy is.
    if (this.ifNoneMatch !== undefined) return this.replicas.onPrimary(work);
    return this.run(work, false);
  }

  private async run<T>(work: (m: EntityManager) => Promise<T>, versioned: boolean): Promise<T> {
    let result: T;
    try {
      result = await work(this.standby.manager);
    } catch (err) {
      if (err instanceof NeedsPrimary) return this.replicas.onPrimary(work, 'needs_primary');
      if (err instanceof ProblemError) {
        // A resource created a moment ago may not have reached the standby: never a stale 404.
        if (err.code === 'NOT_FOUND') return this.replicas.onPrimary(work, 'not_found');
        throw err;
      }
      if (isDatabaseUnavailable(err)) {
        this.replicas.lost(this.standby, err);
        return this.replicas.onPrimary(work, 'unavailable');
      }
      // E.g. a statement cancelled for a conflict with recovery: the primary answers instead.
      return this.replicas.onPrimary(work, 'error');
    }
    if (versioned && this.ifNoneMatch !== undefined) {
      // A computed view's version is the one the primary's expiry will write; the client may hold
      // that very version written by the primary (cancelled, paid): only the primary can tell.
      if ((result as { computed?: boolean } | null)?.computed) {
        return this.replicas.onPrimary(work, 'newer_version');
      }
      if (namesNewer(this.ifNoneMatch, result))
        return this.replicas.onPrimary(work, 'newer_version');
    }
    this.standby.reads.inc();
    return result;
  }
}

/** Whether If-None-Match names a version of this resource newer than the one read. */
function namesNewer(ifNoneMatch: string | string[], result: unknown): boolean {
  const version = (result as { version?: unknown } | null)?.version;
  if (typeof version !== 'number') return false;
  const tags = parseEtagList(ifNoneMatch);
  if (!tags || tags === '*') return false;
  return tags.some((t) => (etagVersion(t.tag) ?? 0) > version);
}

/**
 * A manager whose statements run on the standby's pool: the primary's data source (entities,
 * column metadata, hydration) with the standby's pool in place of the primary's, which is all
 * `sql()`, `one()`, `many()` and `pageOf()` use. Never given to a write.
 */
function standbyManager(primary: DataSource, pool: Pool): EntityManager {
  const driver: unknown = Object.create(primary.driver, { master: { value: pool } });
  const connection = Object.create(primary, { driver: { value: driver } }) as DataSource;
  const manager = new EntityManager(connection);
  markStandby(manager);
  return manager;
}

async function connectHealth(s: Standby): Promise<Client> {
  const client = new ResilientClient({
    connectionString: s.url,
    connectionTimeoutMillis: HEALTH_TIMEOUT_MS,
    statement_timeout: HEALTH_TIMEOUT_MS,
    // The client's own bound too: a standby cut off without a reset must count as down.
    query_timeout: HEALTH_TIMEOUT_MS,
    application_name: 'order-service-health',
  });
  await client.connect();
  return client;
}

@Global()
@Module({ providers: [ReadReplicas], exports: [ReadReplicas] })
export class ReadReplicasModule {}
