import type { FastifyInstance } from 'fastify';

/** The content type the raw-body route's requests are parsed as, whatever they said. */
const RAW = 'application/x-payment-notification';

/**
 * A provider's webhook is verified on the exact bytes it signed (API.md §9): on `paths` only, the
 * body is kept as a Buffer (whatever its Content-Type, so that a malformed one still reaches the
 * signature check and gets 400 WEBHOOK_SIGNATURE_INVALID), never parsed as JSON here.
 */
export function registerRawBody(
  fastify: FastifyInstance,
  paths: string[],
  bodyLimit: number,
): void {
  fastify.addHook('onRequest', (request, _reply, done) => {
    if (paths.includes(request.routeOptions.url ?? '')) request.headers['content-type'] = RAW;
    done();
  });
  fastify.addContentTypeParser(RAW, { parseAs: 'buffer', bodyLimit }, (_request, body, done) =>
    done(null, body),
  );
}
