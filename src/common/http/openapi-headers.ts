import { applyDecorators } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';

/** The request headers of a conditional write (API.md §3). */
export const ApiPreconditionHeaders = (): MethodDecorator =>
  applyDecorators(
    ApiHeader({
      name: 'If-Match',
      required: false,
      description:
        'The ETag you read (strong comparison; lists and `*` accepted). Stale → 412. Without it, `If-Unmodified-Since` or a body `version` is required, else 428.',
    }),
    ApiHeader({
      name: 'If-Unmodified-Since',
      required: false,
      description: 'HTTP-date alternative to If-Match (one-second resolution). Stale → 412.',
    }),
  );

export const ApiConditionalGetHeaders = (): MethodDecorator =>
  applyDecorators(
    ApiHeader({
      name: 'If-None-Match',
      required: false,
      description: 'An ETag you hold; when it is still current the answer is 304 with no body.',
    }),
  );

/** Response headers of a single-resource read or write. */
export const VALIDATOR_HEADERS = {
  ETag: {
    description: 'Strong, opaque entity tag of this representation.',
    schema: { type: 'string' },
  },
  'Last-Modified': { description: 'When the resource last changed.', schema: { type: 'string' } },
};
