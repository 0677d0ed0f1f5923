import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { FastifyRequest } from 'fastify';
import { Brackets, DataSource } from 'typeorm';
import { deleteIfVersion, hydrate, updateIfVersion } from '../common/database/conditional-write';
import { constraintViolation } from '../common/database/database-errors';
import { computeEtag } from '../common/http/etag';
import type { Page } from '../common/http/pagination';
import { guardedMutation, type Versioned } from '../common/http/preconditions';
import { notFound, ProblemError } from '../common/problems/problem.error';
import { validationProblem } from '../common/problems/validation';
import {
  type CreateProductDto,
  MAX_STOCK,
  ProductDto,
  type ProductQueryDto,
  type StockAdjustmentDto,
  type UpdateProductDto,
} from './dto/product.dto';
import { Product } from './product.entity';

export const productPath = (id: string): string => `/api/v1/products/${id}`;

type Row = Record<string, unknown>;

@Injectable()
export class ProductsService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  describe(product: Product): Versioned<ProductDto> {
    return {
      version: product.version,
      etag: computeEtag('product', product.id, product.version),
      updatedAt: product.updatedAt,
      representation: ProductDto.from(product),
    };
  }

  /** Inserts; the unique indexes on upper(btrim(sku)) and slug decide, never a read before. */
  async create(input: CreateProductDto): Promise<Product> {
    try {
      const result = await this.dataSource
        .createQueryBuilder()
        .insert()
        .into(Product)
        .values({ ...input, description: input.description ?? '', active: input.active ?? true })
        .returning('*')
        .execute();
      return hydrate(this.dataSource.manager, Product, (result.raw as Row[])[0]);
    } catch (err) {
      throw await this.explainConflict(err, input);
    }
  }

  /** One fixed statement, hydrated directly: the hottest read of the service (see bench/). */
  async findRow(id: string): Promise<Product | null> {
    const rows: Row[] = await this.dataSource.query('SELECT * FROM products WHERE id = $1', [id]);
    return rows.length ? hydrate(this.dataSource.manager, Product, rows[0]) : null;
  }

  async findById(id: string): Promise<Product> {
    const product = await this.findRow(id);
    if (!product) throw notFound(`Product ${id}`);
    return product;
  }

  async list(query: ProductQueryDto): Promise<Page<Product>> {
    const qb = this.dataSource
      .getRepository(Product)
      .createQueryBuilder('p')
      .orderBy('p.created_at', 'ASC')
      .addOrderBy('p.id', 'ASC')
      .take(query.limit)
      .skip(query.offset);
    if (query.active !== undefined)
      qb.andWhere('p.active = :active', { active: query.active === 'true' });
    if (query.q) {
      // The text is a literal substring: LIKE wildcards in it are escaped, never interpreted.
      const pattern = `%${query.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      qb.andWhere(
        new Brackets((w) => {
          w.where('p.name ILIKE :pattern', { pattern })
            .orWhere('p.sku ILIKE :pattern')
            .orWhere('p.slug ILIKE :pattern');
        }),
      );
    }
    const [items, total] = await qb.getManyAndCount();
    return { items, total, limit: query.limit, offset: query.offset };
  }

  /** A strong ETag for a list: a digest of exactly what the client receives. */
  listEtag(body: unknown): string {
    return `"${createHash('sha256').update(JSON.stringify(body)).digest('base64url').slice(0, 27)}"`;
  }

  async update(id: string, patch: UpdateProductDto, request: FastifyRequest): Promise<Product> {
    const { version, ...changes } = patch;
    try {
      return (await guardedMutation({
        request,
        bodyVersion: version,
        resourceName: `product ${id}`,
        load: () => this.findRow(id),
        describe: (p) => this.describe(p),
        notFound: () => notFound(`Product ${id}`),
        write: (condition) =>
          updateIfVersion(this.dataSource.manager, Product, id, condition, changes),
      })) as Product;
    } catch (err) {
      throw await this.explainConflict(err, patch, id);
    }
  }

  async remove(id: string, request: FastifyRequest): Promise<void> {
    try {
      await guardedMutation({
        request,
        acceptsBodyVersion: false,
        resourceName: `product ${id}`,
        load: () => this.findRow(id),
        describe: (p) => this.describe(p),
        notFound: () => notFound(`Product ${id}`),
        write: (condition) => deleteIfVersion(this.dataSource.manager, Product, id, condition),
      });
    } catch (err) {
      throw await this.explainConflict(err, {}, id);
    }
  }

  /**
   * One conditional statement: the stock moves by `delta` only if the result stays >= 0. Parallel
   * adjustments serialise on the row lock; none can read a stale value.
   */
  async adjustStock(id: string, { delta }: StockAdjustmentDto): Promise<Product> {
    const result = await this.dataSource
      .createQueryBuilder()
      .update(Product)
      .set({
        stock: () => 'stock + :delta',
        version: () => 'version + 1',
        updatedAt: () => 'now()',
      })
      .where('id = :id', { id })
      .andWhere('stock + :delta BETWEEN 0 AND :max', { delta, max: MAX_STOCK })
      .returning('*')
      .execute();
    const rows = result.raw as Row[];
    if (rows.length) return hydrate(this.dataSource.manager, Product, rows[0]);
    const current = await this.findById(id);
    if (current.stock + delta > MAX_STOCK) {
      throw validationProblem([
        { field: 'delta', message: `stock would exceed ${MAX_STOCK} (it is ${current.stock})` },
      ]);
    }
    throw new ProblemError(
      'INSUFFICIENT_STOCK',
      `Product ${current.sku} has ${current.stock} unit(s); removing ${-delta} would go below zero. Nothing was changed.`,
      {
        available: current.stock,
        items: [{ productId: id, sku: current.sku, requested: -delta, available: current.stock }],
      },
    );
  }

  /**
   * Turns a constraint violation into its precise problem. The lookups only enrich the answer after
   * the database has decided.
   */
  private async explainConflict(
    err: unknown,
    input: { sku?: string; slug?: string },
    id?: string,
  ): Promise<unknown> {
    const violation = constraintViolation(err);
    if (!violation) return err;
    const repo = this.dataSource.getRepository(Product);
    if (violation.code === 'SKU_TAKEN' && input.sku !== undefined) {
      const existing = await repo
        .createQueryBuilder('p')
        .where('upper(btrim(p.sku)) = upper(btrim(:sku))', { sku: input.sku })
        .getOne();
      return this.taken('SKU_TAKEN', 'sku', input.sku, existing);
    }
    if (violation.code === 'SLUG_TAKEN' && input.slug !== undefined) {
      return this.taken(
        'SLUG_TAKEN',
        'slug',
        input.slug,
        await repo.findOneBy({ slug: input.slug }),
      );
    }
    if (violation.code === 'RESOURCE_IN_USE' && id !== undefined) {
      const [{ count }] = await this.dataSource.query<{ count: number }[]>(
        'SELECT count(DISTINCT order_id)::int AS count FROM order_items WHERE product_id = $1',
        [id],
      );
      return new ProblemError(
        'RESOURCE_IN_USE',
        `Product ${id} appears in ${count} order(s) and cannot be deleted; set active to false to stop selling it. Nothing was deleted.`,
        { dependents: { orders: count } },
      );
    }
    return err;
  }

  private taken(
    code: 'SKU_TAKEN' | 'SLUG_TAKEN',
    field: 'sku' | 'slug',
    value: string,
    existing: Product | null,
  ): ProblemError {
    return new ProblemError(
      code,
      `Another product already uses the ${field} "${value}"${existing ? ` (${existing.name})` : ''}.`,
      { field, value, ...(existing ? { conflictingResource: productPath(existing.id) } : {}) },
    );
  }
}
