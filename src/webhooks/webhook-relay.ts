import { randomUUID } from 'node:crypto';
import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { Webhook } from 'standardwebhooks';
import { type Agent, type Dispatcher, fetch } from 'undici';
import { DataSource } from 'typeorm';
import type { Env } from '../config/env';
import { MetricsService } from '../observability/metrics.service';
import { RefusedTargetError, refuseUrlShape, type UrlPolicy, webhookAgent } from './webhook-url';
import { type ClaimedDelivery, WebhooksRepository } from './webhooks.repository';
import { WebhooksService } from './webhooks.service';

/** A receiver has this long to answer 2xx (API.md §8): the whole attempt, address lookup included. */
export const ATTEMPT_TIMEOUT_MS = 10_000;
/** How often an idle relay looks for due deliveries: the first attempt is within 2 s of the commit. */
const POLL_MS = 500;
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
 * Sends the outbox's webhook deliveries, on every instance, with a fixed pool of
 * WEBHOOK_RELAY_CONCURRENCY workers: each claims the next due delivery as soon as it is free (see
 * WebhooksRepository.claim: SKIP LOCKED and a lease, so one attempt is made by one instance), posts it
 * as Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), and records the
 * outcome: 2xx within 10 s is delivered; anything else is retried with exponential backoff until
 * WEBHOOK_MAX_ATTEMPTS, then failed. A subscription has at most WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION
 * attempts in flight here, so an unresponsive receiver holds that many workers and no more: the others
 * keep serving every other subscription. Claims are made one at a time per instance (one short
 * statement), which keeps that cap exact; an idle pool asks the database once per POLL_MS.
 * Shutdown stops claiming and lets attempts in flight finish.
 */
@Injectable()
export class WebhookRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('WebhookRelay');
  private readonly base: number;
  private readonly maxAttempts: number;
  private readonly leaseSeconds: number;
  private readonly concurrency: number;
  private readonly perSubscription: number;
  private readonly agent: Agent;
  private stopping = false;
  private workers: Promise<void>[] = [];
  /** Attempts in flight on this instance, per subscription. */
  private readonly inFlight = new Map<string, number>();
  /** Claims run one after the other: the cap is read and raised with no claim in between. */
  private claiming: Promise<unknown> = Promise.resolve();
  /** When a claim last found nothing due: other idle workers do not ask again before POLL_MS. */
  private emptyAt = 0;
  private nap?: { promise: Promise<void>; wake: () => void };
  private failing = false;

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
    this.concurrency = config.get('WEBHOOK_RELAY_CONCURRENCY', { infer: true });
    this.perSubscription = config.get('WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION', { infer: true });
    this.agent = webhookAgent(this.service.urlPolicy, ATTEMPT_TIMEOUT_MS);
  }

  onApplicationBootstrap(): void {
    this.metrics.measureOutboxLag(() =>
      this.dataSource.isInitialized ? this.webhooks.oldestUndeliveredSeconds() : Promise.resolve(0),
    );
    // Built without a database (the OpenAPI document): nothing to relay.
    if (!this.dataSource.isInitialized) return;
    for (let i = 0; i < this.concurrency; i++) this.workers.push(this.work());
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    this.nap?.wake();
    await Promise.all(this.workers);
    await this.agent.close().catch(() => undefined);
  }

  /** Attempts in flight on this instance (for tests and operators). */
  get attemptsInFlight(): number {
    let n = 0;
    for (const count of this.inFlight.values()) n += count;
    return n;
  }

  private async work(): Promise<void> {
    while (!this.stopping) {
      let claimed: { delivery: ClaimedDelivery; lease: string } | undefined;
      try {
        claimed = await this.claimNext();
        if (this.failing) this.logger.log('Webhook relay: the database answers again');
        this.failing = false;
      } catch (err) {
        // Only the SQLSTATE and names of a database error are logged (the logger's serializer).
        if (!this.failing) this.logger.warn({ err }, 'Webhook relay: claiming failed; retrying');
        this.failing = true;
      }
      if (!claimed) {
        await this.sleep();
        continue;
      }
      const { delivery, lease } = claimed;
      try {
        await this.attempt(delivery, lease);
      } catch (err) {
        // The outcome could not be written: the lease runs out and the delivery is due again.
        this.logger.warn({ err, deliveryId: delivery.id }, 'Webhook relay: settling failed');
      } finally {
        const left = (this.inFlight.get(delivery.subscription_id) ?? 1) - 1;
        if (left > 0) this.inFlight.set(delivery.subscription_id, left);
        else this.inFlight.delete(delivery.subscription_id);
        // A subscription at its cap may have due deliveries the last empty claim could not take.
        this.emptyAt = 0;
      }
    }
  }

  /** The next due delivery this instance may take, or undefined; one claim at a time. */
  private claimNext(): Promise<{ delivery: ClaimedDelivery; lease: string } | undefined> {
    const next = this.claiming.then(async () => {
      if (this.stopping || Date.now() - this.emptyAt < POLL_MS) return undefined;
      const full = [...this.inFlight]
        .filter(([, n]) => n >= this.perSubscription)
        .map(([id]) => id);
      const lease = randomUUID();
      const [delivery] = await this.webhooks.claim(1, lease, this.leaseSeconds, full);
      if (!delivery) {
        this.emptyAt = Date.now();
        return undefined;
      }
      this.inFlight.set(
        delivery.subscription_id,
        (this.inFlight.get(delivery.subscription_id) ?? 0) + 1,
      );
      // More may be due: wake the idle workers.
      this.nap?.wake();
      return { delivery, lease };
    });
    this.claiming = next.catch(() => undefined);
    return next;
  }

  /** Idle workers share one nap of POLL_MS, cut short when a claim succeeds or shutdown begins. */
  private sleep(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (!this.nap) {
      let wake = (): void => undefined;
      const promise = new Promise<void>((resolve) => {
        const timer = setTimeout(() => wake(), POLL_MS);
        timer.unref();
        wake = () => {
          clearTimeout(timer);
          if (this.nap?.promise === promise) this.nap = undefined;
          resolve();
        };
      });
      this.nap = { promise, wake: () => wake() };
    }
    return this.nap.promise;
  }

  private async attempt(d: ClaimedDelivery, lease: string): Promise<void> {
    const result = await sendWebhook(d, this.agent, this.service.urlPolicy);
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
}

export type SendResult =
  { ok: true; status: number } | { ok: false; status: number | null; error: string };

/**
 * One attempt: the URL's shape is checked (scheme, credentials, a literal or `localhost` target), then
 * the request goes through `dispatcher` (webhookAgent: one lookup, every address vetted, the peer
 * vetted again), all of it, lookup included, under one deadline of ATTEMPT_TIMEOUT_MS.
 */
export async function sendWebhook(
  d: Pick<ClaimedDelivery, 'url' | 'secret' | 'event_id' | 'body' | 'traceparent'>,
  dispatcher: Dispatcher,
  policy: UrlPolicy,
  timeoutMs = ATTEMPT_TIMEOUT_MS,
): Promise<SendResult> {
  const refused = refuseUrlShape(d.url, policy);
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
      dispatcher,
      signal: AbortSignal.timeout(timeoutMs),
    });
    // The body is not needed, but the connection must be freed.
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300)
      return { ok: true, status: response.status };
    return { ok: false, status: response.status, error: `HTTP ${response.status}` };
  } catch (err) {
    // Duck-typed: the abort reason is a DOMException, of another realm under test runners.
    const { name, message, cause } = (err ?? {}) as {
      name?: string;
      message?: string;
      cause?: unknown;
    };
    const timedOut = name === 'TimeoutError';
    if (cause instanceof RefusedTargetError) {
      return { ok: false, status: null, error: `refused: url ${cause.message}` };
    }
    const causeText = cause instanceof Error ? cause.message : '';
    return {
      ok: false,
      status: null,
      error: timedOut
        ? `no answer within ${timeoutMs / 1000} s`
        : `${message ?? String(err)}${causeText ? `: ${causeText}` : ''}`,
    };
  }
}
