import { ApiProperty, ApiPropertyOptional, OmitType, PartialType } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsISO4217CurrencyCode,
  IsString,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  NotEquals,
} from 'class-validator';
import { Omittable } from '../../common/http/omittable';
import { trim } from '../../common/http/transforms';
import { PageMetaDto, PageQueryDto } from '../../common/http/pagination';
import type { Product } from '../product.entity';

export const MAX_PRICE_CENTS = 1_000_000_000;
export const MAX_STOCK = 1_000_000_000;
export const SKU_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const SKU_MESSAGE = 'sku must be 1-64 letters, digits, dots, underscores or dashes';

export class ProductDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ example: 'TSHIRT-RED-M' }) sku: string;
  @ApiProperty({ example: 'red-t-shirt-m' }) slug: string;
  @ApiProperty({ example: 'Red T-shirt (M)' }) name: string;
  @ApiProperty({ example: 'Organic cotton, medium.' }) description: string;
  @ApiProperty({ example: 1999, description: 'Integer minor units of `currency`.' })
  priceCents: number;
  @ApiProperty({ example: 'EUR', description: 'ISO 4217.' }) currency: string;
  @ApiProperty({ example: 42, description: 'Units available to order now.' }) stock: number;
  @ApiProperty({ example: true, description: 'Inactive products cannot be ordered.' })
  active: boolean;
  @ApiProperty({ example: 3, description: '+1 on every change, stock included.' })
  version: number;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;

  static from(p: Product): ProductDto {
    return {
      id: p.id,
      sku: p.sku,
      slug: p.slug,
      name: p.name,
      description: p.description,
      priceCents: p.priceCents,
      currency: p.currency,
      stock: p.stock,
      active: p.active,
      version: p.version,
      createdAt: p.createdAt.toISOString(),
      updatedAt: p.updatedAt.toISOString(),
    };
  }
}

export class ProductPageDto extends PageMetaDto {
  @ApiProperty({ type: [ProductDto] }) items: ProductDto[];
}

/**
 * The create example is a product the demo catalogue does not have, so that "Try it out" on a fresh
 * demo database answers 201; trying it a second time shows the 409 `SKU_TAKEN`.
 */
export class CreateProductDto {
  @ApiProperty({
    example: 'TOTE-BAG-NATURAL',
    description:
      'Unique case-insensitively after trimming. Letters, digits, `.`, `_`, `-`. (The example is not in the demo catalogue: it is created once, then 409 `SKU_TAKEN`; change it to create another.)',
  })
  @Transform(trim)
  @IsString()
  @Matches(SKU_PATTERN, { message: SKU_MESSAGE })
  sku: string;

  @ApiProperty({
    example: 'natural-tote-bag',
    description: 'Unique; lowercase words joined by dashes.',
  })
  @IsString()
  @MaxLength(120)
  @Matches(/^[a-z0-9]+(-[a-z0-9]+)*$/, { message: 'slug must be lowercase words joined by dashes' })
  slug: string;

  @ApiProperty({ example: 'Tote bag (natural)' })
  @Transform(trim)
  @IsString()
  @Length(1, 200)
  name: string;

  @ApiPropertyOptional({ example: 'Organic cotton canvas, 10 l.', default: '' })
  @Omittable()
  @IsString()
  @MaxLength(5000)
  description?: string;

  @ApiProperty({ example: 1999, minimum: 0, maximum: MAX_PRICE_CENTS })
  @IsInt()
  @Min(0)
  @Max(MAX_PRICE_CENTS)
  priceCents: number;

  @ApiProperty({ example: 'EUR', description: 'ISO 4217; stored upper-case (`eur` is `EUR`).' })
  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' ? value.toUpperCase() : value,
  )
  @IsISO4217CurrencyCode({ message: 'currency must be an ISO 4217 code such as EUR' })
  currency: string;

  @ApiProperty({ example: 100, minimum: 0, maximum: MAX_STOCK })
  @IsInt()
  @Min(0)
  @Max(MAX_STOCK)
  stock: number;

  @ApiPropertyOptional({ example: true, default: true })
  @Omittable()
  @IsBoolean()
  active?: boolean;
}

export class UpdateProductDto extends PartialType(CreateProductDto, { skipNullProperties: false }) {
  @ApiPropertyOptional({
    example: 3,
    description: 'The version this change is based on, when no If-Match header is sent.',
  })
  @Omittable()
  @IsInt()
  @Min(1)
  version?: number;
}

/** `PUT /products/sku/{sku}`: the whole product, as on create; `sku` may be left out (the path's). */
export class PutProductDto extends OmitType(CreateProductDto, ['sku']) {
  @ApiPropertyOptional({
    example: 'TSHIRT-RED-M',
    description: 'If given, must name the same SKU as the path (compared case-insensitively).',
  })
  @Omittable()
  @Transform(trim)
  @IsString()
  @Matches(SKU_PATTERN, { message: SKU_MESSAGE })
  sku?: string;
}

export class StockAdjustmentDto {
  @ApiProperty({
    example: -3,
    description: 'Relative change, applied atomically. A result below 0 is refused (409).',
  })
  @IsInt()
  @NotEquals(0)
  @Min(-MAX_STOCK)
  @Max(MAX_STOCK)
  delta: number;

  @ApiProperty({ example: 'cycle count correction' })
  @Transform(trim)
  @IsString()
  @Length(1, 200)
  reason: string;
}

export class ProductQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ description: 'Matches name, SKU or slug (case-insensitive substring).' })
  @Omittable()
  @IsString()
  @MaxLength(100)
  q?: string;

  @ApiPropertyOptional({ enum: ['true', 'false'] })
  @Omittable()
  @IsIn(['true', 'false'])
  @Type(() => String)
  active?: 'true' | 'false';
}
