import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { Webhook } from 'standardwebhooks';
import { DataSource } from 'typeorm';
import type { Env } from '../config/env';
import { MetricsService } from '../observability/metrics.service';
import { refuseWebhookUrl } from './webhook-url';
import { type ClaimedDelivery, WebhooksRepository } from './webhooks.repository';
import { WebhooksService } from './webhooks.service';

/** A receiver has this long to answer 2xx (API.md §8). */
const ATTEMPT_TIMEOUT_MS = 10_000;
/** How often an idle relay looks for due deliveries: the first attempt is within 2 s of the commit. */
const POLL_MS = 500;
const BATCH = 20;
const MAX_DELAY_SECONDS = 6 * 3600;

/**
 * The wait before attempt n+1, after attempt n failed: base × 2^(n−1), ±25% jitter, capped at 6 h.
 * `random` is Math.random in production; tests pass their own.
 */
export function backoffSeconds(base: number, attempt: number, random = Math.random): number {
  const exact = Math.min(MAX_DELAY_SECONDS, base * 2 ** (attempt - 1));
  return Math.min(MAX_DELAY_SECONDS, Math.max(0, exact * (0.75 + random() * 0.5)));
}

/**
 * Sends the outbox's webhook deliveries, on every instance: claims due ones (see
 * WebhooksRepository.claim: SKIP LOCKED and a lease, so one attempt is made by one instance), posts
 * each as Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), and records the
 * outcome: 2xx within 10 s is delivered; anything else is retried with exponential backoff until
 * WEBHOOK_MAX_ATTEMPTS, then failed. Shutdown stops claiming and lets attempts in flight finish.
 */
@Injectable()
export class WebhookRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('WebhookRelay');
  private readonly base: number;
  private readonly maxAttempts: number;
  private readonly leaseSeconds: number;
  private stopping = false;
  private loop?: Promise<void>;

  constructor(
    private readonly webhooks: WebhooksRepository,
    private readonly service: WebhooksService,
    private readonly metrics: MetricsService,
    @InjectDataSource() private readonly dataSource: DataSource,
    config: ConfigService<Env, true>,
  ) {
    this.base = config.get('WEBHOOK_BACKOFF_BASE_SECONDS', { infer: true });
    this.maxAttempts = config.get('WEBHOOK_MAX_ATTEMPTS', { infer: true });
    this.leaseSeconds = config.get('WEBHOOK_LEASE_SECONDS', { infer: true });
  }

  onApplicationBootstrap(): void {
    this.metrics.measureOutboxLag(() =>
      this.dataSource.isInitialized ? this.webhooks.oldestUndeliveredSeconds() : Promise.resolve(0),
    );
    // Built without a database (the OpenAPI document): nothing to relay.
    if (!this.dataSource.isInitialized) return;
    this.loop = this.run();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let claimed = 0;
      try {
        claimed = await this.relayOnce();
      } catch (err) {
        this.logger.warn(`Webhook relay round failed: ${String(err)}`);
      }
      // A full batch: more may be due at once. Otherwise wait a little.
      if (claimed < BATCH && !this.stopping) await sleep(POLL_MS, undefined, { ref: false });
    }
  }

  /** One round: claims due deliveries and makes one attempt of each. Returns how many it claimed. */
  async relayOnce(): Promise<number> {
    const lease = randomUUID();
    const claimed = await this.webhooks.claim(BATCH, lease, this.leaseSeconds);
    await Promise.all(claimed.map((d) => this.attempt(d, lease)));
    return claimed.length;
  }

  private async attempt(d: ClaimedDelivery, lease: string): Promise<void> {
    const result = await this.send(d);
    const log = { deliveryId: d.id, eventId: d.event_id, type: d.type, attempt: d.attempts };
    if (result.ok) {
      await this.webhooks.settle(d.id, lease, { kind: 'delivered', status: result.status });
      this.metrics.webhookDelivery('delivered');
      this.logger.log({ ...log, status: result.status }, 'webhook delivered');
      return;
    }
    if (d.attempts >= this.maxAttempts) {
      await this.webhooks.settle(d.id, lease, {
        kind: 'failed',
        status: result.status,
        error: result.error,
      });
      this.metrics.webhookDelivery('failed');
      this.logger.warn({ ...log, status: result.status, error: result.error }, 'webhook failed');
      return;
    }
    const delaySeconds = backoffSeconds(this.base, d.attempts);
    await this.webhooks.settle(d.id, lease, {
      kind: 'retry',
      status: result.status,
      error: result.error,
      delaySeconds,
    });
    this.metrics.webhookDelivery('retry');
    this.logger.log(
      {
        ...log,
        status: result.status,
        error: result.error,
        retryInSeconds: Math.round(delaySeconds),
      },
      'webhook attempt failed; will retry',
    );
  }

  private async send(
    d: ClaimedDelivery,
  ): Promise<{ ok: true; status: number } | { ok: false; status: number | null; error: string }> {
    const refused = await refuseWebhookUrl(d.url, this.service.urlPolicy);
    if (refused) return { ok: false, status: null, error: `refused: url ${refused}` };
    const timestamp = new Date();
    const signature = new Webhook(d.secret).sign(d.event_id, timestamp, d.body);
    try {
      const response = await fetch(d.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'order-service-webhooks',
          'webhook-id': d.event_id,
          'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
          'webhook-signature': signature,
          ...(d.traceparent ? { traceparent: d.traceparent } : {}),
        },
        body: d.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      });
      // The body is not needed, but the connection must be freed.
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 200 && response.status < 300)
        return { ok: true, status: response.status };
      return { ok: false, status: response.status, error: `HTTP ${response.status}` };
    } catch (err) {
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : '';
      return {
        ok: false,
        status: null,
        error: timedOut
          ? `no answer within ${ATTEMPT_TIMEOUT_MS / 1000} s`
          : `${err instanceof Error ? err.message : String(err)}${cause ? `: ${cause}` : ''}`,
      };
    }
  }
}
