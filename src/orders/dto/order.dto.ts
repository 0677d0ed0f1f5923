import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsInt,
  IsObject,
  IsString,
  Length,
  IsUUID,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import { Omittable } from '../../common/http/omittable';
import { PageMetaDto, PageQueryDto } from '../../common/http/pagination';
import {
  HISTORY_ACTIONS,
  ORDER_ACTIONS,
  ORDER_STATUSES,
  type OrderAction,
  type OrderHistoryAction,
  type OrderStatus,
} from '../order-state';
import { DEMO_PRODUCTS } from '../../common/demo-data';
import {
  type Order,
  type OrderHistoryEntry,
  type OrderItem,
  type OrderPaymentStatus,
  PAYMENT_STATUSES,
  paymentStatusOf,
} from '../order.entity';

export const MAX_LINES = 100;
export const MAX_QUANTITY = 1000;

/** The demo catalogue's Logo mug: the example line orders a product that exists on a demo database. */
const EXAMPLE_PRODUCT = DEMO_PRODUCTS.find((p) => p.sku === 'MUG-LOGO')!;

export class OrderLineInputDto {
  @ApiProperty({
    format: 'uuid',
    example: EXAMPLE_PRODUCT.id,
    description: `A product's id (\`GET /api/v1/products\`). The example is the demo catalogue's ${EXAMPLE_PRODUCT.name} (\`${EXAMPLE_PRODUCT.sku}\`).`,
  })
  @IsUUID('all', { message: 'productId must be a UUID' })
  productId: string;

  @ApiProperty({ example: 1, minimum: 1, maximum: MAX_QUANTITY })
  @IsInt()
  @Min(1)
  @Max(MAX_QUANTITY)
  quantity: number;
}

/** The lines of a placement or an edit. */
export class OrderLinesDto {
  @ApiProperty({
    type: [OrderLineInputDto],
    minItems: 1,
    maxItems: MAX_LINES,
    description: 'Lines for the same product are merged before stock is checked.',
  })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_LINES)
  // ValidateNested alone walks into an array inside the array; a line must be an object.
  @IsObject({ each: true, message: 'each line must be an object {productId, quantity}' })
  @ValidateNested({ each: true })
  @Type(() => OrderLineInputDto)
  items: OrderLineInputDto[];
}

/** `POST /orders`: the lines, and optionally a promotion code and the total the customer was shown. */
/**
 * The request examples of `POST /orders`: the first is what the Swagger UI prefills, and it works on
 * a fresh demo database (one demo Logo mug, no code, no expected total).
 */
export const CREATE_ORDER_EXAMPLES = {
  'one demo Logo mug': {
    value: { items: [{ productId: EXAMPLE_PRODUCT.id, quantity: 1 }] },
  },
  'with a promotion code and the total the customer was shown': {
    value: {
      items: [{ productId: EXAMPLE_PRODUCT.id, quantity: 2 }],
      promotionCode: 'SPRING10',
      expectedTotalCents: 2250,
    },
  },
};

export class CreateOrderDto extends OrderLinesDto {
  @ApiPropertyOptional({
    example: 'SPRING10',
    description:
      'A promotion code (compared trimmed and upper-case). Checked and its use counted in the same transaction as the order; a code that cannot be used → 409 `PROMOTION_NOT_APPLICABLE` with a `reason`, nothing reserved.',
  })
  @Omittable()
  @IsString()
  @Length(1, 64)
  promotionCode?: string;

  @ApiPropertyOptional({
    example: 3998,
    minimum: 0,
    description:
      'The total the customer was shown. If the order would cost anything else now (a price or the promotion changed) → 409 `PRICE_CHANGED` with the lines as they would be now; nothing reserved.',
  })
  @Omittable()
  @IsInt()
  @Min(0)
  @Max(Number.MAX_SAFE_INTEGER)
  expectedTotalCents?: number;
}

/** `PATCH /orders/{id}`: the order's whole new list of lines (same limits as placement). */
export class UpdateOrderDto extends OrderLinesDto {
  @ApiPropertyOptional({
    example: 1,
    description: 'The version this edit is based on, when no If-Match header is sent.',
  })
  @Omittable()
  @IsInt()
  @Min(1)
  version?: number;
}

export class OrderItemDto {
  @ApiProperty({ format: 'uuid' }) productId: string;
  @ApiProperty({ example: 'TSHIRT-RED-M', description: 'As it was when ordered.' }) sku: string;
  @ApiProperty({ example: 'Red T-shirt (M)', description: 'As it was when ordered.' }) name: string;
  @ApiProperty({ example: 1999, description: 'Price when ordered, minor units.' })
  unitPriceCents: number;
  @ApiProperty({ example: 2 }) quantity: number;

  static from(i: OrderItem): OrderItemDto {
    return {
      productId: i.productId,
      sku: i.sku,
      name: i.name,
      unitPriceCents: i.unitPriceCents,
      quantity: i.quantity,
    };
  }
}

export class OrderDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) userId: string;
  @ApiProperty({ enum: ORDER_STATUSES }) status: OrderStatus;
  @ApiProperty({
    enum: ORDER_ACTIONS,
    isArray: true,
    example: ['cancel'],
    description:
      'The actions legal now for you (never `pay`, `expire` or `revive`: only the service performs them; an order is paid through `POST /orders/{id}/payments`).',
  })
  allowedTransitions: OrderAction[];
  @ApiProperty({ type: [OrderItemDto] }) items: OrderItemDto[];
  @ApiProperty({ example: 3998, description: 'The sum of the lines at their snapshotted prices.' })
  subtotalCents: number;
  @ApiProperty({
    example: 0,
    description:
      "What the promotion code takes off the subtotal (0 without one): `floor(subtotal × percentOff / 100)`, or `min(subtotal, amountOffCents)`; an edit reapplies the code's terms as they were at placement.",
  })
  discountCents: number;
  @ApiProperty({
    example: null,
    nullable: true,
    type: String,
    description: 'The promotion code the order was placed with (as stored), or null.',
  })
  promotionCode: string | null;
  @ApiProperty({
    example: 3998,
    description:
      'What is owed: `subtotalCents` − `discountCents`, computed by the server from the prices at ordering.',
  })
  totalCents: number;
  @ApiProperty({ example: 'EUR' }) currency: string;
  @ApiProperty({
    enum: PAYMENT_STATUSES,
    example: 'unpaid',
    description:
      '`unpaid` while `paidCents` is 0; `refunded` when `refundedCents` = `paidCents`; `partially_refunded` between; else `paid`. Payments that did not pay the order (unwanted money, refunded in full) show only under `…/payments` and `…/refunds`.',
  })
  paymentStatus: OrderPaymentStatus;
  @ApiProperty({
    example: 0,
    description: 'The amount of the payment that paid the order, minor units (0 if none).',
  })
  paidCents: number;
  @ApiProperty({
    example: 0,
    description:
      "The sum of that payment's `succeeded` refunds, minor units. A change of the payment fields raises `version`.",
  })
  refundedCents: number;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description:
      'While `pending`: when the hold on its units ends (ORDER_HOLD_SECONDS after placement; an edit does not move it). Unpaid then, the order is `expired` and its units are back on sale. `null` otherwise.',
  })
  expiresAt: string | null;
  @ApiProperty({ example: 1 }) version: number;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;

  static from(o: Order, items: OrderItem[], allowed: OrderAction[]): OrderDto {
    return {
      id: o.id,
      userId: o.userId,
      status: o.status,
      allowedTransitions: allowed,
      items: items.map((i) => OrderItemDto.from(i)),
      subtotalCents: o.subtotalCents,
      discountCents: o.discountCents,
      promotionCode: o.promotionCode,
      totalCents: o.totalCents,
      currency: o.currency,
      paymentStatus: paymentStatusOf(o),
      paidCents: o.paidCents,
      refundedCents: o.refundedCents,
      expiresAt: o.expiresAt?.toISOString() ?? null,
      version: o.version,
      createdAt: o.createdAt.toISOString(),
      updatedAt: o.updatedAt.toISOString(),
    };
  }
}

export class OrderPageDto extends PageMetaDto {
  @ApiProperty({ type: [OrderDto] }) items: OrderDto[];
}

export class OrderQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: ORDER_STATUSES })
  @Omittable()
  @IsIn(ORDER_STATUSES)
  status?: OrderStatus;
}

export class HistoryEntryDto {
  @ApiProperty({
    enum: HISTORY_ACTIONS,
    description: '`place` for the placement, else the action performed.',
  })
  action: OrderHistoryAction;
  @ApiProperty({
    enum: ORDER_STATUSES,
    nullable: true,
    description: 'The status the order left (null for the placement).',
  })
  from: OrderStatus | null;
  @ApiProperty({ enum: ORDER_STATUSES }) to: OrderStatus;
  @ApiProperty({ format: 'date-time' }) at: string;
  @ApiProperty({
    format: 'uuid',
    nullable: true,
    type: String,
    description: 'Who did it; null for the service’s own `expire`.',
  })
  actorId: string | null;

  static from(e: OrderHistoryEntry): HistoryEntryDto {
    return {
      action: e.action,
      from: e.fromStatus,
      to: e.toStatus,
      at: e.at.toISOString(),
      actorId: e.actorId,
    };
  }
}

/** A page of an order's history, oldest first: the envelope of every list (PageMetaDto). */
export class HistoryPageDto extends PageMetaDto {
  @ApiProperty({ type: [HistoryEntryDto] }) items: HistoryEntryDto[];
}
