import type { FastifyInstance } from 'fastify';

/**
 * `application/x-www-form-urlencoded` bodies, for the routes in `paths` only (the OAuth token
 * endpoint, which RFC 6749 requires to take them): everywhere else such a body stays 415, as any
 * body that is not JSON. A field sent twice becomes a list, which validation then refuses.
 */
export function registerFormBody(
  fastify: FastifyInstance,
  paths: string[],
  bodyLimit: number,
): void {
  fastify.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit },
    (request, body, done) => {
      if (!paths.includes(request.routeOptions.url ?? '')) {
        const error = Object.assign(new Error('Unsupported Media Type'), {
          statusCode: 415,
          code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
        });
        return done(error, undefined);
      }
      const fields: Record<string, string | string[]> = Object.create(null) as Record<
        string,
        string | string[]
      >;
      for (const [key, value] of new URLSearchParams(body as string)) {
        const seen = fields[key];
        fields[key] = seen === undefined ? value : [...([] as string[]).concat(seen), value];
      }
      done(null, fields);
    },
  );
}
