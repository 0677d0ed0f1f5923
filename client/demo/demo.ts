/**
 * A narrated storefront session against the real service at `--url URL`, showing each collision and
 * how the client resolves it, with the demo admin from DEMO_ADMIN_EMAIL / DEMO_ADMIN_PASSWORD (the
 * development seed's by default). `npm run demo` (scripts/demo.mjs) starts a service on a fresh
 * embedded database and runs this against it. Exits 0 only if every step behaved as narrated.
 * Throughout, a webhook receiver on 127.0.0.1 prints each order event as it arrives.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import {
  ApiProblem,
  type components,
  describePriceChange,
  holdRemainingMs,
  MergeConflict,
  type Order,
  OrderClient,
  priceChange,
} from '../src/index.ts';

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: string) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = paint('1');
const dim = paint('2');
const green = paint('32');
const red = paint('31');
const cyan = paint('36');
const yellow = paint('33');

let failures = 0;
function check(condition: boolean, what: string): void {
  console.log(condition ? `   ${green('✔')} ${what}` : `   ${red('✘')} ${what}`);
  if (!condition) failures++;
}

const short = (value: unknown, max = 110): string => {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};

/** A fetch that prints each exchange compactly: method, path, key headers and the answer. */
function narratingFetch(who: string): typeof fetch {
  return async (input: Request | string | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const url = new URL(request.url);
    const sent = ['if-match', 'idempotency-key']
      .map((h) => request.headers.get(h) && `${h}: ${short(request.headers.get(h), 24)}`)
      .filter(Boolean);
    const body = request.body ? await request.clone().text() : '';
    console.log(
      dim(
        `   ${who.padEnd(6)} → ${request.method} ${url.pathname}${url.search}${sent.length ? `  [${sent.join(', ')}]` : ''}${body && !url.pathname.includes('/auth/') ? `  ${short(body, 70)}` : ''}`,
      ),
    );
    const response = await fetch(request);
    const text = await response.clone().text();
    let summary = text;
    try {
      const json = JSON.parse(text) as Record<string, unknown>;
      summary = json.code ? `${json.code as string}  ${short(json.detail, 90)}` : short(json, 90);
    } catch {
      // not JSON
    }
    const replay = response.headers.get('idempotent-replayed') ? ' (Idempotent-Replayed)' : '';
    console.log(dim(`   ${who.padEnd(6)} ← ${response.status}${replay} ${summary}`));
    return response;
  };
}

function step(n: number, title: string, story: string): void {
  console.log(`\n${bold(cyan(`${n}. ${title}`))}\n   ${story}`);
}

async function main(): Promise<void> {
  const urlFlag = process.argv.indexOf('--url');
  const url = urlFlag > 0 ? process.argv[urlFlag + 1] : undefined;
  if (!url) {
    console.error('Usage: demo.js --url http://host:port   (or: npm run demo)');
    process.exit(2);
  }
  console.log(bold('Order service: a storefront session where everything collides'));
  const fresh = process.argv.includes('--fresh') ? ' (fresh embedded PostgreSQL)' : '';
  console.log(dim(`   service at ${url}${fresh}`));
  // A closed pipe (`| head`) ends the session quietly.
  process.stdout.on('error', () => process.exit(130));
  await run(url);
  console.log(
    failures
      ? red(`\n${failures} step(s) did not behave as narrated.`)
      : green('\nEvery collision ended in a precise answer, and no data was lost.'),
  );
  process.exitCode = failures ? 1 : 0;
}

async function run(baseUrl: string): Promise<void> {
  const client = (who: string): OrderClient =>
    new OrderClient({ baseUrl, fetch: narratingFetch(who) });
  const adminEmail = process.env.DEMO_ADMIN_EMAIL ?? 'admin@example.com';
  const adminPassword = process.env.DEMO_ADMIN_PASSWORD ?? 'admin-demo-password';
  const tag = Date.now().toString(36);

  step(1, 'A duplicate registration', 'Ada signs up twice, the second time in capitals.');
  const ada = client('ada');
  const adaEmail = `ada-${tag}@example.com`;
  await ada.register(adaEmail, 'correct horse battery', 'Ada');
  const dup = await ada
    .register(adaEmail.toUpperCase(), 'correct horse battery', 'Ada')
    .catch((e: unknown) => e);
  check(
    dup instanceof ApiProblem && dup.code === 'EMAIL_TAKEN',
    '409 EMAIL_TAKEN, naming the field: emails are unique whatever their case',
  );
  await ada.login(adaEmail, 'correct horse battery');

  const alice = client('alice');
  const bob = client('bob');
  await alice.login(adminEmail, adminPassword);
  await bob.login(adminEmail, adminPassword);
  const shop = await listenForOrderEvents(baseUrl, alice);
  try {
    await session({ baseUrl, client, ada, adaEmail, alice, bob, tag, shop });
  } finally {
    await shop.close();
  }
}

/** Steps 2 to 12, while the shop's webhook receiver listens. */
async function session({
  baseUrl,
  client,
  ada,
  adaEmail,
  alice,
  bob,
  tag,
  shop,
}: {
  baseUrl: string;
  client: (who: string) => OrderClient;
  ada: OrderClient;
  adaEmail: string;
  alice: OrderClient;
  bob: OrderClient;
  tag: string;
  shop: ShopReceiver;
}): Promise<void> {
  const { value: mug } = await alice.createProduct({
    sku: `MUG-${tag}`,
    slug: `mug-${tag}`,
    name: 'Logo mug',
    priceCents: 1250,
    currency: 'EUR',
    stock: 10,
  });

  step(
    2,
    'Two admins edit one product at once',
    'Both read version 1; Alice renames it, Bob reprices it: different fields.',
  );
  const bobHeld = holdPatch(bob);
  const bobReprice = bobHeld.client.update('products', mug.id, () => ({ priceCents: 1490 }));
  await bobHeld.read;
  const renamed = await alice.update('products', mug.id, () => ({ name: 'Logo mug, large' }));
  bobHeld.release();
  const merged = await bobReprice;
  check(
    merged.name === 'Logo mug, large' && merged.priceCents === 1490,
    `Bob got 412, merged onto Alice's version and landed: both edits kept (version ${merged.version})`,
  );
  console.log('   Now both change the name at once: a real conflict, for a person to decide.');
  const bobHeld2 = holdPatch(bob);
  const bobRename = bobHeld2.client
    .update('products', mug.id, () => ({ name: 'Bob’s mug' }))
    .catch((e: unknown) => e);
  await bobHeld2.read;
  await alice.update('products', mug.id, () => ({ name: 'Alice’s mug' }));
  bobHeld2.release();
  const conflict = await bobRename;
  check(
    conflict instanceof MergeConflict && conflict.fields.name?.theirs === 'Alice’s mug',
    'a typed MergeConflict with base, mine and theirs',
  );
  if (conflict instanceof MergeConflict) {
    for (const [field, c] of Object.entries(conflict.fields)) {
      console.log(
        `     ${field}: base ${JSON.stringify(c.base)}, mine ${JSON.stringify(c.mine)}, theirs ${JSON.stringify(c.theirs)}`,
      );
    }
  }
  void renamed;

  step(
    3,
    'A checkout retried after a dropped response',
    'The server commits Ada’s order, but the answer is lost on the way back.',
  );
  let dropped = false;
  const flaky = new OrderClient({
    baseUrl,
    fetch: async (input: Request | string | URL, init?: RequestInit) => {
      const response = await narratingFetch('ada')(input, init);
      if (
        !dropped &&
        input instanceof Request &&
        input.method === 'POST' &&
        input.url.endsWith('/api/v1/orders')
      ) {
        dropped = true;
        console.log(red('   ada    ✂ connection dropped before the answer arrived'));
        throw new TypeError('fetch failed');
      }
      return response;
    },
  });
  await flaky.login(adaEmail, 'correct horse battery');
  const { order, replayed } = await flaky.placeOrder([{ productId: mug.id, quantity: 2 }], {
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))),
  });
  const mine =
    (
      await alice.api.GET('/api/v1/orders', { params: { query: { limit: 100 } } })
    ).data?.items.filter((o) => o.items.some((i) => i.productId === mug.id)) ?? [];
  check(
    replayed && mine.length === 1,
    `the retry reused its Idempotency-Key and got the same order back: one order (${order.id.slice(0, 8)}…), one reservation`,
  );

  step(
    4,
    'Two shoppers race for the last unit',
    'A limited print with stock 1; Ada and Grace buy it at the same moment.',
  );
  const { value: print } = await alice.createProduct({
    sku: `PRINT-${tag}`,
    slug: `print-${tag}`,
    name: 'Limited print',
    priceCents: 4900,
    currency: 'EUR',
    stock: 1,
  });
  const grace = client('grace');
  const graceEmail = `grace-${tag}@example.com`;
  await grace.register(graceEmail, 'correct horse battery', 'Grace');
  await grace.login(graceEmail, 'correct horse battery');
  const race = await Promise.allSettled([
    ada.placeOrder([{ productId: print.id, quantity: 1 }]),
    grace.placeOrder([{ productId: print.id, quantity: 1 }]),
  ]);
  const won = race.filter((r) => r.status === 'fulfilled');
  const lost = race
    .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    .map((r) => r.reason as unknown);
  const loser = lost[0];
  check(
    won.length === 1 && loser instanceof ApiProblem && loser.code === 'INSUFFICIENT_STOCK',
    'exactly one 201; the other gets 409 INSUFFICIENT_STOCK',
  );
  if (loser instanceof ApiProblem)
    console.log(`     what is left: ${JSON.stringify(loser.body.items)}`);
  const printNow = (await alice.getStock(print.id)).value;
  check(printNow.stock === 0, 'stock is 0, never −1');

  step(5, 'Cancelling a shipped order', 'Ada pays, the warehouse ships, then Ada tries to cancel.');
  const { order: toShip } = await ada.placeOrder([{ productId: mug.id, quantity: 1 }]);
  await ada.payWithTestProvider(toShip.id);
  await alice.transition(toShip.id, 'ship');
  const late = await ada.transition(toShip.id, 'cancel').catch((e: unknown) => e);
  check(
    late instanceof ApiProblem &&
      late.code === 'ILLEGAL_STATE_TRANSITION' &&
      late.body.currentStatus === 'shipped',
    '409 ILLEGAL_STATE_TRANSITION with the current status',
  );
  if (late instanceof ApiProblem)
    console.log(`     allowed for Ada now: ${JSON.stringify(late.body.allowedTransitions)}`);

  step(6, 'Deleting a product that orders reference', 'Alice tries to delete the mug.');
  const current = await alice.getProduct(mug.id);
  const refused = await alice.deleteProduct(mug.id, current.etag).catch((e: unknown) => e);
  check(
    refused instanceof ApiProblem && refused.code === 'RESOURCE_IN_USE',
    '409 RESOURCE_IN_USE; the product and its orders are intact',
  );
  if (refused instanceof ApiProblem)
    console.log(`     dependents: ${JSON.stringify(refused.body.dependents)}`);

  await abandonedCheckout({ alice, ada, grace, tag });
  await money({ alice, ada, tag });
  await lastCoupon({ alice, client, tag });
  await repriceDuringSale({ alice, tag });
  await webhooksHeard(shop, toShip);
}

/**
 * A limited code runs out while two shoppers race for its last use: the use is counted by one
 * guarded write in the order's transaction, so exactly one gets it; then a price changes under a
 * shopper's cart and the checkout refuses the total she never saw.
 */
async function lastCoupon({
  alice,
  client,
  tag,
}: {
  alice: OrderClient;
  client: (who: string) => OrderClient;
  tag: string;
}): Promise<void> {
  step(
    11,
    'Two shoppers race for the last use of a code',
    'Alice creates LAST-… for 2 uses; Ada used one already; Cleo and Dan check out at the same moment.',
  );
  const { value: tote } = await alice.createProduct({
    sku: `TOTE-${tag}`,
    slug: `tote-${tag}`,
    name: 'Canvas tote',
    priceCents: 2000,
    currency: 'EUR',
    stock: 10,
  });
  const { value: code } = await alice.createPromotion({
    code: `LAST-${tag}`,
    percentOff: 25,
    usageLimit: 2,
  });
  const shopper = async (name: string): Promise<OrderClient> => {
    const c = client(name);
    const email = `${name}-${tag}@example.com`;
    await c.register(email, 'correct horse battery', name);
    await c.login(email, 'correct horse battery');
    return c;
  };
  const [first, cleo, dan] = await Promise.all([shopper('ada2'), shopper('cleo'), shopper('dan')]);
  await first.placeOrder([{ productId: tote.id, quantity: 1 }], { promotionCode: code.code });
  const race = await Promise.all(
    [cleo, dan].map((c) =>
      c
        .placeOrder([{ productId: tote.id, quantity: 1 }], {
          promotionCode: code.code,
          expectedTotalCents: 1500,
        })
        .then(
          ({ order }) => order,
          (e: unknown) => e,
        ),
    ),
  );
  const won = race.filter((r) => !(r instanceof Error));
  const lost = race.filter(
    (r) =>
      r instanceof ApiProblem &&
      r.code === 'PROMOTION_NOT_APPLICABLE' &&
      r.body.reason === 'exhausted',
  );
  check(
    won.length === 1 && lost.length === 1,
    'exactly one got the last use (total 15.00 EUR); the other got 409 PROMOTION_NOT_APPLICABLE, reason exhausted, nothing reserved',
  );
  const after = (await alice.getPromotion(code.id)).value;
  const toteNow = (await alice.getStock(tote.id)).value;
  check(
    after.timesUsed === 2 && toteNow.stock === 8,
    `timesUsed ${after.timesUsed} of ${after.usageLimit}; stock ${toteNow.stock}: moved only for the two orders`,
  );

  console.log('   Then Alice raises the tote’s price while Cleo’s cart still shows 20.00 EUR.');
  await alice.update('products', tote.id, () => ({ priceCents: 2400 }));
  const drift = await cleo
    .placeOrder([{ productId: tote.id, quantity: 1 }], { expectedTotalCents: 2000 })
    .catch((e: unknown) => e);
  const change = priceChange(drift);
  check(
    change?.totalCents === 2400,
    '409 PRICE_CHANGED with the lines as they are now; nothing reserved',
  );
  if (change) {
    for (const line of describePriceChange(change, 'EUR').split('\n')) console.log(`     ${line}`);
  }
}

/** Polls `done` every 200 ms for at most `ms`: the refund relay works after the commit. */
/**
 * A merchant changes the price of the product a crowd is buying, at the first attempt: stock is its
 * own resource (API.md §13), so the sales move the stock's version and never the product's, and the
 * merchant's If-Match is stale only if another merchant changed the product. Then a stock-take with a
 * sale between its read and its write: `setStock` merges that sale into the count (412, then 200).
 */
/** The crowd's accounts (step 12): the webhook receiver does not print their orders' events. */
const crowdUsers = new Set<string>();

async function repriceDuringSale({
  alice,
  tag,
}: {
  alice: OrderClient;
  tag: string;
}): Promise<void> {
  step(
    12,
    'A merchant reprices the product a crowd is buying',
    'Six shoppers keep buying the festival hoodie while Alice changes its price with If-Match.',
  );
  const { value: hoodie } = await alice.createProduct({
    sku: `HOODIE-${tag}`,
    slug: `hoodie-${tag}`,
    name: 'Festival hoodie',
    priceCents: 5900,
    currency: 'EUR',
    stock: 500,
  });
  // The crowd's requests are not narrated one by one: they are counted.
  const crowd = await Promise.all(
    Array.from({ length: 6 }, async (_, i) => {
      const shopper = new OrderClient({ baseUrl: alice.options.baseUrl, fetch });
      const email = `crowd-${i}-${tag}@example.com`;
      crowdUsers.add((await shopper.register(email, 'correct horse battery', `Shopper ${i}`)).id);
      await shopper.login(email, 'correct horse battery');
      return shopper;
    }),
  );
  let buying = true;
  let sold = 0;
  const sales = crowd.map(async (shopper) => {
    while (buying) {
      await shopper.placeOrder([{ productId: hoodie.id, quantity: 1 }]);
      sold += 1;
    }
  });
  // Alice's read, then (held here until 20 more hoodies have sold) her write.
  let attempts = 0;
  let soldAtRead = 0;
  let readVersion = 0;
  const merchant = alice.clone({
    fetch: async (input: Request | string | URL, init?: RequestInit) => {
      const request = input instanceof Request ? input : undefined;
      if (request?.method === 'PATCH') attempts += 1;
      const response = await narratingFetch('alice')(input, init);
      if (request?.method === 'GET' && request.url.endsWith(`/products/${hoodie.id}`)) {
        readVersion = ((await response.clone().json()) as { version: number }).version;
        soldAtRead = sold;
        while (sold < soldAtRead + 20) await sleep(5);
      }
      return response;
    },
  });
  const repriced = await merchant.update('products', hoodie.id, () => ({ priceCents: 4900 }));
  check(
    repriced.priceCents === 4900 && attempts === 1 && repriced.version === readVersion + 1,
    `${sold - soldAtRead} hoodies sold between Alice's read and her write, and her price change went through at the first attempt (PATCH sent ${attempts}×; product version ${readVersion} → ${repriced.version})`,
  );

  buying = false;
  await Promise.all(sales);

  console.log(
    '   A stock-take: Alice counts 300 hoodies on the shelf; a shopper buys 2 before her count lands.',
  );
  let sent = 0;
  const counter = alice.clone({
    fetch: async (input: Request | string | URL, init?: RequestInit) => {
      if (input instanceof Request && input.method === 'PUT' && sent++ === 0) {
        await crowd[0].placeOrder([{ productId: hoodie.id, quantity: 2 }]);
        console.log(dim('   (a shopper bought 2 hoodies after Alice read the stock)'));
      }
      return narratingFetch('alice')(input, init);
    },
  });
  const before = (await alice.getStock(hoodie.id)).value;
  const counted = await counter.setStock(hoodie.id, () => 300);
  check(
    sent === 2 && counted.stock === 298 && counted.version === before.version + 2,
    `412 (the stock moved since her read), merged: her count minus the 2 sold after it = ${counted.stock}; the stock's version ${before.version} → ${counted.version}, the product's stays ${repriced.version}`,
  );
  const product = (await alice.getProduct(hoodie.id)).value;
  check(
    product.version === repriced.version,
    'no sale and no stock-take moved the product’s version',
  );
}

async function eventually(done: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
  return true;
}

/**
 * Steps 8 to 10: money (API.md §9, §10) with the `test` provider, which stands in for Stripe where
 * the service runs in development: an order is paid only when the provider confirms the money, an
 * admin refunds part of it, money that arrives after the hold revives the order, and a cancelled
 * order's money goes back by itself.
 */
async function money({
  alice,
  ada,
  tag,
}: {
  alice: OrderClient;
  ada: OrderClient;
  tag: string;
}): Promise<void> {
  const quiet = ada.clone({ fetch });
  const { value: lamp } = await alice.createProduct({
    sku: `LAMP-${tag}`,
    slug: `lamp-${tag}`,
    name: 'Desk lamp',
    priceCents: 4500,
    currency: 'EUR',
    stock: 10,
  });

  step(
    8,
    'Paying, and a partial refund',
    'Ada pays with the test provider (Stripe’s stand-in in development); Alice refunds €5 of it.',
  );
  const { order: lampOrder } = await ada.placeOrder([{ productId: lamp.id, quantity: 2 }]);
  const payment = await ada.openPayment(lampOrder.id, 'test');
  check(
    payment.status === 'requires_action' && payment.clientSecret !== null,
    `201 payment requires_action for the total (${payment.amountCents}), with the clientSecret a browser confirms it with; the order is still pending`,
  );
  await ada.completeTestPayment(payment.id);
  const { value: paid } = await quiet.getOrder(lampOrder.id);
  check(
    paid.status === 'paid' && paid.paymentStatus === 'paid' && paid.paidCents === 9000,
    'the provider’s confirmation paid the order (history `pay` by the service)',
  );
  const refund = await alice.refund(lampOrder.id, 500, 'a scratch on the base');
  check(
    refund.status === 'pending',
    'the refund is recorded pending, carried out after the commit',
  );
  check(
    await eventually(async () => (await quiet.getOrder(lampOrder.id)).value.refundedCents === 500),
    'moments later the provider has carried it out once: refundedCents 500, paymentStatus partially_refunded',
  );
  const tooMuch = await alice.refund(lampOrder.id, 9000, 'everything').catch((e: unknown) => e);
  check(
    tooMuch instanceof ApiProblem &&
      tooMuch.code === 'REFUND_EXCEEDS_BALANCE' &&
      tooMuch.body.refundableCents === 8500,
    '409 REFUND_EXCEEDS_BALANCE: only 8500 are left to refund',
  );

  step(
    9,
    'Money after the hold',
    'Ada opens a payment, then her bank takes longer than the hold; the money still arrives.',
  );
  const { order: slow } = await ada.placeOrder([{ productId: lamp.id, quantity: 1 }]);
  const holdMs = holdRemainingMs(slow, Date.parse(slow.createdAt)) ?? 0;
  const slowPayment = await ada.openPayment(slow.id, 'test');
  if (holdMs > MAX_HOLD_WAIT_MS) {
    console.log(
      `   ${yellow('–')} skipped: this service holds an order for ${seconds(holdMs)}, the demo waits at most ${seconds(MAX_HOLD_WAIT_MS)}`,
    );
    await ada.completeTestPayment(slowPayment.id);
  } else {
    console.log(dim(`     … waiting ${seconds(holdMs)} for the hold to end`));
    await sleep(holdMs + 1500);
    const { value: expired } = await quiet.getOrder(slow.id);
    check(
      expired.status === 'expired',
      'the hold ended: the order is expired, its lamp back on sale',
    );
    await ada.completeTestPayment(slowPayment.id);
    const { value: revived } = await quiet.getOrder(slow.id);
    check(
      revived.status === 'paid' && revived.paidCents === 4500,
      'the money arrived and the lamp was still there: expired → paid (history `revive`), never neither the order nor the money',
    );
  }

  step(
    10,
    'A cancelled order’s money comes back',
    'Ada pays for another lamp, then changes her mind and cancels.',
  );
  const { order: regret } = await ada.placeOrder([{ productId: lamp.id, quantity: 1 }]);
  await ada.payWithTestProvider(regret.id);
  await ada.transition(regret.id, 'cancel');
  const [owed] = await quiet.refunds(regret.id);
  check(
    owed?.reason === 'order_cancelled' && owed.amountCents === 4500,
    'the cancel owed a full refund in its own transaction (reason order_cancelled)',
  );
  check(
    await eventually(
      async () => (await quiet.getOrder(regret.id)).value.paymentStatus === 'refunded',
    ),
    'carried out once at the provider: paymentStatus refunded, refundedCents 4500',
  );
}

/**
 * The longest hold the demo waits out. `npm run demo` starts its service with a 3 s hold; a service
 * given with --url may hold for the default 30 minutes, and a demo must not sit that long.
 */
const MAX_HOLD_WAIT_MS = 20_000;
/** How long after the hold ends the sweeper gets to put the units back (it runs every few seconds). */
const SWEEP_GRACE_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

async function abandonedCheckout({
  alice,
  ada,
  grace,
  tag,
}: {
  alice: OrderClient;
  ada: OrderClient;
  grace: OrderClient;
  tag: string;
}): Promise<void> {
  step(
    7,
    'An abandoned checkout’s units go back on sale',
    'Ada takes the last 2 festival tickets and walks away without paying; Grace wants them too.',
  );
  const { value: tickets } = await alice.createProduct({
    sku: `TICKET-${tag}`,
    slug: `ticket-${tag}`,
    name: 'Festival ticket',
    priceCents: 8900,
    currency: 'EUR',
    stock: 2,
  });
  const { order: abandoned } = await ada.placeOrder([{ productId: tickets.id, quantity: 2 }]);
  const placedAt = Date.now();
  // The hold as the server set it (expiresAt − createdAt, both by its clock): our clock's skew
  // from the server's does not enter, so the wait below is measured from when the answer arrived.
  const holdMs = holdRemainingMs(abandoned, Date.parse(abandoned.createdAt)) ?? 0;
  // Looked at quietly (no narration): the narrator's own glances at the shop, not the story's requests.
  const quiet = alice.clone({ fetch });
  const held = (await quiet.getStock(tickets.id)).value.stock;
  console.log(
    `     expiresAt ${abandoned.expiresAt}: held for Ada for ${seconds(holdMs)}, unpaid; stock ${held} meanwhile`,
  );
  if (holdMs > MAX_HOLD_WAIT_MS) {
    console.log(
      `   ${yellow('–')} skipped: this service holds an order for ${seconds(holdMs)} (its ORDER_HOLD_SECONDS), the demo waits at most ${seconds(MAX_HOLD_WAIT_MS)}`,
    );
    console.log(
      '     (npm run demo without --url holds for 3 s.) Ada cancels, so the tickets are not held for nothing.',
    );
    await ada.transition(abandoned.id, 'cancel');
    return;
  }

  console.log(dim(`     … Ada is gone; waiting ${seconds(holdMs)} for the hold to end`));
  await sleep(placedAt + holdMs - Date.now());
  // Polled every 250 ms until the sweeper has run, bounded: a few seconds past the hold's end.
  let stock = (await quiet.getStock(tickets.id)).value.stock;
  while (stock < 2 && Date.now() < placedAt + holdMs + SWEEP_GRACE_MS) {
    await sleep(250);
    stock = (await quiet.getStock(tickets.id)).value.stock;
  }
  console.log(
    stock === 2
      ? `     ${seconds(Date.now() - placedAt)} after the placement the sweeper has expired her order: stock back to ${stock}`
      : `     not swept yet (stock ${stock}); a placement short of stock releases expired holds itself`,
  );

  // A refusal is narrated by its exchange above; here it only fails the check.
  const bought = await grace.placeOrder([{ productId: tickets.id, quantity: 2 }]).then(
    ({ replayed }) => !replayed,
    () => false,
  );
  check(bought, '201: Grace buys the 2 tickets; they went back on sale when Ada’s hold ended');
  const late = await ada.openPayment(abandoned.id, 'test').catch((e: unknown) => e);
  check(
    late instanceof ApiProblem &&
      late.code === 'ILLEGAL_STATE_TRANSITION' &&
      late.body.currentStatus === 'expired',
    'Ada comes back to pay: 409 ILLEGAL_STATE_TRANSITION, currentStatus "expired"; nothing is charged for tickets sold to Grace',
  );
  const { value: gone } = await ada.getOrder(abandoned.id);
  check(
    gone.status === 'expired' && gone.expiresAt === null && gone.allowedTransitions.length === 0,
    'her order is expired for good: no hold (expiresAt null), no action left',
  );
}

/** The body of every webhook delivery, as the OpenAPI document describes it. */
type OrderEvent = components['schemas']['OrderEventDto'];

interface Heard {
  webhookId: string;
  event: OrderEvent;
}

/**
 * The shop's side of the webhooks: a receiver on 127.0.0.1 subscribed to every order event. Each
 * delivery is verified with the Standard Webhooks library over its raw body, answered 204 at once,
 * and printed as one line as it arrives. `skipped` says why there is none.
 */
interface ShopReceiver {
  heard: Heard[];
  /** Deliveries whose signature did not verify (answered 401). */
  refused: number;
  skipped?: string;
  close(): Promise<void>;
}

/** How long the last step waits for deliveries (the relay looks for due ones twice a second). */
const DELIVERY_WAIT_MS = 15_000;

const LOOPBACK = /^(localhost|127(\.\d+){3}|\[::1\])$/;

async function listenForOrderEvents(baseUrl: string, admin: OrderClient): Promise<ShopReceiver> {
  const shop: ShopReceiver = { heard: [], refused: 0, close: () => Promise.resolve() };
  const host = new URL(baseUrl).hostname;
  if (!LOOPBACK.test(host)) {
    shop.skipped = `the service at ${host} cannot reach a receiver on this machine's 127.0.0.1`;
    console.log(`   ${yellow('–')} no webhook receiver: ${shop.skipped}`);
    return shop;
  }
  /** The subscription's signing key, once its 201 has arrived. */
  const signing: { webhook?: Webhook } = {};
  const server = createServer((req, res) => void receive(req, res).catch(() => res.destroy()));
  async function receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    const header = (name: string) => String(req.headers[name] ?? '');
    const headers = {
      'webhook-id': header('webhook-id'),
      'webhook-timestamp': header('webhook-timestamp'),
      'webhook-signature': header('webhook-signature'),
    };
    // Before the subscription's 201 there is no secret yet: "not now", and the service retries.
    if (!signing.webhook) {
      res.writeHead(503).end();
      return;
    }
    let event: OrderEvent;
    try {
      event = signing.webhook.verify(rawBody, headers) as OrderEvent;
    } catch {
      shop.refused++;
      console.log(red(`   ⚡ webhook  ${headers['webhook-id']}: signature invalid, refused (401)`));
      res.writeHead(401).end();
      return;
    }
    shop.heard.push({ webhookId: headers['webhook-id'], event });
    // Answered at once: a shop stores the event and works on it afterwards.
    res.writeHead(204).end();
    const { order } = event.data;
    // The crowd of step 12 is counted there, not heard here one order at a time.
    if (crowdUsers.has(order.userId)) return;
    console.log(
      yellow(
        `   ⚡ webhook  ${event.type.padEnd(17)} order ${order.id.slice(0, 8)}… v${order.version} (signature ok)`,
      ),
    );
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/orders`;
  const stop = () => stopServer(server);

  // Quietly (its 201 carries the signing secret): narrated by the lines below instead.
  const quiet = admin.clone({ fetch });
  const result = await quiet.api.POST('/api/v1/webhooks', { body: { url, events: ['*'] } });
  console.log(dim(`   alice  → POST /api/v1/webhooks  {"url":"${url}","events":["*"]}`));
  if (!result.data) {
    const problem = result.error as { code?: string; errors?: { message: string }[] } | undefined;
    await stop();
    if (result.response.status !== 400) {
      throw new Error(`subscribing failed: ${result.response.status} ${JSON.stringify(problem)}`);
    }
    // A production service refuses a private receiver (WEBHOOK_ALLOW_PRIVATE_URLS is off).
    shop.skipped = `this service posts only to public addresses (400 ${problem?.code}: ${problem?.errors?.[0]?.message ?? 'a private address'})`;
    console.log(dim(`   alice  ← 400 ${problem?.code}`));
    console.log(`   ${yellow('–')} no webhook receiver: ${shop.skipped}`);
    return shop;
  }
  const { id } = result.data;
  signing.webhook = new Webhook(result.data.secret);
  console.log(
    dim(`   alice  ← 201 webhook ${id.slice(0, 8)}…, secret whsec_… (kept by the receiver only)`),
  );
  console.log(
    `   ${yellow('⚡')} a webhook receiver on ${url} now hears every order event (lines marked ⚡)`,
  );
  shop.close = async () => {
    shop.close = () => Promise.resolve();
    try {
      console.log(dim(`   alice  → DELETE /api/v1/webhooks/${id.slice(0, 8)}…`));
      const gone = await quiet.api.DELETE('/api/v1/webhooks/{id}', { params: { path: { id } } });
      console.log(dim(`   alice  ← ${gone.response.status} unsubscribed`));
    } finally {
      await stop();
    }
  };
  return shop;
}

function stopServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * The last step: every change of Ada's shipped order (step 5) reached the receiver exactly once,
 * verified, in version order; the refused cancel sent nothing.
 */
async function webhooksHeard(shop: ShopReceiver, order: Order): Promise<void> {
  step(
    13,
    'The shop heard every change, once and in order',
    shop.skipped
      ? 'A shop’s webhook receiver would have verified and printed each order event as it arrived.'
      : 'All along, a webhook receiver has verified and printed each order event as it arrived (⚡). Ada’s shipped order from step 5:',
  );
  if (shop.skipped) {
    console.log(`   ${yellow('–')} skipped: ${shop.skipped}`);
    console.log(
      '     (npm run demo without --url runs its service in development, which allows it.)',
    );
    await shop.close();
    return;
  }
  const expected = ['order.created', 'order.paid', 'payment.succeeded', 'order.shipped'];
  const versions = [1, 2, 2, 3];
  const ofOrder = () => shop.heard.filter((h) => h.event.data.order.id === order.id);
  const deadline = Date.now() + DELIVERY_WAIT_MS;
  while (ofOrder().length < expected.length && Date.now() < deadline) await sleep(100);
  // A moment more: a duplicate or a late event would show up now.
  await sleep(600);
  const heard = ofOrder();
  console.log(
    `     ${heard.map((h) => `${h.event.type} v${h.event.data.order.version}`).join(' → ') || 'nothing'}`,
  );
  const ids = new Set(heard.map((h) => h.webhookId));
  check(
    heard.map((h) => h.event.type).join() === expected.join() &&
      heard.every((h, i) => h.event.data.order.version === versions[i]) &&
      ids.size === heard.length,
    `${expected.join(', ')}: each exactly once (${ids.size} distinct webhook-id), in version order 1, 2, 2, 3; the refused cancel sent nothing`,
  );
  check(
    shop.refused === 0 && heard.every((h) => h.webhookId === h.event.id),
    `every delivery verified with standardwebhooks (${shop.heard.length} events heard in the session, none refused); webhook-id is the event id`,
  );
  await shop.close();
}

/** Lets a client read, then holds its PATCH until released: makes "at the same moment" repeatable. */
function holdPatch(original: OrderClient): {
  client: OrderClient;
  read: Promise<void>;
  release: () => void;
} {
  let release!: () => void;
  let markRead!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const read = new Promise<void>((r) => (markRead = r));
  const inner = original.options.fetch ?? fetch;
  const client = original.clone({
    fetch: async (input: Request | string | URL, init?: RequestInit) => {
      if (input instanceof Request && input.method === 'PATCH') await released;
      const response = await inner(input, init);
      if (input instanceof Request && input.method === 'GET') markRead();
      return response;
    },
  });
  return { client, read, release };
}

main().catch((err: unknown) => {
  console.error(red(`demo failed: ${err instanceof Error ? err.stack : String(err)}`));
  process.exitCode = 1;
});
