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
import { OutboxRepository } from './outbox.repository';

/** Rows one statement deletes: short statements, short locks. */
const BATCH = 1_000;
/** Batches of one kind per round at most; the rest waits for the next round. */
const MAX_BATCHES = 100;
/** How often every instance purges (±25%, so instances spread out). */
const INTERVAL_MS = 5 * 60_000;
/** The first round, soon after start. */
const FIRST_ROUND_MS = 30_000;

export interface PurgeOutcome {
  deliveries: number;
  events: number;
  providerEvents: number;
}

/** Payment provider event ids are kept this long (API.md §9: at least 30 days). */
export const PROVIDER_EVENT_RETENTION_DAYS = 30;

/**
 * Keeps the outbox from growing for ever, on every instance: delivered webhook deliveries settled
 * more than OUTBOX_RETENTION_HOURS ago are deleted (a failed one stays listed until redelivered, API.md
 * §8), then events older than that which nothing
 * waits for any more (no delivery left, and published to NATS or not for NATS: see
 * OutboxRepository.purgeHandledEvents), and payment provider event ids older than 30 days. In batches of 1000 rows, each its own statement (SKIP LOCKED,
 * so instances purging at once, a redelivery or a NATS batch never wait for each other).
 */
@Injectable()
export class OutboxRetention implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('OutboxRetention');
  private readonly hours: number;
  private readonly withoutNats: boolean;
  private timer?: NodeJS.Timeout;
  private running?: Promise<PurgeOutcome>;
  private stopping = false;

  constructor(
    private readonly outbox: OutboxRepository,
    @InjectDataSource() private readonly dataSource: DataSource,
    config: ConfigService<Env, true>,
  ) {
    this.hours = config.get('OUTBOX_RETENTION_HOURS', { infer: true });
    this.withoutNats = !config.get('NATS_URL', { infer: true });
  }

  onApplicationBootstrap(): void {
    if (this.dataSource.isInitialized) this.schedule(FIRST_ROUND_MS);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One round (or the one running): what it deleted. For tests and operators. */
  purgeOnce(): Promise<PurgeOutcome> {
    this.running ??= this.purge().finally(() => (this.running = undefined));
    return this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      void this.purgeOnce()
        .then((o) => {
          if (o.deliveries || o.events || o.providerEvents) this.logger.log(o, 'outbox purged');
        })
        .catch((err: unknown) =>
          // Only the SQLSTATE and names of a database error are logged (the logger's serializer).
          this.logger.warn({ err }, 'Outbox retention round failed; retrying next round'),
        )
        .finally(() => this.schedule(INTERVAL_MS * (0.75 + Math.random() / 2)));
    }, delayMs);
    this.timer.unref();
  }

  private async purge(): Promise<PurgeOutcome> {
    const m = this.dataSource.manager;
    const outcome: PurgeOutcome = { deliveries: 0, events: 0, providerEvents: 0 };
    for (let i = 0; i < MAX_BATCHES && !this.stopping; i++) {
      const n = await this.outbox.purgeSettledDeliveries(m, this.hours, BATCH);
      outcome.deliveries += n;
      if (n < BATCH) break;
    }
    for (let i = 0; i < MAX_BATCHES && !this.stopping; i++) {
      const n = await this.outbox.purgeHandledEvents(m, this.hours, BATCH, this.withoutNats);
      outcome.events += n;
      if (n < BATCH) break;
    }
    for (let i = 0; i < MAX_BATCHES && !this.stopping; i++) {
      const n = await this.outbox.purgeProviderEvents(m, PROVIDER_EVENT_RETENTION_DAYS, BATCH);
      outcome.providerEvents += n;
      if (n < BATCH) break;
    }
    return outcome;
  }
}
