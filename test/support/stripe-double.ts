/**
 * A local HTTP double of Stripe's API (the only stand-in for Stripe these tests use: Stripe is not
 * reachable from the test machines). The service reaches it through the real `stripe` SDK, pointed
 * here by `STRIPE_API_BASE`; it speaks Stripe's wire format for what the `stripe` provider uses.
 *
 * What it covers:
 * - `POST /v1/payment_intents`, `GET /v1/payment_intents/:id`, `POST /v1/payment_intents/:id/cancel`,
 *   `POST /v1/refunds`, `GET /v1/refunds?payment_intent=…` (paged: `limit`, `starting_after`,
 *   `has_more`), form-encoded bodies parsed as Stripe does (`metadata[orderId]=…`, `a[]=…`), the
 *   secret key checked (`Authorization: Bearer sk_…`, else 401), `Stripe-Version` recorded.
 * - Stripe-shaped objects (`pi_…` with `client_secret`, `amount_received`, lower-case `currency`,
 *   `metadata`, `status`, `last_payment_error`, `cancellation_reason`; `re_…` with `status`,
 *   `failure_reason`) and errors `{error: {type, code, message, param}}` with Stripe's statuses: 400
 *   `parameter_missing`, `parameter_invalid_integer`, `amount_too_small`, `amount_too_large`,
 *   `charge_already_refunded`, `payment_intent_unexpected_state` (cancel of a succeeded or canceled
 *   PaymentIntent, refund of an unpaid one), 404 `resource_missing`, 401, 500 `api_error`, 429
 *   `rate_limit` (on demand only).
 * - `Idempotency-Key` as Stripe keeps it: the same key with the same parameters replays the first
 *   answer, errors included (`Idempotent-Replayed: true`); with other parameters or another endpoint
 *   → 400 `idempotency_error`; while the first request with a key is still running → 409
 *   `idempotency_key_in_use`. Like Stripe, an answer is kept only once the request got past
 *   validation (a 400 for a missing or malformed parameter, or a 404, is not kept).
 * - Faults on demand, each for the next n matching requests: an error answer (500 by default; kept
 *   for its key, like Stripe's; optionally after carrying the request out), a hang (not carried out,
 *   never answered: the client's timeout ends it), a dropped answer (carried out and kept for its key,
 *   then never answered, or the connection reset, after which the SDK resends once with the same key),
 *   a delay (carried out and answered late: a slow Stripe), and `beforeAnswer`, a hook that runs after a request was carried out and before its answer is
 *   written (a test kills the calling process there).
 * - What a customer and Stripe do next: `confirm()` a PaymentIntent (succeeded with any
 *   `amount_received`, failed with a card decline, processing), `settleRefund()` (a pending refund
 *   succeeds, or a refund fails/is canceled, also after it succeeded), `dashboardRefund()` (a refund
 *   made in Stripe's dashboard, without our metadata); each change is an event (`evt_…`, Stripe's
 *   envelope with this SDK's `api_version`) that `deliver()` POSTs to a URL signed as Stripe signs:
 *   `Stripe-Signature: t=…,v1=…`, HMAC-SHA256 of `{t}.{body}` keyed with the whole `whsec_…` string
 *   (a test checks it against the SDK's `webhooks.generateTestHeaderString`).
 * - Counters: every request seen (method, path, params, key, status, replayed or not), refunds per
 *   `metadata.refundId`, the keys used per endpoint.
 *
 * What it does not cover: real card flows (PaymentMethods, confirmation by the client, 3-D Secure and
 * other next actions, bank redirects, asynchronous methods beyond a `processing` step), Charges and
 * balance transactions beyond ids, disputes, payouts, Connect accounts, currencies' minimum amounts
 * (50 minor units for all), API-version differences (one shape, this SDK's version), rate limits (a
 * 429 only when a test asks for one), Stripe's retry advice (`Stripe-Should-Retry`), key expiry after
 * 24 h, webhook endpoints, Stripe's delivery schedule and retries of notifications (a test delivers
 * each event itself, as often and in whatever order it wants), search and expansion (`expand[]` is
 * accepted and ignored), live mode, and the exact wording of Stripe's error messages.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

export const DOUBLE_SECRET_KEY = 'sk_test_double_0123456789';
export const DOUBLE_WEBHOOK_SECRET = 'whsec_double_0123456789abcdef';

type Json = Record<string, any>;

export interface SeenRequest {
  method: string;
  path: string;
  params: Json;
  idempotencyKey: string | null;
  stripeVersion: string | null;
  /** The status answered; null while unanswered or when no answer was sent. */
  status: number | null;
  replayed: boolean;
  /** answered; hung (never carried out); dropped (carried out, never answered); reset. */
  outcome: 'answered' | 'hung' | 'dropped' | 'reset';
}

export interface Matcher {
  method?: string;
  /** Exact path, or a pattern (e.g. /^\/v1\/refunds$/). */
  path?: string | RegExp;
}

interface Fault {
  match: Matcher;
  remaining: number;
  kind: 'error' | 'hang' | 'drop' | 'reset' | 'delay';
  delayMs?: number;
  status: number;
  carryOut: boolean;
}

interface Answer {
  status: number;
  body: Json;
}

interface Kept {
  fingerprint: string;
  answer: Answer;
}

export interface StripeEvent {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  data: { object: Json };
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
}

export interface Delivery {
  status: number;
  contentType: string | null;
  body: any;
}

const MIN_AMOUNT = 50;
const id = (prefix: string): string => `${prefix}_${randomBytes(12).toString('hex')}`;
const now = (): number => Math.floor(Date.now() / 1000);
const clone = <T>(v: T): T => structuredClone(v);

/** Stripe's form encoding, decoded: `a[b][c]=v` nests, `a[]=v` and `a[0]=v` make arrays. */
export function parseStripeForm(body: string): Json {
  const out: Json = {};
  for (const [rawKey, value] of new URLSearchParams(body)) {
    const parts = rawKey.replace(/\]/g, '').split('[');
    let node: any = out;
    parts.forEach((part, i) => {
      const last = i === parts.length - 1;
      const nextIsIndex = !last && /^\d*$/.test(parts[i + 1]);
      const keyOf = (p: string) => (Array.isArray(node) ? (p === '' ? node.length : Number(p)) : p);
      const k = keyOf(part);
      if (last) node[k] = value;
      else node = node[k] ??= nextIsIndex ? [] : {};
    });
  }
  return out;
}

/** Canonical JSON (sorted keys): the same parameters give the same text whatever their order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Json)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The header Stripe sends with a webhook: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`. */
export function stripeSignature(payload: string, secret: string, timestamp = now()): string {
  const v1 = createHmac('sha256', secret).update(`${timestamp}.${payload}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${v1}`;
}

class StripeFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: Json,
    /** Kept for the idempotency key (the request got past validation). */
    readonly keep: boolean,
  ) {
    super(body.error?.message);
  }
}

function invalid(
  message: string,
  code: string,
  param?: string,
  options: { status?: number; keep?: boolean } = {},
): StripeFailure {
  return new StripeFailure(
    options.status ?? 400,
    {
      error: {
        type: 'invalid_request_error',
        code,
        message,
        ...(param && { param }),
        doc_url: `https://stripe.com/docs/error-codes/${code.replace(/_/g, '-')}`,
      },
    },
    options.keep ?? false,
  );
}

function integerParam(params: Json, name: string, required: boolean): number | undefined {
  const v = params[name];
  if (v === undefined || v === '') {
    if (required) throw invalid(`Missing required param: ${name}.`, 'parameter_missing', name);
    return undefined;
  }
  if (typeof v !== 'string' || !/^-?\d+$/.test(v)) {
    throw invalid(`Invalid integer: ${String(v)}`, 'parameter_invalid_integer', name);
  }
  return Number(v);
}

function metadataParam(params: Json): Record<string, string> {
  const m = params.metadata ?? {};
  if (typeof m !== 'object' || Array.isArray(m)) {
    throw invalid('Invalid object', 'parameter_invalid_empty', 'metadata');
  }
  if (Object.keys(m).length > 50) {
    throw invalid('Metadata can have at most 50 keys.', 'parameter_invalid_empty', 'metadata');
  }
  for (const [k, v] of Object.entries(m)) {
    if (k.length > 40 || typeof v !== 'string' || v.length > 500) {
      throw invalid(`Invalid metadata[${k}]`, 'parameter_invalid_string', `metadata[${k}]`);
    }
  }
  return m as Record<string, string>;
}

const CANCELABLE = new Set([
  'requires_payment_method',
  'requires_capture',
  'requires_confirmation',
  'requires_action',
  'processing',
]);

export class StripeDouble {
  url = '';
  readonly requests: SeenRequest[] = [];
  readonly events: StripeEvent[] = [];
  /** Status of refunds created through the API (card refunds in test mode succeed at once). */
  refundStatus: 'succeeded' | 'pending' | 'failed' = 'succeeded';
  /** Runs after a request was carried out and before its answer is written. */
  beforeAnswer?: (request: SeenRequest) => void | Promise<void>;
  readonly intents = new Map<string, Json>();
  readonly refunds = new Map<string, Json>();
  private readonly kept = new Map<string, Kept>();
  private readonly running = new Set<string>();
  private faults: Fault[] = [];
  private readonly held = new Set<ServerResponse>();
  private server?: Server;
  private sequence = 0;

  constructor(
    readonly secretKey = DOUBLE_SECRET_KEY,
    readonly webhookSecret = DOUBLE_WEBHOOK_SECRET,
  ) {}

  async start(port = 0): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  /** The service's environment for its `stripe` provider, pointed at this double (once started). */
  env(): { STRIPE_SECRET_KEY: string; STRIPE_WEBHOOK_SECRET: string; STRIPE_API_BASE: string } {
    return {
      STRIPE_SECRET_KEY: this.secretKey,
      STRIPE_WEBHOOK_SECRET: this.webhookSecret,
      STRIPE_API_BASE: this.url,
    };
  }

  async stop(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }

  // ---- faults ---------------------------------------------------------------------------------

  /**
   * The next n matching requests are answered `status`: a 5xx `api_error` kept for their key (as
   * Stripe keeps a 500), or 429 `rate_limit`, not kept (the request never started).
   */
  failNext(
    n: number,
    options: { status?: number; carryOut?: boolean; match?: Matcher } = {},
  ): void {
    this.faults.push({
      match: options.match ?? {},
      remaining: n,
      kind: 'error',
      status: options.status ?? 500,
      carryOut: options.carryOut ?? false,
    });
  }

  /** The next n matching requests are neither carried out nor answered (the client times out). */
  hangNext(n: number, match: Matcher = {}): void {
    this.faults.push({ match, remaining: n, kind: 'hang', status: 0, carryOut: false });
  }

  /**
   * The next n matching requests are carried out (and kept for their key), but their answer is lost:
   * never sent (the client times out), or, with `reset`, the connection is closed.
   */
  dropAnswerNext(n: number, options: { reset?: boolean; match?: Matcher } = {}): void {
    this.faults.push({
      match: options.match ?? {},
      remaining: n,
      kind: options.reset ? 'reset' : 'drop',
      status: 0,
      carryOut: true,
    });
  }

  /** The next n matching requests wait `ms` before they are carried out and answered (a slow Stripe). */
  delayNext(n: number, ms: number, match: Matcher = {}): void {
    this.faults.push({
      match,
      remaining: n,
      kind: 'delay',
      status: 0,
      carryOut: false,
      delayMs: ms,
    });
  }

  clearFaults(): void {
    this.faults = [];
  }

  // ---- counters -------------------------------------------------------------------------------

  /** Refunds created carrying this `metadata.refundId`. */
  refundsFor(refundId: string): Json[] {
    return [...this.refunds.values()].filter((r) => r.metadata.refundId === refundId);
  }

  /** Idempotency keys sent to an endpoint, in order (repeats included). */
  keysUsed(path = '/v1/refunds', method = 'POST'): string[] {
    return this.requests
      .filter((r) => r.path === path && r.method === method && r.idempotencyKey !== null)
      .map((r) => r.idempotencyKey!);
  }

  seen(match: Matcher): SeenRequest[] {
    return this.requests.filter((r) => matches(match, r.method, r.path));
  }

  eventsOf(type: string, objectId?: string): StripeEvent[] {
    return this.events.filter(
      (e) => e.type === type && (objectId === undefined || e.data.object.id === objectId),
    );
  }

  // ---- what the customer and Stripe do ---------------------------------------------------------

  /** The customer confirms the PaymentIntent; returns the event Stripe would send. */
  confirm(
    intentId: string,
    outcome: 'succeeded' | 'failed' | 'processing',
    options: { amountReceived?: number; declineCode?: string } = {},
  ): StripeEvent {
    const pi = this.intents.get(intentId);
    if (!pi) throw new Error(`stripe double: no PaymentIntent ${intentId}`);
    if (pi.status === 'succeeded' || pi.status === 'canceled') {
      throw new Error(`stripe double: ${intentId} is ${pi.status} and cannot be confirmed`);
    }
    if (outcome === 'succeeded') {
      pi.status = 'succeeded';
      pi.amount_received = options.amountReceived ?? pi.amount;
      pi.latest_charge = id('ch');
      pi.last_payment_error = null;
      return this.emit('payment_intent.succeeded', pi);
    }
    if (outcome === 'processing') {
      pi.status = 'processing';
      return this.emit('payment_intent.processing', pi);
    }
    pi.status = 'requires_payment_method';
    pi.last_payment_error = {
      type: 'card_error',
      code: 'card_declined',
      decline_code: options.declineCode ?? 'generic_decline',
      message: 'Your card was declined.',
    };
    return this.emit('payment_intent.payment_failed', pi);
  }

  /** A refund settles: pending → succeeded, or fails / is canceled (also after it succeeded). */
  settleRefund(refundId: string, status: 'succeeded' | 'failed' | 'canceled'): StripeEvent {
    const re = this.refunds.get(refundId);
    if (!re) throw new Error(`stripe double: no Refund ${refundId}`);
    re.status = status;
    if (status !== 'succeeded')
      re.failure_reason = status === 'failed' ? 'expired_or_canceled_card' : null;
    return this.emit(status === 'failed' ? 'refund.failed' : 'refund.updated', re);
  }

  /** Someone refunds in Stripe's dashboard: no metadata of ours. */
  dashboardRefund(intentId: string, amount?: number): { refund: Json; event: StripeEvent } {
    const pi = this.intents.get(intentId);
    if (!pi) throw new Error(`stripe double: no PaymentIntent ${intentId}`);
    const refund = this.createRefund(pi, amount ?? this.refundable(pi), {}, null);
    return { refund, event: this.eventsOf('refund.created', refund.id as string)[0] };
  }

  /** The `Stripe-Signature` header for a body, signed with the webhook secret (or another). */
  sign(payload: string, options: { timestamp?: number; secret?: string } = {}): string {
    return stripeSignature(payload, options.secret ?? this.webhookSecret, options.timestamp);
  }

  /**
   * POSTs the event to a URL as Stripe delivers it: the JSON body and its signature. `header: null`
   * sends none; `header`/`body` override what goes out (after signing the real body).
   */
  async deliver(
    event: StripeEvent,
    url: string,
    options: { timestamp?: number; secret?: string; header?: string | null; body?: string } = {},
  ): Promise<Delivery> {
    const payload = JSON.stringify(event, null, 2);
    const header =
      options.header === undefined
        ? this.sign(payload, { timestamp: options.timestamp, secret: options.secret })
        : options.header;
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
        ...(header !== null && { 'stripe-signature': header }),
      },
      body: options.body ?? payload,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON
    }
    return { status: res.status, contentType: res.headers.get('content-type'), body };
  }

  // ---- the API --------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://double');
    const method = req.method ?? 'GET';
    const params = parseStripeForm(
      method === 'GET' ? url.search.slice(1) : Buffer.concat(chunks).toString('utf8'),
    );
    const header = (name: string) => {
      const v = req.headers[name];
      return typeof v === 'string' ? v : null;
    };
    const seen: SeenRequest = {
      method,
      path: url.pathname,
      params,
      idempotencyKey: method === 'POST' ? header('idempotency-key') : null,
      stripeVersion: header('stripe-version'),
      status: null,
      replayed: false,
      outcome: 'answered',
    };
    this.requests.push(seen);
    const fault = this.takeFault(method, url.pathname);
    if (fault?.kind === 'delay') await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    if (fault?.kind === 'hang') {
      seen.outcome = 'hung';
      this.held.add(res);
      res.on('close', () => this.held.delete(res));
      return;
    }

    let answer: Answer;
    const key = seen.idempotencyKey;
    const fingerprint = canonical({ method, path: url.pathname, params });
    const kept = key === null ? undefined : this.kept.get(key);
    if (header('authorization') !== `Bearer ${this.secretKey}`) {
      answer = {
        status: 401,
        body: {
          error: {
            type: 'invalid_request_error',
            message: `Invalid API Key provided: ${(header('authorization') ?? '').slice(7, 15)}…`,
          },
        },
      };
    } else if (kept && kept.fingerprint !== fingerprint) {
      answer = {
        status: 400,
        body: {
          error: {
            type: 'idempotency_error',
            message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
          },
        },
      };
    } else if (kept) {
      answer = kept.answer;
      seen.replayed = true;
    } else if (key !== null && this.running.has(key)) {
      answer = {
        status: 409,
        body: {
          error: {
            type: 'idempotency_error',
            code: 'idempotency_key_in_use',
            message: `There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${key}. Please try again later.`,
          },
        },
      };
    } else {
      if (key !== null) this.running.add(key);
      try {
        let keep = true;
        if (fault?.kind === 'error' && !fault.carryOut) {
          answer = serverError(fault.status);
          // A rate-limited request never started: Stripe keeps nothing for its key.
          keep = fault.status !== 429;
        } else {
          try {
            answer = { status: 200, body: this.route(method, url.pathname, params, seen) };
          } catch (e) {
            if (!(e instanceof StripeFailure)) throw e;
            answer = { status: e.status, body: e.body };
            keep = e.keep;
          }
          if (fault?.kind === 'error') answer = serverError(fault.status);
        }
        if (key !== null && keep) this.kept.set(key, { fingerprint, answer });
      } finally {
        if (key !== null) this.running.delete(key);
      }
    }

    seen.status = answer.status;
    if (this.beforeAnswer) await this.beforeAnswer(seen);
    if (fault?.kind === 'drop') {
      seen.status = null;
      seen.outcome = 'dropped';
      this.held.add(res);
      res.on('close', () => this.held.delete(res));
      return;
    }
    if (fault?.kind === 'reset') {
      seen.status = null;
      seen.outcome = 'reset';
      req.socket.destroy();
      return;
    }
    res
      .writeHead(answer.status, {
        'content-type': 'application/json',
        'request-id': id('req'),
        'stripe-version': seen.stripeVersion ?? Stripe.API_VERSION,
        ...(key !== null && { 'idempotency-key': key }),
        ...(seen.replayed && { 'idempotent-replayed': 'true' }),
      })
      .end(JSON.stringify(answer.body, null, 2));
  }

  private takeFault(method: string, path: string): Fault | undefined {
    const fault = this.faults.find((f) => f.remaining > 0 && matches(f.match, method, path));
    if (fault) fault.remaining -= 1;
    this.faults = this.faults.filter((f) => f.remaining > 0);
    return fault;
  }

  private route(method: string, path: string, params: Json, seen: SeenRequest): Json {
    let m: RegExpExecArray | null;
    if (method === 'POST' && path === '/v1/payment_intents') return this.createIntent(params, seen);
    if (method === 'GET' && (m = /^\/v1\/payment_intents\/([^/]+)$/.exec(path))) {
      return clone(this.intent(m[1]));
    }
    if (method === 'POST' && (m = /^\/v1\/payment_intents\/([^/]+)\/cancel$/.exec(path))) {
      return this.cancelIntent(this.intent(m[1]), params, seen);
    }
    if (method === 'POST' && path === '/v1/refunds') return this.refundCall(params, seen);
    if (method === 'GET' && path === '/v1/refunds') return this.listRefunds(params);
    throw invalid(`Unrecognized request URL (${method}: ${path}).`, 'resource_missing', undefined, {
      status: 404,
    });
  }

  private intent(intentId: string, param = 'intent'): Json {
    const pi = this.intents.get(intentId);
    if (!pi) {
      throw invalid(`No such payment_intent: '${intentId}'`, 'resource_missing', param, {
        status: 404,
      });
    }
    return pi;
  }

  private createIntent(params: Json, seen: SeenRequest): Json {
    const amount = integerParam(params, 'amount', true)!;
    const currency = params.currency;
    if (typeof currency !== 'string' || currency === '') {
      throw invalid('Missing required param: currency.', 'parameter_missing', 'currency');
    }
    if (!/^[a-z]{3}$/.test(currency)) {
      throw invalid(`Invalid currency: ${currency}.`, 'parameter_invalid_string', 'currency');
    }
    const capture = params.capture_method ?? 'automatic_async';
    if (!['automatic', 'automatic_async', 'manual'].includes(capture as string)) {
      throw invalid(
        `Invalid capture_method: ${String(capture)}`,
        'parameter_invalid_string',
        'capture_method',
      );
    }
    const metadata = metadataParam(params);
    if (amount < MIN_AMOUNT) {
      throw invalid(`Amount must be at least ${MIN_AMOUNT} cents`, 'amount_too_small', 'amount');
    }
    const piId = id('pi');
    const pi: Json = {
      id: piId,
      object: 'payment_intent',
      amount,
      amount_capturable: 0,
      amount_received: 0,
      canceled_at: null,
      cancellation_reason: null,
      capture_method: capture,
      client_secret: `${piId}_secret_${randomBytes(12).toString('hex')}`,
      confirmation_method: 'automatic',
      created: now(),
      currency,
      description: null,
      last_payment_error: null,
      latest_charge: null,
      livemode: false,
      metadata,
      payment_method: null,
      payment_method_types: ['card'],
      status: 'requires_payment_method',
    };
    this.intents.set(piId, pi);
    this.emit('payment_intent.created', pi, seen);
    return clone(pi);
  }

  private cancelIntent(pi: Json, params: Json, seen: SeenRequest): Json {
    if (!CANCELABLE.has(pi.status as string)) {
      throw invalid(
        `You cannot cancel this PaymentIntent because it has a status of ${pi.status}. Only a PaymentIntent with one of the following statuses may be canceled: ${[...CANCELABLE].join(', ')}.`,
        'payment_intent_unexpected_state',
        undefined,
        { keep: true },
      );
    }
    pi.status = 'canceled';
    pi.canceled_at = now();
    pi.cancellation_reason = params.cancellation_reason ?? null;
    this.emit('payment_intent.canceled', pi, seen);
    return clone(pi);
  }

  private refundable(pi: Json): number {
    const refunded = [...this.refunds.values()]
      .filter((r) => r.payment_intent === pi.id && r.status !== 'failed' && r.status !== 'canceled')
      .reduce((sum, r) => sum + (r.amount as number), 0);
    return (pi.amount_received as number) - refunded;
  }

  private refundCall(params: Json, seen: SeenRequest): Json {
    const intentId = params.payment_intent;
    if (typeof intentId !== 'string' || intentId === '') {
      throw invalid(
        'One of the following params should be provided for this request: payment_intent or charge.',
        'parameter_missing',
        'payment_intent',
      );
    }
    const amount = integerParam(params, 'amount', false);
    const metadata = metadataParam(params);
    const pi = this.intent(intentId, 'payment_intent');
    if (amount !== undefined && amount < 1) {
      throw invalid('Refund amount must be at least 1.', 'amount_too_small', 'amount');
    }
    if (pi.status !== 'succeeded') {
      throw invalid(
        `This PaymentIntent (${pi.id}) does not have a successful charge to refund.`,
        'payment_intent_unexpected_state',
        'payment_intent',
        { keep: true },
      );
    }
    const refundable = this.refundable(pi);
    if (refundable <= 0) {
      throw invalid(
        `Charge ${pi.latest_charge} has already been refunded.`,
        'charge_already_refunded',
        undefined,
        { keep: true },
      );
    }
    if (amount !== undefined && amount > refundable) {
      throw invalid(
        `Refund amount (${amount}) is greater than unrefunded amount on charge (${refundable})`,
        'amount_too_large',
        'amount',
        { keep: true },
      );
    }
    return publicRefund(this.createRefund(pi, amount ?? refundable, metadata, seen));
  }

  private createRefund(
    pi: Json,
    amount: number,
    metadata: Record<string, string>,
    seen: SeenRequest | null,
  ): Json {
    const refund: Json = {
      id: id('re'),
      object: 'refund',
      amount,
      balance_transaction: id('txn'),
      charge: pi.latest_charge,
      created: now(),
      currency: pi.currency,
      metadata,
      payment_intent: pi.id,
      reason: null,
      receipt_number: null,
      status: seen ? this.refundStatus : 'succeeded',
      ...(seen && this.refundStatus === 'failed' && { failure_reason: 'lost_or_stolen_card' }),
      _sequence: ++this.sequence,
    };
    this.refunds.set(refund.id as string, refund);
    this.emit('refund.created', refund, seen);
    this.emit(
      'charge.refunded',
      {
        id: pi.latest_charge,
        object: 'charge',
        payment_intent: pi.id,
        refunded: this.refundable(pi) === 0,
      },
      seen,
    );
    return refund;
  }

  private listRefunds(params: Json): Json {
    const limit = integerParam(params, 'limit', false) ?? 10;
    if (limit < 1 || limit > 100) {
      throw invalid('Limit must be between 1 and 100.', 'parameter_invalid_integer', 'limit');
    }
    let all = [...this.refunds.values()]
      .filter(
        (r) => params.payment_intent === undefined || r.payment_intent === params.payment_intent,
      )
      .sort((a, b) => (b._sequence as number) - (a._sequence as number));
    if (typeof params.starting_after === 'string') {
      const at = all.findIndex((r) => r.id === params.starting_after);
      all = at < 0 ? [] : all.slice(at + 1);
    }
    return {
      object: 'list',
      data: all.slice(0, limit).map(publicRefund),
      has_more: all.length > limit,
      url: '/v1/refunds',
    };
  }

  private emit(type: string, object: Json, seen: SeenRequest | null = null): StripeEvent {
    const event: StripeEvent = {
      id: id('evt'),
      object: 'event',
      api_version: Stripe.API_VERSION,
      created: now(),
      data: { object: object.object === 'refund' ? publicRefund(object) : clone(object) },
      livemode: false,
      pending_webhooks: 1,
      request: { id: seen ? id('req') : null, idempotency_key: seen?.idempotencyKey ?? null },
      type,
    };
    this.events.push(event);
    return event;
  }
}

function publicRefund(refund: Json): Json {
  const copy = clone(refund);
  delete copy._sequence;
  return copy;
}

/** The answer of a fault: Stripe's 429 (rate limited, never started), else a 5xx `api_error`. */
function serverError(status: number): Answer {
  if (status === 429) {
    return {
      status,
      body: {
        error: {
          type: 'invalid_request_error',
          code: 'rate_limit',
          message: 'Too many requests hit the API too quickly (stripe double: fault on demand).',
        },
      },
    };
  }
  return {
    status,
    body: {
      error: {
        type: 'api_error',
        message: 'An unknown error occurred (stripe double: fault on demand).',
      },
    },
  };
}

function matches(match: Matcher, method: string, path: string): boolean {
  if (match.method !== undefined && match.method !== method) return false;
  if (match.path === undefined) return true;
  return typeof match.path === 'string' ? match.path === path : match.path.test(path);
}
