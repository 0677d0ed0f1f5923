import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest, onSendHookHandler } from 'fastify';
import { parseConsistencyToken, type Reader, type ReadRouting } from '../database/reader';
import type { ProblemCode } from '../problems/problem-catalogue';
import { validationProblem } from '../problems/validation';
import { digestEtag, weakMatch } from './etag';
import { toHttpDate } from './http-date';
import { appendRouteHook, routeMethods } from './route-hooks';
import { isFresh, parsePreconditions, type Preconditions, type Versioned } from './preconditions';

/**
 * The HTTP edge of every versioned resource. Controllers return a VersionedResponse (or a
 * SerializedReply, or a TaggedResponse) and one Fastify hook, `writeResponse`, sets `ETag`,
 * `Last-Modified`, `Location` and the status, and answers 304 to a conditional GET; services never
 * see a request or a reply.
 */
export class VersionedResponse<R> {
  constructor(
    readonly resource: Versioned<R>,
    readonly options: { status?: number; location?: string } = {},
  ) {}
}

/** A representation without a version (a list page): its ETag is a digest of exactly its bytes. */
export class TaggedResponse<R> {
  readonly etag: string;
  constructor(readonly body: R) {
    this.etag = digestEtag(body);
  }
}

/**
 * A response already rendered to its exact bytes: what an idempotent request stores and replays
 * (API.md §4: a replay is the first response byte for byte).
 */
export interface SerializedResponse {
  status: number;
  headers: Record<string, string>;
  /** The body exactly as sent. */
  body: string;
  /** Set when the body is a problem: read by the request log line and the metrics. */
  problemCode?: ProblemCode;
  /** The id of the request that produced it (a replay answers as that request did). */
  requestId?: string;
}

export class SerializedReply {
  constructor(
    readonly response: SerializedResponse,
    readonly replayed: boolean,
  ) {}
}

/**
 * Fastify's `preSerialization` hook for every route (app.factory.ts): what a controller returned,
 * as headers, status and body. Nest hands the handler's value to `reply.send()`, which calls this
 * before serialising an object. A hook rather than a Nest interceptor: an interceptor puts every
 * request through an RxJS pipeline, which cost ~8% of a product read's CPU (bench/README.md).
 */
export function writeResponse(
  request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
): unknown {
  if (payload instanceof VersionedResponse) {
    return versioned(request, reply, payload as VersionedResponse<unknown>);
  }
  if (payload instanceof SerializedReply) return serialized(request, reply, payload);
  if (payload instanceof TaggedResponse)
    return tagged(request, reply, payload as TaggedResponse<unknown>);
  return payload;
}

/** A 304: no body, so neither a content type nor a content length. */
function notModified(reply: FastifyReply): null {
  void reply.status(304).removeHeader('content-type');
  void reply.serializer(() => undefined as unknown as string);
  return null;
}

function versioned<R>(
  request: FastifyRequest,
  reply: FastifyReply,
  { resource, options }: VersionedResponse<R>,
): R | null {
  void reply.header('ETag', resource.etag);
  void reply.header('Last-Modified', toHttpDate(resource.updatedAt));
  if (options.location) void reply.header('Location', options.location);
  if (options.status) void reply.status(options.status);
  if (request.method === 'GET' && isFresh(parsePreconditions(request.headers), resource)) {
    return notModified(reply);
  }
  return resource.representation;
}

function tagged<R>(
  request: FastifyRequest,
  reply: FastifyReply,
  result: TaggedResponse<R>,
): R | null {
  void reply.header('ETag', result.etag);
  const { ifNoneMatch } = parsePreconditions(request.headers);
  if (
    request.method === 'GET' &&
    ifNoneMatch !== undefined &&
    weakMatch(ifNoneMatch, result.etag)
  ) {
    return notModified(reply);
  }
  return result.body;
}

function serialized(
  request: FastifyRequest,
  reply: FastifyReply,
  { response, replayed }: SerializedReply,
): string {
  if (response.problemCode) request.problemCode = response.problemCode;
  for (const [name, value] of Object.entries(response.headers)) void reply.header(name, value);
  if (replayed) {
    void reply.header('Idempotent-Replayed', 'true');
    // A replay is the first response: it carries the first request's id (which a replayed
    // problem body names too), unless the client named this request itself.
    const own = request.headers['x-request-id'] === request.id;
    if (!own && response.requestId) void reply.header('X-Request-Id', response.requestId);
  }
  void reply.status(response.status);
  // The stored bytes as they are: not serialised again.
  void reply.serializer((body) => body as string);
  return response.body;
}

/** The request's conditional headers, parsed (see preconditions.ts). */
export const RequestPreconditions = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): Preconditions =>
    parsePreconditions(ctx.switchToHttp().getRequest<FastifyRequest>().headers),
);

/** The request's id and path without query: where a problem body says it happened. */
export interface RequestInfo {
  requestId: string;
  method: string;
  path: string;
  body: unknown;
  idempotencyKey: string | string[] | undefined;
}

export const CurrentRequest = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): RequestInfo => {
    const request = ctx.switchToHttp().getRequest<FastifyRequest>();
    return {
      requestId: request.id,
      method: request.method,
      path: request.url.split('?')[0],
      body: request.body,
      idempotencyKey: request.headers['idempotency-key'],
    };
  },
);

/** Methods whose answers never carry a Consistency-Token. */
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

declare module 'fastify' {
  interface FastifyInstance {
    /** Where reads go (API.md §12): see registerReadRouting. */
    readRouting: ReadRouting;
  }
}

/**
 * Reads from standbys (API.md §12) at the HTTP edge: a `Consistency-Token` the service did not issue
 * is a 400 naming the header, for any request; every 2xx answer to a request that is not GET/HEAD
 * carries the primary's WAL position read after its commit (a replay too: the position now); and
 * `@ReadFrom()` gives a GET handler the Reader of its request.
 */
export function registerReadRouting(fastify: FastifyInstance, routing: ReadRouting): void {
  fastify.decorate('readRouting', routing);
  fastify.addHook('preValidation', (request, _reply, done) => {
    const header = request.headers['consistency-token'];
    if (header === undefined || parseConsistencyToken(header) !== undefined) return done();
    done(
      validationProblem([
        {
          field: 'Consistency-Token',
          message:
            'is not a token this service issued: send back the Consistency-Token header of a response exactly as received, or leave it out',
        },
      ]),
    );
  });
  const issueToken: onSendHookHandler = (request, reply, payload, done) => {
    const method = request.method;
    const status = reply.statusCode;
    if (
      method === 'GET' ||
      method === 'HEAD' ||
      method === 'OPTIONS' ||
      status < 200 ||
      status > 299
    ) {
      return done(null, payload);
    }
    void routing.token().then((token) => {
      void reply.header('Consistency-Token', token);
      done(null, payload);
    });
  };
  // Only routes that take a write carry it: a GET route then has no onSend hook at all.
  fastify.addHook('onRoute', (route) => {
    if (routeMethods(route).some((method) => !READS.has(method))) {
      appendRouteHook(route, 'onSend', issueToken);
    }
  });
}

/** The Reader of this request: where its reads that are not part of a write run. */
export const ReadFrom = createParamDecorator((_: unknown, ctx: ExecutionContext): Reader => {
  const request = ctx.switchToHttp().getRequest<FastifyRequest>();
  return request.server.readRouting.reader(request);
});
