import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { Caller } from '../common/access';
import { inTransaction } from '../common/database/transaction';
import { afterCommit, notFound, ProblemError } from '../common/problems/problem.error';
import { validationProblem } from '../common/problems/validation';
import { MetricsService } from '../observability/metrics.service';
import { OrderChanges } from '../orders/order-changes';
import { capacities, OrderReads } from '../orders/order-reads';
import { allowedTransitions } from '../orders/order-state';
import type { Order } from '../orders/order.entity';
import type { OpenPaymentDto } from './dto/payment.dto';
import { PaymentEvents } from './payment-events';
import { OPEN_PAYMENT_STATUSES, type Payment, PaymentsRepository } from './payments.repository';
import {
  PAYMENT_PROVIDERS,
  type ProviderName,
  ProviderRejected,
  ProviderUnavailable,
} from './providers/payment-provider';
import { PaymentProviders } from './providers/providers';

/**
 * `POST /orders/{id}/payments` and `…/payments/{paymentId}/cancel` (API.md §9). Opening takes the
 * order's row lock (so an edit and an opening never interleave) but changes nothing of the order.
 */
@Injectable()
export class PaymentOpening {
  private readonly logger = new Logger('PaymentOpening');

  constructor(
    private readonly reads: OrderReads,
    private readonly changes: OrderChanges,
    private readonly payments: PaymentsRepository,
    private readonly providers: PaymentProviders,
    private readonly events: PaymentEvents,
    private readonly metrics: MetricsService,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  /**
   * Checks in API.md §9's order: 404 → 403 (customers `stripe`/`test` on their own orders, admins
   * `manual`) → 400 (unknown provider or not enabled) → 409 ILLEGAL_STATE_TRANSITION (not pending, or
   * the hold is over) → 409 PAYMENT_IN_PROGRESS → 409 PAYMENT_AMOUNT_MISMATCH (manual). A `manual`
   * payment pays the order in the same transaction. Any other payment row is committed before the
   * provider is asked to create it (so a notification about it always finds it); a refusal or an
   * unreachable provider leaves it `canceled`, never open.
   */
  async open(
    caller: Caller,
    orderId: string,
    dto: OpenPaymentDto,
  ): Promise<{ payment: Payment; forOwner: boolean }> {
    const decided = await inTransaction(this.dataSource, async (m) => {
      const current = await this.reads.findVisible(orderId, caller, m, { lock: true });
      const caps = capacities(current.order, caller);
      const known = (PAYMENT_PROVIDERS as readonly string[]).includes(dto.provider);
      if (dto.provider === 'manual' && !caps.includes('admin')) {
        throw new ProblemError(
          'FORBIDDEN',
          'Only an admin records a manual payment (money received outside the service).',
        );
      }
      if (known && dto.provider !== 'manual' && !caps.includes('owner')) {
        throw new ProblemError(
          'FORBIDDEN',
          `Only the order's owner opens a ${dto.provider} payment; an admin records a manual one.`,
        );
      }
      const provider = known ? this.providers.get(dto.provider as ProviderName) : undefined;
      if (!provider) {
        throw validationProblem([
          {
            field: 'provider',
            message: `must be one of the providers enabled here: ${this.providers
              .names()
              .filter((n) => (caps.includes('owner') ? n !== 'manual' : n === 'manual'))
              .join(', ')}`,
          },
        ]);
      }
      if (dto.provider === 'manual') {
        if (dto.amountCents === undefined || dto.reference === undefined) {
          throw validationProblem([
            ...(dto.amountCents === undefined
              ? [{ field: 'amountCents', message: 'is required for a manual payment' }]
              : []),
            ...(dto.reference === undefined
              ? [{ field: 'reference', message: 'is required for a manual payment' }]
              : []),
          ]);
        }
      } else if (dto.amountCents !== undefined || dto.reference !== undefined) {
        throw validationProblem(
          (['amountCents', 'reference'] as const)
            .filter((f) => dto[f] !== undefined)
            .map((field) => ({
              field,
              message: `only for a manual payment; a ${dto.provider} payment is for the order's total`,
            })),
        );
      }
      const { order } = current;
      if (order.status !== 'pending') throw notPayable(order, caps, current.expiredNow);
      const open = await this.payments.openPaymentOf(m, order.id);
      if (open) {
        throw new ProblemError(
          'PAYMENT_IN_PROGRESS',
          `Order ${order.id} already has an open payment ${open.id} (${open.status}). Confirm it, or cancel it before opening another.`,
          { paymentId: open.id },
        );
      }
      if (dto.provider === 'manual') {
        if (dto.amountCents !== order.totalCents) {
          throw new ProblemError(
            'PAYMENT_AMOUNT_MISMATCH',
            `A manual payment must be for exactly the order's total, ${order.totalCents}; this one is for ${dto.amountCents}. Nothing was recorded.`,
            { amountCents: dto.amountCents, totalCents: order.totalCents },
          );
        }
        const payment = await this.payments.insertPayment(m, {
          orderId: order.id,
          provider: 'manual',
          status: 'succeeded',
          amountCents: order.totalCents,
          currency: order.currency,
          reference: dto.reference,
          createdBy: caller.id,
        });
        const paid = await this.changes.move(m, current, 'pay', caller.id, undefined, {
          paymentId: payment.id,
          cents: payment.amountCents,
        });
        // The hold ended between the read and the write (the database's clock): nothing recorded.
        if (!paid) throw notPayable({ ...order, status: 'expired' }, caps, false);
        await this.events.emit(m, 'payment.succeeded', { payment });
        return { payment, manual: true as const, owner: caps.includes('owner') };
      }
      const payment = await this.payments.insertPayment(m, {
        orderId: order.id,
        provider: dto.provider as ProviderName,
        status: 'requires_action',
        amountCents: order.totalCents,
        currency: order.currency,
        createdBy: caller.id,
      });
      return { payment, manual: false as const, owner: true };
    });
    if (decided.manual) {
      this.metrics.payment('manual', 'succeeded');
      return { payment: decided.payment, forOwner: decided.owner };
    }
    return { payment: await this.atProvider(decided.payment), forOwner: true };
  }

  /** Asks the provider to create the payment recorded (and committed) already. */
  private async atProvider(payment: Payment): Promise<Payment> {
    const provider = this.providers.get(payment.provider)!;
    try {
      const opened = await provider.open({
        paymentId: payment.id,
        orderId: payment.orderId,
        amountCents: payment.amountCents,
        currency: payment.currency,
      });
      return await inTransaction(this.dataSource, (m) =>
        this.payments.setOpened(m, payment.id, opened),
      );
    } catch (err) {
      const reason =
        err instanceof ProviderRejected
          ? `the provider refused: ${err.providerCode}`
          : 'the provider could not be reached';
      await inTransaction(this.dataSource, (m) =>
        this.payments.setStatus(m, payment.id, 'canceled', OPEN_PAYMENT_STATUSES, {
          failureReason: reason,
        }),
      ).catch((e: unknown) =>
        this.logger.error(
          { paymentId: payment.id, err: e },
          'Could not cancel a payment left open',
        ),
      );
      if (err instanceof ProviderRejected) {
        throw new ProblemError(
          'PAYMENT_PROVIDER_REJECTED',
          `${err.provider} refused to create the payment (${err.providerCode}): ${err.message}. No payment was left open.`,
          { provider: err.provider, providerCode: err.providerCode },
        );
      }
      if (err instanceof ProviderUnavailable) {
        throw providerDown(
          `${err.provider} could not be reached; no payment was left open. Retry shortly.`,
        );
      }
      throw err;
    }
  }

  /**
   * Cancels an open payment at its provider and here, under the order's row lock; not open, or the
   * provider refuses → 409 PAYMENT_NOT_CANCELABLE; provider unreachable → 503; unchanged in both.
   */
  async cancel(
    m: EntityManager,
    caller: Caller,
    orderId: string,
    paymentId: string,
  ): Promise<{ payment: Payment; forOwner: boolean }> {
    const current = await this.reads.findVisible(orderId, caller, m, { lock: true });
    const forOwner = capacities(current.order, caller).includes('owner');
    const payment = await this.payments.findPayment(m, paymentId, { lock: true });
    if (!payment || payment.orderId !== current.order.id) throw notFound(`Payment ${paymentId}`);
    const notCancelable = (why: string) =>
      new ProblemError('PAYMENT_NOT_CANCELABLE', `Payment ${paymentId} ${why}; it is unchanged.`, {
        paymentStatus: payment.status,
      });
    if (!OPEN_PAYMENT_STATUSES.includes(payment.status)) {
      throw notCancelable(`is ${payment.status}: only an open payment can be cancelled`);
    }
    if (payment.providerPaymentId) {
      try {
        await this.providers.get(payment.provider)?.cancel(payment.providerPaymentId);
      } catch (err) {
        if (err instanceof ProviderRejected) {
          throw notCancelable(
            `could not be cancelled: ${payment.provider} refused (${err.providerCode})`,
          );
        }
        if (err instanceof ProviderUnavailable) {
          throw providerDown(
            `${payment.provider} could not be reached; the payment is unchanged. Retry shortly.`,
          );
        }
        throw err;
      }
    }
    const canceled = (await this.payments.setStatus(
      m,
      paymentId,
      'canceled',
      OPEN_PAYMENT_STATUSES,
      {
        failureReason: 'cancelled by request',
      },
    ))!;
    this.metrics.payment(payment.provider, 'canceled');
    return { payment: canceled, forOwner };
  }
}

/** 409 as a pay would get it: the order is not pending, or its hold is over. */
function notPayable(order: Order, caps: ReturnType<typeof capacities>, expiredNow: boolean) {
  const allowed = allowedTransitions(order.status, caps);
  const problem = new ProblemError(
    'ILLEGAL_STATE_TRANSITION',
    `Order ${order.id} is ${order.status}; it cannot be paid now.${allowed.length ? ` Allowed now: ${allowed.join(', ')}.` : ''}`,
    { currentStatus: order.status, attemptedTransition: 'pay', allowedTransitions: allowed },
  );
  // An order found overdue was expired on the way: that stands.
  return expiredNow ? afterCommit(problem) : problem;
}

/** 503 with Retry-After (the catalogue's): the provider, not the database, is unavailable. */
export const providerDown = (detail: string): ProblemError =>
  new ProblemError('SERVICE_UNAVAILABLE', detail);
