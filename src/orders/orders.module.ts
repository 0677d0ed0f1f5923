import { Module } from '@nestjs/common';
import { EventsModule } from '../events/events.module';
import { IdempotencyModule } from '../common/http/idempotency.module';
import { ProductsModule } from '../products/products.module';
import { PromotionsModule } from '../promotions/promotions.module';
import { HoldSweeper } from './hold-sweeper';
import { OrdersController } from './orders.controller';
import { OrdersRepository } from './orders.repository';
import { PlacementsRepository } from './placements.repository';
import { HoldExpiry } from './hold-expiry';
import { OrderChanges } from './order-changes';
import { OrderEdits } from './order-edits';
import { OrderHooks } from './order-hooks';
import { OrderPlacement } from './order-placement';
import { OrderReads } from './order-reads';
import { OrderTransitions } from './order-transitions';

@Module({
  imports: [IdempotencyModule, ProductsModule, PromotionsModule, EventsModule],
  controllers: [OrdersController],
  providers: [
    OrdersRepository,
    PlacementsRepository,
    OrderChanges,
    HoldExpiry,
    OrderReads,
    OrderPlacement,
    OrderTransitions,
    OrderEdits,
    HoldSweeper,
    OrderHooks,
  ],
  // The payments use cases move orders through these, and add their effect and edit check to
  // OrderHooks (src/payments/).
  exports: [OrdersRepository, OrderChanges, OrderReads, HoldExpiry, OrderHooks],
})
export class OrdersModule {}
