import { randomUUID } from 'node:crypto';
import { Body, Controller, Headers, HttpCode, Logger, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { type Caller, CurrentUser, Public } from '../common/access';
import { UuidPipe } from '../common/http/uuid.pipe';
import { ApiProblems } from '../common/problems/openapi';
import { notFound, ProblemError } from '../common/problems/problem.error';
import { MetricsService } from '../observability/metrics.service';
import { OrderReads } from '../orders/order-reads';
import { CompleteTestPaymentDto, PaymentDto } from './dto/payment.dto';
import { NotificationApplying } from './notification-applying';
import { PaymentsRepository } from './payments.repository';
import { NotificationRejected } from './providers/payment-provider';
import { PaymentProviders } from './providers/providers';

export const STRIPE_WEBHOOK_PATH = 'api/v1/payments/stripe/webhook';

/** Providers telling the service what happened to money (API.md §9). */
@ApiTags('payments')
@Controller('payments')
export class NotificationsController {
  private readonly logger = new Logger('PaymentNotifications');

  constructor(
    private readonly providers: PaymentProviders,
    private readonly applying: NotificationApplying,
    private readonly payments: PaymentsRepository,
    private readonly reads: OrderReads,
    private readonly metrics: MetricsService,
  ) {}

  @Public()
  @Post('stripe/webhook')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Stripe webhook (Stripe only)',
    description:
      'Stripe’s events, verified on the raw body bytes with the SDK’s `webhooks.constructEvent` and `STRIPE_WEBHOOK_SECRET` (5 minutes tolerance); a missing, malformed, stale or wrong `Stripe-Signature` → 400 `WEBHOOK_SIGNATURE_INVALID`, nothing recorded. Applied at most once per event id. Handled: `payment_intent.processing`, `.succeeded`, `.payment_failed`, `.canceled`, `refund.created`, `.updated`, `.failed`; every other type is acknowledged with 200 and ignored. No token, no rate limit. 404 where Stripe is not configured.',
  })
  @ApiBody({
    description: 'A Stripe Event, exactly as Stripe signed it.',
    schema: { type: 'object' },
  })
  @ApiOkResponse({
    description: 'Acknowledged.',
    schema: { type: 'object', properties: { received: { type: 'boolean', example: true } } },
  })
  @ApiProblems('WEBHOOK_SIGNATURE_INVALID', 'NOT_FOUND', 'SERVICE_UNAVAILABLE')
  async stripeWebhook(
    @Body() body: unknown,
    @Headers('stripe-signature') signature: string | undefined,
  ): Promise<{ received: true }> {
    const stripe = this.providers.notifying('stripe');
    if (!stripe) throw notFound('Route POST /api/v1/payments/stripe/webhook');
    let notification;
    try {
      if (!Buffer.isBuffer(body)) throw new NotificationRejected('the body is not the raw bytes');
      notification = stripe.verify(body, signature);
    } catch (err) {
      if (!(err instanceof NotificationRejected)) throw err;
      this.metrics.notificationRejected('stripe');
      this.logger.warn({ reason: err.message }, 'Stripe notification rejected');
      throw new ProblemError(
        'WEBHOOK_SIGNATURE_INVALID',
        `The notification was not accepted: ${err.message}. Nothing was recorded.`,
      );
    }
    await this.applying.apply('stripe', notification);
    return { received: true };
  }

  @Post('test/:paymentId/complete')
  @HttpCode(200)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Complete a test payment (the order’s owner; development and test only)',
    description:
      'Stands in for the customer at a provider: the `test` provider notifies the service through the same code path as a verified Stripe notification, and this answers 200 with the payment once it has been applied, also when the money turned out to be unwanted (a cancelled or expired order: then it is owed back, see `…/refunds`). A payment no longer open → 409 `PAYMENT_NOT_OPEN`, nothing changed. Anyone but the order’s owner → 404; 404 everywhere outside NODE_ENV development and test.',
  })
  @ApiOkResponse({ type: PaymentDto })
  @ApiProblems(
    'UNAUTHENTICATED',
    'NOT_FOUND',
    'VALIDATION_FAILED',
    'PAYMENT_NOT_OPEN',
    'SERVICE_UNAVAILABLE',
  )
  async completeTest(
    @Param('paymentId', UuidPipe) paymentId: string,
    @Body() body: CompleteTestPaymentDto,
    @CurrentUser() caller: Caller,
  ): Promise<PaymentDto> {
    const missing = () => notFound(`Test payment ${paymentId}`);
    if (!this.providers.test()) throw missing();
    const payment = await this.payments.findPayment(this.payments.manager, paymentId);
    if (!payment || payment.provider !== 'test') throw missing();
    const { order } = await this.reads.findVisible(payment.orderId, caller).catch(() => {
      throw missing();
    });
    if (order.userId !== caller.id) throw missing();
    const applied = await this.applying.apply(
      'test',
      {
        kind: 'payment',
        eventId: `test_evt_${randomUUID()}`,
        status: body.outcome,
        providerPaymentId: payment.providerPaymentId ?? `test_pi_${payment.id}`,
        paymentId: payment.id,
        amountReceivedCents:
          body.outcome === 'succeeded' ? (body.amountCents ?? payment.amountCents) : 0,
        currency: payment.currency,
        failureReason: body.outcome === 'failed' ? 'test provider: declined on request' : null,
      },
      { onlyOpen: true },
    );
    return PaymentDto.from(applied.payment ?? payment, true);
  }
}
