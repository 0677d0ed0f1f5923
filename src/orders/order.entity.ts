import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { VersionedEntity } from '../common/database/versioned.entity';
import type { OrderStatus } from './order-state';

/** bigint money columns come back from pg as strings; totals stay far below 2^53. */
const bigintAsNumber = {
  to: (v: number) => v,
  from: (v: string | null) => (v === null ? v : Number(v)),
};

@Entity({ name: 'orders' })
export class Order extends VersionedEntity {
  @Column({ type: 'uuid', name: 'user_id' })
  userId: string;

  @Column({ type: 'text' })
  status: OrderStatus;

  @Column({ type: 'bigint', name: 'total_cents', transformer: bigintAsNumber })
  totalCents: number;

  @Column({ type: 'char', length: 3 })
  currency: string;
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

/** One row per transition (creation included), written in the transition's transaction. */
@Entity({ name: 'order_events' })
export class OrderEvent {
  @PrimaryGeneratedColumn('identity', { type: 'bigint', generatedIdentity: 'ALWAYS' })
  id: string;

  @Column({ type: 'uuid', name: 'order_id' })
  orderId: string;

  @Column({ type: 'text', name: 'from_status', nullable: true })
  fromStatus: OrderStatus | null;

  @Column({ type: 'text', name: 'to_status' })
  toStatus: OrderStatus;

  @Column({ type: 'uuid', name: 'actor_id' })
  actorId: string;

  @Column({ type: 'timestamptz' })
  at: Date;
}
