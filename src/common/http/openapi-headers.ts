import { applyDecorators } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';

/**
 * What to put in If-Match, said where a person fills it in (Swagger UI): the most common mistakes
 * are dropping the quotes and pasting a JSON-escaped copy.
 */
export const IF_MATCH_VALUE =
  'The `ETag` response header of your last read, exactly as sent, double quotes included (e.g. `"v3-…"` with its quotes; not the bare `version`, not a JSON-escaped `\\"…\\"`). Strong comparison: `W/"…"` never matches; a list of ETags or `*` is accepted. Stale → 412 with `current`; a value that is not a valid entity-tag, or not an ETag this service issued for this resource, → 412 saying so.';

/** The request headers of a conditional write (API.md §3). */
export const ApiPreconditionHeaders = (): MethodDecorator =>
  applyDecorators(
    ApiHeader({
      name: 'If-Match',
      required: false,
      description: `${IF_MATCH_VALUE} Without it, \`If-Unmodified-Since\` or a body \`version\` is required, else 428.`,
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
