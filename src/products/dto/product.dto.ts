import {
  ApiHideProperty,
  ApiProperty,
  ApiPropertyOptional,
  OmitType,
  PartialType,
} from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  Equals,
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
  @ApiProperty({ example: true, description: 'Inactive products cannot be ordered.' })
  active: boolean;
  @ApiProperty({
    example: 3,
    description:
      "+1 on every change of the product's own fields. Stock is its own resource (`GET /products/{id}/stock`): no sale, cancel, expiry or stock change moves this version.",
  })
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
      active: p.active,
      version: p.version,
      createdAt: p.createdAt.toISOString(),
      updatedAt: p.updatedAt.toISOString(),
    };
  }
}

/** A list item of `GET /products?include=stock`: the product and its stock level. */
export class ProductWithStockDto extends ProductDto {
  @ApiPropertyOptional({
    example: 42,
    description:
      'Units available to order now; only with `include=stock`. Its own version and ETag are at `GET /products/{id}/stock`.',
  })
  stock?: number;
}

export class ProductPageDto extends PageMetaDto {
  @ApiProperty({
    type: [ProductWithStockDto],
    description: 'Each item carries `stock` only with `include=stock`.',
  })
  items: ProductWithStockDto[];
}

/** The stock of a product, its own resource (API.md §13). */
export class StockDto {
  @ApiProperty({ format: 'uuid' }) productId: string;
  @ApiProperty({ example: 42, description: 'Units available to order now.' }) stock: number;
  @ApiProperty({
    example: 17,
    description:
      "+1 on every change of the stock: a checkout, a cancel, an expiry, an order edit, a revive, an adjustment, a stock-take. Independent of the product's version.",
  })
  version: number;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;

  static from(p: Pick<Product, 'id' | 'stock' | 'stockVersion' | 'stockUpdatedAt'>): StockDto {
    return {
      productId: p.id,
      stock: p.stock,
      version: p.stockVersion,
      updatedAt: p.stockUpdatedAt.toISOString(),
    };
  }
}

/** `PUT /products/{id}/stock`: a stock-take's absolute level. */
export class SetStockDto {
  @ApiProperty({
    example: 40,
    minimum: 0,
    maximum: MAX_STOCK,
    description: 'The level counted: what is available to order from now on.',
  })
  @IsInt()
  @Min(0)
  @Max(MAX_STOCK)
  stock: number;

  @ApiPropertyOptional({
    example: 17,
    description: "The stock's version this level is based on, when no If-Match header is sent.",
  })
  @Omittable()
  @IsInt()
  @Min(1)
  version?: number;
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

  @ApiPropertyOptional({
    example: 100,
    minimum: 0,
    maximum: MAX_STOCK,
    default: 0,
    description:
      'The initial stock, on create only (a creating `PUT /products/sku/{sku}` too). Afterwards stock is its own resource: `PUT /products/{id}/stock`, `POST /products/{id}/stock-adjustments`.',
  })
  @Omittable()
  @IsInt()
  @Min(0)
  @Max(MAX_STOCK)
  stock?: number;

  @ApiPropertyOptional({ example: true, default: true })
  @Omittable()
  @IsBoolean()
  active?: boolean;
}

export const STOCK_IS_ITS_OWN_RESOURCE =
  'stock is its own resource: set a level with PUT /products/{id}/stock, or change it with POST /products/{id}/stock-adjustments';

export class UpdateProductDto extends PartialType(OmitType(CreateProductDto, ['stock']), {
  skipNullProperties: false,
}) {
  /** Never accepted: named in the 400 with where stock is changed (API.md §13). */
  @ApiHideProperty()
  @Omittable()
  @Equals(undefined, { message: STOCK_IS_ITS_OWN_RESOURCE })
  stock?: never;

  @ApiPropertyOptional({
    example: 3,
    description: 'The version this change is based on, when no If-Match header is sent.',
  })
  @Omittable()
  @IsInt()
  @Min(1)
  version?: number;
}

/**
 * `PUT /products/sku/{sku}`: the whole product, as on create; `sku` may be left out (the path's).
 * `stock` only when it creates (If-None-Match: *): a replacing PUT with it is a 400 (the service).
 */
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

export const PRODUCT_INCLUDES = ['stock'] as const;

export class ProductQueryDto extends PageQueryDto {
  @ApiPropertyOptional({
    enum: PRODUCT_INCLUDES,
    description:
      "`stock` adds each product's stock level to its item (the list's ETag then covers it). Without it, items carry no stock.",
  })
  @Omittable()
  @IsIn(PRODUCT_INCLUDES, { message: 'include must be stock (or left out)' })
  @Type(() => String)
  include?: 'stock';

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
