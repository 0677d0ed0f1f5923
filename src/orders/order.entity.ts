import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { VersionedEntity } from '../common/database/versioned.entity';
import type { OrderHistoryAction, OrderStatus } from './order-state';

@Entity({ name: 'orders' })
export class Order extends VersionedEntity {
  @Column({ type: 'uuid', name: 'user_id' })
  userId: string;

  @Column({ type: 'text' })
  status: OrderStatus;

  @Column({ type: 'bigint', name: 'total_cents' })
  totalCents: number;

  @Column({ type: 'char', length: 3 })
  currency: string;

  /** The lines' sum (generated: total + discount). */
  @Column({ type: 'bigint', name: 'subtotal_cents', insert: false, update: false })
  subtotalCents: number;

  /** What the promotion took off the subtotal (0 without one): API.md §11. */
  @Column({ type: 'bigint', name: 'discount_cents' })
  discountCents: number;

  /** The promotion whose use the order holds (while not cancelled or expired). */
  @Column({ type: 'uuid', name: 'promotion_id', nullable: true })
  promotionId: string | null;

  /** The code as stored when placed. */
  @Column({ type: 'text', name: 'promotion_code', nullable: true })
  promotionCode: string | null;

  /** The terms at placement, which an edit reapplies. */
  @Column({ type: 'smallint', name: 'promotion_percent_off', nullable: true })
  promotionPercentOff: number | null;

  @Column({ type: 'bigint', name: 'promotion_amount_off_cents', nullable: true })
  promotionAmountOffCents: number | null;

  /** While pending: when the hold on its units ends. Null otherwise. */
  @Column({ type: 'timestamptz', name: 'expires_at', nullable: true })
  expiresAt: Date | null;

  /** The amount of the payment that paid the order (0 if none): API.md §9. */
  @Column({ type: 'bigint', name: 'paid_cents' })
  paidCents: number;

  /** The sum of that payment's succeeded refunds. */
  @Column({ type: 'bigint', name: 'refunded_cents' })
  refundedCents: number;

  /** The payment that paid the order; null while unpaid. */
  @Column({ type: 'uuid', name: 'payment_id', nullable: true })
  paymentId: string | null;
}

/** `unpaid`, `paid`, `partially_refunded`, `refunded`: from the order's payment fields (API.md §9). */
export const PAYMENT_STATUSES = ['unpaid', 'paid', 'partially_refunded', 'refunded'] as const;
export type OrderPaymentStatus = (typeof PAYMENT_STATUSES)[number];

export function paymentStatusOf(o: {
  paidCents: number;
  refundedCents: number;
}): OrderPaymentStatus {
  if (o.paidCents === 0) return 'unpaid';
  if (o.refundedCents === 0) return 'paid';
  return o.refundedCents >= o.paidCents ? 'refunded' : 'partially_refunded';
}

/** A line, with a snapshot of the product as it was sold. */
@Entity({ name: 'order_items' })
export class OrderItem {
  @PrimaryColumn({ type: 'uuid', name: 'order_id' })
  orderId: string;

  @PrimaryColumn({ type: 'smallint', name: 'line_no' })
  lineNo: number;

  @Column({ type: 'uuid', name: 'product_id' })
  productId: string;

  @Column({ type: 'text' })
  sku: string;

  @Column({ type: 'text' })
  name: string;

  @Column({ type: 'integer', name: 'unit_price_cents' })
  unitPriceCents: number;

  @Column({ type: 'integer' })
  quantity: number;
}

/** One row per change (placement included), written in the change's transaction. */
@Entity({ name: 'order_history' })
export class OrderHistoryEntry {
  @PrimaryGeneratedColumn('identity', { type: 'bigint', generatedIdentity: 'ALWAYS' })
  id: string;

  @Column({ type: 'uuid', name: 'order_id' })
  orderId: string;

  @Column({ type: 'text' })
  action: OrderHistoryAction;

  @Column({ type: 'text', name: 'from_status', nullable: true })
  fromStatus: OrderStatus | null;

  @Column({ type: 'text', name: 'to_status' })
  toStatus: OrderStatus;

  /** Null for the service's own actions (expire). */
  @Column({ type: 'uuid', name: 'actor_id', nullable: true })
  actorId: string | null;

  @Column({ type: 'timestamptz' })
  at: Date;
}
