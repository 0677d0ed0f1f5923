// The scenarios issue 26 adds next to the checkouts of run.mjs: keyed checkouts (a new
// Idempotency-Key each, as the typed client sends), checkouts with a promotion code, and applied
// Stripe payment notifications. Built by run.mjs's scenarios() with its helpers; see bench/README.md.
import { runLoad } from './harness.mjs';
import { BENCH_WEBHOOK_SECRET, succeededEvent } from './stripe-double.mjs';

/** Connections of the preparation runs of (pay): the opener service's pool is 20. */
const PREPARE_CONNECTIONS = 16;
/**
 * Prepared events per second of run, before anything was measured (the warm-up): about a checkout's
 * rate on the bench machine. After the warm-up, and after each measured run, twice the rate that
 * run reached: the next run must never run out (it would send an event twice, which its invariant
 * catches).
 */
const FIRST_EVENTS_PER_SECOND = 1000;
const SUPPLY_FACTOR = 2;

/**
 * Every keyed 201 has its key stored, with its outcome, in the same transaction as the order (API.md
 * §4): the keys stored for the customer since `before.at` with an outcome = the 201s. Each request
 * had a new key (the load generator makes one per request): a key sent twice would have been
 * replayed (a 201 without an order) and broken "orders created = 201s".
 */
async function keyCheck(sql, customerIds, since, created, check) {
  const { rows } = await sql.query(
    `SELECT count(*)::int AS stored, count(DISTINCT key)::int AS keys
       FROM idempotency_keys
      WHERE user_id = ANY($1) AND method = 'POST' AND created_at >= $2 AND response IS NOT NULL`,
    [customerIds, since],
  );
  const { stored, keys } = rows[0];
  return check(
    stored === created && keys === stored,
    `Idempotency-Keys stored with their outcome ${stored} (distinct ${keys}) = 201s ${created}`,
  );
}

const dbNow = async (sql) => (await sql.query('SELECT now() AS at')).rows[0].at;

/**
 * d-key, e-ample-key, d-promo and pay. `h`: run.mjs's helpers and data (sql, seeded, spread,
 * hotAmpleSpec, orderInvariants, counts, check, extras.opener: the service that opens Stripe
 * payments).
 */
export function checkoutScenarios(h) {
  const { sql, seeded, check } = h;
  // Keyed checkouts as a storefront sends them: a new key each, its customers in turn.
  const keyed = (spec) => ({
    ...spec,
    idempotencyKeys: true,
    authorizations: seeded.shoppers.map((token) => `Bearer ${token}`),
  });
  const keyedChecks = {
    before: async () => ({ rows: await h.counts(), at: await dbNow(sql) }),
    check: async (result, before) => {
      const created = result.statusCodes[201] ?? 0;
      return [
        ...(await h.orderInvariants(result, before.rows)).checks,
        await keyCheck(sql, seeded.shopperIds, before.at, created, check),
      ];
    },
  };
  const promoBodies = h.spread.bodies.map((b) =>
    JSON.stringify({ ...JSON.parse(b), promotionCode: seeded.promotion.code }),
  );
  const promotionUses = async () =>
    (
      await sql.query(`SELECT count(*)::int AS n FROM orders WHERE promotion_code = $1`, [
        seeded.promotion.code,
      ])
    ).rows[0].n;

  return [
    {
      key: 'd-key',
      title: `POST /orders with a new Idempotency-Key each, 1 line, rotating over ${h.spread.bodies.length} products`,
      short: 'POST order, spread, keyed',
      target: 'service',
      spec: keyed(h.spread),
      expect: [201],
      warmup: true,
      ...keyedChecks,
    },
    {
      key: 'e-ample-key',
      title: 'POST /orders with a new Idempotency-Key each, on one hot product (ample stock)',
      short: 'POST order, hot, keyed',
      target: 'service',
      spec: keyed(h.hotAmpleSpec),
      connections: h.hotConnections,
      expect: [201],
      warmup: true,
      ...keyedChecks,
    },
    {
      key: 'd-promo',
      title: `POST /orders with a promotion code (10% off), rotating over ${h.spread.bodies.length} products`,
      short: 'POST order, spread, promotion code',
      target: 'service',
      spec: { ...h.spread, bodies: promoBodies },
      expect: [201],
      warmup: true,
      before: async () => ({ rows: await h.counts(), uses: await promotionUses() }),
      check: async (result, before) => {
        const created = result.statusCodes[201] ?? 0;
        const uses = (await promotionUses()) - before.uses;
        const code = /"promotionCode":"(\w+)"/.exec(result.samples[201] ?? '')?.[1];
        return [
          ...(await h.orderInvariants(result, before.rows)).checks,
          check(uses === created, `orders holding the code ${uses} = 201s ${created}`),
          check(code === seeded.promotion.code, `201 carries promotionCode ${code}`),
        ];
      },
    },
    payScenario(h),
  ];
}

/**
 * (pay): signed `payment_intent.succeeded` events, each for a distinct order with an open Stripe
 * payment. Before the warm-up and before the measured run, `prepare` places the orders (on the
 * opener service, through the API, with the load generator) and opens their payments there (its
 * Stripe SDK talks to stripe-double.mjs); the events are signed as the load generator sends them.
 */
function payScenario(h) {
  const { sql, seeded, check } = h;
  let rate = FIRST_EVENTS_PER_SECOND;
  const prepare = async (seconds) => {
    const count = Math.ceil(seconds * rate) + 200;
    const started = Date.now();
    const since = await dbNow(sql);
    const customerHeaders = {
      authorization: `Bearer ${seeded.customer}`,
      'content-type': 'application/json',
    };
    const placed = await runLoad(
      {
        ...h.spread,
        url: h.extras.opener.base,
        connections: PREPARE_CONNECTIONS,
        amount: count,
        duration: 600,
      },
      () => undefined,
    );
    const { rows: orders } = await sql.query(
      `SELECT id FROM orders o WHERE user_id = $1 AND status = 'pending' AND created_at >= $2
          AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id)`,
      [seeded.customerId, since],
    );
    if (orders.length < count) {
      throw new Error(
        `pay: ${orders.length} orders placed of ${count} (${JSON.stringify(placed.statusCodes)})`,
      );
    }
    const opened = await runLoad(
      {
        url: h.extras.opener.base,
        method: 'POST',
        path: '/',
        paths: orders.map((o) => `/api/v1/orders/${o.id}/payments`),
        headers: customerHeaders,
        body: JSON.stringify({ provider: 'stripe' }),
        connections: PREPARE_CONNECTIONS,
        amount: orders.length,
        duration: 600,
      },
      () => undefined,
    );
    const { rows: payments } = await sql.query(
      `SELECT id, order_id, provider_payment_id, amount_cents::int, currency FROM payments
        WHERE order_id = ANY($1) AND provider = 'stripe' AND status = 'requires_action'`,
      [orders.map((o) => o.id)],
    );
    if (payments.length !== orders.length) {
      throw new Error(
        `pay: ${payments.length} Stripe payments opened of ${orders.length} (${JSON.stringify(opened.statusCodes)}): ${opened.samples[Object.keys(opened.statusCodes).find((c) => c !== '201')] ?? ''}`,
      );
    }
    console.log(
      `  prepared ${payments.length} orders with an open Stripe payment in ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return {
      method: 'POST',
      path: '/api/v1/payments/stripe/webhook',
      headers: { 'content-type': 'application/json' },
      bodies: payments.map((p) =>
        succeededEvent({
          paymentId: p.id,
          orderId: p.order_id,
          providerPaymentId: p.provider_payment_id,
          amountCents: p.amount_cents,
          currency: p.currency,
        }),
      ),
      stripeSecret: BENCH_WEBHOOK_SECRET,
      orderIds: payments.map((p) => p.order_id),
      // Every prepared event once, and no more: the run ends when they are answered (it runs
      // longer than the nominal duration when the service outruns the sizing), never repeats one.
      amount: payments.length,
    };
  };
  return {
    key: 'pay',
    title: 'POST /payments/stripe/webhook, signed payment_intent.succeeded, a distinct order each',
    short: 'Stripe notification, order paid',
    target: 'service',
    prepare,
    afterWarmup: (warm) => {
      rate = Math.max(100, (SUPPLY_FACTOR * warm.responses) / warm.elapsedS);
    },
    expect: [200],
    warmup: true,
    before: async () => ({ at: await dbNow(sql) }),
    check: async (result, before, _server, spec) => {
      const sent = result.responses;
      rate = Math.max(100, (SUPPLY_FACTOR * sent) / result.elapsedS);
      const used = spec.orderIds.slice(0, Math.min(sent, spec.orderIds.length));
      const { rows } = await sql.query(
        `SELECT (SELECT count(*)::int FROM orders WHERE id = ANY($1) AND status = 'paid') AS paid,
                (SELECT count(*)::int FROM payments WHERE order_id = ANY($1)
                    AND status = 'succeeded') AS succeeded,
                (SELECT count(*)::int FROM (SELECT order_id FROM payments WHERE status = 'succeeded'
                    GROUP BY order_id HAVING count(*) > 1) twice) AS twice,
                (SELECT count(*)::int FROM order_history WHERE order_id = ANY($1)
                    AND to_status = 'paid') AS history,
                (SELECT count(*)::int FROM refunds WHERE created_at >= $2) AS refunds`,
        [used, before.at],
      );
      const r = rows[0];
      return [
        check(
          sent <= spec.orderIds.length,
          `events sent ${sent} ≤ prepared ${spec.orderIds.length} (none twice)`,
        ),
        check(r.paid === sent, `orders paid ${r.paid} = events ${sent}`),
        check(
          r.succeeded === sent && r.history === sent,
          `payments succeeded ${r.succeeded}, 'paid' history entries ${r.history}`,
        ),
        check(r.twice === 0, `orders paid twice ${r.twice}`),
        check(r.refunds === 0, `refunds ${r.refunds} (no unwanted money)`),
      ];
    },
  };
}
