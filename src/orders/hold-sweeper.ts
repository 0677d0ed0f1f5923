import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { Env } from '../config/env';
import { MetricsService } from '../observability/metrics.service';
import { HoldExpiry } from './hold-expiry';

/**
 * Expires unpaid holds on every instance, every ORDER_EXPIRY_SWEEP_SECONDS: no leader, no extra
 * process. Instances never expire the same order (rows are claimed FOR UPDATE SKIP LOCKED, and the
 * write is guarded by the hold being over). Reads, pays and short placements expire what they meet
 * themselves; the sweeper bounds how long units of an abandoned checkout stay off sale.
 */
@Injectable()
export class HoldSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('HoldSweeper');
  private readonly everyMs: number;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly holds: HoldExpiry,
    private readonly metrics: MetricsService,
    @InjectDataSource() private readonly dataSource: DataSource,
    config: ConfigService<Env, true>,
  ) {
    this.everyMs = config.get('ORDER_EXPIRY_SWEEP_SECONDS', { infer: true }) * 1000;
  }

  onApplicationBootstrap(): void {
    this.metrics.measureOldestOverdueHold(() =>
      this.dataSource.isInitialized ? this.holds.oldestOverdueSeconds() : Promise.resolve(0),
    );
    // Built without a database (the OpenAPI document): nothing to sweep.
    if (!this.dataSource.isInitialized) return;
    this.timer = setInterval(() => void this.sweepOnce(), this.everyMs);
    this.timer.unref();
  }

  /** One sweep, unless the previous one is still running. */
  sweepOnce(): Promise<void> {
    this.running ??= this.holds
      .sweep()
      .then(
        (n) => void (n && this.logger.log(`Expired ${n} unpaid hold(s)`)),
        (err: unknown) => this.logger.warn(`Hold sweep failed: ${String(err)}`),
      )
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /** Stops claiming, and lets a sweep in flight finish (its transaction commits or rolls back). */
  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
