import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Patch,
  Post,
  Put,
  Query,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotModifiedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { Public, Roles } from '../common/access';
import {
  ApiConditionalGetHeaders,
  ApiPreconditionHeaders,
  VALIDATOR_HEADERS,
} from '../common/http/openapi-headers';
import type { Preconditions } from '../common/http/preconditions';
import type { Reader } from '../common/database/reader';
import {
  ReadFrom,
  RequestPreconditions,
  TaggedResponse,
  VersionedResponse,
} from '../common/http/responses';
import { UuidPipe } from '../common/http/uuid.pipe';
import { SkuPipe } from './sku.pipe';
import { ApiProblems } from '../common/problems/openapi';
import {
  CreateProductDto,
  ProductDto,
  ProductPageDto,
  ProductQueryDto,
  PutProductDto,
  SetStockDto,
  StockAdjustmentDto,
  StockDto,
  UpdateProductDto,
} from './dto/product.dto';
import { productPath, ProductsService } from './products.service';

const WRITE_PROBLEMS = ['UNAUTHENTICATED', 'FORBIDDEN', 'VALIDATION_FAILED'] as const;

@ApiTags('products')
@Controller('products')
export class ProductsController {
  constructor(private readonly products: ProductsService) {}

  @Post()
  @Roles('admin')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Create a product (admin)',
    description:
      'SKU (case-insensitive, trimmed) and slug are unique; the database decides, so of two simultaneous creates exactly one succeeds and the other gets 409 naming the field and the existing product.',
  })
  @ApiCreatedResponse({ type: ProductDto, headers: VALIDATOR_HEADERS })
  @ApiProblems(...WRITE_PROBLEMS, 'SKU_TAKEN', 'SLUG_TAKEN', 'UNSUPPORTED_MEDIA_TYPE')
  async create(@Body() body: CreateProductDto): Promise<VersionedResponse<ProductDto>> {
    const product = await this.products.create(body);
    return new VersionedResponse(this.products.describe(product), {
      location: productPath(product.id),
    });
  }

  @Get()
  @Public()
  @ApiOperation({
    summary: 'List products',
    description:
      "Offset pagination (`limit` ≤ 100) in a stable order (creation time, then id); filter by `q` and `active`. Items carry no stock unless `include=stock` adds each one's level (storefront lists); the list's ETag covers what it carries. If-None-Match → 304.",
  })
  @ApiOkResponse({ type: ProductPageDto, headers: { ETag: VALIDATOR_HEADERS.ETag } })
  @ApiNotModifiedResponse({ description: 'If-None-Match matched.' })
  @ApiConditionalGetHeaders()
  @ApiProblems('VALIDATION_FAILED')
  async list(
    @Query() query: ProductQueryDto,
    @ReadFrom() reader: Reader,
  ): Promise<TaggedResponse<ProductPageDto>> {
    const page = await reader.list((m) => this.products.list(query, m));
    const withStock = query.include === 'stock';
    return new TaggedResponse({
      ...page,
      items: page.items.map((p) => this.products.listItem(p, withStock)),
    });
  }

  @Get(':id')
  @Public()
  @ApiOperation({
    summary: 'One product',
    description: 'Public. With `ETag`; `If-None-Match` → 304.',
  })
  @ApiOkResponse({ type: ProductDto, headers: VALIDATOR_HEADERS })
  @ApiNotModifiedResponse({ description: 'If-None-Match matched.' })
  @ApiConditionalGetHeaders()
  @ApiProblems('NOT_FOUND', 'VALIDATION_FAILED')
  async get(
    @Param('id', UuidPipe) id: string,
    @ReadFrom() reader: Reader,
  ): Promise<VersionedResponse<ProductDto>> {
    return new VersionedResponse(
      await reader.one(async (m) => this.products.describe(await this.products.findById(id, m))),
    );
  }

  @Get('sku/:sku')
  @Public()
  @ApiOperation({
    summary: 'One product by SKU',
    description:
      'The product with this SKU (compared case-insensitively, trimmed). With `ETag`; `If-None-Match` → 304.',
  })
  @ApiOkResponse({ type: ProductDto, headers: VALIDATOR_HEADERS })
  @ApiNotModifiedResponse({ description: 'If-None-Match matched.' })
  @ApiConditionalGetHeaders()
  @ApiProblems('NOT_FOUND', 'VALIDATION_FAILED')
  async getBySku(
    @Param('sku', SkuPipe) sku: string,
    @ReadFrom() reader: Reader,
  ): Promise<VersionedResponse<ProductDto>> {
    return new VersionedResponse(
      await reader.one(async (m) => this.products.describe(await this.products.findBySku(sku, m))),
    );
  }

  @Put('sku/:sku')
  @Roles('admin')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Create or replace a product by SKU (admin)',
    description:
      'Catalogue synchronisation by natural key (e.g. from an ERP), without duplicates. `If-None-Match: *` → create only if no product has this SKU (201; one exists → 412 with `current`; of two racing creates exactly one gets 201). `If-Match: <ETag>` (or `If-Unmodified-Since`) → replace every field of the existing product when the version matches (200; stale → 412 with `current`; unknown SKU → 404). Neither → 428. The body is the full product as on create; its `sku` may be left out and, if given, must name the same SKU as the path (else 400). `stock` (default 0) only on a create: a replacing PUT with `stock` is a 400 (stock is its own resource, `PUT /products/{id}/stock`).',
  })
  @ApiPreconditionHeaders()
  @ApiCreatedResponse({ type: ProductDto, headers: VALIDATOR_HEADERS, description: 'Created.' })
  @ApiOkResponse({ type: ProductDto, headers: VALIDATOR_HEADERS, description: 'Replaced.' })
  @ApiProblems(
    ...WRITE_PROBLEMS,
    'NOT_FOUND',
    'SLUG_TAKEN',
    'PRECONDITION_FAILED',
    'PRECONDITION_REQUIRED',
    'UNSUPPORTED_MEDIA_TYPE',
  )
  async putBySku(
    @Param('sku', SkuPipe) sku: string,
    @Body() body: PutProductDto,
    @RequestPreconditions() preconditions: Preconditions,
  ): Promise<VersionedResponse<ProductDto>> {
    const { product, created } = await this.products.putBySku(sku, body, preconditions);
    return new VersionedResponse(
      this.products.describe(product),
      created ? { status: 201, location: productPath(product.id) } : { status: 200 },
    );
  }

  @Patch(':id')
  @Roles('admin')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Change a product (admin)',
    description:
      "Any subset of the create fields but `stock` (its own resource: `PUT /products/{id}/stock`; `stock` here is a 400). Only these fields move the product's version and ETag: no sale does. Needs a precondition: `If-Match` (or `If-Unmodified-Since`) → 412 when stale, or `version` in the body → 409 when stale; neither → 428. Stale answers carry `current`.",
  })
  @ApiPreconditionHeaders()
  @ApiOkResponse({ type: ProductDto, headers: VALIDATOR_HEADERS })
  @ApiProblems(
    ...WRITE_PROBLEMS,
    'NOT_FOUND',
    'SKU_TAKEN',
    'SLUG_TAKEN',
    'VERSION_MISMATCH',
    'PRECONDITION_FAILED',
    'PRECONDITION_REQUIRED',
    'UNSUPPORTED_MEDIA_TYPE',
  )
  async update(
    @Param('id', UuidPipe) id: string,
    @Body() body: UpdateProductDto,
    @RequestPreconditions() preconditions: Preconditions,
  ): Promise<VersionedResponse<ProductDto>> {
    const product = await this.products.update(id, body, preconditions);
    return new VersionedResponse(this.products.describe(product));
  }

  @Delete(':id')
  @HttpCode(204)
  @Roles('admin')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Delete a product (admin)',
    description:
      'Needs `If-Match` or `If-Unmodified-Since`. A product that orders reference cannot be deleted (409 `RESOURCE_IN_USE`); deactivate it instead.',
  })
  @ApiPreconditionHeaders()
  @ApiNoContentResponse({ description: 'Deleted.' })
  @ApiProblems(
    ...WRITE_PROBLEMS,
    'NOT_FOUND',
    'RESOURCE_IN_USE',
    'PRECONDITION_FAILED',
    'PRECONDITION_REQUIRED',
  )
  async remove(
    @Param('id', UuidPipe) id: string,
    @RequestPreconditions() preconditions: Preconditions,
  ): Promise<void> {
    await this.products.remove(id, preconditions);
  }

  @Get(':id/stock')
  @Public()
  @ApiOperation({
    summary: "A product's stock",
    description:
      "Public. Stock is its own resource (its own version, strong `ETag` and `Last-Modified`): every checkout, cancel, expiry, order edit and adjustment moves it, never the product's. `If-None-Match` → 304.",
  })
  @ApiOkResponse({ type: StockDto, headers: VALIDATOR_HEADERS })
  @ApiNotModifiedResponse({ description: 'If-None-Match matched.' })
  @ApiConditionalGetHeaders()
  @ApiProblems('NOT_FOUND', 'VALIDATION_FAILED')
  async getStock(
    @Param('id', UuidPipe) id: string,
    @ReadFrom() reader: Reader,
  ): Promise<VersionedResponse<StockDto>> {
    return new VersionedResponse(
      await reader.one(async (m) =>
        this.products.describeStock(await this.products.findStock(id, m)),
      ),
    );
  }

  @Put(':id/stock')
  @Roles('admin')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Set the stock level: a stock-take (admin)',
    description:
      "An absolute level: what is available to order from now on; orders placed after it count against it. Needs a precondition on the stock's own ETag (`GET /products/{id}/stock`): `If-Match` (or `If-Unmodified-Since`) → 412 when stale, or `version` in the body → 409 when stale; neither → 428. Stale answers carry `current` (the stock as it is now). One guarded write (`… WHERE id = $1 AND stock_version = $2`). For a relative change without a precondition, use `POST /products/{id}/stock-adjustments`.",
  })
  @ApiPreconditionHeaders()
  @ApiOkResponse({ type: StockDto, headers: VALIDATOR_HEADERS })
  @ApiProblems(
    ...WRITE_PROBLEMS,
    'NOT_FOUND',
    'VERSION_MISMATCH',
    'PRECONDITION_FAILED',
    'PRECONDITION_REQUIRED',
    'UNSUPPORTED_MEDIA_TYPE',
  )
  async setStock(
    @Param('id', UuidPipe) id: string,
    @Body() body: SetStockDto,
    @RequestPreconditions() preconditions: Preconditions,
  ): Promise<VersionedResponse<StockDto>> {
    const level = await this.products.setStock(id, body, preconditions);
    return new VersionedResponse(this.products.describeStock(level));
  }

  @Post(':id/stock-adjustments')
  @HttpCode(200)
  @Roles('admin')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Adjust stock by a relative amount (admin)',
    description:
      "One atomic conditional update (`stock = stock + delta WHERE stock + delta >= 0`); concurrent adjustments never lose each other. No precondition needed: relative changes commute. Answers the stock (its own version and ETag); the product's version does not move.",
  })
  @ApiOkResponse({ type: StockDto, headers: VALIDATOR_HEADERS })
  @ApiProblems(...WRITE_PROBLEMS, 'NOT_FOUND', 'INSUFFICIENT_STOCK', 'UNSUPPORTED_MEDIA_TYPE')
  async adjustStock(
    @Param('id', UuidPipe) id: string,
    @Body() body: StockAdjustmentDto,
  ): Promise<VersionedResponse<StockDto>> {
    const level = await this.products.adjustStock(id, body.delta);
    return new VersionedResponse(this.products.describeStock(level));
  }
}
