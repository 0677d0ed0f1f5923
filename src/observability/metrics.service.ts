import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { PROBLEM_CODES, type ProblemCode } from '../common/problems/problem-catalogue';

const STOCK_FAILURES: Partial<Record<ProblemCode, string>> = {
  INSUFFICIENT_STOCK: 'insufficient_stock',
  PRODUCT_UNAVAILABLE: 'product_unavailable',
  UNKNOWN_PRODUCT: 'unknown_product',
};

interface PgPool {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

/**
 * Prometheus metrics of one app instance, in a registry of its own (several apps can live in one
 * process, as in the tests). Fed from a single onResponse hook, see observeResponse().
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  private readonly duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route template and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  private readonly conflicts = new Counter({
    name: 'conflicts_total',
    help: 'Problem responses (application/problem+json) by problem code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  private readonly replays = new Counter({
    name: 'idempotent_replays_total',
    help: 'Responses replayed from a stored Idempotency-Key outcome.',
    registers: [this.registry],
  });

  private readonly stockFailures = new Counter({
    name: 'stock_reservation_failures_total',
    help: 'Orders refused while reserving stock, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  private readonly holdsExpiredTotal = new Counter({
    name: 'order_holds_expired_total',
    help: 'Pending orders expired because their hold ended unpaid (their units went back on sale).',
    registers: [this.registry],
  });

  private readonly webhookDeliveries = new Counter({
    name: 'webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome: delivered, retry (will be tried again), failed (gave up).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  private readonly paymentsTotal = new Counter({
    name: 'payments_total',
    help: 'Payments settled, by provider and outcome (succeeded, failed, canceled).',
    labelNames: ['provider', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly refundsTotal = new Counter({
    name: 'refunds_total',
    help: 'Refunds settled, by provider and outcome (succeeded, failed), and relay attempts to retry (retry).',
    labelNames: ['provider', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly notificationsRejected = new Counter({
    name: 'payment_notifications_rejected_total',
    help: 'Payment provider notifications refused for a missing, wrong or stale signature or a malformed body (400).',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });
  /** Set by the refund relay: refunds pending and failed, read at each scrape. */
  private refundCounts: () => Promise<{ pending: number; failed: number }> = () =>
    Promise.resolve({ pending: 0, failed: 0 });

  private readonly placementBatches = new Histogram({
    name: 'order_placement_batch_size',
    help: 'Checkouts per placement statement: 1 alone, more when checkouts of the same products queued behind one in the database and were placed together.',
    buckets: [1, 2, 4, 8, 16, 32],
    registers: [this.registry],
  });

  private readonly placementsShed = new Counter({
    name: 'order_placements_shed_total',
    help: 'Checkouts answered 503 by the placement queue without being placed: waited (still queued at their deadline) or queue_full (the queue of their products at its bound).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /** Set by OrderPlacement: checkouts queued behind a placement of the same products. */
  private placementsWaiting: () => number = () => 0;

  /** Set by the webhook relay: the age of the oldest event with a delivery pending. */
  private outboxLag: () => Promise<number> = () => Promise.resolve(0);

  /** Set by the hold sweeper: the age of the oldest overdue hold, read at each scrape. */
  private oldestOverdue: () => Promise<number> = () => Promise.resolve(0);

  constructor(@InjectDataSource() dataSource: DataSource) {
    collectDefaultMetrics({ register: this.registry });
    for (const code of PROBLEM_CODES) this.conflicts.inc({ code }, 0);
    for (const reason of Object.values(STOCK_FAILURES)) this.stockFailures.inc({ reason }, 0);
    const pool = (): PgPool | undefined =>
      (dataSource.driver as unknown as { master?: PgPool }).master;
    // First: read before the gauges below queue their own queries on the pool at each scrape.
    new Gauge({
      name: 'db_pool_connections',
      help: 'Database pool connections by state (in_use, idle, waiting = requests queued for one).',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const p = pool();
        if (!p) return;
        this.set({ state: 'in_use' }, p.totalCount - p.idleCount);
        this.set({ state: 'idle' }, p.idleCount);
        this.set({ state: 'waiting' }, p.waitingCount);
      },
    });
    for (const outcome of ['delivered', 'retry', 'failed'])
      this.webhookDeliveries.inc({ outcome }, 0);
    for (const reason of ['waited', 'queue_full']) this.placementsShed.inc({ reason }, 0);
    const waiting = (): number => this.placementsWaiting();
    new Gauge({
      name: 'order_placements_waiting',
      help: 'Checkouts waiting in this instance for a placement of the same products to answer, to be placed together next.',
      registers: [this.registry],
      collect() {
        this.set(waiting());
      },
    });
    const refundCounts = () => this.refundCounts();
    new Gauge({
      name: 'refunds_outstanding',
      help: 'Refunds not carried out yet (pending) and given up (failed: money owed that needs an admin). Alert on failed > 0.',
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        const c = await refundCounts().catch(() => ({ pending: 0, failed: 0 }));
        this.set({ status: 'pending' }, c.pending);
        this.set({ status: 'failed' }, c.failed);
      },
    });
    const lag = (): Promise<number> => this.outboxLag();
    new Gauge({
      name: 'outbox_lag_seconds',
      help: 'Age of the oldest order event whose webhook delivery is still pending (0: none).',
      registers: [this.registry],
      async collect() {
        this.set(await lag().catch(() => 0));
      },
    });
    const oldest = (): Promise<number> => this.oldestOverdue();
    new Gauge({
      name: 'order_hold_oldest_overdue_seconds',
      help: 'Seconds since the oldest still-pending hold ended (0: none overdue). Growing: the sweeper is stalled.',
      registers: [this.registry],
      async collect() {
        this.set(await oldest().catch(() => 0));
      },
    });
  }

  placementBatch(size: number): void {
    this.placementBatches.observe(size);
  }

  placementShed(reason: 'waited' | 'queue_full'): void {
    this.placementsShed.inc({ reason });
  }

  measurePlacementsWaiting(source: () => number): void {
    this.placementsWaiting = source;
  }

  webhookDelivery(outcome: 'delivered' | 'retry' | 'failed'): void {
    this.webhookDeliveries.inc({ outcome });
  }

  payment(provider: string, outcome: 'succeeded' | 'failed' | 'canceled'): void {
    this.paymentsTotal.inc({ provider, outcome });
  }

  refund(provider: string, outcome: 'succeeded' | 'failed' | 'retry'): void {
    this.refundsTotal.inc({ provider, outcome });
  }

  notificationRejected(provider: string): void {
    this.notificationsRejected.inc({ provider });
  }

  measureRefunds(source: () => Promise<{ pending: number; failed: number }>): void {
    this.refundCounts = source;
  }

  measureOutboxLag(source: () => Promise<number>): void {
    this.outboxLag = source;
  }

  holdsExpired(n: number): void {
    this.holdsExpiredTotal.inc(n);
  }

  measureOldestOverdueHold(source: () => Promise<number>): void {
    this.oldestOverdue = source;
  }

  observeResponse(r: {
    method: string;
    route: string;
    status: number;
    seconds: number;
    problemCode?: ProblemCode;
    replayed: boolean;
  }): void {
    this.duration.observe(
      { method: r.method, route: r.route, status_code: String(r.status) },
      r.seconds,
    );
    if (r.replayed) this.replays.inc();
    if (r.problemCode) {
      this.conflicts.inc({ code: r.problemCode });
      const reason = STOCK_FAILURES[r.problemCode];
      if (reason) this.stockFailures.inc({ reason });
    }
  }
}
