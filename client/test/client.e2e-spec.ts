import { randomBytes } from 'node:crypto';
import { JwtService } from '@nestjs/jwt';
import {
  ApiProblem,
  describePriceChange,
  holdRemainingMs,
  MergeConflict,
  OrderClient,
  priceChange,
  type ProblemCode,
  retry,
} from '../src/index.ts';
import type { ProblemCode as ServerProblemCode } from '../../src/common/problems/problem-catalogue.ts';
import { account } from '../../test/support/http.ts';
import { createTestApp, type TestApp } from '../../test/support/test-app.ts';

// The client's code union (generated from openapi.json) is exactly the server's catalogue.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameCodes: Same<ProblemCode, ServerProblemCode> = true;

/** What a caller writes: an exhaustive switch (adding a code without a case does not compile). */
function advice(code: ProblemCode): string {
  switch (code) {
    case 'VALIDATION_FAILED':
    case 'PAYLOAD_TOO_LARGE':
    case 'UNSUPPORTED_MEDIA_TYPE':
      return 'fix the input';
    case 'UNAUTHENTICATED':
      return 'log in';
    case 'FORBIDDEN':
    case 'NOT_FOUND':
    case 'RESOURCE_IN_USE':
    case 'INTERNAL':
      return 'give up';
    case 'EMAIL_TAKEN':
    case 'SKU_TAKEN':
    case 'SLUG_TAKEN':
    case 'IDEMPOTENCY_KEY_REUSED':
    case 'UNKNOWN_PRODUCT':
    case 'PRODUCT_UNAVAILABLE':
    case 'INSUFFICIENT_STOCK':
    case 'PROMOTION_CODE_TAKEN':
    case 'PROMOTION_NOT_APPLICABLE':
      return 'change the request';
    case 'PRICE_CHANGED':
      return 'confirm the new total';
    case 'VERSION_MISMATCH':
    case 'PRECONDITION_FAILED':
    case 'PRECONDITION_REQUIRED':
    case 'ILLEGAL_STATE_TRANSITION':
    case 'ORDER_NOT_EDITABLE':
    case 'DELIVERY_NOT_FAILED':
    case 'PAYMENT_IN_PROGRESS':
    case 'PAYMENT_NOT_CANCELABLE':
    case 'PAYMENT_NOT_OPEN':
    case 'REFUND_NOT_FAILED':
      return 'refetch and decide';
    case 'PAYMENT_PROVIDER_REJECTED':
    case 'PAYMENT_AMOUNT_MISMATCH':
    case 'REFUND_EXCEEDS_BALANCE':
    case 'WEBHOOK_SIGNATURE_INVALID':
      return 'change the request';
    case 'IDEMPOTENCY_KEY_IN_USE':
    case 'RATE_LIMITED':
    case 'SERVICE_UNAVAILABLE':
      return 'retry later';
  }
}

describe('the typed client against the real service', () => {
  let t: TestApp;
  let adminLogin: { id: string; email: string; password: string };
  const client = (options: { fetch?: typeof fetch } = {}): OrderClient =>
    new OrderClient({ baseUrl: t.baseUrl, ...options });
  const asAdmin = async (options: { fetch?: typeof fetch } = {}): Promise<OrderClient> => {
    const c = client(options);
    await c.login(adminLogin.email, adminLogin.password);
    return c;
  };
  const newProduct = (stock = 10) => {
    const tag = randomBytes(4).toString('hex');
    return {
      sku: `C-${tag}`,
      slug: `c-${tag}`,
      name: `Mug ${tag}`,
      priceCents: 900,
      currency: 'EUR',
      stock,
    };
  };

  beforeAll(async () => {
    t = await createTestApp();
    const admin = await account(t, 'admin');
    adminLogin = { id: admin.id, email: admin.email, password: admin.password };
  });
  afterAll(() => t.close());

  it('surfaces problems as one ApiProblem discriminated by code', async () => {
    expect(sameCodes).toBe(true);
    const c = client();
    const email = `client-${Date.now()}@example.com`;
    await c.register(email, 'long enough password', 'Ada');
    const error = await c
      .register(email.toUpperCase(), 'long enough password', 'Ada')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiProblem);
    expect(error).toMatchObject({ code: 'EMAIL_TAKEN', status: 409, body: { field: 'email' } });
    expect(advice((error as ApiProblem).code)).toBe('change the request');
  });

  describe('with a token that has expired', () => {
    /** Signed with the test app's secret, so only its `exp` makes it stale. */
    const expiredToken = (sub: string): Promise<string> =>
      new JwtService({ secret: 'test-secret-that-is-long-enough-for-hs256-0123456789' }).signAsync(
        { sub, role: 'admin', exp: Math.floor(Date.now() / 1000) - 60 },
        { algorithm: 'HS256' },
      );
    /** A fetch that notes the Authorization header each request went out with. */
    const recording =
      (sent: { path: string; authorization: string | null }[]): typeof fetch =>
      async (input: Request | string | URL, init?: RequestInit) => {
        if (input instanceof Request) {
          sent.push({
            path: new URL(input.url).pathname,
            authorization: input.headers.get('authorization'),
          });
        }
        return fetch(input, init);
      };

    it('logs in again, sending no token to login or register', async () => {
      const sent: { path: string; authorization: string | null }[] = [];
      const c = new OrderClient({
        baseUrl: t.baseUrl,
        token: await expiredToken(adminLogin.id),
        fetch: recording(sent),
      });
      await c.register(`again-${Date.now()}@example.com`, 'long enough password', 'Again');
      await c.login(adminLogin.email, adminLogin.password);
      const { value: p } = await c.createProduct(newProduct()); // admin-only: the new token is used
      expect(p.id).toEqual(expect.any(String));
      expect(sent.map((r) => [r.path, r.authorization === null])).toEqual([
        ['/api/v1/auth/register', true],
        ['/api/v1/auth/login', true],
        ['/api/v1/products', false],
      ]);
    });

    it('drops the stale token when the login is refused', async () => {
      const sent: { path: string; authorization: string | null }[] = [];
      const c = new OrderClient({
        baseUrl: t.baseUrl,
        token: await expiredToken(adminLogin.id),
        fetch: recording(sent),
      });
      const refused = await c.login(adminLogin.email, 'not the password').catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
      const page = await c.api.GET('/api/v1/products', { params: { query: { limit: 1 } } });
      expect(page.response.status).toBe(200);
      expect(sent.at(-1)).toEqual({ path: '/api/v1/products', authorization: null });
    });
  });

  /** A fetch that holds this client's PATCHes until `release` resolves: the other writer goes first. */
  const heldPatches =
    (release: Promise<unknown>): typeof fetch =>
    async (input: Request | string | URL, init?: RequestInit) => {
      if (input instanceof Request && input.method === 'PATCH') await release;
      return fetch(input, init);
    };

  it('lands both of two concurrent edits of disjoint fields (one is merged after a 412)', async () => {
    const alice = await asAdmin();
    const { value: p } = await alice.createProduct(newProduct());
    let done!: () => void;
    const aliceDone = new Promise<void>((r) => (done = r));
    const bob = await asAdmin({ fetch: heldPatches(aliceDone) });
    const bobEdit = bob.update('products', p.id, () => ({ priceCents: 1250 }));
    await new Promise((r) => setTimeout(r, 100)); // Bob has read version 1
    await alice.update('products', p.id, () => ({ name: 'Renamed by Alice' }));
    done();
    const final = await bobEdit;
    expect(final).toMatchObject({ name: 'Renamed by Alice', priceCents: 1250, version: 3 });
  });

  it('rejects concurrent edits of the same field with a typed conflict holding base, mine and theirs', async () => {
    const alice = await asAdmin();
    const { value: p } = await alice.createProduct(newProduct());
    let done!: () => void;
    const aliceDone = new Promise<void>((r) => (done = r));
    const bob = await asAdmin({ fetch: heldPatches(aliceDone) });
    const bobEdit = bob
      .update('products', p.id, () => ({ name: 'Bob’s name' }))
      .catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    await alice.update('products', p.id, () => ({ name: 'Alice’s name' }));
    done();
    const conflict = await bobEdit;
    expect(conflict).toBeInstanceOf(MergeConflict);
    expect((conflict as MergeConflict).fields).toEqual({
      name: { base: p.name, mine: 'Bob’s name', theirs: 'Alice’s name' },
    });
    const now = await alice.getProduct(p.id);
    expect(now.value.name).toBe('Alice’s name');
  });

  describe('stock, its own resource', () => {
    /** Holds this client's writes (`method`) until `release`; `read` resolves once a GET was answered. */
    const holdWrites = (method: string, release: Promise<unknown>) => {
      let markRead!: () => void;
      const read = new Promise<void>((r) => (markRead = r));
      const writes: number[] = [];
      const held = (async (input: Request | string | URL, init?: RequestInit) => {
        const request = input instanceof Request ? input : undefined;
        if (request?.method === method) await release;
        const response = await fetch(input, init);
        if (request?.method === method) writes.push(response.status);
        if (request?.method === 'GET') markRead();
        return response;
      }) as typeof fetch;
      return { fetch: held, read, writes };
    };
    const shopper = async (): Promise<OrderClient> => {
      const c = client();
      const email = `stock-${randomBytes(4).toString('hex')}@example.com`;
      await c.register(email, 'long enough password', 'Shopper');
      await c.login(email, 'long enough password');
      return c;
    };

    it('reads the stock with its own ETag; a product edit never sees it, and sales between the read and the write leave it at one attempt', async () => {
      const admin = await asAdmin();
      const { value: p, etag: productEtag } = await admin.createProduct(newProduct(10));
      expect(p).not.toHaveProperty('stock');
      const stock = await admin.getStock(p.id);
      expect(stock.value).toMatchObject({ productId: p.id, stock: 10, version: 1 });
      expect(stock.etag).toMatch(/^"/);
      expect(stock.etag).not.toBe(productEtag);
      let sold!: () => void;
      const sales = new Promise<void>((r) => (sold = r));
      const held = holdWrites('PATCH', sales);
      const merchant = await asAdmin({ fetch: held.fetch });
      const edit = merchant.update('products', p.id, () => ({ priceCents: 1100 }));
      await held.read;
      const buyer = await shopper();
      for (let i = 0; i < 3; i++) await buyer.placeOrder([{ productId: p.id, quantity: 1 }]);
      sold();
      const edited = await edit;
      expect(held.writes).toEqual([200]);
      expect(edited).toMatchObject({ priceCents: 1100, version: 2 });
      expect(edited).not.toHaveProperty('stock');
      expect((await admin.getStock(p.id)).value).toMatchObject({ stock: 7, version: 4 });
    });

    it('setStock merges the sales made since its read into the count (412, then the level minus them)', async () => {
      const admin = await asAdmin();
      const { value: p } = await admin.createProduct(newProduct(50));
      let sold!: () => void;
      const sales = new Promise<void>((r) => (sold = r));
      const held = holdWrites('PUT', sales);
      const counter = await asAdmin({ fetch: held.fetch });
      const take = counter.setStock(p.id, (current) => {
        expect(current.stock).toBe(50);
        return 40; // counted on the shelf
      });
      await held.read;
      const buyer = await shopper();
      await buyer.placeOrder([{ productId: p.id, quantity: 2 }]);
      await buyer.placeOrder([{ productId: p.id, quantity: 1 }]);
      sold();
      const level = await take;
      expect(held.writes).toEqual([412, 200]);
      // The 3 units sold after the count count against it.
      expect(level).toMatchObject({ productId: p.id, stock: 37, version: 4 });
      expect((await admin.getStock(p.id)).value.stock).toBe(37);
    });

    it('setStock answers a MergeConflict on stock when more sold since the read than the count holds', async () => {
      const admin = await asAdmin();
      const { value: p } = await admin.createProduct(newProduct(5));
      let sold!: () => void;
      const sales = new Promise<void>((r) => (sold = r));
      const held = holdWrites('PUT', sales);
      const counter = await asAdmin({ fetch: held.fetch });
      const take = counter.setStock(p.id, () => 1).catch((e: unknown) => e);
      await held.read;
      await (await shopper()).placeOrder([{ productId: p.id, quantity: 3 }]);
      sold();
      const conflict = await take;
      expect(held.writes).toEqual([412]);
      expect(conflict).toBeInstanceOf(MergeConflict);
      expect((conflict as MergeConflict).fields).toEqual({
        stock: { base: 5, mine: 1, theirs: 2 },
      });
      expect((await admin.getStock(p.id)).value.stock).toBe(2);
    });

    it('setStock gives up on a product selling between every read and write, naming If-Match: * and adjustStock', async () => {
      const admin = await asAdmin();
      const { value: p } = await admin.createProduct(newProduct(50));
      const buyer = await shopper();
      const writes: number[] = [];
      // A sale commits before each of the stock-take's writes: every one of them is stale.
      const selling = (async (input: Request | string | URL, init?: RequestInit) => {
        const request = input instanceof Request ? input : undefined;
        if (request?.method === 'PUT') await buyer.placeOrder([{ productId: p.id, quantity: 1 }]);
        const response = await fetch(input, init);
        if (request?.method === 'PUT') writes.push(response.status);
        return response;
      }) as typeof fetch;
      const counter = await asAdmin({ fetch: selling });
      const gaveUp = await counter
        .setStock(p.id, () => 40, { attempts: 3 })
        .catch((e: unknown) => e);
      expect(writes).toEqual([412, 412, 412]);
      expect(gaveUp).toBeInstanceOf(Error);
      expect((gaveUp as Error).message).toMatch(/after 3 attempts/);
      expect((gaveUp as Error).message).toContain('`If-Match: *`');
      expect((gaveUp as Error).message).toContain('adjustStock');
      expect((await admin.getStock(p.id)).value.stock).toBe(47);
    });

    it('adjustStock answers the stock with its ETag', async () => {
      const admin = await asAdmin();
      const { value: p } = await admin.createProduct(newProduct(5));
      const adjusted = await admin.adjustStock(p.id, 4, 'delivery');
      expect(adjusted.value).toMatchObject({ productId: p.id, stock: 9, version: 2 });
      expect(adjusted.etag).toBe((await admin.getStock(p.id)).etag);
    });
  });

  describe('editing an order', () => {
    const asShopper = async (options: { fetch?: typeof fetch } = {}): Promise<OrderClient> => {
      const c = client(options);
      const email = `editor-${randomBytes(4).toString('hex')}@example.com`;
      await c.register(email, 'long enough password', 'Editor');
      await c.login(email, 'long enough password');
      return c;
    };
    /**
     * Holds this client's PATCHes until `release` resolves and counts them; `read` resolves once its
     * GET has been answered: the other writer then goes first, with no timing guess.
     */
    const readThenHold = (release: Promise<unknown>) => {
      let markRead!: () => void;
      const read = new Promise<void>((r) => (markRead = r));
      const patches: number[] = [];
      const held = (async (input: Request | string | URL, init?: RequestInit) => {
        if (input instanceof Request && input.method === 'PATCH') await release;
        const response = await fetch(input, init);
        if (input instanceof Request && input.method === 'PATCH') patches.push(response.status);
        if (input instanceof Request && input.method === 'GET') markRead();
        return response;
      }) as typeof fetch;
      return { fetch: held, read, patches };
    };
    const products = async (admin: OrderClient, ...prices: number[]) =>
      Promise.all(
        prices.map(
          async (priceCents) => (await admin.createProduct({ ...newProduct(), priceCents })).value,
        ),
      );

    it('replaces the lines, keeps the prices and recomputes the total', async () => {
      const admin = await asAdmin();
      const [a, b] = await products(admin, 500, 700);
      const shopper = await asShopper();
      const { order } = await shopper.placeOrder([{ productId: a.id, quantity: 1 }]);
      await admin.update('products', a.id, () => ({ priceCents: 999 })); // not this order's price
      const edited = await shopper.editOrder(order.id, (lines) => ({
        ...lines,
        [a.id]: 3,
        [b.id]: 2,
      }));
      expect(edited.items.map((i) => [i.productId, i.quantity, i.unitPriceCents])).toEqual(
        expect.arrayContaining([
          [a.id, 3, 500],
          [b.id, 2, 700],
        ]),
      );
      expect(edited.items).toHaveLength(2);
      expect(edited).toMatchObject({
        totalCents: 3 * 500 + 2 * 700,
        status: 'pending',
        version: order.version + 1,
        expiresAt: order.expiresAt, // an edit does not extend the hold
      });
      expect((await admin.getStock(a.id)).value.stock).toBe(7);
      expect((await admin.getStock(b.id)).value.stock).toBe(8);
    });

    it('merges an admin’s and the owner’s concurrent edits of different products after a 412', async () => {
      const admin = await asAdmin();
      const [a, b, c] = await products(admin, 100, 200, 300);
      let done!: () => void;
      const adminDone = new Promise<void>((r) => (done = r));
      const held = readThenHold(adminDone);
      const owner = await asShopper({ fetch: held.fetch });
      const { order } = await owner.placeOrder([
        { productId: a.id, quantity: 1 },
        { productId: b.id, quantity: 1 },
      ]);
      const ownerEdit = owner.editOrder(order.id, (lines) => ({ ...lines, [a.id]: 2 }));
      await held.read; // the owner has read version 1
      // The admin removes b and adds c (b at 0: removed).
      await admin.editOrder(order.id, (lines) => ({ ...lines, [b.id]: 0, [c.id]: 3 }));
      done();
      const final = await ownerEdit;
      expect(held.patches).toEqual([412, 200]);
      expect(Object.fromEntries(final.items.map((i) => [i.productId, i.quantity]))).toEqual({
        [a.id]: 2,
        [c.id]: 3,
      });
      expect(final).toMatchObject({ totalCents: 2 * 100 + 3 * 300, version: 3 });
      const stock = await Promise.all(
        [a, b, c].map(async (p) => (await admin.getStock(p.id)).value.stock),
      );
      expect(stock).toEqual([8, 10, 7]);
    });

    it('rejects concurrent changes of one product’s quantity with a MergeConflict', async () => {
      const admin = await asAdmin();
      const [a, b] = await products(admin, 100, 200);
      let done!: () => void;
      const adminDone = new Promise<void>((r) => (done = r));
      const held = readThenHold(adminDone);
      const owner = await asShopper({ fetch: held.fetch });
      const { order } = await owner.placeOrder([
        { productId: a.id, quantity: 1 },
        { productId: b.id, quantity: 1 },
      ]);
      const ownerEdit = owner
        .editOrder(order.id, (lines) => ({ ...lines, [a.id]: 2 }))
        .catch((e: unknown) => e);
      await held.read;
      await admin.editOrder(order.id, (lines) => ({ ...lines, [a.id]: 3 }));
      done();
      const conflict = await ownerEdit;
      expect(conflict).toBeInstanceOf(MergeConflict);
      expect((conflict as MergeConflict).fields).toEqual({
        [a.id]: { base: 1, mine: 2, theirs: 3 },
      });
      expect((conflict as MergeConflict).current).toMatchObject({ id: order.id, version: 2 });
      expect(held.patches).toEqual([412]); // nothing was written for the owner
      // The ETag is the owner's: an order's representation (its allowedTransitions) is per caller.
      const now = await owner.clone({ fetch }).getOrder(order.id);
      expect(now.etag).toBe((conflict as MergeConflict).currentEtag);
      expect(now.value.items.find((i) => i.productId === a.id)?.quantity).toBe(3);
    });

    it('refuses to edit a paid order: ORDER_NOT_EDITABLE with the current status', async () => {
      const admin = await asAdmin();
      const [a] = await products(admin, 100);
      const shopper = await asShopper();
      const { order } = await shopper.placeOrder([{ productId: a.id, quantity: 1 }]);
      await shopper.payWithTestProvider(order.id);
      const error = await shopper
        .editOrder(order.id, (lines) => ({ ...lines, [a.id]: 2 }))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ApiProblem);
      expect(error).toMatchObject({
        code: 'ORDER_NOT_EDITABLE',
        status: 409,
        body: { currentStatus: 'paid' },
      });
    });

    it('answers ORDER_NOT_EDITABLE, not a conflict, when the order was paid after the read', async () => {
      const admin = await asAdmin();
      const [a] = await products(admin, 100);
      let done!: () => void;
      const paid = new Promise<void>((r) => (done = r));
      const held = readThenHold(paid);
      const owner = await asShopper({ fetch: held.fetch });
      const { order } = await owner.placeOrder([{ productId: a.id, quantity: 1 }]);
      const ownerEdit = owner
        .editOrder(order.id, (lines) => ({ ...lines, [a.id]: 2 }))
        .catch((e: unknown) => e);
      await held.read;
      await owner.clone({ fetch }).payWithTestProvider(order.id);
      done();
      const error = await ownerEdit;
      expect(held.patches).toEqual([412, 409]);
      expect(error).toMatchObject({ code: 'ORDER_NOT_EDITABLE', body: { currentStatus: 'paid' } });
    });

    it('pays with the test provider, refunds part as an admin, and refuses more than the balance', async () => {
      const admin = await asAdmin();
      const [a] = await products(admin, 100);
      const shopper = await asShopper();
      const { order } = await shopper.placeOrder([{ productId: a.id, quantity: 2 }]);
      const paid = await shopper.payWithTestProvider(order.id);
      expect(paid).toMatchObject({ status: 'paid', paidCents: order.totalCents, refundedCents: 0 });
      const [payment] = await shopper.payments(order.id);
      expect(payment).toMatchObject({ provider: 'test', status: 'succeeded', clientSecret: null });
      const refund = await admin.refund(order.id, 100, 'a scratch', { idempotencyKey: 'r-1' });
      expect(refund).toMatchObject({ status: 'pending', amountCents: 100 });
      expect(await admin.refund(order.id, 100, 'a scratch', { idempotencyKey: 'r-1' })).toEqual(
        refund,
      );
      const over = await admin
        .refund(order.id, order.totalCents, 'all of it')
        .catch((e: unknown) => e);
      expect(over).toMatchObject({
        code: 'REFUND_EXCEEDS_BALANCE',
        body: { refundableCents: order.totalCents - 100 },
      });
      expect((await shopper.refunds(order.id)).map((r) => r.id)).toEqual([refund.id]);
    });

    it('shows when a pending order’s hold ends, and no hold once it is paid', async () => {
      const admin = await asAdmin();
      const [a] = await products(admin, 100);
      const shopper = await asShopper();
      const before = Date.now();
      const { order } = await shopper.placeOrder([{ productId: a.id, quantity: 1 }]);
      expect(order.expiresAt).toEqual(expect.any(String));
      const ends = Date.parse(order.expiresAt!);
      expect(new Date(ends).toISOString()).toBe(order.expiresAt);
      expect(ends).toBeGreaterThan(Date.now());
      // The default hold (ORDER_HOLD_SECONDS 1800), counted from the placement.
      const hold = ends - Date.parse(order.createdAt);
      expect(Math.abs(hold - 1800 * 1000)).toBeLessThan(1000);
      expect(holdRemainingMs(order)).toBeGreaterThan(1790 * 1000);
      expect(holdRemainingMs(order, before + 1800 * 1000 + 60_000)).toBe(0);
      const { value: read } = await shopper.getOrder(order.id);
      expect(read.expiresAt).toBe(order.expiresAt);
      const paid = await shopper.payWithTestProvider(order.id);
      expect(paid).toMatchObject({ status: 'paid', expiresAt: null, paymentStatus: 'paid' });
      expect(holdRemainingMs(paid)).toBeNull();
      expect((await shopper.getOrder(order.id)).value.expiresAt).toBeNull();
    });
  });

  it('returns the same order when the first checkout attempt is cut off after the server committed', async () => {
    const admin = await asAdmin();
    const { value: p } = await admin.createProduct(newProduct(5));
    let cut = 0;
    const flaky = (async (input: Request | string | URL, init?: RequestInit) => {
      const response = await fetch(input, init);
      if (
        input instanceof Request &&
        input.method === 'POST' &&
        input.url.endsWith('/api/v1/orders') &&
        cut++ === 0
      ) {
        await response.arrayBuffer(); // the server has answered (committed), but we never see it
        throw new TypeError('fetch failed');
      }
      return response;
    }) as typeof fetch;
    const shopper = client({ fetch: flaky });
    const email = `shopper-${Date.now()}@example.com`;
    await shopper.register(email, 'long enough password', 'Shopper');
    await shopper.login(email, 'long enough password');
    const { order, replayed } = await shopper.placeOrder([{ productId: p.id, quantity: 2 }], {
      sleep: async () => undefined,
    });
    expect(cut).toBe(2);
    expect(replayed).toBe(true);
    const [{ n }] = await t.db.query(
      'SELECT count(*)::int AS n FROM orders o JOIN order_items i ON i.order_id = o.id WHERE i.product_id = $1',
      [p.id],
    );
    expect(n).toBe(1);
    expect((await admin.getStock(p.id)).value.stock).toBe(3);
    expect(order.items[0]).toMatchObject({ productId: p.id, quantity: 2 });
  });

  it('does not retry a refusal: INSUFFICIENT_STOCK arrives at once with what is available', async () => {
    const admin = await asAdmin();
    const { value: p } = await admin.createProduct(newProduct(1));
    const error = await admin
      .placeOrder([{ productId: p.id, quantity: 2 }])
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'INSUFFICIENT_STOCK',
      body: { items: [{ requested: 2, available: 1 }] },
    });
  });

  it('manages promotion codes, and shows a PRICE_CHANGED as the new lines to confirm', async () => {
    const admin = await asAdmin();
    const { value: p } = await admin.createProduct(newProduct(5));
    const code = `CLIENT-${randomBytes(3).toString('hex').toUpperCase()}`;
    const created = await admin.createPromotion({ code, percentOff: 10, usageLimit: 1 });
    expect(created.value).toMatchObject({ code, percentOff: 10, timesUsed: 0 });
    const changed = await admin.updatePromotion(created.value.id, { percentOff: 20 }, created.etag);
    expect(changed.value.percentOff).toBe(20);
    expect((await admin.promotions({ limit: 100 })).map((x) => x.code)).toContain(code);
    // The customer was shown 900 × 2 − 10%; the code is 20% now, and the price went up.
    await admin.update('products', p.id, () => ({ priceCents: 1000 }));
    const error = await admin
      .placeOrder([{ productId: p.id, quantity: 2 }], {
        promotionCode: code,
        expectedTotalCents: 1620,
      })
      .catch((e: unknown) => e);
    const change = priceChange(error);
    expect(change).toEqual({
      expectedTotalCents: 1620,
      totalCents: 1600,
      items: [{ productId: p.id, sku: p.sku, name: p.name, unitPriceCents: 1000, quantity: 2 }],
    });
    expect(describePriceChange(change!, 'EUR')).toBe(
      `2 × ${p.name} (${p.sku}) at 10.00 EUR\nTotal now 16.00 EUR (you were shown 16.20 EUR)`,
    );
    const { order } = await admin.placeOrder([{ productId: p.id, quantity: 2 }], {
      promotionCode: code,
      expectedTotalCents: change!.totalCents,
    });
    expect(order).toMatchObject({ subtotalCents: 2000, discountCents: 400, totalCents: 1600 });
    const used = await admin
      .placeOrder([{ productId: p.id, quantity: 1 }], { promotionCode: code })
      .catch((e: unknown) => e);
    expect(used).toMatchObject({ code: 'PROMOTION_NOT_APPLICABLE', body: { reason: 'exhausted' } });
    const fresh = await admin.getPromotion(created.value.id);
    const inUse = await admin
      .deletePromotion(created.value.id, fresh.etag)
      .catch((e: unknown) => e);
    expect(inUse).toMatchObject({ code: 'RESOURCE_IN_USE' });
  });
});

describe('the typed client under rate limiting', () => {
  it('waits for Retry-After and then succeeds', async () => {
    const t = await createTestApp({ RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_SECONDS: '1' });
    try {
      const c = new OrderClient({ baseUrl: t.baseUrl });
      const waits: number[] = [];
      for (let i = 0; i < 3; i++) await fetch(`${t.baseUrl}/api/v1/products?limit=1`);
      const page = await retry(
        async () => {
          const r = await c.api.GET('/api/v1/products', { params: { query: { limit: 1 } } });
          if (r.error) throw new ApiProblem(r.error, r.response.headers);
          return r.data;
        },
        { onRetry: ({ delayMs }) => waits.push(delayMs) },
      );
      expect(page.limit).toBe(1);
      expect(waits.length).toBeGreaterThanOrEqual(1);
      expect(waits[0]).toBeGreaterThanOrEqual(1000);
    } finally {
      await t.close();
    }
  });
});
