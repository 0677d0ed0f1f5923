import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsString, IsUUID, Length, Max, Min } from 'class-validator';
import { Omittable } from '../../common/http/omittable';
import { PageMetaDto } from '../../common/http/pagination';
import { type Payment, PAYMENT_STATUSES, type PaymentStatus } from '../payments.repository';
import { type Refund, REFUND_STATUSES, type RefundStatus } from '../refunds.repository';
import { PAYMENT_PROVIDERS, type ProviderName } from '../providers/payment-provider';

/** Larger than any order total can be (100 lines × 1000 units × a price in int4). */
export const MAX_AMOUNT_CENTS = Number.MAX_SAFE_INTEGER;

export class OpenPaymentDto {
  @ApiProperty({
    enum: PAYMENT_PROVIDERS,
    example: 'test',
    description:
      '`stripe` or `test` (the order’s owner: opens a payment for the order’s total at the provider; `test` exists only under NODE_ENV development or test), or `manual` (an admin records money received outside the service: the order is paid at once).',
  })
  @IsString()
  provider: string;

  @ApiPropertyOptional({
    example: 2500,
    minimum: 1,
    description:
      '`manual` only, and required there: the amount received; must equal the order’s total.',
  })
  @Omittable()
  @IsInt()
  @Min(1)
  @Max(MAX_AMOUNT_CENTS)
  amountCents?: number;

  @ApiPropertyOptional({
    example: 'SEPA transfer 2026-12-06 ref 4711',
    maxLength: 200,
    description:
      '`manual` only, and required there: the bank transfer, receipt or other reference.',
  })
  @Omittable()
  @IsString()
  @Length(1, 200)
  reference?: string;
}

export class CompleteTestPaymentDto {
  @ApiProperty({ enum: ['succeeded', 'failed'], example: 'succeeded' })
  @IsIn(['succeeded', 'failed'])
  outcome: 'succeeded' | 'failed';

  @ApiPropertyOptional({
    example: 2500,
    minimum: 0,
    description:
      'What the provider says it received (default: the payment’s amount): another amount shows how unwanted money is given back (`amount_mismatch`).',
  })
  @Omittable()
  @IsInt()
  @Min(0)
  @Max(MAX_AMOUNT_CENTS)
  amountCents?: number;
}

export class CreateRefundDto {
  @ApiProperty({ example: 500, minimum: 1 })
  @IsInt()
  @Min(1)
  @Max(MAX_AMOUNT_CENTS)
  amountCents: number;

  @ApiProperty({
    example: 'damaged in transit',
    maxLength: 500,
    description: 'Free text, kept here; never sent to the provider.',
  })
  @IsString()
  @Length(1, 500)
  reason: string;

  @ApiPropertyOptional({
    format: 'uuid',
    description: 'The payment to refund; default: the payment that paid the order.',
  })
  @Omittable()
  @IsUUID('all', { message: 'paymentId must be a UUID' })
  paymentId?: string;
}

export class PaymentDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) orderId: string;
  @ApiProperty({ enum: PAYMENT_PROVIDERS }) provider: ProviderName;
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'The provider’s id (Stripe’s PaymentIntent id); null until the provider answered.',
  })
  providerPaymentId: string | null;
  @ApiProperty({
    enum: PAYMENT_STATUSES,
    description:
      'Open while `requires_action` or `processing`; then `succeeded`, `failed` or `canceled`. Nothing leaves `succeeded`.',
  })
  status: PaymentStatus;
  @ApiProperty({ example: 2500, description: "The order's total when the payment was opened." })
  amountCents: number;
  @ApiProperty({ example: 'EUR' }) currency: string;
  @ApiProperty({
    nullable: true,
    type: String,
    description:
      'What the customer’s browser needs to confirm the payment (Stripe’s `client_secret`): only for the order’s owner, only while the payment is open; otherwise null. Never in events.',
  })
  clientSecret: string | null;
  @ApiProperty({ nullable: true, type: String }) failureReason: string | null;
  @ApiProperty({ nullable: true, type: String, description: '`manual` only.' })
  reference: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;

  /** `forOwner`: the caller owns the order (the client secret is theirs while open). */
  static from(p: Payment, forOwner: boolean): PaymentDto {
    const open = p.status === 'requires_action' || p.status === 'processing';
    return {
      id: p.id,
      orderId: p.orderId,
      provider: p.provider,
      providerPaymentId: p.providerPaymentId,
      status: p.status,
      amountCents: p.amountCents,
      currency: p.currency,
      clientSecret: forOwner && open ? p.clientSecret : null,
      failureReason: p.failureReason,
      reference: p.reference,
      createdAt: p.createdAt.toISOString(),
      updatedAt: p.updatedAt.toISOString(),
    };
  }
}

export class PaymentPageDto extends PageMetaDto {
  @ApiProperty({ type: [PaymentDto] }) items: PaymentDto[];
}

export class RefundDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) orderId: string;
  @ApiProperty({ format: 'uuid' }) paymentId: string;
  @ApiProperty({ example: 500 }) amountCents: number;
  @ApiProperty({ example: 'EUR' }) currency: string;
  @ApiProperty({
    example: 'order_cancelled',
    description:
      'The admin’s text, or the service’s own: `order_cancelled`, `duplicate_payment`, `amount_mismatch`, `hold_expired`; `external` for a refund made at the provider.',
  })
  reason: string;
  @ApiProperty({ enum: REFUND_STATUSES }) status: RefundStatus;
  @ApiProperty({ nullable: true, type: String }) providerRefundId: string | null;
  @ApiProperty({ example: 1, description: 'Attempts at the provider so far.' }) attempts: number;
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'Why the last attempt did not succeed: admins only (null for customers).',
  })
  lastError: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;

  static from(r: Refund, forAdmin: boolean): RefundDto {
    return {
      id: r.id,
      orderId: r.orderId,
      paymentId: r.paymentId,
      amountCents: r.amountCents,
      currency: r.currency,
      reason: r.reason,
      status: r.status,
      providerRefundId: r.providerRefundId,
      attempts: r.attempts,
      lastError: forAdmin ? r.lastError : null,
      createdAt: r.createdAt.toISOString(),
      updatedAt: r.updatedAt.toISOString(),
    };
  }
}

export class RefundPageDto extends PageMetaDto {
  @ApiProperty({ type: [RefundDto] }) items: RefundDto[];
}
