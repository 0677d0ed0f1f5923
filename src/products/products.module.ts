import { Module } from '@nestjs/common';
import { ProductsController } from './products.controller';
import { ProductsRepository } from './products.repository';
import { ProductsService } from './products.service';
import { StockRepository } from './stock.repository';

@Module({
  controllers: [ProductsController],
  providers: [ProductsService, ProductsRepository, StockRepository],
  exports: [ProductsService, StockRepository],
})
export class ProductsModule {}
