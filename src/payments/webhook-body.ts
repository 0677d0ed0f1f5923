import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import { appendRouteHook } from '../common/http/route-hooks';

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
  // A hook of these routes only, attached as they are registered: not a global hook that every
  // request of every other route runs to find out it is not one of them.
  const markRaw: onRequestHookHandler = (request, _reply, done) => {
    request.headers['content-type'] = RAW;
    done();
  };
  fastify.addHook('onRoute', (route) => {
    if (paths.includes(route.url)) appendRouteHook(route, 'onRequest', markRaw);
  });
  fastify.addContentTypeParser(RAW, { parseAs: 'buffer', bodyLimit }, (_request, body, done) =>
    done(null, body),
  );
}
