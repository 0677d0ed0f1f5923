import { Module } from '@nestjs/common';
import { PromotionUses } from './promotion-uses';
import { PromotionsController } from './promotions.controller';
import { PromotionsRepository } from './promotions.repository';
import { PromotionsService } from './promotions.service';

@Module({
  controllers: [PromotionsController],
  providers: [PromotionsService, PromotionsRepository, PromotionUses],
  exports: [PromotionUses],
})
export class PromotionsModule {}
