import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { STATE_DIAGRAM, transitionTable } from './orders/order-state';

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
      ].join('\n'),
    )
    .setVersion('1.0.0')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    .addServer('/', 'This service')
    .addTag('auth', 'Registration (customers only) and login for a bearer token.')
    .addTag('users', 'Accounts. Writes need a precondition (If-Match or a body version).')
    .addTag(
      'products',
      'The catalogue. SKU and slug are unique; writes need a precondition; stock moves by atomic adjustments.',
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
  return withCommonHeaders(SwaggerModule.createDocument(app, config));
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
