import fc from 'fast-check';
import { createProduct, placeOrder } from '../support/fixtures';
import { type Account, account } from '../support/http';
import { StripeDouble } from '../support/stripe-double';
import { createTestApp, type TestApp } from '../support/test-app';
import { headerJunk, junkJson, rawBody } from './arbitraries';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_206);
const SCALE = Number(process.env.FUZZ_RUNS ?? 1);

/**
 * Stripe's webhook with Stripe enabled (API.md §9), fed generated input: never a 5xx. Anything not
 * signed with the endpoint's secret within 300 s → 400 WEBHOOK_SIGNATURE_INVALID (problem+json) and
 * nothing recorded; a validly signed body that is no Stripe event → the same 400; a validly signed
 * event of a handled type with generated fields (amounts, currencies, metadata pointing at a real
 * payment or at junk, statuses) → 200 or that 400, never a 5xx, and the payments' invariants hold.
 * (The general fuzz suite runs without Stripe, where this route is 404.)
 */
describe('fuzz: the Stripe webhook, Stripe enabled', () => {
  const double = new StripeDouble();
  let t: TestApp;
  let admin: Account;
  let alice: Account;
  let payment: Record<string, any>;

  beforeAll(async () => {
    await double.start();
    t = await createTestApp({
      ...double.env(),
    });
    admin = await account(t, 'admin');
    alice = await account(t);
    const p = await createProduct(t, admin, { stock: 50, priceCents: 900 });
    const o = await placeOrder(t, alice, [{ productId: p.id, quantity: 1 }]).expect(201);
    const res = await t
      .http()
      .post(`/api/v1/orders/${o.body.id}/payments`)
      .set(alice.auth)
      .send({ provider: 'stripe' })
      .expect(201);
    payment = res.body as Record<string, any>;
  });
  afterAll(async () => {
    await t?.close();
    await double.stop();
  });

  const url = () => `${t.baseUrl}/api/v1/payments/stripe/webhook`;
  const recorded = async () =>
    (
      await t.db.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM payment_provider_events WHERE provider = 'stripe'`,
      )
    )[0].n;

  async function post(body: string | undefined, signature: string | null, contentType?: string) {
    const res = await fetch(url(), {
      method: 'POST',
      headers: {
        ...(contentType !== undefined && { 'content-type': contentType }),
        ...(signature !== null && { 'stripe-signature': signature }),
      },
      body,
    });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, type: res.headers.get('content-type') ?? '', json };
  }

  /** Refused: 400 WEBHOOK_SIGNATURE_INVALID, or 413 for a body over BODY_LIMIT_BYTES (never read). */
  function expectRejected(res: Awaited<ReturnType<typeof post>>) {
    expect([
      { status: 400, code: 'WEBHOOK_SIGNATURE_INVALID' },
      { status: 413, code: 'PAYLOAD_TOO_LARGE' },
    ]).toContainEqual({ status: res.status, code: res.json?.code });
    expect(res.type).toMatch(/^application\/problem\+json/);
  }

  const now = () => Math.floor(Date.now() / 1000);
  const body = fc.oneof(
    junkJson.map((b) => b ?? ''),
    rawBody,
  );
  const signatureHeader = fc.oneof(
    headerJunk,
    fc.constant(null),
    fc.integer({ min: 0, max: 2 ** 31 }).map((ts) => `t=${ts},v1=${'0'.repeat(64)}`),
    fc
      .string({ unit: fc.constantFrom(...'0123456789abcdef'), maxLength: 70 })
      .map((h: string) => `t=${now()},v1=${h}`),
  );

  it('unsigned or badly signed: 400 WEBHOOK_SIGNATURE_INVALID, nothing recorded', async () => {
    const before = await recorded();
    await fc.assert(
      fc.asyncProperty(
        body,
        signatureHeader,
        fc.constantFrom(
          undefined,
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
        ),
        async (b, header, contentType) => {
          expectRejected(await post(b, header, contentType));
        },
      ),
      { seed: SEED, numRuns: 120 * SCALE },
    );
    expect(await recorded()).toBe(before);
  });

  it('signed with another secret, or too long ago: the same 400, nothing recorded', async () => {
    const event = double.confirm(payment.providerPaymentId as string, 'processing');
    const payload = JSON.stringify(event);
    const before = await recorded();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ minLength: 1, maxLength: 30 }).map((s) => ({ secret: `whsec_${s}`, age: 0 })),
          fc
            .integer({ min: 301, max: 10 ** 8 })
            .map((age) => ({ secret: double.webhookSecret, age })),
        ),
        async ({ secret, age }) => {
          fc.pre(secret !== double.webhookSecret || age > 300);
          expectRejected(
            await post(
              payload,
              double.sign(payload, { secret, timestamp: now() - age }),
              'application/json',
            ),
          );
        },
      ),
      { seed: SEED, numRuns: 40 * SCALE },
    );
    expect(await recorded()).toBe(before);
  });

  it('validly signed junk: 400 and nothing recorded, or 200 for a well-formed event; never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const before = await recorded();
        const res = await post(b, double.sign(b), 'application/json');
        expect(res.status).toBeLessThan(500);
        if (res.status !== 200) {
          expectRejected(res);
          expect(await recorded()).toBe(before);
        }
      }),
      { seed: SEED, numRuns: 80 * SCALE },
    );
  });

  it('validly signed events of handled types with generated fields: never a 5xx, money never negative', async () => {
    const pick = <T>(...values: T[]) => fc.constantFrom(...values);
    const id = fc.oneof(
      pick(payment.providerPaymentId as string, 'pi_unknown'),
      fc.string({ maxLength: 12 }),
    );
    const meta = fc.oneof(
      fc.constant({ paymentId: payment.id as string }),
      fc.record(
        { paymentId: fc.oneof(fc.string({ maxLength: 40 }), fc.uuid()) },
        { requiredKeys: [] },
      ),
      fc.record({ refundId: fc.oneof(fc.string({ maxLength: 40 }), fc.uuid()) }),
      fc.constant(null),
    );
    const amount = fc.oneof(
      fc.integer({ min: 0, max: 2000 }),
      fc.constantFrom<unknown>(900, -1, 2 ** 53, 1.5, '900', null),
    );
    const currency = fc.oneof(pick('eur', 'EUR', 'usd', '', 'eu'), fc.string({ maxLength: 4 }));
    const paymentIntent = fc.record({
      id,
      object: pick('payment_intent', 'charge'),
      amount_received: amount,
      amount,
      currency,
      metadata: meta,
      status: pick('succeeded', 'processing', 'canceled', 'requires_payment_method'),
      last_payment_error: fc.oneof(
        fc.constant(null),
        fc.record({ code: fc.string({ maxLength: 20 }) }),
      ),
    });
    const refund = fc.record({
      id: fc.oneof(fc.constant('re_x'), fc.string({ maxLength: 12 })),
      object: pick('refund', 'payment_intent'),
      amount,
      currency,
      metadata: meta,
      payment_intent: fc.oneof(id, fc.constant(null)),
      status: pick('pending', 'succeeded', 'failed', 'canceled', 'requires_action', 'weird'),
    });
    const event = fc.oneof(
      fc.record({
        id: fc.oneof(
          fc.string({ minLength: 1, maxLength: 20 }).map((s) => `evt_${s}`),
          fc.string({ maxLength: 5 }),
        ),
        object: fc.constant('event'),
        type: pick(
          'payment_intent.processing',
          'payment_intent.succeeded',
          'payment_intent.payment_failed',
          'payment_intent.canceled',
        ),
        data: fc.record({ object: paymentIntent }),
      }),
      fc.record({
        id: fc.string({ minLength: 1, maxLength: 20 }).map((s) => `evt_${s}`),
        object: fc.constant('event'),
        type: pick('refund.created', 'refund.updated', 'refund.failed'),
        data: fc.record({ object: refund }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(event, async (e) => {
        const payload = JSON.stringify(e);
        const res = await post(payload, double.sign(payload), 'application/json');
        expect(res.status < 500 ? 'no 5xx' : JSON.stringify(res.json)).toBe('no 5xx');
        if (res.status !== 200) expectRejected(res);
      }),
      { seed: SEED, numRuns: 150 * SCALE },
    );
    const bad = await t.db.query<{ id: string }[]>(
      `SELECT id FROM orders WHERE paid_cents < 0 OR refunded_cents < 0 OR refunded_cents > paid_cents`,
    );
    expect(bad).toEqual([]);
  });
});
