import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiTags,
} from '@nestjs/swagger';
import { type Caller, CurrentUser, Roles } from '../common/access';
import { PageMetaDto, PageQueryDto } from '../common/http/pagination';
import { UuidPipe } from '../common/http/uuid.pipe';
import { ApiProblems } from '../common/problems/openapi';
import { CreatedWebhookDto, CreateWebhookDto, DeliveryDto, WebhookDto } from './dto/webhook.dto';
import { WebhooksService } from './webhooks.service';

class WebhookPageDto extends PageMetaDto {
  @ApiProperty({ type: [WebhookDto] }) items: WebhookDto[];
}

class DeliveryPageDto extends PageMetaDto {
  @ApiProperty({ type: [DeliveryDto] }) items: DeliveryDto[];
}

const EVENTS_DESCRIPTION =
  'Every change of an order produces one event in the same transaction as the change: `order.created`, `order.edited`, `order.paid`, `order.shipped`, `order.delivered`, `order.cancelled`, `order.expired`. Body: `{id, type, occurredAt, data: {order}}`, the order at that version as its owner sees it. Delivery follows Standard Webhooks: headers `webhook-id` (the event id: deduplicate on it), `webhook-timestamp` and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the base64-decoded part of the secret after `whsec_`). At least once; a 2xx within 10 s delivers; otherwise retried with exponential backoff (WEBHOOK_BACKOFF_BASE_SECONDS × 2^(n−1), ±25%, capped at 6 h) until WEBHOOK_MAX_ATTEMPTS, then `failed`. Per subscription and order, events arrive in version order.';

@ApiTags('webhooks')
@ApiBearerAuth()
@Roles('admin')
@Controller('webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Post()
  @ApiOperation({
    summary: 'Subscribe to order events (admin)',
    description: `${EVENTS_DESCRIPTION}\n\nThe 201 body carries the signing \`secret\`, shown only then.`,
  })
  @ApiCreatedResponse({ type: CreatedWebhookDto })
  @ApiProblems('UNAUTHENTICATED', 'FORBIDDEN', 'VALIDATION_FAILED', 'UNSUPPORTED_MEDIA_TYPE')
  create(
    @Body() body: CreateWebhookDto,
    @CurrentUser() caller: Caller,
  ): Promise<CreatedWebhookDto> {
    return this.webhooks.create(body, caller);
  }

  @Get()
  @ApiOperation({
    summary: 'List webhook subscriptions (admin)',
    description: 'Without secrets. A page, oldest first (creation time, then id).',
  })
  @ApiOkResponse({ type: WebhookPageDto })
  @ApiProblems('UNAUTHENTICATED', 'FORBIDDEN', 'VALIDATION_FAILED')
  list(@Query() query: PageQueryDto): Promise<WebhookPageDto> {
    return this.webhooks.list(query.limit, query.offset);
  }

  @Get(':id')
  @ApiOperation({ summary: 'One webhook subscription (admin)', description: 'Without its secret.' })
  @ApiOkResponse({ type: WebhookDto })
  @ApiProblems('UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'VALIDATION_FAILED')
  get(@Param('id', UuidPipe) id: string): Promise<WebhookDto> {
    return this.webhooks.get(id);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Unsubscribe (admin)',
    description: 'Deletes the subscription and its deliveries, sent or not.',
  })
  @ApiNoContentResponse({ description: 'Deleted.' })
  @ApiProblems('UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'VALIDATION_FAILED')
  async remove(@Param('id', UuidPipe) id: string): Promise<void> {
    await this.webhooks.remove(id);
  }

  @Get(':id/deliveries')
  @ApiOperation({
    summary: 'Deliveries of a subscription (admin)',
    description:
      'Every delivery, oldest first, with its status (`pending`, `delivered`, `failed`), attempts, the last HTTP status and error, and when the next attempt is due.',
  })
  @ApiOkResponse({ type: DeliveryPageDto })
  @ApiProblems('UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'VALIDATION_FAILED')
  deliveries(
    @Param('id', UuidPipe) id: string,
    @Query() query: PageQueryDto,
  ): Promise<DeliveryPageDto> {
    return this.webhooks.deliveries(id, query.limit, query.offset);
  }

  @Post(':id/deliveries/:deliveryId/redeliver')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Queue a failed delivery again (admin)',
    description:
      'A `failed` delivery goes back to `pending`, due now, with a fresh budget of attempts (202). Not failed → 409 `DELIVERY_NOT_FAILED` with `deliveryStatus`.',
  })
  @ApiAcceptedResponse({ description: 'Queued.' })
  @ApiProblems(
    'UNAUTHENTICATED',
    'FORBIDDEN',
    'NOT_FOUND',
    'DELIVERY_NOT_FAILED',
    'VALIDATION_FAILED',
  )
  async redeliver(
    @Param('id', UuidPipe) id: string,
    @Param('deliveryId', UuidPipe) deliveryId: string,
  ): Promise<void> {
    await this.webhooks.redeliver(id, deliveryId);
  }
}
