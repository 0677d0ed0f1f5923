// A local stand-in for the one Stripe call the bench makes: opening a PaymentIntent
// (`POST /v1/payment_intents`), for the orders whose `payment_intent.succeeded` events scenario
// (pay) then sends. The service's Stripe SDK reaches it through STRIPE_API_BASE (which the service
// accepts outside production only, so a second service started for the purpose opens the payments;
// see run.mjs). The full double the tests use is test/support/stripe-double.ts (TypeScript).
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { onCleanup } from './harness.mjs';

export const BENCH_STRIPE_KEY = 'sk_test_bench_0123456789';
export const BENCH_WEBHOOK_SECRET = 'whsec_bench_0123456789abcdef';

const id = (prefix) => `${prefix}_${randomBytes(12).toString('hex')}`;

/** Starts the double on a free port; returns its base URL and how many intents it created. */
export async function startStripeDouble() {
  let created = 0;
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk) => (raw += chunk));
    req.on('end', () => {
      const answer = (status, body) =>
        res
          .writeHead(status, { 'content-type': 'application/json', 'request-id': id('req') })
          .end(JSON.stringify(body));
      if (req.method !== 'POST' || req.url !== '/v1/payment_intents') {
        return answer(404, { error: { type: 'invalid_request_error', code: 'resource_missing' } });
      }
      // Stripe's form encoding: amount=1999&currency=eur&metadata[orderId]=…
      const form = new URLSearchParams(raw);
      const metadata = {};
      for (const [k, v] of form) {
        const m = /^metadata\[(.+)\]$/.exec(k);
        if (m) metadata[m[1]] = v;
      }
      const intent = id('pi');
      created++;
      answer(200, {
        id: intent,
        object: 'payment_intent',
        amount: Number(form.get('amount')),
        amount_received: 0,
        currency: form.get('currency'),
        capture_method: form.get('capture_method') ?? 'automatic',
        client_secret: `${intent}_secret_${randomBytes(8).toString('hex')}`,
        status: 'requires_payment_method',
        metadata,
        livemode: false,
        created: Math.floor(Date.now() / 1000),
      });
    });
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  onCleanup(() => new Promise((res) => server.close(() => res())));
  return { url: `http://127.0.0.1:${server.address().port}`, created: () => created };
}

/**
 * The `payment_intent.succeeded` event Stripe sends when the customer paid `payment` (a row of
 * payments: its id, order, PaymentIntent id, amount and currency), as the service's Stripe provider
 * reads it (the signature is made by the load generator when it sends it).
 */
export function succeededEvent(payment) {
  return JSON.stringify({
    id: id('evt'),
    object: 'event',
    api_version: '2025-01-27.acacia',
    created: Math.floor(Date.now() / 1000),
    type: 'payment_intent.succeeded',
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    data: {
      object: {
        id: payment.providerPaymentId,
        object: 'payment_intent',
        amount: payment.amountCents,
        amount_received: payment.amountCents,
        currency: payment.currency.toLowerCase(),
        status: 'succeeded',
        metadata: { orderId: payment.orderId, paymentId: payment.paymentId },
      },
    },
  });
}
