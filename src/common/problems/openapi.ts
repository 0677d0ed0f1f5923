import { applyDecorators } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiProperty,
  ApiPropertyOptional,
  ApiResponse,
  getSchemaPath,
} from '@nestjs/swagger';
import { problem, PROBLEMS, type ProblemCode, problemType } from './problem-catalogue';

/** RFC 9457 problem details, as every error of this service is written. */
export class ProblemDto {
  @ApiProperty({
    example: '/problems/version-mismatch',
    description: 'Resolves to a page explaining the problem.',
  })
  type: string;
  @ApiProperty({ example: 'Version mismatch', description: 'Fixed per type.' })
  title: string;
  @ApiProperty({ example: 409, description: 'Equals the HTTP status.' })
  status: number;
  @ApiProperty({ description: 'What happened, in a sentence a person can act on.' })
  detail: string;
  @ApiProperty({ example: '/api/v1/products/3f1c…', description: 'The request path.' })
  instance: string;
  @ApiProperty({ enum: Object.keys(PROBLEMS), description: 'Stable machine-readable code.' })
  code: ProblemCode;
  @ApiProperty({ description: 'Same value as the X-Request-Id response header.' })
  requestId: string;
  @ApiPropertyOptional({
    type: 'array',
    items: {
      type: 'object',
      properties: { field: { type: 'string' }, message: { type: 'string' } },
      required: ['field', 'message'],
    },
    description: 'VALIDATION_FAILED: every failing field.',
    example: [{ field: 'items[0].quantity', message: 'quantity must not be less than 1' }],
  })
  errors?: { field: string; message: string }[];
}

const MEMBER_EXAMPLES: Record<string, unknown> = {
  errors: [{ field: 'items[0].quantity', message: 'quantity must not be less than 1' }],
  field: 'sku',
  value: 'TSHIRT-RED-M',
  conflictingResource: '/api/v1/products/6f1c2a4e-0d7b-4e57-9a43-0c2b7f0a9d11',
  requestedVersion: 3,
  currentVersion: 4,
  currentEtag: '"v4-Z_BSLm1xZgHGoLJPYRnzAZxoHkE"',
  current: { id: '6f1c2a4e-0d7b-4e57-9a43-0c2b7f0a9d11', version: 4, '…': '…' },
  currentStatus: 'shipped',
  attemptedTransition: 'cancel',
  allowedTransitions: ['deliver'],
  items: [
    {
      productId: '6f1c2a4e-0d7b-4e57-9a43-0c2b7f0a9d11',
      sku: 'TSHIRT-RED-M',
      requested: 3,
      available: 1,
    },
  ],
  dependents: { orders: 12 },
  deliveryStatus: 'delivered',
};

export function problemExample(code: ProblemCode): Record<string, unknown> {
  const def = PROBLEMS[code];
  const example: Record<string, unknown> = {
    type: problemType(code),
    title: def.title,
    status: def.status,
    detail: def.explanation.split('. ')[0].replace(/\.?$/, '.'),
    instance: '/api/v1/…',
    code,
    requestId: '5b0f7d3e-2a9c-4f0e-8d7e-1c2b3a4d5e6f',
  };
  for (const member of def.members) example[member] = MEMBER_EXAMPLES[member];
  return example;
}

/** Documents the problem responses an operation can return, grouped by status, one example per code. */
export function ApiProblems(...codes: ProblemCode[]): MethodDecorator & ClassDecorator {
  const byStatus = new Map<number, ProblemCode[]>();
  // Every API operation can be rate-limited and can fail unexpectedly.
  for (const code of new Set<ProblemCode>([...codes, 'RATE_LIMITED', 'INTERNAL'])) {
    const status = PROBLEMS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const decorators = [...byStatus].map(([status, group]) =>
    ApiResponse({
      status,
      description: group.map((c) => `\`${c}\`: ${PROBLEMS[c].title}`).join('; '),
      headers: group.some((c) => problem(c).retryAfterSeconds !== undefined)
        ? {
            'Retry-After': {
              description: 'Seconds to wait before retrying.',
              schema: { type: 'integer' },
            },
          }
        : undefined,
      content: {
        'application/problem+json': {
          schema: { $ref: getSchemaPath(ProblemDto) },
          examples: Object.fromEntries(
            group.map((c) => [c, { summary: PROBLEMS[c].title, value: problemExample(c) }]),
          ),
        },
      },
    }),
  );
  return applyDecorators(ApiExtraModels(ProblemDto), ...decorators);
}
