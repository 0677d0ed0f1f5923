/**
 * What the service needs from a payment provider (API.md §9, §10), and nothing more: open a payment
 * for an amount, cancel it, carry out a refund, and (for providers that notify) turn a signed
 * notification into one of a few normalised facts. One implementation per file beside this one.
 * Everything here talks to the provider only: recording, deciding and moving the order are the
 * payments use cases' job, in the database.
 */

export const PAYMENT_PROVIDERS = ['stripe', 'test', 'manual'] as const;
export type ProviderName = (typeof PAYMENT_PROVIDERS)[number];

/** A payment as the provider created it. */
export interface OpenedPayment {
  providerPaymentId: string;
  /** What the customer's browser needs to confirm it (Stripe's client_secret); null if nothing. */
  clientSecret: string | null;
}

/** One attempt at carrying out a refund recorded `pending` (API.md §10). */
export interface RefundAttempt {
  refundId: string;
  providerPaymentId: string;
  amountCents: number;
  currency: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** The idempotency key the previous attempt used; null on the first. */
  previousKey: string | null;
  /** How the previous attempt ended: no attempt yet, an error answer, or no answer at all. */
  previousOutcome: 'none' | 'error_answer' | 'no_answer';
}

/** What the provider said of a refund attempt, and the idempotency key the attempt used. */
export type RefundOutcome =
  | { status: 'pending' | 'succeeded'; providerRefundId: string; key: string }
  | { status: 'failed'; providerRefundId: string | null; key: string; error: string };

/**
 * A verified notification, normalised. `eventId` is the provider's event id (recorded once, unique).
 * Amounts are minor units; currencies upper-case.
 */
export type ProviderNotification =
  | {
      kind: 'payment';
      eventId: string;
      status: 'processing' | 'succeeded' | 'failed' | 'canceled';
      providerPaymentId: string;
      /** Our payment id, from the provider's metadata; null when absent (another system's payment). */
      paymentId: string | null;
      amountReceivedCents: number;
      currency: string;
      failureReason: string | null;
    }
  | {
      kind: 'refund';
      eventId: string;
      providerRefundId: string;
      /** Our refund id, from the provider's metadata; null for a refund made at the provider. */
      refundId: string | null;
      providerPaymentId: string;
      amountCents: number;
      currency: string;
      status: 'pending' | 'succeeded' | 'failed' | 'canceled';
    }
  | { kind: 'ignored'; eventId: string; type: string };

/**
 * The provider refused (a 4xx of its own): 409 PAYMENT_PROVIDER_REJECTED, or a refund failed.
 * `key`: for a refund attempt, the idempotency key it used (the next attempt's `previousKey`).
 */
export class ProviderRejected extends Error {
  constructor(
    readonly provider: ProviderName,
    readonly providerCode: string,
    message: string,
    readonly key: string | null = null,
  ) {
    super(message);
    this.name = 'ProviderRejected';
  }
}

/**
 * The provider could not be reached or failed on its side (network, timeout, 5xx): 503, or a retry.
 * `answered`: false when no answer came at all (the request may have been carried out).
 * `key`: for a refund attempt, the idempotency key it used (the next attempt's `previousKey`; with
 * `answered` false the next attempt sends it again).
 */
export class ProviderUnavailable extends Error {
  constructor(
    readonly provider: ProviderName,
    readonly answered: boolean,
    message: string,
    readonly key: string | null = null,
  ) {
    super(message);
    this.name = 'ProviderUnavailable';
  }
}

/** The notification's signature, timestamp or body is not acceptable: 400 WEBHOOK_SIGNATURE_INVALID. */
export class NotificationRejected extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotificationRejected';
  }
}

export interface PaymentProvider {
  readonly name: ProviderName;
  /** Creates the payment at the provider; `paymentId` is the idempotency key. */
  open(payment: {
    paymentId: string;
    orderId: string;
    amountCents: number;
    currency: string;
  }): Promise<OpenedPayment>;
  /** Cancels an open payment at the provider, so that it can no longer be confirmed. */
  cancel(providerPaymentId: string): Promise<void>;
  /** Carries out one attempt of a refund (API.md §10's idempotency-key rules are the provider's). */
  refund(attempt: RefundAttempt): Promise<RefundOutcome>;
}

/** A provider whose notifications arrive over HTTP, signed. */
export interface NotifyingProvider extends PaymentProvider {
  /** Verifies the raw body against its signature header and normalises it; NotificationRejected if not. */
  verify(rawBody: Buffer, signatureHeader: string | undefined): ProviderNotification;
}
