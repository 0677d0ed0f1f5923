import { Module } from '@nestjs/common';
import { IdempotencyModule } from '../common/http/idempotency.module';
import { OrdersController } from './orders.controller';
import { OrdersService } from './orders.service';

@Module({
  imports: [IdempotencyModule],
  controllers: [OrdersController],
  providers: [OrdersService],
})
export class OrdersModule {}
