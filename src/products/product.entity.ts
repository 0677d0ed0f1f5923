import { Column, Entity } from 'typeorm';
import { VersionedEntity } from '../common/database/versioned.entity';

// Defaults of create live in the service: PartialType copies initialisers into PATCH DTOs.
@Entity({ name: 'products' })
export class Product extends VersionedEntity {
  /** Unique by upper(btrim(sku)): products_sku_upper_key. */
  @Column({ type: 'text' })
  sku: string;

  @Column({ type: 'text' })
  slug: string;

  @Column({ type: 'text' })
  name: string;

  @Column({ type: 'text', default: '' })
  description: string;

  @Column({ type: 'integer', name: 'price_cents' })
  priceCents: number;

  @Column({ type: 'char', length: 3 })
  currency: string;

  /**
   * Units available to order; CHECK (stock >= 0). bigint: returning held units never overflows.
   * Its own resource (API.md §13): never in the product's representation, with its own version and
   * timestamps below, moved by the touch_product_version trigger when (and only when) stock moves.
   */
  @Column({ type: 'bigint', default: 0 })
  stock: number;

  @Column({ type: 'integer', name: 'stock_version', default: 1 })
  stockVersion: number;

  @Column({ type: 'timestamptz', name: 'stock_updated_at', default: () => 'now()' })
  stockUpdatedAt: Date;

  @Column({ type: 'timestamptz', name: 'stock_previous_updated_at', nullable: true })
  stockPreviousUpdatedAt: Date | null;

  @Column({ type: 'boolean', default: true })
  active: boolean;
}
