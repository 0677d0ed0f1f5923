import { randomBytes } from 'node:crypto';
import {
  type OpenedPayment,
  type PaymentProvider,
  ProviderRejected,
  ProviderUnavailable,
  type RefundAttempt,
  type RefundOutcome,
} from './payment-provider';

/** A fault the next refund attempts meet (tests of the relay's retries). */
export type TestRefundFault = 'error_answer' | 'no_answer' | 'rejected';

/**
 * The `test` provider (API.md §9), only where NODE_ENV is development or test: no account anywhere.
 * A payment is "confirmed" by its owner with `POST /payments/test/{paymentId}/complete`, which makes
 * this provider notify the service through the same code path as a verified Stripe notification.
 * Refunds succeed at once (within one pass of the refund relay), unless a test queued faults.
 */
export class TestProvider implements PaymentProvider {
  readonly name = 'test' as const;
  private readonly faults: TestRefundFault[] = [];
  /** Every refund attempt, with its idempotency key (what a test inspects). */
  readonly refundAttempts: { refundId: string; key: string; attempt: number }[] = [];

  open(payment: { paymentId: string }): Promise<OpenedPayment> {
    return Promise.resolve({
      providerPaymentId: `test_pi_${payment.paymentId}`,
      clientSecret: `test_pi_${payment.paymentId}_secret_${randomBytes(12).toString('hex')}`,
    });
  }

  cancel(): Promise<void> {
    return Promise.resolve();
  }

  /** The next `n` refund attempts meet `fault` (tests). */
  failNextRefunds(n: number, fault: TestRefundFault): void {
    for (let i = 0; i < n; i++) this.faults.push(fault);
  }

  refund(a: RefundAttempt): Promise<RefundOutcome> {
    // API.md §10's keys: the refund id first; after an error answer a fresh key per attempt; after
    // no answer the last key again.
    const key =
      a.previousOutcome === 'no_answer' && a.previousKey
        ? a.previousKey
        : a.previousOutcome === 'error_answer'
          ? `${a.refundId}:${a.attempt}`
          : a.refundId;
    this.refundAttempts.push({ refundId: a.refundId, key, attempt: a.attempt });
    const fault = this.faults.shift();
    if (fault === 'error_answer') {
      return Promise.reject(new ProviderUnavailable('test', true, 'test provider: 500 on demand'));
    }
    if (fault === 'no_answer') {
      return Promise.reject(new ProviderUnavailable('test', false, 'test provider: no answer'));
    }
    if (fault === 'rejected') {
      return Promise.reject(
        new ProviderRejected('test', 'charge_already_refunded', 'test provider: refused'),
      );
    }
    return Promise.resolve({ status: 'succeeded', providerRefundId: `test_re_${a.refundId}`, key });
  }
}
