import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Patch,
  Post,
  Query,
  Req,
  Res,
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
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Public, Roles } from '../auth/auth.decorators';
import { parseEtagList, weakMatch } from '../common/http/etag';
import {
  ApiConditionalGetHeaders,
  ApiPreconditionHeaders,
  VALIDATOR_HEADERS,
} from '../common/http/openapi-headers';
import { conditionalGet, setValidators } from '../common/http/preconditions';
import { UuidPipe } from '../common/http/uuid.pipe';
import { ApiProblems } from '../common/problems/openapi';
import {
  CreateProductDto,
  ProductDto,
  ProductPageDto,
  ProductQueryDto,
  StockAdjustmentDto,
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
  async create(
    @Body() body: CreateProductDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ProductDto> {
    const product = await this.products.create(body);
    setValidators(reply, this.products.describe(product));
    void reply.header('Location', productPath(product.id));
    return ProductDto.from(product);
  }

  @Get()
  @Public()
  @ApiOperation({
    summary: 'List products',
    description:
      'Offset pagination (`limit` ≤ 100) in a stable order (creation time, then id); filter by `q` and `active`. The list carries an ETag; If-None-Match → 304.',
  })
  @ApiOkResponse({ type: ProductPageDto, headers: { ETag: VALIDATOR_HEADERS.ETag } })
  @ApiNotModifiedResponse({ description: 'If-None-Match matched.' })
  @ApiConditionalGetHeaders()
  @ApiProblems('VALIDATION_FAILED')
  async list(
    @Query() query: ProductQueryDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ProductPageDto | undefined> {
    const page = await this.products.list(query);
    const body = { ...page, items: page.items.map((p) => ProductDto.from(p)) };
    const etag = this.products.listEtag(body);
    void reply.header('ETag', etag);
    const ifNoneMatch = parseEtagList(request.headers['if-none-match']);
    if (ifNoneMatch !== undefined && weakMatch(ifNoneMatch, etag)) {
      void reply.status(304);
      return undefined;
    }
    return body;
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
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ProductDto | undefined> {
    const versioned = this.products.describe(await this.products.findById(id));
    return conditionalGet(request, reply, versioned);
  }

  @Patch(':id')
  @Roles('admin')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Change a product (admin)',
    description:
      'Any subset of the create fields. Needs a precondition: `If-Match` (or `If-Unmodified-Since`) → 412 when stale, or `version` in the body → 409 when stale; neither → 428. Stale answers carry `current`.',
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
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ProductDto> {
    const product = await this.products.update(id, body, request);
    setValidators(reply, this.products.describe(product));
    return ProductDto.from(product);
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
  async remove(@Param('id', UuidPipe) id: string, @Req() request: FastifyRequest): Promise<void> {
    await this.products.remove(id, request);
  }

  @Post(':id/stock-adjustments')
  @HttpCode(200)
  @Roles('admin')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Adjust stock by a relative amount (admin)',
    description:
      'One atomic conditional update (`stock = stock + delta WHERE stock + delta >= 0`); concurrent adjustments never lose each other. No precondition needed: relative changes commute.',
  })
  @ApiOkResponse({ type: ProductDto, headers: VALIDATOR_HEADERS })
  @ApiProblems(...WRITE_PROBLEMS, 'NOT_FOUND', 'INSUFFICIENT_STOCK', 'UNSUPPORTED_MEDIA_TYPE')
  async adjustStock(
    @Param('id', UuidPipe) id: string,
    @Body() body: StockAdjustmentDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ProductDto> {
    const product = await this.products.adjustStock(id, body);
    setValidators(reply, this.products.describe(product));
    return ProductDto.from(product);
  }
}
