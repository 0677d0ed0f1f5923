import { Module } from '@nestjs/common';
import { IdempotencyModule } from '../common/http/idempotency.module';
import { EventsModule } from '../events/events.module';
import { OrdersModule } from '../orders/orders.module';
import { NotificationApplying } from './notification-applying';
import { NotificationsController } from './notifications.controller';
import { OrderPaymentHooks } from './order-payment-hooks';
import { PaymentEvents } from './payment-events';
import { PaymentOpening } from './payment-opening';
import { PaymentReads } from './payment-reads';
import { PaymentsRepository } from './payments.repository';
import { RefundsRepository } from './refunds.repository';
import { PaymentsController } from './payments.controller';
import { PaymentProviders } from './providers/providers';
import { RefundRelay } from './refund-relay';
import { RefundSettlement } from './refund-settlement';
import { RefundRequests } from './refunds';

/**
 * Money (API.md §9, §10): payments opened at a provider (or recorded by an admin), providers'
 * verified notifications applied once, refunds carried out after the commit by the refund relay.
 * The providers are built in providers/providers.ts, one line each.
 */
@Module({
  imports: [IdempotencyModule, EventsModule, OrdersModule],
  controllers: [PaymentsController, NotificationsController],
  providers: [
    PaymentsRepository,
    RefundsRepository,
    OrderPaymentHooks,
    PaymentProviders,
    PaymentEvents,
    RefundSettlement,
    NotificationApplying,
    PaymentOpening,
    RefundRequests,
    PaymentReads,
    RefundRelay,
  ],
  exports: [PaymentProviders, NotificationApplying, RefundRelay],
})
export class PaymentsModule {}
