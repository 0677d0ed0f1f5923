/**
 * The problem catalogue (API.md §5): every `code` the service can answer with, its HTTP status, the
 * `type` slug and its one fixed title, plus the explanation served at /problems/{slug}. The filter, the
 * OpenAPI schema and the problem pages are all derived from this one record; adding a code without its
 * entry does not compile.
 */
export interface ProblemDefinition {
  status: number;
  slug: string;
  title: string;
  /** What happened, for the /problems page. */
  explanation: string;
  /** What a client should do about it. */
  resolution: string;
  /** Extension members this problem carries, documented on its page and in OpenAPI. */
  members: readonly string[];
  /**
   * Set when the same request may simply be sent again later: the seconds `Retry-After` says
   * unless the throw site knows better (a rate-limit window). Clients retry exactly these codes.
   */
  retryAfterSeconds?: number;
}

export const PROBLEMS = {
  VALIDATION_FAILED: {
    status: 400,
    slug: 'validation-failed',
    title: 'The request is not valid',
    explanation:
      'The body, query or path did not pass validation, or the body was not valid JSON. `errors` lists every failing field with its path (nested paths look like `items[0].quantity`).',
    resolution:
      'Correct the listed fields and send the request again. Retrying unchanged will fail the same way. `stock` on `PATCH /products/{id}` or a replacing `PUT /products/sku/{sku}` is refused whatever its value: stock is its own resource (`PUT /products/{id}/stock` for a stock-take, `POST /products/{id}/stock-adjustments` for a relative change).',
    members: ['errors'],
  },
  UNAUTHENTICATED: {
    status: 401,
    slug: 'unauthenticated',
    title: 'Authentication required',
    explanation:
      'The request carries no bearer token, or the token is malformed, expired or signed with another key, or the credentials given to /auth/login are wrong.',
    resolution:
      'Log in with POST /api/v1/auth/login and send `Authorization: Bearer <accessToken>`.',
    members: [],
  },
  FORBIDDEN: {
    status: 403,
    slug: 'forbidden',
    title: 'Not allowed for this role',
    explanation: 'You are authenticated, but your role may never perform this action.',
    resolution: 'Use an account with the required role. Retrying will not help.',
    members: [],
  },
  NOT_FOUND: {
    status: 404,
    slug: 'not-found',
    title: 'Resource not found',
    explanation:
      'No such route, or no such record visible to you. For customers, other users and their orders do not exist.',
    resolution: 'Check the path and id. Refresh any list you took the id from.',
    members: [],
  },
  EMAIL_TAKEN: {
    status: 409,
    slug: 'email-taken',
    title: 'Email already registered',
    explanation:
      'Another account already uses this email address. Emails are compared case-insensitively after trimming, and the database unique index decides: two simultaneous registrations of one email never both succeed.',
    resolution:
      'Log in with the existing account, or choose another email. `field` and `value` name what collided; `conflictingResource` is the existing record where you may see it.',
    members: ['field', 'value', 'conflictingResource'],
  },
  SKU_TAKEN: {
    status: 409,
    slug: 'sku-taken',
    title: 'SKU already in use',
    explanation:
      'Another product already has this SKU. SKUs are compared case-insensitively after trimming.',
    resolution:
      'Choose another SKU, or edit the existing product named by `conflictingResource` instead of creating a new one.',
    members: ['field', 'value', 'conflictingResource'],
  },
  SLUG_TAKEN: {
    status: 409,
    slug: 'slug-taken',
    title: 'Slug already in use',
    explanation: 'Another product already has this slug.',
    resolution: 'Choose another slug, or edit the existing product named by `conflictingResource`.',
    members: ['field', 'value', 'conflictingResource'],
  },
  PROMOTION_CODE_TAKEN: {
    status: 409,
    slug: 'promotion-code-taken',
    title: 'Promotion code already in use',
    explanation:
      'Another promotion already has this code. Codes are stored trimmed and upper-case and compared that way; the database unique index decides.',
    resolution:
      'Choose another code, or edit the existing promotion named by `conflictingResource` instead of creating a new one.',
    members: ['field', 'value', 'conflictingResource'],
  },
  VERSION_MISMATCH: {
    status: 409,
    slug: 'version-mismatch',
    title: 'Version mismatch',
    explanation:
      'The `version` in your body is not the current version: someone changed the resource after you read it. Nothing was changed.',
    resolution:
      'Merge your change into `current` (the representation as it is now), then resubmit with `version: currentVersion` or `If-Match: currentEtag`.',
    members: ['requestedVersion', 'currentVersion', 'currentEtag', 'current'],
  },
  ILLEGAL_STATE_TRANSITION: {
    status: 409,
    slug: 'illegal-state-transition',
    title: 'Illegal order state transition',
    explanation:
      'The order is not in a state from which this action is allowed (for example cancelling a shipped order), or another request moved it first.',
    resolution:
      'Read `currentStatus` and `allowedTransitions` (the actions legal now for you) and decide again. Retrying the same action will fail the same way.',
    members: ['currentStatus', 'attemptedTransition', 'allowedTransitions'],
  },
  ORDER_NOT_EDITABLE: {
    status: 409,
    slug: 'order-not-editable',
    title: 'Order cannot be edited',
    explanation:
      'Only a `pending` order can be edited; this one has moved on (paid, shipped, cancelled or expired), possibly just before your edit. Nothing was changed.',
    resolution:
      'Read `currentStatus`. A paid order can be cancelled and placed again; an expired one must be placed again.',
    members: ['currentStatus'],
  },
  INSUFFICIENT_STOCK: {
    status: 409,
    slug: 'insufficient-stock',
    title: 'Insufficient stock',
    explanation:
      'At least one line asks for more units than are available. Nothing was reserved or changed. `items` lists every short line with what you requested and what is available now.',
    resolution: 'Lower the quantities to at most `available` (or drop those lines) and resubmit.',
    members: ['items'],
  },
  PRODUCT_UNAVAILABLE: {
    status: 409,
    slug: 'product-unavailable',
    title: 'Product unavailable',
    explanation:
      'At least one product in the order is not active (not for sale). Nothing was reserved.',
    resolution: 'Remove the listed products from the order and resubmit.',
    members: ['items'],
  },
  PROMOTION_NOT_APPLICABLE: {
    status: 409,
    slug: 'promotion-not-applicable',
    title: 'Promotion code not applicable',
    explanation:
      'The promotion code cannot be used for this order; `reason` says why (the first that applies of `unknown`, `inactive`, `not_started`, `ended`, `currency`, `customer_limit`, `exhausted`). Nothing was reserved or counted.',
    resolution:
      'Tell the customer why, then resubmit without the code (or with another one) and a new `Idempotency-Key`.',
    members: ['promotionCode', 'reason'],
  },
  PRICE_CHANGED: {
    status: 409,
    slug: 'price-changed',
    title: 'Price changed',
    explanation:
      'The order would cost `totalCents`, not the `expectedTotalCents` the customer was shown: a price or a promotion changed since. Nothing was reserved or counted.',
    resolution:
      'Show the customer the lines as they are now (`items`) and the new total; if they accept, resubmit with `expectedTotalCents: totalCents` and a new `Idempotency-Key`.',
    members: ['expectedTotalCents', 'totalCents', 'items'],
  },
  RESOURCE_IN_USE: {
    status: 409,
    slug: 'resource-in-use',
    title: 'Resource is still referenced',
    explanation:
      'Orders still reference this record, so deleting it would break their history. Nothing was deleted.',
    resolution:
      'Keep the record (for a product, set `active: false` to stop selling it). `dependents` counts what references it.',
    members: ['dependents'],
  },
  IDEMPOTENCY_KEY_IN_USE: {
    status: 409,
    slug: 'idempotency-key-in-use',
    title: 'Idempotency key in use',
    explanation: 'A request with this `Idempotency-Key` is still being processed.',
    resolution:
      'Wait for `Retry-After` seconds and send the same request again with the same key: you will get its stored outcome.',
    members: [],
    retryAfterSeconds: 1,
  },
  DELIVERY_NOT_FAILED: {
    status: 409,
    slug: 'delivery-not-failed',
    title: 'Delivery has not failed',
    explanation:
      'Only a `failed` webhook delivery can be redelivered; this one is still `pending` (it will be retried on its own) or already `delivered`.',
    resolution: 'Read `deliveryStatus`; there is nothing to redeliver.',
    members: ['deliveryStatus'],
  },
  PAYMENT_IN_PROGRESS: {
    status: 409,
    slug: 'payment-in-progress',
    title: 'A payment is in progress',
    explanation:
      'The order has an open payment (`requires_action` or `processing`, `paymentId` names it): a second payment cannot be opened, and the order cannot be edited, while the customer may still confirm the first one. Nothing was changed.',
    resolution:
      'Finish the open payment (confirm it with its `clientSecret`), or cancel it with `POST /api/v1/orders/{id}/payments/{paymentId}/cancel`, then send the request again.',
    members: ['paymentId'],
  },
  PAYMENT_NOT_CANCELABLE: {
    status: 409,
    slug: 'payment-not-cancelable',
    title: 'Payment cannot be cancelled',
    explanation:
      'Only an open payment (`requires_action` or `processing`) can be cancelled, and only while its provider agrees: this one is `paymentStatus`, or the provider refused (it may already be capturing the money). The payment is unchanged.',
    resolution:
      'Read the payment again. A `succeeded` payment is refunded with `POST /api/v1/orders/{id}/refunds` (an admin), not cancelled.',
    members: ['paymentStatus'],
  },
  PAYMENT_NOT_OPEN: {
    status: 409,
    slug: 'payment-not-open',
    title: 'Payment is not open',
    explanation:
      'The payment is no longer `requires_action` or `processing` (see `paymentStatus`): it already succeeded, failed or was cancelled, so the provider cannot complete it again. Nothing was changed.',
    resolution: 'Read the payment and the order; open a new payment if the order is still unpaid.',
    members: ['paymentStatus'],
  },
  PAYMENT_PROVIDER_REJECTED: {
    status: 409,
    slug: 'payment-provider-rejected',
    title: 'The payment provider refused',
    explanation:
      'The payment provider answered the request with a refusal of its own (`provider`, `providerCode`: its error code). No payment was left open.',
    resolution:
      'Read `providerCode` in the provider’s documentation; retrying unchanged will be refused the same way.',
    members: ['provider', 'providerCode'],
  },
  PAYMENT_AMOUNT_MISMATCH: {
    status: 409,
    slug: 'payment-amount-mismatch',
    title: 'Payment amount differs from the order total',
    explanation:
      'A manual payment must be for exactly the order’s total (`totalCents`); this one was for `amountCents`. Nothing was recorded.',
    resolution:
      'Record the payment for exactly `totalCents`; return any difference to the customer outside the service.',
    members: ['amountCents', 'totalCents'],
  },
  REFUND_EXCEEDS_BALANCE: {
    status: 409,
    slug: 'refund-exceeds-balance',
    title: 'Refund exceeds the payment balance',
    explanation:
      'A payment’s balance is its captured amount minus its refunds that are not `failed`; this refund asks for `requestedCents` but only `refundableCents` are left (other refunds, perhaps concurrent ones, took the rest). Nothing was recorded.',
    resolution:
      'Refund at most `refundableCents`, or read `GET /api/v1/orders/{id}/refunds` to see where the money went.',
    members: ['requestedCents', 'refundableCents'],
  },
  REFUND_NOT_FAILED: {
    status: 409,
    slug: 'refund-not-failed',
    title: 'Refund has not failed',
    explanation:
      'Only a `failed` refund can be retried; this one is `refundStatus` (`pending`: it is being carried out; `succeeded`: the money went back).',
    resolution: 'Read `refundStatus`; there is nothing to retry.',
    members: ['refundStatus'],
  },
  WEBHOOK_SIGNATURE_INVALID: {
    status: 400,
    slug: 'webhook-signature-invalid',
    title: 'Webhook signature invalid',
    explanation:
      'The payment provider’s notification had no signature header, a malformed or wrong signature, a timestamp too far from now, or a body that is not the provider’s event. Nothing was recorded.',
    resolution:
      'Send the raw body exactly as signed, with the provider’s signature header, signed with the webhook secret configured here, within 5 minutes.',
    members: [],
  },
  PRECONDITION_FAILED: {
    status: 412,
    slug: 'precondition-failed',
    title: 'Precondition failed',
    explanation:
      '`If-Match` or `If-Unmodified-Since` does not hold: the resource changed since you read it, or the `If-Match` you sent is not an ETag this service issued for it (the `detail` says which: a malformed value, say without its quotes, or a made-up one). Nothing was changed.',
    resolution:
      'Merge your change into `current`, then resubmit with `If-Match: currentEtag` (the value exactly as sent, quotes included). A stock-take (`PUT /products/{id}/stock`) is merged by adding what moved since your read: send the count you took + `current.stock` − the stock as you read it (never below 0); on a product selling continuously that is stale again every time, so send the level with `If-Match: *` (it applies from then on, later orders counting against it), or use a stock adjustment for a relative change.',
    members: ['currentVersion', 'currentEtag', 'current'],
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    slug: 'payload-too-large',
    title: 'Payload too large',
    explanation: 'The request body is larger than the service accepts.',
    resolution: 'Send a smaller body (split large orders).',
    members: [],
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    slug: 'unsupported-media-type',
    title: 'Unsupported media type',
    explanation: 'The body is not sent as `application/json`.',
    resolution: 'Send JSON with `Content-Type: application/json`.',
    members: [],
  },
  IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    slug: 'idempotency-key-reused',
    title: 'Idempotency key reused for another request',
    explanation:
      'This `Idempotency-Key` was already used by you for a different request (another method, path or body).',
    resolution: 'Use a new key for a new request; reuse a key only to retry the very same request.',
    members: [],
  },
  UNKNOWN_PRODUCT: {
    status: 422,
    slug: 'unknown-product',
    title: 'Unknown product',
    explanation: 'The order names a product id that does not exist.',
    resolution: 'Refresh the catalogue and remove the missing products (listed in `items`).',
    members: ['items'],
  },
  PRECONDITION_REQUIRED: {
    status: 428,
    slug: 'precondition-required',
    title: 'Precondition required',
    explanation:
      'This write must say which version it is based on, so that it cannot silently overwrite someone else’s change.',
    resolution:
      'GET the resource, then resend with `If-Match: <its ETag>` (or `"version": <its version>` in the body).',
    members: [],
  },
  RATE_LIMITED: {
    status: 429,
    slug: 'rate-limited',
    title: 'Too many requests',
    explanation: 'You sent more requests than the rate limit allows.',
    resolution: 'Wait `Retry-After` seconds before sending again.',
    members: [],
    retryAfterSeconds: 60,
  },
  INTERNAL: {
    status: 500,
    slug: 'internal',
    title: 'Internal error',
    explanation:
      'Something failed unexpectedly on the server. It has been logged with the request id.',
    resolution:
      'Retry later; if it persists, report the `requestId` to the operators. A retried POST should carry an `Idempotency-Key`.',
    members: [],
  },
  SERVICE_UNAVAILABLE: {
    status: 503,
    slug: 'service-unavailable',
    title: 'Service unavailable',
    explanation:
      'The database is unreachable, or the request kept colliding with concurrent transactions (serialization failures or deadlocks) beyond the retry budget. Nothing was partially written.',
    resolution: 'Retry after `Retry-After` seconds (with the same `Idempotency-Key` for POSTs).',
    members: [],
    retryAfterSeconds: 1,
  },
} as const satisfies Record<string, ProblemDefinition>;

/** Every `code` the service answers with: the keys of the catalogue, so neither can lack the other. */
export type ProblemCode = keyof typeof PROBLEMS;

export const PROBLEM_CODES = Object.keys(PROBLEMS) as ProblemCode[];

export function problem(code: ProblemCode): ProblemDefinition {
  return PROBLEMS[code];
}

/** The codes a client may retry unchanged (after `Retry-After`). */
export const RETRYABLE_CODES = PROBLEM_CODES.filter(
  (code) => problem(code).retryAfterSeconds !== undefined,
);

/** The README's table of codes, generated from the catalogue (a unit test keeps them identical). */
export function catalogueTable(): string {
  const rows = PROBLEM_CODES.map((code) => {
    const p = problem(code);
    const retry = p.retryAfterSeconds === undefined ? '' : `yes, \`Retry-After\``;
    const members = p.members.map((m) => `\`${m}\``).join(', ');
    return `| \`${code}\` | ${p.status} | ${p.title} | ${members} | ${retry} |`;
  });
  return ['| code | status | title | members | retry |', '|---|---|---|---|---|', ...rows].join(
    '\n',
  );
}

export function problemBySlug(slug: string): [ProblemCode, ProblemDefinition] | undefined {
  const code = PROBLEM_CODES.find((c) => problem(c).slug === slug);
  return code ? [code, problem(code)] : undefined;
}

export function problemType(code: ProblemCode): string {
  return `/problems/${problem(code).slug}`;
}
