import {
  type OpenedPayment,
  type PaymentProvider,
  ProviderRejected,
  type RefundOutcome,
} from './payment-provider';

/**
 * `manual`: money an admin received outside the service (bank transfer, cash on delivery) and says
 * so (API.md §9). Nothing is ever sent anywhere: a manual payment is recorded `succeeded` by the
 * admin's request, a refund the admin asks for is `succeeded` at once (the admin returns the money),
 * and one the service owes (a cancel) stays `pending` until an admin completes it. The refund relay
 * never picks manual refunds.
 */
export class ManualProvider implements PaymentProvider {
  readonly name = 'manual' as const;

  open(): Promise<OpenedPayment> {
    return Promise.reject(
      new ProviderRejected('manual', 'manual_payment', 'A manual payment is recorded, not opened.'),
    );
  }

  cancel(): Promise<void> {
    return Promise.resolve();
  }

  refund(): Promise<RefundOutcome> {
    return Promise.reject(
      new ProviderRejected('manual', 'manual_refund', 'An admin returns manual payments.'),
    );
  }
}
