import { Column, Entity } from 'typeorm';
import { VersionedEntity } from '../common/database/versioned.entity';

/** A promotion code (API.md §11). Exactly one of percentOff and amountOffCents (+ currency). */
@Entity({ name: 'promotions' })
export class Promotion extends VersionedEntity {
  /** Trimmed and upper-case; unique (promotions_code_key). */
  @Column({ type: 'text' })
  code: string;

  @Column({ type: 'smallint', name: 'percent_off', nullable: true })
  percentOff: number | null;

  @Column({ type: 'bigint', name: 'amount_off_cents', nullable: true })
  amountOffCents: number | null;

  @Column({ type: 'char', length: 3, nullable: true })
  currency: string | null;

  @Column({ type: 'timestamptz', name: 'starts_at', nullable: true })
  startsAt: Date | null;

  @Column({ type: 'timestamptz', name: 'ends_at', nullable: true })
  endsAt: Date | null;

  @Column({ type: 'integer', name: 'usage_limit', nullable: true })
  usageLimit: number | null;

  @Column({ type: 'integer', name: 'per_customer_limit', nullable: true })
  perCustomerLimit: number | null;

  @Column({ type: 'boolean', default: true })
  active: boolean;

  /** The orders holding a use now: +1 by a checkout's guarded write, −1 when one is cancelled or expires. */
  @Column({ type: 'integer', name: 'times_used', default: 0 })
  timesUsed: number;
}
