import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, getSchemaPath, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { Webhook } from 'standardwebhooks';
import type { OrderDto } from './orders/dto/order.dto';
import type { OrderEvent } from './orders/order-events';
import { ORDER_EVENT_TYPES, type OrderEventType } from './orders/order-state';
import {
  allowedTransitions,
  type OrderStatus,
  STATE_DIAGRAM,
  transitionTable,
} from './orders/order-state';
import { DEMO_ACCOUNTS } from './common/demo-data';
import { EXAMPLE_WEBHOOK_SECRET, OrderEventDto } from './webhooks/dto/webhook.dto';

export function buildOpenApiDocument(app: NestFastifyApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Order service')
    .setDescription(
      [
        'An e-commerce order service that answers every conflict precisely.',
        '',
        'Every error is `application/problem+json` (RFC 9457) with a stable `code`; see `/problems` for the catalogue.',
        'Writes to users and products need a precondition (`If-Match`, `If-Unmodified-Since` or a body `version`): stale → 412/409, missing → 428.',
        'Every response carries `X-Request-Id` (yours when well-formed, else a new one).',
        'Order events are pushed to the URLs of webhook subscriptions as Standard Webhooks: the body is `OrderEventDto`, and `x-webhooks` describes the delivery of each event type, with an example.',
        '',
        '**Trying it here.** Press **Authorize** and log in under `oauth2` with an email as *username* and its password (leave the client fields empty), or paste a token from `POST /api/v1/auth/login` under `bearer`.',
        `On the demo database that \`npm start\` seeds (outside production) the accounts are ${DEMO_ACCOUNTS.map((a) => `\`${a.email}\` / \`${a.password}\` (${a.role})`).join(' and ')}; under \`NODE_ENV=production\` they get random passwords, printed once at their first start.`,
        'The request examples work on a fresh demo database: the login example is the demo customer, the order example orders the demo catalogue’s Logo mug, and the product example is a SKU the catalogue does not have yet (a second try gets 409 `SKU_TAKEN`, showing the conflict).',
      ].join('\n'),
    )
    .setVersion('1.0.0')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    .addOAuth2(
      {
        type: 'oauth2',
        description:
          'Log in with email (as username) and password: the OAuth 2.0 password grant on `POST /api/v1/auth/token`, which answers the same bearer token as `POST /api/v1/auth/login`.',
        flows: { password: { tokenUrl: TOKEN_URL, scopes: {} } },
      },
      'oauth2',
    )
    .addServer('/', 'This service')
    .addTag('auth', 'Registration (customers only) and login for a bearer token.')
    .addTag('users', 'Accounts. Writes need a precondition (If-Match or a body version).')
    .addTag(
      'products',
      'The catalogue. SKU and slug are unique; writes need a precondition. Stock is its own resource (`/products/{id}/stock`, its own ETag): a sale never makes a product edit stale; a stock-take needs a precondition on the stock, an adjustment none.',
    )
    .addTag(
      'webhooks',
      'Order events pushed to your endpoints (Standard Webhooks), from a transactional outbox: an event exists if and only if its change committed.',
    )
    .addTag(
      'operations',
      'Health checks and Prometheus metrics (outside /api/v1, never rate-limited).',
    )
    .addTag(
      'orders',
      [
        'Orders move through a state machine; every transition is one conditional write, so of two racing transitions exactly one wins and the other gets 409 `ILLEGAL_STATE_TRANSITION` with `allowedTransitions`.',
        '',
        '```',
        STATE_DIAGRAM,
        '```',
        '',
        transitionTable(),
      ].join('\n'),
    )
    .build();
  const doc = SwaggerModule.createDocument(app, config, { extraModels: [OrderEventDto] });
  return withWebhooks(withCommonHeaders(withPasswordLogin(doc)));
}

const TOKEN_URL = '/api/v1/auth/token';

/**
 * Every operation that takes the bearer token also takes it from the OAuth2 password flow (the same
 * token, got by the Authorize dialog from an email and a password): either scheme authorizes it.
 */
function withPasswordLogin(doc: OpenAPIObject): OpenAPIObject {
  for (const path of Object.values(doc.paths)) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete'] as const) {
      const op = (path as Record<string, { security?: Record<string, string[]>[] } | undefined>)[
        method
      ];
      if (op?.security?.some((s) => 'bearer' in s) && !op.security.some((s) => 'oauth2' in s)) {
        op.security.push({ oauth2: [] });
      }
    }
  }
  return doc;
}

/** What an event of each type says happened, and the order it carries in the examples. */
const EVENT_DELIVERIES: Record<
  OrderEventType,
  {
    summary: string;
    description: string;
    example: {
      eventId: string;
      status: OrderStatus;
      version: number;
      at: string;
      quantity: number;
    };
  }
> = {
  'order.created': {
    summary: 'An order was placed',
    description:
      'Sent when `POST /api/v1/orders` commits: the order is `pending`, version 1, and holds its units until `expiresAt`.',
    example: {
      eventId: 'c5e9bf67-60dd-408c-963e-ae68379e537f',
      status: 'pending',
      version: 1,
      at: '2026-03-14T10:00:00.000Z',
      quantity: 2,
    },
  },
  'order.edited': {
    summary: 'A pending order’s lines were changed',
    description:
      'Sent when `PATCH /api/v1/orders/{id}` commits: the new lines and total; still `pending`, `expiresAt` unchanged.',
    example: {
      eventId: '5cd1aa10-b924-4708-a20f-a9415e76d374',
      status: 'pending',
      version: 2,
      at: '2026-03-14T10:04:12.000Z',
      quantity: 3,
    },
  },
  'order.paid': {
    summary: 'The owner paid',
    description: 'Sent when `pay` commits: the order is `paid` and no longer expires.',
    example: {
      eventId: '57d51bf2-4bbc-43ee-b6ee-5586f6878f1c',
      status: 'paid',
      version: 2,
      at: '2026-03-14T10:05:41.000Z',
      quantity: 2,
    },
  },
  'order.shipped': {
    summary: 'An admin shipped the order',
    description: 'Sent when `ship` commits.',
    example: {
      eventId: 'ecb2dcd8-750f-427c-a1e4-07bfb4212073',
      status: 'shipped',
      version: 3,
      at: '2026-03-15T08:30:00.000Z',
      quantity: 2,
    },
  },
  'order.delivered': {
    summary: 'An admin marked the order delivered',
    description: 'Sent when `deliver` commits; the order is final.',
    example: {
      eventId: '1d797576-1796-411d-b7e6-6eae4ee22bee',
      status: 'delivered',
      version: 4,
      at: '2026-03-17T14:12:09.000Z',
      quantity: 2,
    },
  },
  'order.cancelled': {
    summary: 'The owner or an admin cancelled the order',
    description:
      'Sent when `cancel` commits (from `pending` or `paid`; this example was paid first): its units are back on sale.',
    example: {
      eventId: '7fb534eb-4b70-48f9-ab89-38dbe13c93a7',
      status: 'cancelled',
      version: 3,
      at: '2026-03-14T11:20:00.000Z',
      quantity: 2,
    },
  },
  'order.expired': {
    summary: 'The hold ended unpaid',
    description:
      'Sent when the service expires a `pending` order whose `expiresAt` has passed: its units are back on sale; a later `pay` gets 409.',
    example: {
      eventId: 'b9989142-c694-4b56-98d9-d777dfd1bd53',
      status: 'expired',
      version: 2,
      at: '2026-03-14T10:30:01.000Z',
      quantity: 2,
    },
  },
};

/** The order of the examples: placed by one customer at 10:00, two T-shirts, a 30-minute hold. */
const EXAMPLE_ORDER = {
  id: 'a4c5d82b-c98f-4106-88cb-b0f1d92b8677',
  userId: 'ad2648a8-bb9b-4c4c-9f1c-d5f0ea038012',
  productId: 'b1012578-c4ea-467c-b296-e9ee36f841fe',
  createdAt: '2026-03-14T10:00:00.000Z',
  expiresAt: '2026-03-14T10:30:00.000Z',
  unitPriceCents: 1999,
};

function orderEventExample(type: OrderEventType): OrderEvent {
  const { eventId, status, version, at, quantity } = EVENT_DELIVERIES[type].example;
  const order: OrderDto = {
    id: EXAMPLE_ORDER.id,
    userId: EXAMPLE_ORDER.userId,
    status,
    allowedTransitions: allowedTransitions(status, ['owner']),
    items: [
      {
        productId: EXAMPLE_ORDER.productId,
        sku: 'TSHIRT-RED-M',
        name: 'Red T-shirt (M)',
        unitPriceCents: EXAMPLE_ORDER.unitPriceCents,
        quantity,
      },
    ],
    subtotalCents: EXAMPLE_ORDER.unitPriceCents * quantity,
    discountCents: 0,
    promotionCode: null,
    totalCents: EXAMPLE_ORDER.unitPriceCents * quantity,
    currency: 'EUR',
    // Paid once it left pending, except when it was cancelled or expired unpaid.
    paymentStatus: ['paid', 'shipped', 'delivered'].includes(status) ? 'paid' : 'unpaid',
    paidCents: ['paid', 'shipped', 'delivered'].includes(status)
      ? EXAMPLE_ORDER.unitPriceCents * quantity
      : 0,
    refundedCents: 0,
    expiresAt: status === 'pending' ? EXAMPLE_ORDER.expiresAt : null,
    version,
    createdAt: EXAMPLE_ORDER.createdAt,
    updatedAt: at,
  };
  return { id: eventId, type, occurredAt: at, data: { order } };
}

/**
 * The deliveries, described as OpenAPI 3.0 can: it has no `webhooks` object (3.1 does), so a
 * top-level `x-webhooks` map holds one `post` per event type, the way 3.1 would. Each example's
 * headers are signed for real, with the example secret of CreatedWebhookDto.
 */
function withWebhooks(doc: OpenAPIObject): OpenAPIObject {
  const schema = { $ref: getSchemaPath(OrderEventDto) };
  const webhooks = Object.fromEntries(
    ORDER_EVENT_TYPES.map((type) => {
      const { summary, description } = EVENT_DELIVERIES[type];
      const event = orderEventExample(type);
      const body = JSON.stringify(event);
      const sentAt = new Date(Date.parse(event.occurredAt) + 1000);
      const timestamp = String(Math.floor(sentAt.getTime() / 1000));
      const signature = new Webhook(EXAMPLE_WEBHOOK_SECRET).sign(event.id, sentAt, body);
      return [
        type,
        {
          post: {
            tags: ['webhooks'],
            summary: `${type}: ${summary}`,
            description: `${description}\n\n${DELIVERY_DESCRIPTION}`,
            parameters: webhookHeaders(event.id, timestamp, signature),
            requestBody: {
              required: true,
              content: { 'application/json': { schema, example: event } },
            },
            responses: {
              '2XX': {
                description:
                  'Delivered: any 2xx within 10 s (the body is ignored). Answer first, then process the event.',
              },
              default: {
                description:
                  'Any other answer, no answer within 10 s, or a redirect (not followed) is a failed attempt: retried with exponential backoff, then `failed` (see `POST /api/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver`).',
              },
            },
          },
        },
      ];
    }),
  );
  return { ...doc, 'x-webhooks': webhooks } as OpenAPIObject;
}

const DELIVERY_DESCRIPTION = [
  'A `POST` to the subscription’s URL, signed as Standard Webhooks: verify `webhook-signature` over the raw body with the subscription’s secret (e.g. `new Webhook(secret).verify(rawBody, headers)` from the `standardwebhooks` package) before trusting it.',
  'At least once: deduplicate on `webhook-id`. Per subscription and order, events arrive in `version` order: the next is sent once the one before it was delivered or failed.',
].join(' ');

function webhookHeaders(id: string, timestamp: string, signature: string): unknown[] {
  return [
    {
      name: 'webhook-id',
      in: 'header',
      required: true,
      description:
        'The event id (`id` in the body), the same on every attempt and redelivery: deduplicate on it.',
      schema: { type: 'string', format: 'uuid' },
      example: id,
    },
    {
      name: 'webhook-timestamp',
      in: 'header',
      required: true,
      description:
        'When this attempt was signed, in Unix seconds. Refuse one far from your clock (the `standardwebhooks` library allows 5 minutes), so that a captured request cannot be replayed later.',
      schema: { type: 'string', pattern: '^[0-9]+$' },
      example: timestamp,
    },
    {
      name: 'webhook-signature',
      in: 'header',
      required: true,
      description: [
        '`v1,` + base64 of the HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{raw body}`, keyed with the base64-decoded part of the secret after `whsec_` (space-separated when there are several).',
        `This example is signed with the example secret \`${EXAMPLE_WEBHOOK_SECRET}\` over the example body as compact JSON (as sent).`,
      ].join(' '),
      schema: { type: 'string' },
      example: signature,
    },
  ];
}

type Operation = {
  parameters?: unknown[];
  responses?: Record<string, { headers?: Record<string, unknown> }>;
};

/** Headers every operation has, added once here rather than on every controller method. */
function withCommonHeaders(doc: OpenAPIObject): OpenAPIObject {
  for (const path of Object.values(doc.paths)) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete'] as const) {
      const op = (path as Record<string, Operation | undefined>)[method];
      if (!op) continue;
      op.parameters = [
        ...(op.parameters ?? []),
        {
          name: 'X-Request-Id',
          in: 'header',
          required: false,
          description:
            'Your correlation id (1-128 of A-Z a-z 0-9 . _ : -); echoed back, else one is made.',
          schema: { type: 'string' },
        },
      ];
      for (const response of Object.values(op.responses ?? {})) {
        response.headers = {
          'X-Request-Id': {
            description: 'The request id; the same value as `requestId` in problem bodies.',
            schema: { type: 'string' },
          },
          ...(response.headers ?? {}),
        };
      }
    }
  }
  return doc;
}

/** Swagger UI at /docs and the document at /docs-json (outside the API prefix). */
export function setupOpenApi(app: NestFastifyApplication): void {
  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app), {
    jsonDocumentUrl: 'docs-json',
    swaggerOptions: { persistAuthorization: true, displayRequestDuration: true },
  });
}
