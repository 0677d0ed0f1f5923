import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import {
  NotificationRejected,
  type ProviderNotification,
  ProviderRejected,
  ProviderUnavailable,
  type RefundAttempt,
} from '../../src/payments/providers/payment-provider';
import { StripeProvider } from '../../src/payments/providers/stripe.provider';
import {
  parseStripeForm,
  StripeDouble,
  type StripeEvent,
  stripeSignature,
} from '../support/stripe-double';

/**
 * The `stripe` provider against the local Stripe double, through the real SDK (API.md §9, §10): no
 * database. Timeouts are short (the provider's 10 s default would only slow the no-answer cases).
 */
describe('Stripe provider ↔ Stripe double (real SDK)', () => {
  const double = new StripeDouble();
  let provider: StripeProvider;
  let n = 0;
  const uid = (p: string) => `${p}-${process.pid}-${++n}-${Date.now()}`;

  beforeAll(async () => {
    const base = await double.start();
    provider = new StripeProvider({
      secretKey: double.secretKey,
      webhookSecret: double.webhookSecret,
      apiBase: base,
      timeoutMs: 800,
    });
  });
  afterAll(() => double.stop());
  afterEach(() => {
    double.clearFaults();
    double.beforeAnswer = undefined;
    double.refundStatus = 'succeeded';
  });

  /** A payment opened and paid at the double: its PaymentIntent id. */
  async function paid(amountCents = 2500): Promise<string> {
    const opened = await provider.open({
      paymentId: uid('pay'),
      orderId: uid('ord'),
      amountCents,
      currency: 'EUR',
    });
    double.confirm(opened.providerPaymentId, 'succeeded');
    return opened.providerPaymentId;
  }

  const attempt = (
    over: Partial<RefundAttempt> & { providerPaymentId: string },
  ): RefundAttempt => ({
    refundId: uid('ref'),
    amountCents: 1000,
    currency: 'EUR',
    attempt: 1,
    previousKey: null,
    previousOutcome: 'none',
    ...over,
  });

  describe('open', () => {
    it('creates one PaymentIntent per payment id, idempotently, as §9 says', async () => {
      const payment = {
        paymentId: uid('pay'),
        orderId: uid('ord'),
        amountCents: 4599,
        currency: 'EUR',
      };
      const [a, b] = await Promise.all(
        [provider.open(payment), provider.open(payment)].map((p) => p.catch((e) => e)),
      );
      const again = await provider.open(payment);
      // Two at once: one runs, the other is 409 idempotency_key_in_use (no answer kept) or a replay.
      const opened = [a, b, again].filter((r) => !(r instanceof Error));
      for (const r of [a, b].filter((r) => r instanceof Error)) {
        expect(r).toBeInstanceOf(ProviderUnavailable);
        expect(r).toMatchObject({ answered: false });
      }
      expect(new Set(opened.map((o) => o.providerPaymentId)).size).toBe(1);
      const pi = double.intents.get(again.providerPaymentId)!;
      expect(pi).toMatchObject({
        object: 'payment_intent',
        amount: 4599,
        currency: 'eur',
        capture_method: 'automatic',
        metadata: { orderId: payment.orderId, paymentId: payment.paymentId },
        status: 'requires_payment_method',
      });
      expect(again.clientSecret).toBe(pi.client_secret);
      expect(again.clientSecret).toMatch(/^pi_\w+_secret_\w+$/);
      const created = [...double.intents.values()].filter(
        (i) => i.metadata.paymentId === payment.paymentId,
      );
      expect(created).toHaveLength(1);
      const posts = double
        .seen({ method: 'POST', path: '/v1/payment_intents' })
        .filter((r) => r.params.metadata?.paymentId === payment.paymentId);
      expect(posts.every((r) => r.idempotencyKey === payment.paymentId)).toBe(true);
      expect(posts.every((r) => r.stripeVersion === Stripe.API_VERSION)).toBe(true);
      expect(posts.some((r) => r.replayed)).toBe(true);
    });

    it('the form body is what Stripe parses: nested metadata, lower-case currency, minor units', async () => {
      const payment = {
        paymentId: uid('pay'),
        orderId: uid('ord'),
        amountCents: 100,
        currency: 'USD',
      };
      await provider.open(payment);
      const post = double.seen({ method: 'POST', path: '/v1/payment_intents' }).at(-1)!;
      expect(post.params).toEqual({
        amount: '100',
        currency: 'usd',
        capture_method: 'automatic',
        metadata: { orderId: payment.orderId, paymentId: payment.paymentId },
      });
      expect(parseStripeForm('a[b][c]=1&l[]=x&l[]=y&i[0]=p')).toEqual({
        a: { b: { c: '1' } },
        l: ['x', 'y'],
        i: ['p'],
      });
    });

    it('a refusal of Stripe is ProviderRejected with its code; a 500 and a timeout are ProviderUnavailable', async () => {
      const base = { orderId: uid('ord'), currency: 'EUR' };
      await expect(
        provider.open({ ...base, paymentId: uid('pay'), amountCents: 10 }),
      ).rejects.toMatchObject({
        constructor: ProviderRejected,
        provider: 'stripe',
        providerCode: 'amount_too_small',
      });
      double.failNext(1, { match: { path: '/v1/payment_intents' } });
      await expect(
        provider.open({ ...base, paymentId: uid('pay'), amountCents: 999 }),
      ).rejects.toMatchObject({
        constructor: ProviderUnavailable,
        answered: true,
      });
      double.hangNext(1, { path: '/v1/payment_intents' });
      const started = Date.now();
      await expect(
        provider.open({ ...base, paymentId: uid('pay'), amountCents: 999 }),
      ).rejects.toMatchObject({
        constructor: ProviderUnavailable,
        answered: false,
      });
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it('a wrong secret key is ProviderRejected (Stripe 401), no SDK retry anywhere', async () => {
      const wrong = new StripeProvider({
        secretKey: 'sk_test_wrong',
        webhookSecret: double.webhookSecret,
        apiBase: double.url,
        timeoutMs: 800,
      });
      const before = double.requests.length;
      await expect(
        wrong.open({
          paymentId: uid('pay'),
          orderId: uid('ord'),
          amountCents: 999,
          currency: 'EUR',
        }),
      ).rejects.toBeInstanceOf(ProviderRejected);
      double.failNext(1);
      await expect(
        provider.open({
          paymentId: uid('pay'),
          orderId: uid('ord'),
          amountCents: 999,
          currency: 'EUR',
        }),
      ).rejects.toBeInstanceOf(ProviderUnavailable);
      expect(double.requests.length - before).toBe(2);
    });
  });

  describe('cancel', () => {
    it('cancels an open PaymentIntent; a succeeded or canceled one → ProviderRejected payment_intent_unexpected_state', async () => {
      const opened = await provider.open({
        paymentId: uid('pay'),
        orderId: uid('ord'),
        amountCents: 999,
        currency: 'EUR',
      });
      await provider.cancel(opened.providerPaymentId);
      expect(double.intents.get(opened.providerPaymentId)?.status).toBe('canceled');
      expect(double.eventsOf('payment_intent.canceled', opened.providerPaymentId)).toHaveLength(1);
      await expect(provider.cancel(opened.providerPaymentId)).rejects.toMatchObject({
        constructor: ProviderRejected,
        providerCode: 'payment_intent_unexpected_state',
      });
      const succeeded = await paid();
      await expect(provider.cancel(succeeded)).rejects.toMatchObject({
        constructor: ProviderRejected,
        providerCode: 'payment_intent_unexpected_state',
      });
      expect(double.intents.get(succeeded)?.status).toBe('succeeded');
      await expect(provider.cancel('pi_missing')).rejects.toMatchObject({
        constructor: ProviderRejected,
        providerCode: 'resource_missing',
      });
      double.failNext(1);
      await expect(provider.cancel(succeeded)).rejects.toMatchObject({
        constructor: ProviderUnavailable,
        answered: true,
      });
    });
  });

  describe('refund (API.md §10 keys)', () => {
    it('succeeds with the refund id as key and metadata.refundId', async () => {
      const pi = await paid();
      const a = attempt({ providerPaymentId: pi, amountCents: 700 });
      const outcome = await provider.refund(a);
      expect(outcome).toEqual({
        status: 'succeeded',
        providerRefundId: expect.stringMatching(/^re_/),
        key: a.refundId,
      });
      const made = double.refundsFor(a.refundId);
      expect(made).toHaveLength(1);
      expect(made[0]).toMatchObject({
        amount: 700,
        payment_intent: pi,
        status: 'succeeded',
        metadata: { refundId: a.refundId },
      });
      expect(double.seen({ method: 'POST', path: '/v1/refunds' }).at(-1)?.params).toEqual({
        payment_intent: pi,
        amount: '700',
        metadata: { refundId: a.refundId },
      });
    });

    it('a pending refund is pending; Stripe failed/canceled is failed', async () => {
      const pi = await paid();
      double.refundStatus = 'pending';
      const pending = await provider.refund(attempt({ providerPaymentId: pi, amountCents: 100 }));
      expect(pending.status).toBe('pending');
      double.refundStatus = 'failed';
      const a = attempt({ providerPaymentId: pi, amountCents: 100 });
      expect(await provider.refund(a)).toEqual({
        status: 'failed',
        providerRefundId: double.refundsFor(a.refundId)[0].id,
        key: a.refundId,
        error: 'Stripe refund failed: lost_or_stolen_card',
      });
    });

    it('a refund that failed at Stripe (after succeeding) is not adopted by the listing: a new key makes a new one', async () => {
      const pi = await paid();
      const a = attempt({ providerPaymentId: pi, amountCents: 400 });
      const first = await provider.refund(a);
      double.settleRefund(first.providerRefundId!, 'failed');
      const again = await provider.refund({
        ...a,
        attempt: 2,
        previousKey: a.refundId,
        previousOutcome: 'error_answer',
      });
      expect(again).toMatchObject({ status: 'succeeded', key: `${a.refundId}:2` });
      expect(again.providerRefundId).not.toBe(first.providerRefundId);
      expect(double.refundsFor(a.refundId).map((r) => r.status)).toEqual(['failed', 'succeeded']);
    });

    it('a 4xx fails at once (ProviderRejected with Stripe code), nothing made', async () => {
      const pi = await paid(1000);
      const a = attempt({ providerPaymentId: pi, amountCents: 1001 });
      await expect(provider.refund(a)).rejects.toMatchObject({
        constructor: ProviderRejected,
        providerCode: 'amount_too_large',
        key: a.refundId,
      });
      expect(double.refundsFor(a.refundId)).toHaveLength(0);
      const unpaid = await provider.open({
        paymentId: uid('pay'),
        orderId: uid('ord'),
        amountCents: 999,
        currency: 'EUR',
      });
      await expect(
        provider.refund(attempt({ providerPaymentId: unpaid.providerPaymentId })),
      ).rejects.toMatchObject({
        constructor: ProviderRejected,
        providerCode: 'payment_intent_unexpected_state',
      });
    });

    it('500, then success: the second attempt lists the refunds first, then sends {refundId}:2', async () => {
      const pi = await paid();
      const a = attempt({ providerPaymentId: pi });
      double.failNext(1, { match: { method: 'POST', path: '/v1/refunds' } });
      const first = await provider.refund(a).catch((e: unknown) => e);
      expect(first).toMatchObject({
        constructor: ProviderUnavailable,
        answered: true,
        key: a.refundId,
      });
      // The same key again would only replay Stripe's kept 500:
      await expect(provider.refund(a)).rejects.toMatchObject({ answered: true });
      expect(double.seen({ method: 'POST', path: '/v1/refunds' }).at(-1)?.replayed).toBe(true);

      const before = double.requests.length;
      const second = await provider.refund({
        ...a,
        attempt: 2,
        previousKey: a.refundId,
        previousOutcome: 'error_answer',
      });
      const calls = double.requests.slice(before).map((r) => `${r.method} ${r.path}`);
      expect(calls).toEqual(['GET /v1/refunds', 'POST /v1/refunds']);
      expect(double.requests[before].params).toMatchObject({ payment_intent: pi });
      expect(second).toMatchObject({ status: 'succeeded', key: `${a.refundId}:2` });
      expect(double.keysUsed().filter((k) => k.startsWith(a.refundId))).toEqual([
        a.refundId,
        a.refundId,
        `${a.refundId}:2`,
      ]);
      expect(double.refundsFor(a.refundId)).toHaveLength(1);
    });

    it('a 500 after Stripe made the refund: the listing finds it, no second refund', async () => {
      const pi = await paid();
      const a = attempt({ providerPaymentId: pi });
      double.failNext(1, { carryOut: true, match: { method: 'POST', path: '/v1/refunds' } });
      await expect(provider.refund(a)).rejects.toMatchObject({ answered: true });
      expect(double.refundsFor(a.refundId)).toHaveLength(1);
      const posts = double.seen({ method: 'POST', path: '/v1/refunds' }).length;
      const second = await provider.refund({
        ...a,
        attempt: 2,
        previousKey: a.refundId,
        previousOutcome: 'error_answer',
      });
      expect(second).toEqual({
        status: 'succeeded',
        providerRefundId: double.refundsFor(a.refundId)[0].id,
        key: a.refundId,
      });
      expect(double.seen({ method: 'POST', path: '/v1/refunds' }).length).toBe(posts);
      expect(double.refundsFor(a.refundId)).toHaveLength(1);
    });

    it('the listing pages through more than 100 refunds of the PaymentIntent', async () => {
      const pi = await paid(200_000);
      for (let i = 0; i < 120; i++)
        await provider.refund(attempt({ providerPaymentId: pi, amountCents: 1 }));
      const a = attempt({ providerPaymentId: pi, amountCents: 5 });
      double.failNext(1, { carryOut: true, match: { method: 'POST', path: '/v1/refunds' } });
      await expect(provider.refund(a)).rejects.toMatchObject({ answered: true });
      // Made most recently: first page. Make it old by adding more after it.
      for (let i = 0; i < 110; i++)
        await provider.refund(attempt({ providerPaymentId: pi, amountCents: 1 }));
      const before = double.requests.length;
      const second = await provider.refund({
        ...a,
        attempt: 2,
        previousKey: a.refundId,
        previousOutcome: 'error_answer',
      });
      expect(second.key).toBe(a.refundId);
      // 231 refunds, newest first, 100 a page: ours (the 111th) is on the second page, and found.
      expect(
        double.requests
          .slice(before)
          .map((r) => `${r.method} ${r.params.starting_after ? 'next' : 'first'}`),
      ).toEqual(['GET first', 'GET next']);
      expect(double.refundsFor(a.refundId)).toHaveLength(1);
    });

    it('no answer (carried out, answer lost): the same key again, exactly one refund at Stripe', async () => {
      const pi = await paid();
      const a = attempt({ providerPaymentId: pi });
      double.dropAnswerNext(1, { match: { method: 'POST', path: '/v1/refunds' } });
      const first = await provider.refund(a).catch((e: unknown) => e);
      expect(first).toMatchObject({
        constructor: ProviderUnavailable,
        answered: false,
        key: a.refundId,
      });
      expect(double.refundsFor(a.refundId)).toHaveLength(1);
      const second = await provider.refund({
        ...a,
        attempt: 2,
        previousKey: a.refundId,
        previousOutcome: 'no_answer',
      });
      expect(second).toMatchObject({
        status: 'succeeded',
        key: a.refundId,
        providerRefundId: double.refundsFor(a.refundId)[0].id,
      });
      expect(double.keysUsed().filter((k) => k.startsWith(a.refundId))).toEqual([
        a.refundId,
        a.refundId,
      ]);
      expect(double.seen({ method: 'POST', path: '/v1/refunds' }).at(-1)?.replayed).toBe(true);
      expect(double.refundsFor(a.refundId)).toHaveLength(1);
    });

    it('no answer after {refundId}:2: attempt 3 sends {refundId}:2 again, one refund', async () => {
      const pi = await paid();
      const a = attempt({ providerPaymentId: pi });
      double.failNext(1, { match: { method: 'POST', path: '/v1/refunds' } });
      await expect(provider.refund(a)).rejects.toMatchObject({ answered: true, key: a.refundId });
      double.hangNext(1, { method: 'POST', path: '/v1/refunds' });
      const second = await provider
        .refund({ ...a, attempt: 2, previousKey: a.refundId, previousOutcome: 'error_answer' })
        .catch((e: unknown) => e);
      expect(second).toMatchObject({
        constructor: ProviderUnavailable,
        answered: false,
        key: `${a.refundId}:2`,
      });
      const third = await provider.refund({
        ...a,
        attempt: 3,
        previousKey: `${a.refundId}:2`,
        previousOutcome: 'no_answer',
      });
      expect(third).toMatchObject({ status: 'succeeded', key: `${a.refundId}:2` });
      expect(double.refundsFor(a.refundId)).toHaveLength(1);
    });

    it('a 429 (rate limited, nothing done or kept) counts as no answer: the same key again, one refund', async () => {
      const pi = await paid();
      const a = attempt({ providerPaymentId: pi });
      double.failNext(1, { status: 429, match: { method: 'POST', path: '/v1/refunds' } });
      const first = await provider.refund(a).catch((e: unknown) => e);
      expect(first).toMatchObject({
        constructor: ProviderUnavailable,
        answered: false,
        key: a.refundId,
      });
      expect(double.refundsFor(a.refundId)).toHaveLength(0);
      const second = await provider.refund({
        ...a,
        attempt: 2,
        previousKey: a.refundId,
        previousOutcome: 'no_answer',
      });
      expect(second).toMatchObject({ status: 'succeeded', key: a.refundId });
      expect(double.seen({ method: 'POST', path: '/v1/refunds' }).at(-1)?.replayed).toBe(false);
      expect(double.refundsFor(a.refundId)).toHaveLength(1);
    });

    it('a connection reset after Stripe made it: the SDK resends once with the same key → the kept answer', async () => {
      const pi = await paid();
      const a = attempt({ providerPaymentId: pi });
      double.dropAnswerNext(1, { reset: true, match: { method: 'POST', path: '/v1/refunds' } });
      const outcome = await provider.refund(a);
      expect(outcome).toMatchObject({ status: 'succeeded', key: a.refundId });
      expect(double.keysUsed().filter((k) => k.startsWith(a.refundId))).toEqual([
        a.refundId,
        a.refundId,
      ]);
      expect(double.refundsFor(a.refundId)).toHaveLength(1);
    });

    it('a {refundId}:{n} key already used (attempts reset by an admin retry) replays an old answer: never taken as this attempt’s outcome', async () => {
      const pi = await paid();
      const a = attempt({ providerPaymentId: pi, amountCents: 600 });
      const post = { match: { method: 'POST', path: '/v1/refunds' } };
      // First run: 500, then {refundId}:2 succeeds; later Stripe reports that refund failed.
      double.failNext(1, post);
      await expect(provider.refund(a)).rejects.toMatchObject({ answered: true });
      const first = await provider.refund({
        ...a,
        attempt: 2,
        previousKey: a.refundId,
        previousOutcome: 'error_answer',
      });
      expect(first.key).toBe(`${a.refundId}:2`);
      double.settleRefund(first.providerRefundId!, 'failed');
      // The retry's run counts from 1 again: {refundId}:1 answers 500, then {refundId}:2 is a replay.
      const again = {
        ...a,
        previousKey: `${a.refundId}:2`,
        previousOutcome: 'error_answer' as const,
      };
      double.failNext(1, post);
      await expect(provider.refund({ ...again, attempt: 1 })).rejects.toMatchObject({
        answered: true,
      });
      const stale = await provider
        .refund({ ...again, attempt: 2, previousKey: `${a.refundId}:1` })
        .catch((e: unknown) => e);
      expect(stale).toMatchObject({
        constructor: ProviderUnavailable,
        answered: true,
        key: `${a.refundId}:2`,
      });
      const third = await provider.refund({ ...again, attempt: 3, previousKey: `${a.refundId}:2` });
      expect(third).toMatchObject({ status: 'succeeded', key: `${a.refundId}:3` });
      expect(third.providerRefundId).not.toBe(first.providerRefundId);
      expect(double.refundsFor(a.refundId).map((r) => r.status)).toEqual(['failed', 'succeeded']);
    });

    it('a kept 4xx replayed to a reused {refundId}:{n} key does not fail the refund', async () => {
      const pi = await paid(1000);
      const a = attempt({ providerPaymentId: pi, amountCents: 1000 });
      const post = { match: { method: 'POST', path: '/v1/refunds' } };
      // All of it refunded by another refund first:
      const other = await provider.refund(attempt({ providerPaymentId: pi, amountCents: 1000 }));
      double.failNext(1, post);
      await expect(provider.refund(a)).rejects.toMatchObject({ answered: true });
      await expect(
        provider.refund({
          ...a,
          attempt: 2,
          previousKey: a.refundId,
          previousOutcome: 'error_answer',
        }),
      ).rejects.toMatchObject({
        constructor: ProviderRejected,
        providerCode: 'charge_already_refunded',
      });
      // Money back at Stripe (the other refund failed), and an admin retries: attempts from 1 again.
      double.settleRefund(other.providerRefundId!, 'failed');
      const again = {
        ...a,
        previousKey: `${a.refundId}:2`,
        previousOutcome: 'error_answer' as const,
      };
      double.failNext(1, post);
      await expect(provider.refund({ ...again, attempt: 1 })).rejects.toMatchObject({
        answered: true,
      });
      const replayed = await provider
        .refund({ ...again, attempt: 2, previousKey: `${a.refundId}:1` })
        .catch((e: unknown) => e);
      expect(replayed).toMatchObject({ constructor: ProviderUnavailable, answered: true });
      expect(
        await provider.refund({ ...again, attempt: 3, previousKey: `${a.refundId}:2` }),
      ).toMatchObject({
        status: 'succeeded',
        key: `${a.refundId}:3`,
      });
      expect(double.refundsFor(a.refundId)).toHaveLength(1);
    });

    it('the listing itself failing keeps the previous key: the next attempt lists again', async () => {
      const pi = await paid();
      const a = attempt({ providerPaymentId: pi });
      double.failNext(1, { match: { method: 'GET', path: '/v1/refunds' } });
      await expect(
        provider.refund({
          ...a,
          attempt: 2,
          previousKey: a.refundId,
          previousOutcome: 'error_answer',
        }),
      ).rejects.toMatchObject({
        constructor: ProviderUnavailable,
        answered: true,
        key: a.refundId,
      });
      expect(double.refundsFor(a.refundId)).toHaveLength(0);
    });

    it('a listing slower than two timeouts ends the attempt as an error answer without refunding', async () => {
      const pi = await paid(100_000);
      for (let i = 0; i < 250; i++)
        await provider.refund(attempt({ providerPaymentId: pi, amountCents: 1 }));
      const a = attempt({ providerPaymentId: pi });
      // Three pages of 100, each 700 ms: past 2 × 800 ms after the second.
      double.delayNext(3, 700, { method: 'GET', path: '/v1/refunds' });
      const before = double.requests.length;
      const slow = await provider
        .refund({ ...a, attempt: 2, previousKey: a.refundId, previousOutcome: 'error_answer' })
        .catch((e: unknown) => e);
      expect(slow).toMatchObject({
        constructor: ProviderUnavailable,
        answered: true,
        key: a.refundId,
      });
      const calls = double.requests.slice(before).map((r) => r.method);
      expect(calls.length).toBeGreaterThanOrEqual(2);
      expect(new Set(calls)).toEqual(new Set(['GET']));
      expect(double.refundsFor(a.refundId)).toHaveLength(0);
    });

    it('the same key with other parameters → ProviderRejected idempotency_error, nothing made', async () => {
      const pi = await paid();
      const a = attempt({ providerPaymentId: pi, amountCents: 100 });
      await provider.refund(a);
      await expect(provider.refund({ ...a, amountCents: 200 })).rejects.toMatchObject({
        constructor: ProviderRejected,
        providerCode: 'idempotency_error',
      });
      expect(double.refundsFor(a.refundId)).toHaveLength(1);
    });
  });

  describe('verify', () => {
    let receiver: Server;
    let url: string;
    const results: Array<{ notification?: ProviderNotification; error?: unknown }> = [];

    beforeAll(async () => {
      // A receiver that hands the raw bytes and the header to verify(), as the webhook route does.
      receiver = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          try {
            const header = req.headers['stripe-signature'];
            results.push({
              notification: provider.verify(
                Buffer.concat(chunks),
                typeof header === 'string' ? header : undefined,
              ),
            });
            res.writeHead(200).end();
          } catch (error) {
            results.push({ error });
            res.writeHead(400).end();
          }
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhook`;
    });
    afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

    async function delivered(event: StripeEvent, options?: Parameters<StripeDouble['deliver']>[2]) {
      const reply = await double.deliver(event, url, options);
      const result = results.at(-1)!;
      return { reply, ...result };
    }

    it('signs as the SDK does', () => {
      const payload = JSON.stringify({ id: 'evt_1', object: 'event' });
      const timestamp = 1_700_000_000;
      expect(stripeSignature(payload, double.webhookSecret, timestamp)).toBe(
        Stripe.webhooks.generateTestHeaderString({
          payload,
          secret: double.webhookSecret,
          timestamp,
        }),
      );
    });

    it('normalises each handled payment_intent type', async () => {
      const opened = await provider.open({
        paymentId: uid('pay'),
        orderId: uid('ord'),
        amountCents: 1234,
        currency: 'EUR',
      });
      const paymentId = double.intents.get(opened.providerPaymentId)!.metadata.paymentId as string;
      const processing = double.confirm(opened.providerPaymentId, 'processing');
      const failed = double.confirm(opened.providerPaymentId, 'failed', {
        declineCode: 'insufficient_funds',
      });
      const succeeded = double.confirm(opened.providerPaymentId, 'succeeded', {
        amountReceived: 1200,
      });
      const base = {
        kind: 'payment',
        providerPaymentId: opened.providerPaymentId,
        paymentId,
        currency: 'EUR',
      };
      expect((await delivered(processing)).notification).toEqual({
        ...base,
        eventId: processing.id,
        status: 'processing',
        amountReceivedCents: 0,
        failureReason: null,
      });
      expect((await delivered(failed)).notification).toEqual({
        ...base,
        eventId: failed.id,
        status: 'failed',
        amountReceivedCents: 0,
        failureReason: 'card_declined: insufficient_funds',
      });
      expect((await delivered(succeeded)).notification).toEqual({
        ...base,
        eventId: succeeded.id,
        status: 'succeeded',
        amountReceivedCents: 1200,
        failureReason: null,
      });
      const other = await provider.open({
        paymentId: uid('pay'),
        orderId: uid('ord'),
        amountCents: 999,
        currency: 'USD',
      });
      await provider.cancel(other.providerPaymentId);
      const canceled = double.eventsOf('payment_intent.canceled', other.providerPaymentId)[0];
      expect((await delivered(canceled)).notification).toMatchObject({
        kind: 'payment',
        status: 'canceled',
        currency: 'USD',
        failureReason: 'canceled',
        providerPaymentId: other.providerPaymentId,
      });
    });

    it('a PaymentIntent of another system (no metadata.paymentId) has paymentId null', async () => {
      const sdk = new Stripe(double.secretKey, {
        host: '127.0.0.1',
        port: new URL(double.url).port,
        protocol: 'http',
      });
      const foreign = await sdk.paymentIntents.create({ amount: 5000, currency: 'gbp' });
      const event = double.confirm(foreign.id, 'succeeded');
      expect((await delivered(event)).notification).toEqual({
        kind: 'payment',
        eventId: event.id,
        status: 'succeeded',
        providerPaymentId: foreign.id,
        paymentId: null,
        amountReceivedCents: 5000,
        currency: 'GBP',
        failureReason: null,
      });
    });

    it('normalises refund.created, refund.updated and refund.failed; a dashboard refund has refundId null', async () => {
      const pi = await paid(5000);
      double.refundStatus = 'pending';
      const a = attempt({ providerPaymentId: pi, amountCents: 1500 });
      const outcome = await provider.refund(a);
      const created = double.eventsOf('refund.created', outcome.providerRefundId!)[0];
      const base = {
        kind: 'refund',
        providerRefundId: outcome.providerRefundId,
        refundId: a.refundId,
        providerPaymentId: pi,
        amountCents: 1500,
        currency: 'EUR',
      };
      expect((await delivered(created)).notification).toEqual({
        ...base,
        eventId: created.id,
        status: 'pending',
      });
      const updated = double.settleRefund(outcome.providerRefundId!, 'succeeded');
      expect((await delivered(updated)).notification).toEqual({
        ...base,
        eventId: updated.id,
        status: 'succeeded',
      });
      const failed = double.settleRefund(outcome.providerRefundId!, 'failed');
      expect(failed.type).toBe('refund.failed');
      expect((await delivered(failed)).notification).toEqual({
        ...base,
        eventId: failed.id,
        status: 'failed',
      });
      const canceled = double.settleRefund(outcome.providerRefundId!, 'canceled');
      expect((await delivered(canceled)).notification).toMatchObject({ status: 'canceled' });
      const dashboard = double.dashboardRefund(pi, 300);
      expect((await delivered(dashboard.event)).notification).toEqual({
        kind: 'refund',
        eventId: dashboard.event.id,
        providerRefundId: dashboard.refund.id,
        refundId: null,
        providerPaymentId: pi,
        amountCents: 300,
        currency: 'EUR',
        status: 'succeeded',
      });
    });

    it('acknowledges and ignores every other type (charge.refunded, payment_intent.created)', async () => {
      const pi = await paid();
      await provider.refund(attempt({ providerPaymentId: pi }));
      for (const type of ['charge.refunded', 'payment_intent.created']) {
        const event = double.events.filter((e) => e.type === type).at(-1)!;
        const { reply, notification } = await delivered(event);
        expect(reply.status).toBe(200);
        expect(notification).toEqual({ kind: 'ignored', eventId: event.id, type });
      }
    });

    it('rejects unsigned, badly signed, stale (> 300 s), wrong-secret and malformed notifications', async () => {
      const event = double.confirm(
        (
          await provider.open({
            paymentId: uid('pay'),
            orderId: uid('ord'),
            amountCents: 999,
            currency: 'EUR',
          })
        ).providerPaymentId,
        'succeeded',
      );
      const payload = JSON.stringify(event, null, 2);
      const t = Math.floor(Date.now() / 1000);
      const cases: Array<[string, Parameters<StripeDouble['deliver']>[2]]> = [
        ['unsigned', { header: null }],
        ['empty header', { header: '' }],
        ['garbage header', { header: 'nonsense' }],
        ['no v1', { header: `t=${t}` }],
        ['bad signature', { header: `t=${t},v1=${'0'.repeat(64)}` }],
        ['wrong secret', { secret: 'whsec_someone_else' }],
        ['stale', { timestamp: t - 301 }],
        [
          'body changed after signing',
          { header: double.sign(payload), body: payload.replace('"succeeded"', '"canceled"') },
        ],
        ['signed, not JSON', { header: double.sign('{not json'), body: '{not json' }],
        ['signed, empty', { header: double.sign(''), body: '' }],
        ['signed, not an event', { header: double.sign('[1,2]'), body: '[1,2]' }],
        [
          'signed, event without id',
          {
            header: double.sign('{"type":"payment_intent.succeeded","data":{"object":{}}}'),
            body: '{"type":"payment_intent.succeeded","data":{"object":{}}}',
          },
        ],
        [
          'signed, handled type with a bad object',
          {
            header: double.sign(
              '{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"object":"charge"}}}',
            ),
            body: '{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"object":"charge"}}}',
          },
        ],
        ...[
          { amount: 0, currency: 'eur' },
          { amount: -5, currency: 'eur' },
          { amount: 1.5, currency: 'eur' },
          { amount: '100', currency: 'eur' },
          { amount: 100, currency: ' ' },
          { amount: 100, currency: 'euro' },
        ].map(({ amount, currency }): [string, Parameters<StripeDouble['deliver']>[2]] => {
          const refund = JSON.stringify({
            id: 'evt_r',
            object: 'event',
            type: 'refund.created',
            data: {
              object: {
                id: 're_1',
                object: 'refund',
                amount,
                currency,
                metadata: {},
                payment_intent: 'pi_1',
                status: 'succeeded',
              },
            },
          });
          return [
            `signed, refund of ${JSON.stringify(amount)} ${JSON.stringify(currency)}`,
            { header: double.sign(refund), body: refund },
          ];
        }),
        ...[
          { amount_received: -1, currency: 'eur' },
          { amount_received: 100, currency: '' },
          { amount_received: 100, currency: 'e1r' },
        ].map((fields): [string, Parameters<StripeDouble['deliver']>[2]] => {
          const pi = JSON.stringify({
            id: 'evt_p',
            object: 'event',
            type: 'payment_intent.succeeded',
            data: { object: { id: 'pi_1', object: 'payment_intent', metadata: {}, ...fields } },
          });
          return [
            `signed, payment ${JSON.stringify(fields)}`,
            { header: double.sign(pi), body: pi },
          ];
        }),
      ];
      for (const [name, options] of cases) {
        const { reply, error, notification } = await delivered(event, options);
        expect([name, reply.status, notification]).toEqual([name, 400, undefined]);
        expect([name, error]).toEqual([name, expect.any(NotificationRejected)]);
      }
      // Within the tolerance it verifies:
      const fresh = await delivered(event, { timestamp: t - 290 });
      expect(fresh.reply.status).toBe(200);
    });
  });
});
