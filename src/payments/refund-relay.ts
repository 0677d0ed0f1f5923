import { randomUUID } from 'node:crypto';
import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { inTransaction } from '../common/database/transaction';
import type { Env } from '../config/env';
import { MetricsService } from '../observability/metrics.service';
import { OrdersRepository } from '../orders/orders.repository';
import { PaymentsRepository } from './payments.repository';
import { RefundsRepository, type ClaimedRefund } from './refunds.repository';
import {
  ProviderRejected,
  ProviderUnavailable,
  type RefundAttempt,
  type RefundOutcome,
} from './providers/payment-provider';
import { PaymentProviders } from './providers/providers';
import { RefundSettlement } from './refund-settlement';

/** How often every instance looks for due refunds (besides a kick after a commit that owes one). */
const POLL_MS = 1_000;
/** Refunds one pass claims at most. */
const BATCH = 20;
/** The longest wait between two attempts. */
const MAX_BACKOFF_SECONDS = 6 * 3600;

/** Wait before attempt n+1: base × 2^(n−1), ± 25% jitter, capped at 6 h (API.md §10). */
export function refundBackoffSeconds(base: number, attempts: number): number {
  const raw = Math.min(MAX_BACKOFF_SECONDS, base * 2 ** Math.max(0, attempts - 1));
  return raw * (0.75 + Math.random() / 2);
}

/**
 * The idempotency key an attempt uses by API.md §10's rules (the provider decides it and reports it
 * with its answer; this is the same rule, for an attempt that ended in an error without one): the
 * refund id first; after an error answer, `{refundId}:{attempt}`; after no answer, the last key.
 */
export function keyOf(a: RefundAttempt): string {
  if (a.previousOutcome === 'no_answer' && a.previousKey) return a.previousKey;
  if (a.previousOutcome === 'error_answer') return `${a.refundId}:${a.attempt}`;
  return a.refundId;
}

/**
 * Carries out `pending` refunds at their provider after the commit that recorded them (API.md §10),
 * on every instance: due refunds are claimed with a lease (FOR UPDATE SKIP LOCKED, one instance per
 * attempt; a crashed relay's claim comes back when its lease runs out), the provider is asked with
 * the refund's idempotency key (so an attempt repeated after a crash never refunds twice), and the
 * answer is recorded under the order's row lock, guarded by the lease. Errors are retried with
 * backoff up to REFUND_MAX_ATTEMPTS, then the refund is `failed` (an admin may retry it); a 4xx of the
 * provider fails it at once. `manual` refunds are never picked: an admin completes them.
 *
 * A crash between the provider's answer and the record leaves the refund as the last recorded
 * attempt left it: the next attempt passes that attempt's key and outcome again, so it reuses the
 * same key (or, after an error answer, first looks the refund up at the provider).
 */
@Injectable()
export class RefundRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('RefundRelay');
  private readonly maxAttempts: number;
  private readonly backoffBase: number;
  private readonly leaseSeconds: number;
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;
  private again = false;
  private stopping = false;

  constructor(
    private readonly payments: PaymentsRepository,
    private readonly refunds: RefundsRepository,
    private readonly orders: OrdersRepository,
    private readonly providers: PaymentProviders,
    private readonly settlement: RefundSettlement,
    private readonly metrics: MetricsService,
    @InjectDataSource() private readonly dataSource: DataSource,
    config: ConfigService<Env, true>,
  ) {
    this.maxAttempts = config.get('REFUND_MAX_ATTEMPTS', { infer: true });
    this.backoffBase = config.get('REFUND_BACKOFF_BASE_SECONDS', { infer: true });
    this.leaseSeconds = config.get('REFUND_LEASE_SECONDS', { infer: true });
  }

  onApplicationBootstrap(): void {
    this.metrics.measureRefunds(() =>
      this.dataSource.isInitialized
        ? this.refunds.refundCounts()
        : Promise.resolve({ pending: 0, failed: 0 }),
    );
    if (!this.dataSource.isInitialized) return;
    this.timer = setInterval(() => void this.passOnce(), POLL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** A commit owed a refund: a pass now (or right after the running one). */
  kick(): void {
    if (this.stopping || !this.dataSource.isInitialized) return;
    if (this.running) this.again = true;
    else void this.passOnce();
  }

  /** One pass (or the running one): claims due refunds and attempts each; how many it attempted. */
  passOnce(): Promise<number> {
    this.running ??= this.pass()
      .catch((err: unknown) => {
        this.logger.warn({ err }, 'Refund relay pass failed; retrying next pass');
        return 0;
      })
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.stopping) {
          this.again = false;
          void this.passOnce();
        }
      });
    return this.running;
  }

  private async pass(): Promise<number> {
    let total = 0;
    for (;;) {
      if (this.stopping) return total;
      const lease = randomUUID();
      const claimed = await this.refunds.claimDue(lease, this.leaseSeconds, BATCH);
      await Promise.all(claimed.map((r) => this.attempt(r, lease)));
      total += claimed.length;
      if (claimed.length < BATCH) return total;
    }
  }

  private async attempt(r: ClaimedRefund, lease: string): Promise<void> {
    const provider = this.providers.get(r.provider);
    const attempt: RefundAttempt = {
      refundId: r.id,
      providerPaymentId: r.providerPaymentId,
      amountCents: r.amountCents,
      currency: r.currency,
      attempt: r.attempts,
      previousKey: r.lastKey,
      previousOutcome: r.lastOutcome === 'provider_failed' ? 'error_answer' : r.lastOutcome,
    };
    let outcome: RefundOutcome | undefined;
    let error: unknown;
    if (!provider) {
      error = new ProviderUnavailable(
        r.provider,
        true,
        `provider ${r.provider} is not enabled here`,
      );
    } else {
      try {
        outcome = await provider.refund(attempt);
      } catch (err) {
        error = err;
      }
    }
    try {
      await inTransaction(this.dataSource, async (m) => {
        // The order's row first, like every writer of an order; then the refund, guarded by the lease.
        await this.orders.findById(r.orderId, m, true);
        const refund = await this.refunds.findRefund(m, r.id, { lock: true });
        if (!refund || refund.status !== 'pending') return;
        if (outcome?.status === 'succeeded') {
          await this.settlement.succeed(m, refund, {
            providerRefundId: outcome.providerRefundId,
            lastKey: outcome.key,
            lease,
          });
        } else if (outcome?.status === 'pending') {
          // Accepted: the provider's notification says how it ends.
          await this.refunds.settleRefund(m, r.id, ['pending'], {
            status: 'pending',
            providerRefundId: outcome.providerRefundId,
            lastKey: outcome.key,
            submitted: true,
            lease,
          });
        } else if (outcome?.status === 'failed') {
          await this.settlement.fail(m, refund, {
            error: outcome.error,
            lastKey: outcome.key,
            lastOutcome: 'provider_failed',
            lease,
          });
        } else if (error instanceof ProviderRejected) {
          await this.settlement.fail(m, refund, {
            error: `${error.providerCode}: ${error.message}`,
            lastKey: keyOf(attempt),
            lastOutcome: 'error_answer',
            lease,
          });
        } else {
          const answered = error instanceof ProviderUnavailable ? error.answered : false;
          const message = error instanceof Error ? error.message : String(error);
          if (r.attempts >= this.maxAttempts) {
            await this.settlement.fail(m, refund, {
              error: `gave up after ${r.attempts} attempts: ${message}`,
              lastKey: keyOf(attempt),
              lastOutcome: answered ? 'error_answer' : 'no_answer',
              lease,
            });
          } else {
            await this.refunds.settleRefund(m, r.id, ['pending'], {
              status: 'pending',
              lastKey: keyOf(attempt),
              lastOutcome: answered ? 'error_answer' : 'no_answer',
              lastError: message,
              nextAttemptAt: new Date(
                Date.now() + refundBackoffSeconds(this.backoffBase, r.attempts) * 1000,
              ),
              lease,
            });
            this.metrics.refund(r.provider, 'retry');
          }
        }
      });
    } catch (err) {
      // Not recorded: the lease runs out and the refund is due again, with its last recorded key.
      this.logger.warn({ refundId: r.id, err }, 'Could not record a refund attempt');
    }
  }
}
