import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A client's X-Request-Id is kept when it is short and plain; anything else gets a fresh UUID. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const ID = Symbol('requestId');

/**
 * The request id, decided once per request and cached on it, so that Fastify (request.id, the
 * X-Request-Id header, problem bodies) and pino-http (log lines) agree on it.
 */
export function requestId(req: IncomingMessage): string {
  const cached = (req as IncomingMessage & { [ID]?: string })[ID];
  if (cached) return cached;
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  (req as IncomingMessage & { [ID]?: string })[ID] = id;
  return id;
}
