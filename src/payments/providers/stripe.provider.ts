import Stripe from 'stripe';
import type { Env } from '../../config/env';
import {
  NotificationRejected,
  type NotifyingProvider,
  type OpenedPayment,
  type ProviderNotification,
  ProviderRejected,
  ProviderUnavailable,
  type RefundAttempt,
  type RefundOutcome,
} from './payment-provider';

/** Stripe's answer to a request: a timestamp older than this (seconds) is refused (API.md §9). */
export const STRIPE_SIGNATURE_TOLERANCE_SECONDS = 300;

/**
 * How long one request to Stripe may take before it counts as no answer. The SDK's default is 80 s;
 * opening a payment is on a customer's request path, and a refund attempt must end well inside the
 * relay's claim, so 10 s (Stripe answers these calls in well under a second). A refund attempt lists
 * for at most two of these and then sends at most one request: it ends within 3 × 10 s, and the
 * relay's claim (REFUND_LEASE_SECONDS) must be longer, or a second relay could list, find nothing
 * yet and refund under the next key while the first is still sending.
 */
export const STRIPE_TIMEOUT_MS = 10_000;

export interface StripeProviderOptions {
  secretKey: string;
  webhookSecret: string;
  /** `http(s)://host:port` of a local double (tests, development); unset: api.stripe.com. */
  apiBase?: string;
  timeoutMs?: number;
}

const PAYMENT_EVENTS = {
  'payment_intent.processing': 'processing',
  'payment_intent.succeeded': 'succeeded',
  'payment_intent.payment_failed': 'failed',
  'payment_intent.canceled': 'canceled',
} as const;
const REFUND_EVENTS = new Set(['refund.created', 'refund.updated', 'refund.failed']);

/**
 * The `stripe` provider (API.md §9, §10) through Stripe's official SDK: one PaymentIntent per payment,
 * the payment id its idempotency key; refunds with the refund id as idempotency key and §10's rules
 * after an error; notifications verified with `webhooks.constructEvent` on the raw bytes.
 *
 * The SDK's own retries are off (`maxNetworkRetries: 0`): every retry is the relay's (or the
 * customer's), so this file always knows which key went out and whether an answer came back, which
 * §10's key rules depend on; an SDK retry after a 500 would resend a key whose error Stripe keeps, and
 * one after a timeout would only add to the wait. The SDK still resends once, with the same key, a
 * request whose connection was closed under it (ECONNRESET/EPIPE): the same key makes that harmless.
 */
export class StripeProvider implements NotifyingProvider {
  readonly name = 'stripe' as const;
  /** The API version every request states, and the webhook endpoint's version (the SDK's). */
  static readonly API_VERSION: string = Stripe.API_VERSION;
  private readonly stripe: Stripe;
  private readonly webhookSecret: string;
  private readonly timeoutMs: number;

  /** The provider the environment configures, or null when `stripe` is not enabled here. */
  static fromEnv(
    env: Pick<Env, 'STRIPE_SECRET_KEY' | 'STRIPE_WEBHOOK_SECRET' | 'STRIPE_API_BASE'>,
  ): StripeProvider | null {
    if (!env.STRIPE_SECRET_KEY || !env.STRIPE_WEBHOOK_SECRET) return null;
    return new StripeProvider({
      secretKey: env.STRIPE_SECRET_KEY,
      webhookSecret: env.STRIPE_WEBHOOK_SECRET,
      apiBase: env.STRIPE_API_BASE,
    });
  }

  constructor(options: StripeProviderOptions) {
    this.webhookSecret = options.webhookSecret;
    this.timeoutMs = options.timeoutMs ?? STRIPE_TIMEOUT_MS;
    const base = options.apiBase ? new URL(options.apiBase) : undefined;
    this.stripe = new Stripe(options.secretKey, {
      apiVersion: Stripe.API_VERSION,
      maxNetworkRetries: 0,
      timeout: this.timeoutMs,
      telemetry: false,
      appInfo: { name: 'order-service' },
      ...(base && {
        protocol: base.protocol === 'http:' ? ('http' as const) : ('https' as const),
        host: base.hostname,
        port: base.port || (base.protocol === 'http:' ? 80 : 443),
      }),
    });
  }

  async open(payment: {
    paymentId: string;
    orderId: string;
    amountCents: number;
    currency: string;
  }): Promise<OpenedPayment> {
    const intent = await this.call(() =>
      this.stripe.paymentIntents.create(
        {
          amount: payment.amountCents,
          currency: payment.currency.toLowerCase(),
          capture_method: 'automatic',
          metadata: { orderId: payment.orderId, paymentId: payment.paymentId },
        },
        { idempotencyKey: payment.paymentId },
      ),
    );
    return { providerPaymentId: intent.id, clientSecret: intent.client_secret ?? null };
  }

  /**
   * Cancels the PaymentIntent. One Stripe no longer lets cancel (succeeded, or already canceled) is
   * `ProviderRejected` with `payment_intent_unexpected_state`, Stripe's own code.
   */
  async cancel(providerPaymentId: string): Promise<void> {
    await this.call(() => this.stripe.paymentIntents.cancel(providerPaymentId));
  }

  /**
   * One attempt at a refund (API.md §10). The key: the refund id on the first attempt; after no
   * answer at all, the previous key again (Stripe either did it and replays it, or never saw it);
   * after an error answer (which Stripe keeps for that key and would replay), first the
   * PaymentIntent's refunds are listed, and one carrying this `metadata.refundId` (and not failed or
   * canceled) is the outcome, else a new key `{refundId}:{attempt}` goes out.
   *
   * That new key is meant to be unused. When Stripe's answer to it is a replay (`Idempotent-Replayed`),
   * the key was used before (attempt numbers start again at 1 after an admin's `retry`): the answer
   * is an old one (a refund that has failed since, or an old refusal) and is not this attempt's
   * outcome; the attempt ends as an error answer, so the next one lists again and moves to the next
   * key.
   *
   * Errors carry the key of this attempt (`ProviderUnavailable.key`) for the next one's `previousKey`.
   */
  async refund(attempt: RefundAttempt): Promise<RefundOutcome> {
    let key: string;
    if (attempt.previousOutcome === 'none') key = attempt.refundId;
    else if (attempt.previousOutcome === 'no_answer') key = attempt.previousKey ?? attempt.refundId;
    else {
      const previousKey = attempt.previousKey ?? attempt.refundId;
      // A failure of the listing leaves the last key where it was: the next attempt lists again.
      const found = await this.call(
        () => this.findRefund(attempt.providerPaymentId, attempt.refundId, previousKey),
        previousKey,
        true,
      );
      if (found) return refundOutcome(found, previousKey);
      key = `${attempt.refundId}:${attempt.attempt}`;
    }
    const fresh = attempt.previousOutcome === 'error_answer';
    const refund = await this.call(
      () =>
        this.stripe.refunds.create(
          {
            payment_intent: attempt.providerPaymentId,
            amount: attempt.amountCents,
            metadata: { refundId: attempt.refundId },
          },
          { idempotencyKey: key },
        ),
      key,
      false,
      fresh,
    );
    if (fresh && refund.lastResponse?.headers?.['idempotent-replayed'] === 'true') {
      throw new ProviderUnavailable(this.name, true, replayed(key), key);
    }
    return refundOutcome(refund, key);
  }

  verify(rawBody: Buffer, signatureHeader: string | undefined): ProviderNotification {
    let event: Stripe.Event;
    try {
      event = this.stripe.webhooks.constructEvent(
        rawBody,
        signatureHeader ?? '',
        this.webhookSecret,
        STRIPE_SIGNATURE_TOLERANCE_SECONDS,
      );
    } catch (e) {
      throw new NotificationRejected(
        e instanceof SyntaxError
          ? 'The notification body is not JSON.'
          : `The Stripe-Signature does not verify: ${(e as Error).message}`,
      );
    }
    return normalise(event);
  }

  /** The refund of this PaymentIntent that carries our refund id and still stands, if any. */
  private async findRefund(
    providerPaymentId: string,
    refundId: string,
    previousKey: string,
  ): Promise<Stripe.Refund | null> {
    // Bounded, so that an attempt ends inside the relay's claim: past it, the attempt ends as an
    // error answer without sending anything, and the next one lists again.
    const deadline = Date.now() + 2 * this.timeoutMs;
    for await (const refund of this.stripe.refunds.list({
      payment_intent: providerPaymentId,
      limit: 100,
    })) {
      if (Date.now() > deadline) {
        throw new ProviderUnavailable(
          this.name,
          true,
          `Stripe: listing the refunds of ${providerPaymentId} took longer than ${(2 * this.timeoutMs) / 1000} s`,
          previousKey,
        );
      }
      if (
        refund.metadata?.refundId === refundId &&
        refund.status !== 'failed' &&
        refund.status !== 'canceled'
      ) {
        return refund;
      }
    }
    return null;
  }

  /**
   * Runs one SDK call and maps its failure: a 4xx of Stripe's → ProviderRejected with Stripe's error
   * code; 5xx → ProviderUnavailable answered; no answer (timeout, connection, an unreadable body) →
   * ProviderUnavailable not answered. A 409 (the key is in use by a request still running) and a 429
   * (rate limited) are answers after which Stripe did nothing and kept nothing for the key: they
   * count as no answer, so the next attempt sends the same key, which is what Stripe asks for.
   * `listing`: the call only read, so whatever happened the previous key's outcome stands (an error
   * answer): the next attempt lists again.
   */
  private async call<T>(
    fn: () => Promise<T>,
    key?: string,
    listing = false,
    fresh = false,
  ): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof Stripe.errors.StripeError)) throw e;
      const status = e.statusCode;
      const code = e.code ?? e.rawType ?? 'stripe_error';
      const what = `Stripe: ${e.message}`;
      if (fresh && key && e.headers?.['idempotent-replayed'] === 'true') {
        throw new ProviderUnavailable(this.name, true, replayed(key), key);
      }
      if (
        status !== undefined &&
        status >= 400 &&
        status < 500 &&
        status !== 409 &&
        status !== 429
      ) {
        if (listing) throw new ProviderUnavailable(this.name, true, what, key);
        throw new ProviderRejected(this.name, code, what, key);
      }
      const answered = listing || (status !== undefined && status >= 500);
      throw new ProviderUnavailable(this.name, answered, what, key);
    }
  }
}

const replayed = (key: string) =>
  `Stripe replayed an earlier answer for the idempotency key ${key}: the key was used before; the next attempt lists the refunds and takes the next key`;

function refundOutcome(refund: Stripe.Refund, key: string): RefundOutcome {
  switch (refund.status) {
    case 'succeeded':
      return { status: 'succeeded', providerRefundId: refund.id, key };
    case 'failed':
    case 'canceled':
      return {
        status: 'failed',
        providerRefundId: refund.id,
        key,
        error: `Stripe refund ${refund.status}: ${refund.failure_reason ?? 'no reason given'}`,
      };
    default: // pending, requires_action: settled later by a refund.updated notification
      return { status: 'pending', providerRefundId: refund.id, key };
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
/** A Stripe id (`evt_…`, `pi_…`, `re_…`): printable ASCII without spaces, at most 255. */
const stripeId = (v: unknown): string | null =>
  typeof v === 'string' && /^[\x21-\x7e]{1,255}$/.test(v) ? v : null;
/** Minor units: a safe integer of at least `min`. */
const cents = (v: unknown, min = 0): number | null =>
  Number.isSafeInteger(v) && (v as number) >= min ? (v as number) : null;
/** An ISO 4217 code, upper-cased (Stripe sends lower case). */
const currencyOf = (v: unknown): string =>
  typeof v === 'string' && /^[a-z]{3}$/i.test(v) ? v.toUpperCase() : malformed('bad currency');

function malformed(what: string): never {
  throw new NotificationRejected(`The notification is not a Stripe event: ${what}.`);
}

/** A verified event as one of the few facts the payments use cases act on (API.md §9). */
function normalise(event: unknown): ProviderNotification {
  if (!isRecord(event)) malformed('not an object');
  const eventId = stripeId(event.id) ?? malformed('no id');
  const type = str(event.type) ?? malformed('no type');
  const object = isRecord(event.data) && isRecord(event.data.object) ? event.data.object : null;
  if (type in PAYMENT_EVENTS) {
    if (!object || object.object !== 'payment_intent') malformed(`${type} without a PaymentIntent`);
    const metadata = isRecord(object.metadata) ? object.metadata : {};
    const status = PAYMENT_EVENTS[type as keyof typeof PAYMENT_EVENTS];
    return {
      kind: 'payment',
      eventId,
      status,
      providerPaymentId: stripeId(object.id) ?? malformed('a PaymentIntent without id'),
      paymentId: str(metadata.paymentId),
      amountReceivedCents: cents(object.amount_received ?? 0) ?? malformed('bad amount_received'),
      currency: currencyOf(object.currency),
      failureReason: failureReason(status, object),
    };
  }
  if (REFUND_EVENTS.has(type)) {
    if (!object || object.object !== 'refund') malformed(`${type} without a Refund`);
    const intent = isRecord(object.payment_intent)
      ? object.payment_intent.id
      : object.payment_intent;
    // A refund of a charge made without a PaymentIntent is no payment of ours.
    if (intent === null || intent === undefined) return { kind: 'ignored', eventId, type };
    const paymentIntent = stripeId(intent) ?? malformed('a Refund with a bad payment_intent');
    const metadata = isRecord(object.metadata) ? object.metadata : {};
    const status = object.status === 'requires_action' ? 'pending' : object.status;
    if (
      status !== 'pending' &&
      status !== 'succeeded' &&
      status !== 'failed' &&
      status !== 'canceled'
    ) {
      malformed(`a Refund with status ${String(object.status)}`);
    }
    return {
      kind: 'refund',
      eventId,
      providerRefundId: stripeId(object.id) ?? malformed('a Refund without id'),
      refundId: str(metadata.refundId),
      providerPaymentId: paymentIntent,
      amountCents: cents(object.amount, 1) ?? malformed('bad refund amount'),
      currency: currencyOf(object.currency),
      status,
    };
  }
  return { kind: 'ignored', eventId, type };
}

/** Why a payment failed or was canceled, in Stripe's codes (`card_declined: insufficient_funds`). */
function failureReason(status: string, intent: Record<string, unknown>): string | null {
  if (status === 'failed') {
    const error = isRecord(intent.last_payment_error) ? intent.last_payment_error : {};
    const parts = [str(error.code), str(error.decline_code)].filter((p) => p !== null);
    return parts.length > 0 ? parts.join(': ') : (str(error.message) ?? 'payment_failed');
  }
  if (status === 'canceled') return str(intent.cancellation_reason) ?? 'canceled';
  return null;
}
