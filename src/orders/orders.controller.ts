import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiCreatedResponse,
  ApiHeader,
  ApiNotModifiedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { type Caller, CurrentUser } from '../common/access';
import { inTransaction } from '../common/database/transaction';
import { toHttpDate } from '../common/http/http-date';
import { IdempotencyService, serializeJson } from '../common/http/idempotency.service';
import {
  ApiConditionalGetHeaders,
  ApiPreconditionHeaders,
  IF_MATCH_VALUE,
  VALIDATOR_HEADERS,
} from '../common/http/openapi-headers';
import type { Preconditions } from '../common/http/preconditions';
import { problemContextOf } from '../common/http/problem.filter';
import type { Reader } from '../common/database/reader';
import {
  CurrentRequest,
  ReadFrom,
  RequestPreconditions,
  type RequestInfo,
  SerializedReply,
  type SerializedResponse,
  VersionedResponse,
} from '../common/http/responses';
import { PageQueryDto } from '../common/http/pagination';
import { UuidPipe } from '../common/http/uuid.pipe';
import { ApiProblems } from '../common/problems/openapi';
import {
  CREATE_ORDER_EXAMPLES,
  CreateOrderDto,
  HistoryEntryDto,
  HistoryPageDto,
  OrderDto,
  OrderPageDto,
  OrderQueryDto,
  UpdateOrderDto,
} from './dto/order.dto';
import {
  ORDER_ACTIONS,
  type OrderAction,
  transition,
  TRANSITION_EFFECTS,
  transitionTable,
} from './order-state';
import { OrderEdits } from './order-edits';
import { OrderPlacement } from './order-placement';
import { versionedOrder, OrderReads, orderPath } from './order-reads';
import { OrderTransitions } from './order-transitions';
import type { OrderWithItems } from './orders.repository';
import { isStoredPlacement, PlacementsRepository } from './placements.repository';

const IDEMPOTENCY_HEADER = ApiHeader({
  name: 'Idempotency-Key',
  required: false,
  description:
    '1-255 printable characters, scoped to you. Retrying with the same key and body replays the first outcome byte for byte (`Idempotent-Replayed: true`) instead of acting twice; the same key with another body → 422; while the first is in flight → the retry waits, or gets 409 with Retry-After. Kept 24 h.',
});
const IF_MATCH_HEADER = ApiHeader({
  name: 'If-Match',
  required: false,
  description: `Optional. ${IF_MATCH_VALUE} Nothing changes on a 412. A matching \`If-None-Match\` (or \`*\`) → 412.`,
});
const TRANSITION_PROBLEMS = [
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'ILLEGAL_STATE_TRANSITION',
  'PRECONDITION_FAILED',
  'VALIDATION_FAILED',
  'SERVICE_UNAVAILABLE',
] as const;

/**
 * Actions whose request may carry an Idempotency-Key: none since `pay` became the service's own
 * (API.md §9: a payment is opened with `POST /orders/{id}/payments`, which takes the key).
 */
const IDEMPOTENT_ACTIONS: readonly OrderAction[] = [];

@ApiTags('orders')
@ApiBearerAuth()
@Controller('orders')
export class OrdersController {
  constructor(
    private readonly placement: OrderPlacement,
    private readonly reads: OrderReads,
    private readonly transitions: OrderTransitions,
    private readonly edits: OrderEdits,
    private readonly idempotency: IdempotencyService,
    private readonly placements: PlacementsRepository,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  @Post()
  @ApiBody({ type: CreateOrderDto, examples: CREATE_ORDER_EXAMPLES })
  @ApiOperation({
    summary: 'Place an order',
    description:
      'Reserves stock atomically: products are locked in id order and decremented only if every line has enough, so two buyers of the last unit never both win. Any short line → 409 INSUFFICIENT_STOCK listing every short line, and nothing is reserved. Totals are computed from current prices.',
  })
  @IDEMPOTENCY_HEADER
  @ApiCreatedResponse({
    type: OrderDto,
    headers: {
      ...VALIDATOR_HEADERS,
      Location: { description: 'The new order.', schema: { type: 'string' } },
      'Idempotent-Replayed': {
        description: '`true` when this is a stored outcome replayed.',
        schema: { type: 'string' },
      },
    },
  })
  @ApiProblems(
    'UNAUTHENTICATED',
    'VALIDATION_FAILED',
    'INSUFFICIENT_STOCK',
    'PRODUCT_UNAVAILABLE',
    'UNKNOWN_PRODUCT',
    'PROMOTION_NOT_APPLICABLE',
    'PRICE_CHANGED',
    'IDEMPOTENCY_KEY_IN_USE',
    'IDEMPOTENCY_KEY_REUSED',
    'UNSUPPORTED_MEDIA_TYPE',
    'PAYLOAD_TOO_LARGE',
    'SERVICE_UNAVAILABLE',
  )
  create(
    @Body() body: CreateOrderDto,
    @CurrentUser() caller: Caller,
    @CurrentRequest() request: RequestInfo,
  ): Promise<SerializedReply> {
    // A placement is one statement, and opens a transaction itself only to explain a refusal. With
    // an Idempotency-Key, that statement claims the key and stores the outcome too (atOnce); the
    // usual keyed path runs only when it did nothing (a retry, a key in flight, a refusal).
    return this.idempotency.run(
      this.idempotent(request, caller, '/api/v1/orders'),
      async (m) => this.serialize(await this.placement.place(m, caller, body), caller, 201, true),
      {
        ownTransaction: true,
        atOnce: async (claim) => {
          const placed = await this.placement.placeKeyed(caller, body, claim);
          return placed && this.renderPlaced({ placed, caller, requestId: claim.requestId });
        },
        renderStored: (stored) => {
          if (!isStoredPlacement(stored)) throw new Error('Not an outcome of place_order_keyed');
          return this.renderPlaced({
            placed: this.placements.storedOrder(stored),
            caller: { id: caller.id, role: stored.role },
            requestId: stored.requestId,
          });
        },
      },
    );
  }

  @Get()
  @ApiOperation({
    summary: 'List orders',
    description: 'Your own orders; admins see all. Stable order (creation time, then id).',
  })
  @ApiOkResponse({ type: OrderPageDto })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED')
  async list(
    @Query() query: OrderQueryDto,
    @CurrentUser() caller: Caller,
    @ReadFrom() reader: Reader,
  ): Promise<OrderPageDto> {
    const page = await reader.list((m) => this.reads.list(caller, query, m));
    return {
      ...page,
      items: page.items.map((o) => versionedOrder(o, caller).representation),
    };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One order', description: 'Others’ orders are 404 for customers.' })
  @ApiOkResponse({ type: OrderDto, headers: VALIDATOR_HEADERS })
  @ApiNotModifiedResponse({ description: 'If-None-Match matched.' })
  @ApiConditionalGetHeaders()
  @ApiProblems('UNAUTHENTICATED', 'NOT_FOUND', 'VALIDATION_FAILED')
  async get(
    @Param('id', UuidPipe) id: string,
    @CurrentUser() caller: Caller,
    @ReadFrom() reader: Reader,
  ): Promise<VersionedResponse<OrderDto>> {
    return new VersionedResponse(
      await reader.one(async (m) =>
        versionedOrder(await this.reads.findVisible(id, caller, m), caller),
      ),
    );
  }

  @Patch(':id')
  @ApiOperation({
    summary: 'Edit a pending order (owner or admin)',
    description:
      "Replaces the order's lines with `items` (the whole new list, same limits as placement). Needs a precondition: `If-Match` (stale → 412) or `version` in the body (stale → 409); neither → 428. Only `pending` orders: otherwise 409 `ORDER_NOT_EDITABLE`. Stock moves by the difference only, in one transaction, products locked in id order: more units are reserved, fewer are returned, removed lines return all theirs. If any line is short, nothing changes and 409 `INSUFFICIENT_STOCK` lists every short line, `requested` being the units wanted beyond what the order already holds and `available` what is free. Kept products keep their price; added ones take the current price; the total is recomputed; the hold's `expiresAt` does not move; the history gets `edit`.",
  })
  @ApiPreconditionHeaders()
  @ApiOkResponse({ type: OrderDto, headers: VALIDATOR_HEADERS })
  @ApiProblems(
    'UNAUTHENTICATED',
    'NOT_FOUND',
    'VALIDATION_FAILED',
    'ORDER_NOT_EDITABLE',
    'INSUFFICIENT_STOCK',
    'PRODUCT_UNAVAILABLE',
    'UNKNOWN_PRODUCT',
    'VERSION_MISMATCH',
    'PRECONDITION_FAILED',
    'PRECONDITION_REQUIRED',
    'UNSUPPORTED_MEDIA_TYPE',
    'SERVICE_UNAVAILABLE',
  )
  async edit(
    @Param('id', UuidPipe) id: string,
    @Body() body: UpdateOrderDto,
    @CurrentUser() caller: Caller,
    @RequestPreconditions() preconditions: Preconditions,
  ): Promise<VersionedResponse<OrderDto>> {
    const edited = await inTransaction(this.dataSource, (m) =>
      this.edits.edit(m, id, caller, body, preconditions),
    );
    return new VersionedResponse(versionedOrder(edited, caller));
  }

  @Get(':id/history')
  @ApiOperation({
    summary: 'Every change of an order, oldest first',
    description:
      'A page of entries `{action, from, to, at, actorId}` in the envelope of every list (`items`, `total`, `limit`, `offset`; `limit` 1-100, default 20; unknown query parameters → 400). Placement has `action: "place"` and `from: null`. `from` is the status the order really left, also when two requests raced.',
  })
  @ApiOkResponse({ type: HistoryPageDto })
  @ApiProblems('UNAUTHENTICATED', 'NOT_FOUND', 'VALIDATION_FAILED')
  async history(
    @Param('id', UuidPipe) id: string,
    @Query() query: PageQueryDto,
    @CurrentUser() caller: Caller,
    @ReadFrom() reader: Reader,
  ): Promise<HistoryPageDto> {
    const page = await reader.list((m) => this.reads.history(id, caller, query, m));
    return { ...page, items: page.items.map((e) => HistoryEntryDto.from(e)) };
  }

  /**
   * Every action of the transition table, served by one handler: the routes are declared from the
   * table below the class (`POST /orders/{id}/{action}`).
   */
  transitionRoute(
    action: OrderAction,
    id: string,
    caller: Caller,
    preconditions: Preconditions,
    request: RequestInfo,
  ): Promise<SerializedReply> {
    const work = async (m: EntityManager): Promise<SerializedResponse> =>
      this.serialize(
        await this.transitions.transition(m, id, action, caller, preconditions),
        caller,
        200,
      );
    if (IDEMPOTENT_ACTIONS.includes(action)) {
      return this.idempotency.run(
        this.idempotent(request, caller, `${orderPath(id)}/${action}`),
        work,
      );
    }
    return inTransaction(this.dataSource, work).then((r) => new SerializedReply(r, false));
  }

  /** `path` is the canonical path (normalised ids), so an equivalent URL is the same request. */
  private idempotent(request: RequestInfo, caller: Caller, path: string) {
    return {
      userId: caller.id,
      key: request.idempotencyKey,
      method: request.method,
      path,
      body: request.body,
      problemContext: problemContextOf(request),
    };
  }

  /**
   * A keyed checkout's 201 as place_order_keyed stored it (the order as placed, the caller's role
   * then, the request's id): the first response and every replay come from this one function, so a
   * replay is the first response byte for byte.
   */
  private renderPlaced(p: {
    placed: OrderWithItems;
    caller: Caller;
    requestId: string;
  }): SerializedResponse {
    return { ...this.serialize(p.placed, p.caller, 201, true), requestId: p.requestId };
  }

  private serialize(
    placed: OrderWithItems,
    caller: Caller,
    status: number,
    created = false,
  ): SerializedResponse {
    const v = versionedOrder(placed, caller);
    return serializeJson(status, v.representation, {
      ETag: v.etag,
      'Last-Modified': toHttpDate(v.updatedAt),
      ...(created ? { Location: orderPath(placed.order.id) } : {}),
    });
  }
}

/**
 * One route per action of the table, each with its OpenAPI description, all served by
 * `transitionRoute`: adding a transition to the table adds its route.
 */
for (const action of ORDER_ACTIONS) {
  const t = transition(action);
  const prototype = OrdersController.prototype as unknown as Record<string, unknown>;
  prototype[action] = function (
    this: OrdersController,
    id: string,
    caller: Caller,
    preconditions: Preconditions,
    request: RequestInfo,
  ): Promise<SerializedReply> {
    return this.transitionRoute(action, id, caller, preconditions, request);
  };
  // Named like a declared method: Swagger derives the operationId and parameters from the name.
  Object.defineProperty(prototype[action], 'name', { value: action });
  // What TypeScript would emit for a declared method; Swagger reads the path parameter from it.
  Reflect.defineMetadata('design:paramtypes', [String, Object, Object, Object], prototype, action);
  Param('id', UuidPipe)(prototype, action, 0);
  CurrentUser()(prototype, action, 1);
  RequestPreconditions()(prototype, action, 2);
  CurrentRequest()(prototype, action, 3);
  const who = t.by
    .map((c) => (c === 'system' ? 'the service only; callers get 403' : c))
    .join(' or ');
  const effects = t.effects.map((e) => `; ${TRANSITION_EFFECTS[e].inTransaction}`).join('');
  const decorators = [
    Post(`:id/${action}`),
    HttpCode(200),
    ApiOperation({
      summary: `${t.summary} (${who})`,
      description: `${t.from.join('|')} → ${t.to}${effects}.${action === 'pay' ? `\n\n${transitionTable()}` : ''}`,
    }),
    ...(IDEMPOTENT_ACTIONS.includes(action) ? [IDEMPOTENCY_HEADER] : []),
    IF_MATCH_HEADER,
    ApiOkResponse({ type: OrderDto, headers: VALIDATOR_HEADERS }),
    ApiProblems(
      ...TRANSITION_PROBLEMS,
      ...(IDEMPOTENT_ACTIONS.includes(action)
        ? (['IDEMPOTENCY_KEY_IN_USE', 'IDEMPOTENCY_KEY_REUSED'] as const)
        : []),
    ),
  ];
  const descriptor = Object.getOwnPropertyDescriptor(prototype, action)!;
  Reflect.decorate(decorators, prototype, action, descriptor);
  Object.defineProperty(prototype, action, descriptor);
}
