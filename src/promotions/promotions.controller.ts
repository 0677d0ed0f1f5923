import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotModifiedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { Roles } from '../common/access';
import type { Reader } from '../common/database/reader';
import {
  ApiConditionalGetHeaders,
  ApiPreconditionHeaders,
  VALIDATOR_HEADERS,
} from '../common/http/openapi-headers';
import type { Preconditions } from '../common/http/preconditions';
import {
  ReadFrom,
  RequestPreconditions,
  TaggedResponse,
  VersionedResponse,
} from '../common/http/responses';
import { UuidPipe } from '../common/http/uuid.pipe';
import { ApiProblems } from '../common/problems/openapi';
import {
  CreatePromotionDto,
  PromotionDto,
  PromotionPageDto,
  PromotionQueryDto,
  UpdatePromotionDto,
} from './dto/promotion.dto';
import { promotionPath, PromotionsService } from './promotions.service';

const PROBLEMS = ['UNAUTHENTICATED', 'FORBIDDEN', 'VALIDATION_FAILED'] as const;

/** API.md §11: promotion codes (admin). A checkout uses them through `POST /orders`. */
@ApiTags('promotions')
@ApiBearerAuth()
@Roles('admin')
@Controller('promotions')
export class PromotionsController {
  constructor(private readonly promotions: PromotionsService) {}

  @Post()
  @ApiOperation({
    summary: 'Create a promotion code (admin)',
    description:
      'Exactly one of `percentOff` (1–100) and `amountOffCents` with `currency`. The code is stored trimmed and upper-case and is unique: of two simultaneous creates of one code exactly one succeeds, the other gets 409 `PROMOTION_CODE_TAKEN`.',
  })
  @ApiCreatedResponse({ type: PromotionDto, headers: VALIDATOR_HEADERS })
  @ApiProblems(...PROBLEMS, 'PROMOTION_CODE_TAKEN', 'UNSUPPORTED_MEDIA_TYPE')
  async create(@Body() body: CreatePromotionDto): Promise<VersionedResponse<PromotionDto>> {
    const promotion = await this.promotions.create(body);
    return new VersionedResponse(this.promotions.describe(promotion), {
      location: promotionPath(promotion.id),
    });
  }

  @Get()
  @ApiOperation({
    summary: 'List promotion codes (admin)',
    description:
      'Offset pagination (`limit` ≤ 100) in a stable order (creation time, then id). The list carries an ETag; If-None-Match → 304.',
  })
  @ApiOkResponse({ type: PromotionPageDto, headers: { ETag: VALIDATOR_HEADERS.ETag } })
  @ApiNotModifiedResponse({ description: 'If-None-Match matched.' })
  @ApiConditionalGetHeaders()
  @ApiProblems(...PROBLEMS)
  async list(
    @Query() query: PromotionQueryDto,
    @ReadFrom() reader: Reader,
  ): Promise<TaggedResponse<PromotionPageDto>> {
    const page = await reader.list((m) => this.promotions.list(query, m));
    return new TaggedResponse({ ...page, items: page.items.map((p) => PromotionDto.from(p)) });
  }

  @Get(':id')
  @ApiOperation({
    summary: 'One promotion code (admin)',
    description: 'With `ETag`; `If-None-Match` → 304. `timesUsed`: the orders holding a use now.',
  })
  @ApiOkResponse({ type: PromotionDto, headers: VALIDATOR_HEADERS })
  @ApiNotModifiedResponse({ description: 'If-None-Match matched.' })
  @ApiConditionalGetHeaders()
  @ApiProblems(...PROBLEMS, 'NOT_FOUND')
  async get(
    @Param('id', UuidPipe) id: string,
    @ReadFrom() reader: Reader,
  ): Promise<VersionedResponse<PromotionDto>> {
    return new VersionedResponse(
      await reader.one(async (m) =>
        this.promotions.describe(await this.promotions.findById(id, m)),
      ),
    );
  }

  @Patch(':id')
  @ApiOperation({
    summary: 'Change a promotion code (admin)',
    description:
      'Any subset of the create fields (`null` clears `startsAt`, `endsAt`, `usageLimit`, `perCustomerLimit`; giving one kind of discount clears the other). Needs a precondition: `If-Match` (or `If-Unmodified-Since`) → 412 when stale, or `version` in the body → 409 when stale; neither → 428. `usageLimit` may be set below `timesUsed`: no new use until it is under again. Orders already placed keep their terms.',
  })
  @ApiPreconditionHeaders()
  @ApiOkResponse({ type: PromotionDto, headers: VALIDATOR_HEADERS })
  @ApiProblems(
    ...PROBLEMS,
    'NOT_FOUND',
    'PROMOTION_CODE_TAKEN',
    'VERSION_MISMATCH',
    'PRECONDITION_FAILED',
    'PRECONDITION_REQUIRED',
    'UNSUPPORTED_MEDIA_TYPE',
  )
  async update(
    @Param('id', UuidPipe) id: string,
    @Body() body: UpdatePromotionDto,
    @RequestPreconditions() preconditions: Preconditions,
  ): Promise<VersionedResponse<PromotionDto>> {
    const promotion = await this.promotions.update(id, body, preconditions);
    return new VersionedResponse(this.promotions.describe(promotion));
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Delete a promotion code (admin)',
    description:
      'Needs `If-Match` or `If-Unmodified-Since`. A code that orders reference cannot be deleted (409 `RESOURCE_IN_USE`); set `active: false` instead.',
  })
  @ApiPreconditionHeaders()
  @ApiNoContentResponse({ description: 'Deleted.' })
  @ApiProblems(
    ...PROBLEMS,
    'NOT_FOUND',
    'RESOURCE_IN_USE',
    'PRECONDITION_FAILED',
    'PRECONDITION_REQUIRED',
  )
  async remove(
    @Param('id', UuidPipe) id: string,
    @RequestPreconditions() preconditions: Preconditions,
  ): Promise<void> {
    await this.promotions.remove(id, preconditions);
  }
}
