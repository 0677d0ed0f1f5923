import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { transitionTable } from './orders/order-state';

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
    .addTag(
      'orders',
      [
        'Orders move through a state machine; every transition is one conditional write, so of two racing transitions exactly one wins and the other gets 409 `ILLEGAL_STATE_TRANSITION` with `allowedTransitions`.',
        '',
        '```',
        'pending ──pay──▶ paid ──ship──▶ shipped ──deliver──▶ delivered',
        '   │               │',
        '   └──cancel──▶ cancelled ◀──cancel──┘',
        '```',
        '',
        transitionTable(),
      ].join('\n'),
    )
    .build();
  return SwaggerModule.createDocument(app, config);
}

/** Swagger UI at /docs and the document at /docs-json (outside the API prefix). */
export function setupOpenApi(app: NestFastifyApplication): void {
  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app), {
    jsonDocumentUrl: 'docs-json',
    swaggerOptions: { persistAuthorization: true, displayRequestDuration: true },
  });
}
