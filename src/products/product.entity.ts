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

  /** Units available to order; CHECK (stock >= 0). bigint: returning held units never overflows. */
  @Column({ type: 'bigint', default: 0 })
  stock: number;

  @Column({ type: 'boolean', default: true })
  active: boolean;
}
