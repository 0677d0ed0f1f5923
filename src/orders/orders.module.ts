import { Module } from '@nestjs/common';
import { EventsModule } from '../events/events.module';
import { IdempotencyModule } from '../common/http/idempotency.module';
import { ProductsModule } from '../products/products.module';
import { HoldSweeper } from './hold-sweeper';
import { OrdersController } from './orders.controller';
import { OrdersRepository } from './orders.repository';
import { OrdersService } from './orders.service';

@Module({
  imports: [IdempotencyModule, ProductsModule, EventsModule],
  controllers: [OrdersController],
  providers: [OrdersService, OrdersRepository, HoldSweeper],
})
export class OrdersModule {}
