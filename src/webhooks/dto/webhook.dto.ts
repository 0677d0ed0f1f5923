import { ApiProperty } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsString, MaxLength } from 'class-validator';
import { OrderDto } from '../../orders/dto/order.dto';
import type { OrderEvent } from '../../orders/order-events';
import {
  EVENT_TYPES,
  ORDER_EVENT_TYPES,
  type EventType,
  type OrderEventType,
} from '../../orders/order-state';

const EVENT_CHOICES = ['*', ...EVENT_TYPES] as const;

/** The secret the document's examples show (and sign the `x-webhooks` examples with). */
export const EXAMPLE_WEBHOOK_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

export class CreateWebhookDto {
  @ApiProperty({
    example: 'https://shop.example.com/hooks/orders',
    description:
      'http(s). Outside development and test, a URL that resolves to a loopback, private or link-local address is refused unless WEBHOOK_ALLOW_PRIVATE_URLS=true.',
  })
  @IsString()
  @MaxLength(2000)
  url: string;

  @ApiProperty({
    enum: EVENT_CHOICES,
    isArray: true,
    example: ['order.paid', 'order.cancelled'],
    description: 'The event types to receive, or `["*"]` for every one.',
  })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(EVENT_CHOICES.length)
  @IsIn(EVENT_CHOICES, { each: true })
  events: (EventType | '*')[];
}

export class WebhookDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ example: 'https://shop.example.com/hooks/orders' }) url: string;
  @ApiProperty({ enum: EVENT_CHOICES, isArray: true }) events: string[];
  @ApiProperty({ format: 'date-time' }) createdAt: string;
}

export class CreatedWebhookDto extends WebhookDto {
  @ApiProperty({
    example: EXAMPLE_WEBHOOK_SECRET,
    description:
      'The signing secret (Standard Webhooks), shown only in this response: keep it to verify `webhook-signature`.',
  })
  secret: string;
}

export class DeliveryDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid', description: 'The event id (also `webhook-id`).' })
  eventId: string;
  @ApiProperty({ enum: EVENT_TYPES }) type: string;
  @ApiProperty({ format: 'uuid' }) orderId: string;
  @ApiProperty({ enum: ['pending', 'delivered', 'failed'] }) status: string;
  @ApiProperty({ example: 1, description: 'Attempts made so far.' }) attempts: number;
  @ApiProperty({
    nullable: true,
    type: Number,
    example: 500,
    description: 'HTTP status of the last attempt.',
  })
  lastStatus: number | null;
  @ApiProperty({ nullable: true, type: String, example: 'HTTP 500' }) lastError: string | null;
  @ApiProperty({
    nullable: true,
    type: String,
    format: 'date-time',
    description: 'When the next attempt is due (pending only).',
  })
  nextAttemptAt: string | null;
}

/** `data` of an order event. */
export class OrderEventDataDto {
  @ApiProperty({
    type: OrderDto,
    description:
      'The order at this version, as its owner sees it (its `allowedTransitions` are the owner’s). Per subscription and order, events arrive in `version` order.',
  })
  order: OrderDto;
}

/**
 * The body of every webhook delivery (`OrderEvent`), for the OpenAPI document: src/openapi.ts
 * registers it as an extra model and describes the delivery of each event type under `x-webhooks`.
 */
export class OrderEventDto implements OrderEvent {
  @ApiProperty({
    format: 'uuid',
    description:
      'The event id, also sent as the `webhook-id` header. The same on every attempt and redelivery: deduplicate on it.',
  })
  id: string;

  @ApiProperty({ enum: ORDER_EVENT_TYPES, example: 'order.paid' })
  type: OrderEventType;

  @ApiProperty({
    format: 'date-time',
    description: 'When the change was made (the service’s clock).',
  })
  occurredAt: string;

  @ApiProperty({ type: OrderEventDataDto }) data: OrderEventDataDto;
}
