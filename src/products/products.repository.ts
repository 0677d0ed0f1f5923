import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import {
  deleteIfVersion,
  insert,
  one,
  pageOf,
  prepared,
  sql,
  updateIfVersion,
  type WriteCondition,
} from '../common/database/sql';
import type { Page } from '../common/http/pagination';
import type { ProductQueryDto } from './dto/product.dto';
import { Product } from './product.entity';

/**
 * What a create or a full replace writes (the representation's writable fields), and a create's
 * initial stock (a replace never writes stock: API.md §13).
 */
export type ProductFields = Pick<
  Product,
  'sku' | 'slug' | 'name' | 'description' | 'priceCents' | 'currency' | 'active'
> & { stock?: number };

const PRODUCT_BY_ID = prepared(
  'product_by_id',
  'SELECT id, sku, slug, name, description, price_cents, currency, active, version, ' +
    'created_at, updated_at, previous_updated_at FROM products WHERE id = $1',
);

/** Every SQL statement on `products` except stock reads and changes (StockRepository's). */
@Injectable()
export class ProductsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  private get m(): EntityManager {
    return this.dataSource.manager;
  }

  /** One fixed, prepared statement: the hottest read of the service (see bench/). */
  findById(id: string, m: EntityManager = this.m): Promise<Product | null> {
    return one(m, Product, PRODUCT_BY_ID, [id]);
  }

  /** SKUs are one identity whatever their case or surrounding spaces (products_sku_upper_key). */
  findBySku(sku: string, m: EntityManager = this.m): Promise<Product | null> {
    return one(m, Product, 'SELECT * FROM products WHERE upper(btrim(sku)) = upper(btrim($1))', [
      sku,
    ]);
  }

  findBySlug(slug: string): Promise<Product | null> {
    return one(this.m, Product, 'SELECT * FROM products WHERE slug = $1', [slug]);
  }

  async list(query: ProductQueryDto, m: EntityManager = this.m): Promise<Page<Product>> {
    const where: string[] = [];
    const parameters: unknown[] = [];
    if (query.active !== undefined) {
      parameters.push(query.active === 'true');
      where.push(`active = $${parameters.length}`);
    }
    if (query.q) {
      // The text is a literal substring: LIKE wildcards in it are escaped, never interpreted.
      parameters.push(`%${query.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
      const p = `$${parameters.length}`;
      where.push(`(name ILIKE ${p} OR sku ILIKE ${p} OR slug ILIKE ${p})`);
    }
    const page = await pageOf(m, Product, {
      from: `FROM products ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`,
      orderBy: 'created_at, id',
      parameters,
      limit: query.limit,
      offset: query.offset,
    });
    return { ...page, limit: query.limit, offset: query.offset };
  }

  /** Inserts; the unique indexes on upper(btrim(sku)) and slug decide, never a read before. */
  async insert(fields: ProductFields): Promise<Product> {
    return (await insert(this.m, Product, fields))!;
  }

  /**
   * Inserts unless a product already has this SKU, in one statement: of two racing creates exactly
   * one inserts. Null when the SKU was taken (a slug collision still raises products_slug_key).
   */
  insertIfSkuAbsent(fields: ProductFields): Promise<Product | null> {
    return insert(this.m, Product, fields, 'ON CONFLICT ((upper(btrim(sku)))) DO NOTHING');
  }

  update(
    id: string,
    condition: WriteCondition,
    changes: Partial<ProductFields>,
  ): Promise<Product | undefined> {
    return updateIfVersion<Product>(this.m, Product, id, condition, changes);
  }

  delete(id: string, condition: WriteCondition): Promise<boolean> {
    return deleteIfVersion(this.m, Product, id, condition);
  }

  async countOrdersReferencing(id: string): Promise<number> {
    const { rows } = await sql<{ n: number }>(
      this.m,
      'SELECT count(DISTINCT order_id)::int AS n FROM order_items WHERE product_id = $1',
      [id],
    );
    return rows[0].n;
  }
}
