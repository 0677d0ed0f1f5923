import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { type Caller, CurrentUser } from '../common/access';
import { inTransaction } from '../common/database/transaction';
import { IdempotencyService, serializeJson } from '../common/http/idempotency.service';
import { PageQueryDto } from '../common/http/pagination';
import { problemContextOf } from '../common/http/problem.filter';
import { CurrentRequest, type RequestInfo, SerializedReply } from '../common/http/responses';
import { UuidPipe } from '../common/http/uuid.pipe';
import { ApiProblems } from '../common/problems/openapi';
import { orderPath } from '../orders/order-reads';
import {
  CreateRefundDto,
  OpenPaymentDto,
  PaymentDto,
  PaymentPageDto,
  RefundDto,
  RefundPageDto,
} from './dto/payment.dto';
import { PaymentOpening } from './payment-opening';
import { PaymentReads } from './payment-reads';
import { RefundRelay } from './refund-relay';
import { RefundRequests } from './refunds';

const IDEMPOTENCY_HEADER = ApiHeader({
  name: 'Idempotency-Key',
  required: false,
  description:
    '1-255 printable characters, scoped to you. Retrying with the same key and body replays the first outcome byte for byte (`Idempotent-Replayed: true`) instead of acting twice; the same key with another body → 422; while the first is in flight → the retry waits, or gets 409 with Retry-After. Kept 24 h.',
});

const CREATED_HEADERS = {
  Location: { description: 'The new resource.', schema: { type: 'string' } },
  'Idempotent-Replayed': {
    description: '`true` when this is a stored outcome replayed.',
    schema: { type: 'string' },
  },
};

export const paymentPath = (orderId: string, paymentId: string) =>
  `${orderPath(orderId)}/payments/${paymentId}`;

/** An order's payments and refunds (API.md §9, §10). */
@ApiTags('payments')
@ApiBearerAuth()
@Controller('orders')
export class PaymentsController {
  constructor(
    private readonly opening: PaymentOpening,
    private readonly reads: PaymentReads,
    private readonly refunds: RefundRequests,
    private readonly relay: RefundRelay,
    private readonly idempotency: IdempotencyService,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  @Post(':id/payments')
  @ApiOperation({
    summary: 'Open a payment (owner: stripe, test) or record one (admin: manual)',
    description: [
      'An order is `paid` only when money for exactly its total is captured, and only the party that holds the money says so: a provider, in a notification whose signature the service verified, or an admin recording money received outside the service.',
      '',
      '**A storefront** (the order’s owner): `POST` with `{"provider": "stripe"}` (or `"test"` where NODE_ENV is development or test) → 201 payment `requires_action` with a `clientSecret`; the customer confirms it at the provider (Stripe.js `confirmPayment` with the `clientSecret`; for `test`, `POST /api/v1/payments/test/{paymentId}/complete`); the provider notifies the service, which pays the order (`order.paid`, `payment.succeeded`). Poll `GET /api/v1/orders/{id}` (or subscribe to the events) until `status` is `paid`.',
      '',
      '**An admin**: `{"provider": "manual", "amountCents": <the total>, "reference": "…"}` → 201 payment `succeeded`, the order `paid` in the same transaction.',
      '',
      'Checks, in this order: 404 (order not visible) → 403 (customers `stripe`/`test` on their own orders, admins `manual`) → 400 (unknown provider, or not enabled here) → 409 `ILLEGAL_STATE_TRANSITION` (not `pending`, or its hold is over) → 409 `PAYMENT_IN_PROGRESS` (an open payment exists) → 409 `PAYMENT_AMOUNT_MISMATCH` (manual). A provider that refuses → 409 `PAYMENT_PROVIDER_REJECTED`; unreachable → 503; no payment is left open in either case. Opening changes nothing of the order (not its `version`), but no edit runs meanwhile.',
    ].join('\n'),
  })
  @IDEMPOTENCY_HEADER
  @ApiCreatedResponse({ type: PaymentDto, headers: CREATED_HEADERS })
  @ApiProblems(
    'UNAUTHENTICATED',
    'FORBIDDEN',
    'NOT_FOUND',
    'VALIDATION_FAILED',
    'ILLEGAL_STATE_TRANSITION',
    'PAYMENT_IN_PROGRESS',
    'PAYMENT_AMOUNT_MISMATCH',
    'PAYMENT_PROVIDER_REJECTED',
    'IDEMPOTENCY_KEY_IN_USE',
    'IDEMPOTENCY_KEY_REUSED',
    'UNSUPPORTED_MEDIA_TYPE',
    'SERVICE_UNAVAILABLE',
  )
  open(
    @Param('id', UuidPipe) id: string,
    @Body() body: OpenPaymentDto,
    @CurrentUser() caller: Caller,
    @CurrentRequest() request: RequestInfo,
  ): Promise<SerializedReply> {
    return this.idempotency.run(
      this.idempotent(request, caller, `${orderPath(id)}/payments`),
      async () => {
        const { payment, forOwner } = await this.opening.open(caller, id, body);
        return serializeJson(201, PaymentDto.from(payment, forOwner), {
          Location: paymentPath(payment.orderId, payment.id),
        });
      },
      { ownTransaction: true },
    );
  }

  @Get(':id/payments')
  @ApiOperation({
    summary: "An order's payments (owner or admin)",
    description:
      'Oldest first, in the envelope of every list. Unwanted payments (a cancelled order, a duplicate, a wrong amount) show here with their refunds under `…/refunds`; only the owner sees an open payment’s `clientSecret`.',
  })
  @ApiOkResponse({ type: PaymentPageDto })
  @ApiProblems('UNAUTHENTICATED', 'NOT_FOUND', 'VALIDATION_FAILED')
  async list(
    @Param('id', UuidPipe) id: string,
    @Query() query: PageQueryDto,
    @CurrentUser() caller: Caller,
  ): Promise<PaymentPageDto> {
    return this.reads.listPayments(caller, id, query);
  }

  @Get(':id/payments/:paymentId')
  @ApiOperation({ summary: 'One payment of an order (owner or admin)' })
  @ApiOkResponse({ type: PaymentDto })
  @ApiProblems('UNAUTHENTICATED', 'NOT_FOUND', 'VALIDATION_FAILED')
  payment(
    @Param('id', UuidPipe) id: string,
    @Param('paymentId', UuidPipe) paymentId: string,
    @CurrentUser() caller: Caller,
  ): Promise<PaymentDto> {
    return this.reads.payment(caller, id, paymentId);
  }

  @Post(':id/payments/:paymentId/cancel')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Cancel an open payment (owner or admin)',
    description:
      'At the provider first, then here. Not open, or the provider refuses → 409 `PAYMENT_NOT_CANCELABLE`; provider unreachable → 503; the payment is unchanged in both. The order is unchanged: it can be paid with a new payment, or edited.',
  })
  @ApiOkResponse({ type: PaymentDto })
  @ApiProblems(
    'UNAUTHENTICATED',
    'NOT_FOUND',
    'VALIDATION_FAILED',
    'PAYMENT_NOT_CANCELABLE',
    'SERVICE_UNAVAILABLE',
  )
  async cancel(
    @Param('id', UuidPipe) id: string,
    @Param('paymentId', UuidPipe) paymentId: string,
    @CurrentUser() caller: Caller,
  ): Promise<PaymentDto> {
    const { payment, forOwner } = await inTransaction(this.dataSource, (m) =>
      this.opening.cancel(m, caller, id, paymentId),
    );
    return PaymentDto.from(payment, forOwner);
  }

  @Post(':id/refunds')
  @ApiOperation({
    summary: 'Refund (admin)',
    description:
      'Refunds `amountCents` of a payment (default: the payment that paid the order). A payment’s balance is its captured amount minus its refunds that are not `failed`; the check and the record are one guarded write, so of concurrent refunds exceeding the balance exactly those that fit succeed; more → 409 `REFUND_EXCEEDS_BALANCE`. The refund is recorded `pending` and carried out at the provider after the commit, exactly once (its id is the provider’s idempotency key), retried with backoff, `failed` after REFUND_MAX_ATTEMPTS. On a `manual` payment it is `succeeded` at once: you return the money. `refundedCents` and `paymentStatus` of the order follow when it succeeds (`refund.succeeded`).',
  })
  @IDEMPOTENCY_HEADER
  @ApiCreatedResponse({ type: RefundDto, headers: CREATED_HEADERS })
  @ApiProblems(
    'UNAUTHENTICATED',
    'FORBIDDEN',
    'NOT_FOUND',
    'VALIDATION_FAILED',
    'REFUND_EXCEEDS_BALANCE',
    'IDEMPOTENCY_KEY_IN_USE',
    'IDEMPOTENCY_KEY_REUSED',
    'UNSUPPORTED_MEDIA_TYPE',
    'SERVICE_UNAVAILABLE',
  )
  async refund(
    @Param('id', UuidPipe) id: string,
    @Body() body: CreateRefundDto,
    @CurrentUser() caller: Caller,
    @CurrentRequest() request: RequestInfo,
  ): Promise<SerializedReply> {
    const reply = await this.idempotency.run(
      this.idempotent(request, caller, `${orderPath(id)}/refunds`),
      async (m) => {
        const refund = await this.refunds.create(m, caller, id, body);
        return serializeJson(201, RefundDto.from(refund, true), {
          Location: `${orderPath(refund.orderId)}/refunds/${refund.id}`,
        });
      },
    );
    this.relay.kick();
    return reply;
  }

  @Get(':id/refunds')
  @ApiOperation({
    summary: "An order's refunds (owner or admin)",
    description:
      'Oldest first, every refund of every payment of the order (`reason` `external` for one made at the provider). Customers never see `lastError`.',
  })
  @ApiOkResponse({ type: RefundPageDto })
  @ApiProblems('UNAUTHENTICATED', 'NOT_FOUND', 'VALIDATION_FAILED')
  listRefunds(
    @Param('id', UuidPipe) id: string,
    @Query() query: PageQueryDto,
    @CurrentUser() caller: Caller,
  ): Promise<RefundPageDto> {
    return this.reads.listRefunds(caller, id, query);
  }

  @Post(':id/refunds/:refundId/retry')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Retry a failed refund (admin)',
    description:
      'Only a `failed` refund (else 409 `REFUND_NOT_FAILED`): `pending` again with its attempts reset, carried out by the relay; the balance guard applies again (409 `REFUND_EXCEEDS_BALANCE`).',
  })
  @ApiAcceptedResponse({ type: RefundDto })
  @ApiProblems(
    'UNAUTHENTICATED',
    'FORBIDDEN',
    'NOT_FOUND',
    'VALIDATION_FAILED',
    'REFUND_NOT_FAILED',
    'REFUND_EXCEEDS_BALANCE',
    'SERVICE_UNAVAILABLE',
  )
  async retry(
    @Param('id', UuidPipe) id: string,
    @Param('refundId', UuidPipe) refundId: string,
    @CurrentUser() caller: Caller,
  ): Promise<RefundDto> {
    const refund = await inTransaction(this.dataSource, (m) =>
      this.refunds.retry(m, caller, id, refundId),
    );
    this.relay.kick();
    return RefundDto.from(refund, true);
  }

  @Post(':id/refunds/:refundId/complete')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Record that a manual refund went back (admin)',
    description:
      'Only a `pending` refund of a `manual` payment (one the service owes, a cancel): you returned the money outside the service and say so. Else 409.',
  })
  @ApiOkResponse({ type: RefundDto })
  @ApiProblems(
    'UNAUTHENTICATED',
    'FORBIDDEN',
    'NOT_FOUND',
    'VALIDATION_FAILED',
    'ILLEGAL_STATE_TRANSITION',
    'SERVICE_UNAVAILABLE',
  )
  async complete(
    @Param('id', UuidPipe) id: string,
    @Param('refundId', UuidPipe) refundId: string,
    @CurrentUser() caller: Caller,
  ): Promise<RefundDto> {
    const refund = await inTransaction(this.dataSource, (m) =>
      this.refunds.complete(m, caller, id, refundId),
    );
    return RefundDto.from(refund, true);
  }

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
}
