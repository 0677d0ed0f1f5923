import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiHeader,
  ApiNotModifiedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DataSource } from 'typeorm';
import { type Caller, CurrentUser } from '../auth/auth.decorators';
import { inTransaction } from '../common/database/transaction';
import { IdempotencyService, sendOutcome, type Outcome } from '../common/http/idempotency.service';
import { ApiConditionalGetHeaders, VALIDATOR_HEADERS } from '../common/http/openapi-headers';
import { conditionalGet, setValidators } from '../common/http/preconditions';
import { UuidPipe } from '../common/http/uuid.pipe';
import { ApiProblems } from '../common/problems/openapi';
import { toHttpDate } from '../common/http/etag';
import {
  CreateOrderDto,
  HistoryEntryDto,
  OrderDto,
  OrderPageDto,
  OrderQueryDto,
} from './dto/order.dto';
import { type OrderAction, transitionTable } from './order-state';
import { orderPath, OrdersService, type OrderWithItems } from './orders.service';

const IDEMPOTENCY_HEADER = ApiHeader({
  name: 'Idempotency-Key',
  required: false,
  description:
    '1-255 printable characters, scoped to you. Retrying with the same key and body replays the first outcome (`Idempotent-Replayed: true`) instead of acting twice; the same key with another body → 422; while the first is in flight → the retry waits, or gets 409 with Retry-After. Kept 24 h.',
});
const IF_MATCH_HEADER = ApiHeader({
  name: 'If-Match',
  required: false,
  description: 'Optional: the order ETag you read. Stale → 412 and nothing changes.',
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

@ApiTags('orders')
@ApiBearerAuth()
@Controller('orders')
export class OrdersController {
  constructor(
    private readonly orders: OrdersService,
    private readonly idempotency: IdempotencyService,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  @Post()
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
    'IDEMPOTENCY_KEY_IN_USE',
    'IDEMPOTENCY_KEY_REUSED',
    'UNSUPPORTED_MEDIA_TYPE',
    'PAYLOAD_TOO_LARGE',
    'SERVICE_UNAVAILABLE',
  )
  async create(
    @Body() body: CreateOrderDto,
    @CurrentUser() caller: Caller,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<unknown> {
    const result = await this.idempotency.run(
      this.idempotent(request, caller, '/api/v1/orders'),
      async (m) => this.success(await this.orders.place(m, caller, body), caller, 201, true),
    );
    return sendOutcome(result, reply);
  }

  @Get()
  @ApiOperation({
    summary: 'List orders',
    description: 'Your own orders; admins see all. Stable order (creation time, then id).',
  })
  @ApiOkResponse({ type: OrderPageDto })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED')
  async list(@Query() query: OrderQueryDto, @CurrentUser() caller: Caller): Promise<OrderPageDto> {
    const page = await this.orders.list(caller, query);
    return {
      ...page,
      items: page.items.map((o) => this.orders.describe(o, caller).representation),
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
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<OrderDto | undefined> {
    const versioned = this.orders.describe(await this.orders.findVisible(id, caller), caller);
    return conditionalGet(request, reply, versioned);
  }

  @Get(':id/history')
  @ApiOperation({
    summary: 'Every transition of an order, oldest first',
    description: 'Entries `{from, to, at, actorId}`; creation has `from: null`.',
  })
  @ApiOkResponse({ type: [HistoryEntryDto] })
  @ApiProblems('UNAUTHENTICATED', 'NOT_FOUND', 'VALIDATION_FAILED')
  async history(
    @Param('id', UuidPipe) id: string,
    @CurrentUser() caller: Caller,
  ): Promise<HistoryEntryDto[]> {
    return (await this.orders.history(id, caller)).map((e) => HistoryEntryDto.from(e));
  }

  @Post(':id/pay')
  @HttpCode(200)
  @ApiOperation({ summary: 'Pay (owner)', description: `pending → paid.\n\n${transitionTable()}` })
  @IDEMPOTENCY_HEADER
  @IF_MATCH_HEADER
  @ApiOkResponse({ type: OrderDto, headers: VALIDATOR_HEADERS })
  @ApiProblems(...TRANSITION_PROBLEMS, 'IDEMPOTENCY_KEY_IN_USE', 'IDEMPOTENCY_KEY_REUSED')
  async pay(
    @Param('id', UuidPipe) id: string,
    @CurrentUser() caller: Caller,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<unknown> {
    const result = await this.idempotency.run(
      this.idempotent(request, caller, `${orderPath(id)}/pay`),
      async (m) =>
        this.success(await this.orders.transition(m, id, 'pay', caller, request), caller, 200),
    );
    return sendOutcome(result, reply);
  }

  @Post(':id/ship')
  @HttpCode(200)
  @ApiOperation({ summary: 'Ship (admin)', description: 'paid → shipped.' })
  @IF_MATCH_HEADER
  @ApiOkResponse({ type: OrderDto, headers: VALIDATOR_HEADERS })
  @ApiProblems(...TRANSITION_PROBLEMS)
  ship(
    @Param('id', UuidPipe) id: string,
    @CurrentUser() caller: Caller,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<OrderDto> {
    return this.move(id, 'ship', caller, request, reply);
  }

  @Post(':id/deliver')
  @HttpCode(200)
  @ApiOperation({ summary: 'Deliver (admin)', description: 'shipped → delivered.' })
  @IF_MATCH_HEADER
  @ApiOkResponse({ type: OrderDto, headers: VALIDATOR_HEADERS })
  @ApiProblems(...TRANSITION_PROBLEMS)
  deliver(
    @Param('id', UuidPipe) id: string,
    @CurrentUser() caller: Caller,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<OrderDto> {
    return this.move(id, 'deliver', caller, request, reply);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Cancel (owner or admin)',
    description:
      'pending|paid → cancelled; the reserved stock is returned in the same transaction.',
  })
  @IF_MATCH_HEADER
  @ApiOkResponse({ type: OrderDto, headers: VALIDATOR_HEADERS })
  @ApiProblems(...TRANSITION_PROBLEMS)
  cancel(
    @Param('id', UuidPipe) id: string,
    @CurrentUser() caller: Caller,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<OrderDto> {
    return this.move(id, 'cancel', caller, request, reply);
  }

  private async move(
    id: string,
    action: OrderAction,
    caller: Caller,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<OrderDto> {
    const moved = await inTransaction(this.dataSource, (m) =>
      this.orders.transition(m, id, action, caller, request),
    );
    const versioned = this.orders.describe(moved, caller);
    setValidators(reply, versioned);
    return versioned.representation;
  }

  /** `path` is the canonical path (normalised ids), so an equivalent URL is the same request. */
  private idempotent(request: FastifyRequest, caller: Caller, path: string) {
    return {
      userId: caller.id,
      key: request.headers['idempotency-key'],
      method: request.method,
      path,
      body: request.body,
    };
  }

  private success(
    placed: OrderWithItems,
    caller: Caller,
    status: number,
    created = false,
  ): Outcome {
    const v = this.orders.describe(placed, caller);
    return {
      kind: 'success',
      status,
      body: v.representation,
      headers: {
        ETag: v.etag,
        'Last-Modified': toHttpDate(v.updatedAt),
        ...(created ? { Location: orderPath(placed.order.id) } : {}),
      },
    };
  }
}
