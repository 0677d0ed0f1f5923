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

  /** While pending: when the hold on its units ends. Null otherwise. */
  @Column({ type: 'timestamptz', name: 'expires_at', nullable: true })
  expiresAt: Date | null;
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
