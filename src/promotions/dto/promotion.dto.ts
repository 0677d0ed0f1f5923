import { ApiProperty, ApiPropertyOptional, PartialType } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  IsBoolean,
  IsInt,
  IsISO4217CurrencyCode,
  IsISO8601,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
} from 'class-validator';
import { Omittable } from '../../common/http/omittable';
import { PageMetaDto, PageQueryDto } from '../../common/http/pagination';
import { MAX_PRICE_CENTS } from '../../products/dto/product.dto';
import type { Promotion } from '../promotion.entity';

export const PROMOTION_CODE_PATTERN = /^[A-Z0-9][A-Z0-9._-]{0,63}$/;
const CODE_MESSAGE = 'code must be 1-64 letters, digits, dots, underscores or dashes';
const MAX_LIMIT = 1_000_000_000;

/** Codes are one identity trimmed and upper-case (promotions_code_key). */
export const normaliseCode = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' ? value.trim().toUpperCase() : value;

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export class PromotionDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ example: 'SPRING10', description: 'Stored trimmed and upper-case.' })
  code: string;
  @ApiProperty({ example: 10, nullable: true, type: Number, description: '1–100, or null.' })
  percentOff: number | null;
  @ApiProperty({ example: null, nullable: true, type: Number, description: 'Or null.' })
  amountOffCents: number | null;
  @ApiProperty({ example: null, nullable: true, type: String, description: 'With amountOffCents.' })
  currency: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) startsAt: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) endsAt: string | null;
  @ApiProperty({ example: 50, nullable: true, type: Number, description: 'Null: unlimited.' })
  usageLimit: number | null;
  @ApiProperty({ example: 1, nullable: true, type: Number, description: 'Null: unlimited.' })
  perCustomerLimit: number | null;
  @ApiProperty({ example: true }) active: boolean;
  @ApiProperty({
    example: 3,
    description: 'The orders holding a use now (a cancelled or expired order gives its use back).',
  })
  timesUsed: number;
  @ApiProperty({ example: 1 }) version: number;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;

  static from(p: Promotion): PromotionDto {
    return {
      id: p.id,
      code: p.code,
      percentOff: p.percentOff,
      amountOffCents: p.amountOffCents === null ? null : Number(p.amountOffCents),
      currency: p.currency,
      startsAt: iso(p.startsAt),
      endsAt: iso(p.endsAt),
      usageLimit: p.usageLimit,
      perCustomerLimit: p.perCustomerLimit,
      active: p.active,
      timesUsed: p.timesUsed,
      version: p.version,
      createdAt: p.createdAt.toISOString(),
      updatedAt: p.updatedAt.toISOString(),
    };
  }
}

export class PromotionPageDto extends PageMetaDto {
  @ApiProperty({ type: [PromotionDto] }) items: PromotionDto[];
}

/** Nullable fields (`null` clears them: no start, no end, no limit) use IsOptional. */
export class CreatePromotionDto {
  @ApiProperty({
    example: 'SPRING10',
    description:
      'Unique after trimming and upper-casing (`spring10 ` is `SPRING10`). Letters, digits, `.`, `_`, `-`.',
  })
  @Transform(normaliseCode)
  @IsString()
  @Matches(PROMOTION_CODE_PATTERN, { message: CODE_MESSAGE })
  code: string;

  @ApiPropertyOptional({ example: 10, minimum: 1, maximum: 100, nullable: true, type: Number })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100)
  percentOff?: number | null;

  @ApiPropertyOptional({ minimum: 1, maximum: MAX_PRICE_CENTS, nullable: true, type: Number })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_PRICE_CENTS)
  amountOffCents?: number | null;

  @ApiPropertyOptional({ example: 'EUR', nullable: true, type: String, description: 'ISO 4217.' })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' ? value.toUpperCase() : value,
  )
  @IsISO4217CurrencyCode({ message: 'currency must be an ISO 4217 code such as EUR' })
  currency?: string | null;

  @ApiPropertyOptional({ format: 'date-time', nullable: true, type: String })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'startsAt must be an ISO 8601 date-time' })
  startsAt?: string | null;

  @ApiPropertyOptional({ format: 'date-time', nullable: true, type: String })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'endsAt must be an ISO 8601 date-time' })
  endsAt?: string | null;

  @ApiPropertyOptional({ example: 50, minimum: 0, nullable: true, type: Number })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_LIMIT)
  usageLimit?: number | null;

  @ApiPropertyOptional({ example: 1, minimum: 1, nullable: true, type: Number })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_LIMIT)
  perCustomerLimit?: number | null;

  @ApiPropertyOptional({ example: true, default: true })
  @Omittable()
  @IsBoolean()
  active?: boolean;
}

export class UpdatePromotionDto extends PartialType(CreatePromotionDto, {
  skipNullProperties: false,
}) {
  @ApiPropertyOptional({
    example: 3,
    description: 'The version this change is based on, when no If-Match header is sent.',
  })
  @Omittable()
  @IsInt()
  @Min(1)
  version?: number;
}

export class PromotionQueryDto extends PageQueryDto {}
