import createFetchClient, { type Client } from 'openapi-fetch';
import { type Lines, MergeConflict, mergeLines, type Snapshot, threeWayMerge } from './merge.ts';
import { ApiProblem, isProblemBody } from './problem.ts';
import { retry, type RetryOptions } from './retry.ts';
import type { components, paths } from './schema.ts';

export { ApiProblem, isProblemBody, type ProblemBody, type ProblemCode } from './problem.ts';
export { isNetworkError, retry, RETRYABLE, type RetryOptions } from './retry.ts';
export {
  changedFields,
  type FieldConflict,
  type Lines,
  MergeConflict,
  mergeLines,
  threeWayMerge,
} from './merge.ts';
export type { components, paths } from './schema.ts';

export type Product = components['schemas']['ProductDto'];
/** A product's stock, its own resource with its own version and ETag (API.md §13). */
export type Stock = components['schemas']['StockDto'];
export type User = components['schemas']['UserDto'];
export type Order = components['schemas']['OrderDto'];
/** Every action of the server's transition table (generated into the OpenAPI document from it). */
export type OrderAction = Order['allowedTransitions'][number];
export type OrderLine = components['schemas']['OrderLineInputDto'];
export type Payment = components['schemas']['PaymentDto'];
export type Refund = components['schemas']['RefundDto'];
export type NewProduct = components['schemas']['CreateProductDto'];
export type Promotion = components['schemas']['PromotionDto'];
export type NewPromotion = components['schemas']['CreatePromotionDto'];
export type PromotionChange = components['schemas']['UpdatePromotionDto'];

/** What a 409 PRICE_CHANGED says: the total shown, the total now, and the lines as they would be now. */
export interface PriceChange {
  expectedTotalCents: number;
  totalCents: number;
  items: {
    productId: string;
    sku: string;
    name: string;
    unitPriceCents: number;
    quantity: number;
  }[];
}

/**
 * The new lines and total of a 409 PRICE_CHANGED, to show the customer before they confirm (then
 * place again with `expectedTotalCents: totalCents`); null for any other error.
 */
export function priceChange(error: unknown): PriceChange | null {
  if (!(error instanceof ApiProblem) || error.code !== 'PRICE_CHANGED') return null;
  const { expectedTotalCents, totalCents, items } = error.body as unknown as PriceChange;
  return { expectedTotalCents, totalCents, items };
}

/** A PRICE_CHANGED as text for a confirmation prompt: one line per item, then the totals. */
export function describePriceChange(change: PriceChange, currency = ''): string {
  const money = (cents: number): string =>
    `${(cents / 100).toFixed(2)}${currency ? ` ${currency}` : ''}`;
  return [
    ...change.items.map(
      (l) => `${l.quantity} × ${l.name} (${l.sku}) at ${money(l.unitPriceCents)}`,
    ),
    `Total now ${money(change.totalCents)} (you were shown ${money(change.expectedTotalCents)})`,
  ].join('\n');
}

export interface ClientOptions {
  baseUrl: string;
  token?: string;
  /** A fetch of your own (instrumentation, tests that cut connections). */
  fetch?: typeof fetch;
  retry?: RetryOptions;
  /** A `Consistency-Token` to start from (e.g. another client's `consistencyToken`). */
  consistencyToken?: string;
}

/** A representation with the ETag it was served with. */
export interface Tagged<T> {
  value: T;
  etag: string;
}

type Updatable = { products: Product; users: User };

/**
 * The Consistency-Token the service sends when it could not tell the primary's position: it sends
 * every read to the primary, and a real token replaces it (the service's PRIMARY_ONLY_TOKEN).
 */
const PRIMARY_ONLY_TOKEN = 'ffffffffffffffff';

/**
 * Routes that take credentials instead of a session. A token sent there could only be stale (the
 * reason to log in again) or another account's, and the server has nothing to do with it.
 */
const CREDENTIAL_ROUTES: ReadonlySet<string> = new Set([
  '/api/v1/auth/login',
  '/api/v1/auth/register',
]);

/** An order's lines as `editOrder` hands them to its change: productId → quantity. */
export function linesOf(order: Pick<Order, 'items'>): Lines {
  const lines: Lines = {};
  for (const item of order.items)
    lines[item.productId] = (lines[item.productId] ?? 0) + item.quantity;
  return lines;
}

/**
 * How long a pending order still holds its units (never negative), or null when it holds none (any
 * other status). `now` is this machine's clock: against another host's service, allow for skew.
 */
export function holdRemainingMs(
  order: Pick<Order, 'expiresAt'>,
  now: number = Date.now(),
): number | null {
  return order.expiresAt === null ? null : Math.max(0, Date.parse(order.expiresAt) - now);
}

/**
 * Refuses a request whose path still has a `{name}` without a value: openapi-fetch would send the
 * template itself (`/orders/%7Bid%7D`), and an empty id would name another route (`/orders/`).
 */
function refuseMissingPathParameters(
  schemaPath: string,
  values: Record<string, unknown> = {},
): void {
  for (const [, name] of schemaPath.matchAll(/\{([^}]+)\}/g)) {
    const value = values[name];
    if (typeof value === 'number' || (typeof value === 'string' && value !== '')) continue;
    const got = value === '' ? 'an empty string' : value === null ? 'null' : typeof value;
    throw new TypeError(
      `The path parameter "${name}" of ${schemaPath} is ${got}: nothing was sent`,
    );
  }
}

/** Throws the problem as an ApiProblem; returns the data of a success. */
function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    if (isProblemBody(result.error)) throw new ApiProblem(result.error, result.response.headers);
    throw new Error(`Unexpected ${result.response.status} from ${result.response.url}`);
  }
  return result.data as T;
}

/**
 * A typed client of the order service that resolves conflicts for its caller: problems arrive as one
 * ApiProblem discriminated by `code`, safe failures are retried (one Idempotency-Key per checkout), and
 * `update` merges concurrent edits when they do not overlap.
 */
export class OrderClient {
  readonly api: Client<paths>;
  private token?: string;
  private consistency?: string;

  constructor(readonly options: ClientOptions) {
    this.token = options.token;
    this.consistency = options.consistencyToken;
    this.api = createFetchClient<paths>({ baseUrl: options.baseUrl, fetch: options.fetch });
    this.api.use({
      onRequest: ({ request, schemaPath, params }) => {
        refuseMissingPathParameters(schemaPath, params.path);
        if (this.token && !CREDENTIAL_ROUTES.has(schemaPath)) {
          request.headers.set('Authorization', `Bearer ${this.token}`);
        }
        // Read-your-writes (API.md §12): a standby that has not replayed our last write does not answer.
        if (this.consistency) request.headers.set('Consistency-Token', this.consistency);
        return request;
      },
      onResponse: ({ response }) => {
        this.remember(response.headers.get('consistency-token'));
        return response;
      },
    });
  }

  /**
   * The last `Consistency-Token` the service sent (after a write), sent back on every request so that
   * no read is served older than this client's own writes. Undefined before the first write.
   */
  get consistencyToken(): string | undefined {
    return this.consistency;
  }

  /**
   * Keeps the later of two positions: the service's tokens have one length and sort as strings, so an
   * answer that arrives late (concurrent requests) never takes the client back before a later write.
   */
  private remember(token: string | null): void {
    if (!token) return;
    const held = this.consistency;
    // The newest position wins (answers may arrive out of order), except over the token that only
    // says "read the primary" (the service could not tell its position): any real one replaces it.
    if (
      held === undefined ||
      held === PRIMARY_ONLY_TOKEN ||
      held.length !== token.length ||
      token > held
    )
      this.consistency = token;
  }

  /** The same session (token and consistency token included) with other options, e.g. an instrumented fetch. */
  clone(overrides: Partial<ClientOptions>): OrderClient {
    return new OrderClient({
      ...this.options,
      token: this.token,
      consistencyToken: this.consistency,
      ...overrides,
    });
  }

  /**
   * Logs in and keeps the token for the following calls. A refused login (401) also drops the token
   * held so far: it is stale or belongs to an account the caller just failed to prove, and sending it
   * on would only earn more 401s. Other failures (429, 503, network) leave the session as it was.
   */
  async login(email: string, password: string): Promise<void> {
    const result = await this.api.POST('/api/v1/auth/login', { body: { email, password } });
    if (result.response.status === 401) this.token = undefined;
    this.token = unwrap(result).accessToken;
  }

  async register(email: string, password: string, name: string): Promise<User> {
    return unwrap(
      await this.api.POST('/api/v1/auth/register', { body: { email, password, name } }),
    );
  }

  async getProduct(id: string): Promise<Tagged<Product>> {
    const result = await this.api.GET('/api/v1/products/{id}', { params: { path: { id } } });
    return { value: unwrap(result), etag: result.response.headers.get('etag') ?? '' };
  }

  /** The product's stock level, with the stock's own ETag (a sale moves it; the product's does not). */
  async getStock(productId: string): Promise<Tagged<Stock>> {
    const result = await this.api.GET('/api/v1/products/{id}/stock', {
      params: { path: { id: productId } },
    });
    return { value: unwrap(result), etag: result.response.headers.get('etag') ?? '' };
  }

  /**
   * A stock-take: read the stock, `count` the level (given the stock as read), write it with the
   * stock's If-Match. On 412 (units sold, returned or adjusted since the read) the count is merged,
   * not lost and not blindly overwritten: what happened since the read applies on top of it
   * (mine + theirs − base, the orders placed after the count counting against it) and it is sent
   * again with the ETag the 412 carries. A merge that would go below 0 is a MergeConflict on
   * `stock` (more was sold since than the count holds: count again). Bounded attempts: on a
   * product selling continuously every resend is stale again, and it gives up saying so; there a
   * level sent with `If-Match: *` (it applies from then on) or adjustStock suits.
   */
  async setStock(
    productId: string,
    count: (current: Stock) => number,
    { attempts = 5 }: { attempts?: number } = {},
  ): Promise<Stock> {
    const read = await this.getStock(productId);
    const base = read.value.stock;
    const mine = count(structuredClone(read.value));
    let theirs = read.value;
    let etag = read.etag;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const level = mine + (theirs.stock - base);
      if (level < 0) {
        throw new MergeConflict(
          `products/${productId}/stock`,
          { stock: { base, mine, theirs: theirs.stock } },
          theirs,
          etag,
        );
      }
      try {
        return unwrap(
          await this.api.PUT('/api/v1/products/{id}/stock', {
            params: { path: { id: productId } },
            headers: { 'If-Match': etag },
            body: { stock: level },
          }),
        );
      } catch (error) {
        if (!(error instanceof ApiProblem) || error.code !== 'PRECONDITION_FAILED') throw error;
        theirs = error.body.current as Stock;
        etag = error.body.currentEtag as string;
      }
    }
    throw new Error(
      [
        `Gave up setting the stock of products/${productId} after ${attempts} attempts:`,
        'the stock moved (units sold, returned or adjusted) between each 412 and its resend, as on a',
        'product selling continuously, so a level based on a read is stale every time.',
        'For a level that applies from now on (orders placed after it counting against it), send it',
        "with `If-Match: *`: client.api.PUT('/api/v1/products/{id}/stock', { params: { path: { id } },",
        "headers: { 'If-Match': '*' }, body: { stock } }). For a relative change (a delivery, damaged",
        'units), use adjustStock, which needs no precondition.',
      ].join(' '),
    );
  }

  /** A relative change of stock (no precondition: changes commute); 409 INSUFFICIENT_STOCK below 0. */
  async adjustStock(productId: string, delta: number, reason: string): Promise<Tagged<Stock>> {
    const result = await this.api.POST('/api/v1/products/{id}/stock-adjustments', {
      params: { path: { id: productId } },
      body: { delta, reason },
    });
    return { value: unwrap(result), etag: result.response.headers.get('etag') ?? '' };
  }

  async createProduct(input: NewProduct): Promise<Tagged<Product>> {
    const result = await this.api.POST('/api/v1/products', { body: input });
    return { value: unwrap(result), etag: result.response.headers.get('etag') ?? '' };
  }

  async deleteProduct(id: string, etag: string): Promise<void> {
    unwrap(
      await this.api.DELETE('/api/v1/products/{id}', {
        params: { path: { id } },
        headers: { 'If-Match': etag },
      }),
    );
  }

  async createPromotion(input: NewPromotion): Promise<Tagged<Promotion>> {
    const result = await this.api.POST('/api/v1/promotions', { body: input });
    return { value: unwrap(result), etag: result.response.headers.get('etag') ?? '' };
  }

  async getPromotion(id: string): Promise<Tagged<Promotion>> {
    const result = await this.api.GET('/api/v1/promotions/{id}', { params: { path: { id } } });
    return { value: unwrap(result), etag: result.response.headers.get('etag') ?? '' };
  }

  async promotions(page: { limit?: number; offset?: number } = {}): Promise<Promotion[]> {
    return unwrap(await this.api.GET('/api/v1/promotions', { params: { query: page } })).items;
  }

  /** A change with If-Match: 412 PRECONDITION_FAILED (with `current`) when someone changed it since. */
  async updatePromotion(
    id: string,
    change: PromotionChange,
    etag: string,
  ): Promise<Tagged<Promotion>> {
    const result = await this.api.PATCH('/api/v1/promotions/{id}', {
      params: { path: { id } },
      headers: { 'If-Match': etag },
      body: change,
    });
    return { value: unwrap(result), etag: result.response.headers.get('etag') ?? '' };
  }

  /** 409 RESOURCE_IN_USE while orders reference the code: deactivate it instead. */
  async deletePromotion(id: string, etag: string): Promise<void> {
    unwrap(
      await this.api.DELETE('/api/v1/promotions/{id}', {
        params: { path: { id } },
        headers: { 'If-Match': etag },
      }),
    );
  }

  /**
   * Places an order, retrying what is safe to retry. Every attempt carries the same
   * Idempotency-Key, so a retry after a lost answer replays the first order instead of placing a
   * second one.
   */
  async placeOrder(
    items: OrderLine[],
    {
      idempotencyKey = globalThis.crypto.randomUUID(),
      promotionCode,
      expectedTotalCents,
      ...retryOptions
    }: RetryOptions & {
      idempotencyKey?: string;
      /** A promotion code (409 PROMOTION_NOT_APPLICABLE with a `reason` when it cannot be used). */
      promotionCode?: string;
      /** The total the customer was shown (409 PRICE_CHANGED otherwise: see `priceChange`). */
      expectedTotalCents?: number;
    } = {},
  ): Promise<{ order: Order; replayed: boolean }> {
    return retry(
      async () => {
        const result = await this.api.POST('/api/v1/orders', {
          body: { items, promotionCode, expectedTotalCents },
          headers: { 'Idempotency-Key': idempotencyKey },
        });
        return {
          order: unwrap(result),
          replayed: result.response.headers.get('idempotent-replayed') === 'true',
        };
      },
      { ...this.options.retry, retryNetworkErrors: true, ...retryOptions },
    );
  }

  async getOrder(id: string): Promise<Tagged<Order>> {
    const result = await this.api.GET('/api/v1/orders/{id}', { params: { path: { id } } });
    return { value: unwrap(result), etag: result.response.headers.get('etag') ?? '' };
  }

  /**
   * `update` for an order's lines: read the order, `change` its lines (productId → quantity; return
   * the whole new list, a product absent or at 0 being removed), write with If-Match. On 412, merge
   * per product against the order the 412 carries: a product only I changed takes mine, one only they
   * changed keeps theirs, one we both changed to different quantities is a MergeConflict (keyed by
   * productId, with base, mine and theirs; 0 = not in the order). Bounded attempts. Prices are the
   * server's: kept products keep theirs, added ones take today's, the total is recomputed.
   */
  async editOrder(
    orderId: string,
    change: (lines: Lines, order: Order) => Lines,
    { attempts = 5 }: { attempts?: number } = {},
  ): Promise<Order> {
    const read = await this.getOrder(orderId);
    const base = linesOf(read.value);
    // 0 is how a change says "remove"; the server's minimum quantity is 1, so it is sent as no line.
    const mine = Object.fromEntries(
      Object.entries(change({ ...base }, structuredClone(read.value))).filter(([, q]) => q !== 0),
    );
    let theirs = read.value;
    let etag = read.etag;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const merged = mergeLines(base, mine, linesOf(theirs));
      // An order that is no longer pending cannot take any edit: the server's ORDER_NOT_EDITABLE
      // (with its status) says more than a conflict of lines would, so let it answer.
      if (!merged.ok && theirs.status === 'pending') {
        throw new MergeConflict(`orders/${orderId}`, merged.conflicts, theirs, etag);
      }
      const lines = merged.ok ? merged.lines : mine;
      const items = Object.entries(lines).map(([productId, quantity]) => ({ productId, quantity }));
      try {
        return unwrap(
          await this.api.PATCH('/api/v1/orders/{id}', {
            params: { path: { id: orderId } },
            headers: { 'If-Match': etag },
            body: { items },
          }),
        );
      } catch (error) {
        if (!(error instanceof ApiProblem) || error.code !== 'PRECONDITION_FAILED') throw error;
        theirs = error.body.current as Order;
        etag = error.body.currentEtag as string;
      }
    }
    throw new Error(`Gave up editing orders/${orderId} after ${attempts} attempts`);
  }

  /**
   * Opens a payment for the order's total at `provider` (API.md §9); its `clientSecret` is what the
   * customer's browser confirms it with (Stripe.js). Retried when safe, every attempt with the same
   * Idempotency-Key, so a lost answer never opens a second payment. The order becomes `paid` when the
   * provider confirms the money: read it again, or listen for `order.paid`.
   */
  async openPayment(
    orderId: string,
    provider: 'stripe' | 'test',
    {
      idempotencyKey = globalThis.crypto.randomUUID(),
      ...retryOptions
    }: RetryOptions & { idempotencyKey?: string } = {},
  ): Promise<Payment> {
    return retry(
      async () =>
        unwrap(
          await this.api.POST('/api/v1/orders/{id}/payments', {
            params: { path: { id: orderId } },
            body: { provider },
            headers: { 'Idempotency-Key': idempotencyKey },
          }),
        ),
      { ...this.options.retry, retryNetworkErrors: true, ...retryOptions },
    );
  }

  /**
   * The `test` provider (development and test only): the customer "pays" at the provider, which
   * notifies the service; answers the payment once that notification has been applied.
   */
  async completeTestPayment(
    paymentId: string,
    outcome: 'succeeded' | 'failed' = 'succeeded',
  ): Promise<Payment> {
    return unwrap(
      await this.api.POST('/api/v1/payments/test/{paymentId}/complete', {
        params: { path: { paymentId } },
        body: { outcome },
      }),
    );
  }

  /** A storefront's whole payment with the `test` provider: open, confirm, and the order as it is. */
  async payWithTestProvider(orderId: string): Promise<Order> {
    const payment = await this.openPayment(orderId, 'test');
    await this.completeTestPayment(payment.id);
    return (await this.getOrder(orderId)).value;
  }

  /** The order's payments, oldest first (the first page of 100). */
  async payments(orderId: string): Promise<Payment[]> {
    return unwrap(
      await this.api.GET('/api/v1/orders/{id}/payments', {
        params: { path: { id: orderId }, query: { limit: 100 } },
      }),
    ).items;
  }

  /**
   * An admin's refund of `amountCents` (API.md §10), of the payment that paid the order unless
   * `paymentId` names another; recorded `pending` and carried out by the service. More than the
   * balance → REFUND_EXCEEDS_BALANCE with `refundableCents`. Retried with one Idempotency-Key.
   */
  async refund(
    orderId: string,
    amountCents: number,
    reason: string,
    {
      paymentId,
      idempotencyKey = globalThis.crypto.randomUUID(),
      ...retryOptions
    }: RetryOptions & { paymentId?: string; idempotencyKey?: string } = {},
  ): Promise<Refund> {
    return retry(
      async () =>
        unwrap(
          await this.api.POST('/api/v1/orders/{id}/refunds', {
            params: { path: { id: orderId } },
            body: { amountCents, reason, ...(paymentId ? { paymentId } : {}) },
            headers: { 'Idempotency-Key': idempotencyKey },
          }),
        ),
      { ...this.options.retry, retryNetworkErrors: true, ...retryOptions },
    );
  }

  /** The order's refunds, oldest first (the first page of 100). */
  async refunds(orderId: string): Promise<Refund[]> {
    return unwrap(
      await this.api.GET('/api/v1/orders/{id}/refunds', {
        params: { path: { id: orderId }, query: { limit: 100 } },
      }),
    ).items;
  }

  /** Any action of the table; ILLEGAL_STATE_TRANSITION carries what is allowed now. */
  async transition(orderId: string, action: OrderAction): Promise<Order> {
    const path = `/api/v1/orders/{id}/${action}` as const;
    return unwrap(await this.api.POST(path, { params: { path: { id: orderId } } }));
  }

  /**
   * Read, change, write with If-Match; on 412, merge: when the fields changed by someone else since
   * the read do not overlap the fields `change` sets, the change is re-applied onto their version
   * (no extra GET: the 412 carries it); when they overlap, a MergeConflict names each field with its
   * base, mine and theirs. Bounded attempts.
   */
  async update<R extends keyof Updatable>(
    resource: R,
    id: string,
    change: (current: Updatable[R]) => Partial<Updatable[R]>,
    { attempts = 5 }: { attempts?: number } = {},
  ): Promise<Updatable[R]> {
    const read = await this.read(resource, id);
    let base = read.value as Snapshot;
    let etag = read.etag;
    const mine: Snapshot = { ...base, ...change(structuredClone(read.value)) };
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const merged = threeWayMerge(read.value, mine, base);
      if (!merged.ok) throw new MergeConflict(`${resource}/${id}`, merged.conflicts, base, etag);
      try {
        return await this.patch(resource, id, merged.patch, etag);
      } catch (error) {
        if (!(error instanceof ApiProblem) || error.code !== 'PRECONDITION_FAILED') throw error;
        base = error.body.current as Snapshot;
        etag = error.body.currentEtag as string;
      }
    }
    throw new Error(`Gave up updating ${resource}/${id} after ${attempts} attempts`);
  }

  private async read<R extends keyof Updatable>(
    resource: R,
    id: string,
  ): Promise<Tagged<Updatable[R]>> {
    const result =
      resource === 'products'
        ? await this.api.GET('/api/v1/products/{id}', { params: { path: { id } } })
        : await this.api.GET('/api/v1/users/{id}', { params: { path: { id } } });
    return {
      value: unwrap(
        result as { data?: unknown; error?: unknown; response: Response },
      ) as Updatable[R],
      etag: result.response.headers.get('etag') ?? '',
    };
  }

  private async patch<R extends keyof Updatable>(
    resource: R,
    id: string,
    body: Snapshot,
    etag: string,
  ): Promise<Updatable[R]> {
    const init = { params: { path: { id } }, headers: { 'If-Match': etag } };
    const result =
      resource === 'products'
        ? await this.api.PATCH('/api/v1/products/{id}', { ...init, body })
        : await this.api.PATCH('/api/v1/users/{id}', { ...init, body });
    return unwrap(
      result as { data?: unknown; error?: unknown; response: Response },
    ) as Updatable[R];
  }
}
