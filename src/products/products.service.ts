import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { constraintViolation } from '../common/database/database-errors';
import type { Page } from '../common/http/pagination';
import {
  decideWrite,
  guardedMutation,
  type Preconditions,
  preconditionFailed,
  staleWrite,
  type Versioned,
  versioned,
} from '../common/http/preconditions';
import { notFound, ProblemError } from '../common/problems/problem.error';
import { validationProblem } from '../common/problems/validation';
import {
  type CreateProductDto,
  ProductDto,
  type ProductQueryDto,
  type PutProductDto,
  type UpdateProductDto,
} from './dto/product.dto';
import { Product } from './product.entity';
import { type ProductFields, ProductsRepository } from './products.repository';
import { StockRepository } from './stock.repository';

export const productPath = (id: string): string => `/api/v1/products/${id}`;

/** A create's defaults, and the full set of fields a PUT replaces. */
function fields(input: CreateProductDto): ProductFields {
  return {
    sku: input.sku,
    slug: input.slug,
    name: input.name,
    description: input.description ?? '',
    priceCents: input.priceCents,
    currency: input.currency,
    stock: input.stock,
    active: input.active ?? true,
  };
}

const sameSku = (a: string, b: string): boolean =>
  a.trim().toUpperCase() === b.trim().toUpperCase();

@Injectable()
export class ProductsService {
  constructor(
    private readonly products: ProductsRepository,
    private readonly stock: StockRepository,
  ) {}

  describe(product: Product): Versioned<ProductDto> {
    return versioned('product', product, ProductDto.from(product));
  }

  async create(input: CreateProductDto): Promise<Product> {
    try {
      return await this.products.insert(fields(input));
    } catch (err) {
      throw await this.explainConflict(err, input);
    }
  }

  /** `m`: where the read runs (a GET's Reader hands it a standby's manager); the primary by default. */
  async findById(id: string, m?: EntityManager): Promise<Product> {
    const product = await this.products.findById(id, m);
    if (!product) throw notFound(`Product ${id}`);
    return product;
  }

  async findBySku(sku: string, m?: EntityManager): Promise<Product> {
    const product = await this.products.findBySku(sku, m);
    if (!product) throw notFound(`Product with SKU ${sku}`);
    return product;
  }

  list(query: ProductQueryDto, m?: EntityManager): Promise<Page<Product>> {
    return this.products.list(query, m);
  }

  async update(
    id: string,
    patch: UpdateProductDto,
    preconditions: Preconditions,
  ): Promise<Product> {
    const { version, ...changes } = patch;
    try {
      return (await guardedMutation({
        preconditions,
        bodyVersion: version,
        resourceName: `product ${id}`,
        load: () => this.products.findById(id),
        describe: (p) => this.describe(p),
        notFound: () => notFound(`Product ${id}`),
        write: (condition) => this.products.update(id, condition, changes),
      })) as Product;
    } catch (err) {
      throw await this.explainConflict(err, patch, id);
    }
  }

  async remove(id: string, preconditions: Preconditions): Promise<void> {
    try {
      await guardedMutation({
        preconditions,
        acceptsBodyVersion: false,
        resourceName: `product ${id}`,
        load: () => this.products.findById(id),
        describe: (p) => this.describe(p),
        notFound: () => notFound(`Product ${id}`),
        write: (condition) => this.products.delete(id, condition),
      });
    } catch (err) {
      throw await this.explainConflict(err, {}, id);
    }
  }

  /**
   * `PUT /products/sku/{sku}`, the catalogue-sync write by natural key: `If-None-Match: *` creates
   * only if no product has the SKU (one insert decides between racing creates; the loser gets 412
   * with the winner); `If-Match` (or If-Unmodified-Since) replaces every field of the existing one
   * with a guarded write; neither is 428.
   */
  async putBySku(
    sku: string,
    input: PutProductDto,
    preconditions: Preconditions,
  ): Promise<{ product: Product; created: boolean }> {
    if (input.sku !== undefined && !sameSku(input.sku, sku)) {
      throw validationProblem([
        { field: 'sku', message: `sku must equal the SKU in the path (${sku}) or be left out` },
      ]);
    }
    const replacement = fields({ ...input, sku: input.sku ?? sku });
    const resourceName = `product with SKU ${sku}`;
    try {
      const createOnly = preconditions.ifNoneMatch === '*' && preconditions.ifMatch === undefined;
      if (createOnly) {
        // A product deleted between our insert and our read of it: insert again.
        for (let attempt = 0; attempt < 3; attempt++) {
          const created = await this.products.insertIfSkuAbsent(replacement);
          if (created) return { product: created, created: true };
          const existing = await this.products.findBySku(sku);
          if (existing) {
            throw preconditionFailed(
              this.describe(existing),
              resourceName,
              'A product with this SKU already exists (If-None-Match: *)',
            );
          }
        }
        throw new Error(`Product with SKU ${sku} kept appearing and disappearing`);
      }
      const current = await this.products.findBySku(sku);
      if (!current) {
        if (preconditions.ifMatch !== undefined || preconditions.ifUnmodifiedSince !== undefined) {
          throw notFound(`Product with SKU ${sku} (to create it, send If-None-Match: *)`);
        }
        throw new ProblemError(
          'PRECONDITION_REQUIRED',
          `No product has SKU ${sku}. To create it, resend with \`If-None-Match: *\`; to replace an existing product, send \`If-Match: <its ETag>\`.`,
        );
      }
      const condition = decideWrite(preconditions, this.describe(current), {
        resourceName,
        acceptsBodyVersion: false,
      })!;
      const replaced = await this.products.update(current.id, condition, replacement);
      if (replaced) return { product: replaced, created: false };
      const fresh = await this.products.findBySku(sku);
      if (!fresh) throw notFound(`Product with SKU ${sku}`);
      throw staleWrite(condition, this.describe(fresh), resourceName);
    } catch (err) {
      throw await this.explainConflict(err, replacement);
    }
  }

  adjustStock(id: string, delta: number): Promise<Product> {
    return this.stock.adjust(id, delta);
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
    if (violation.code === 'SKU_TAKEN' && input.sku !== undefined) {
      return this.taken('SKU_TAKEN', 'sku', input.sku, await this.products.findBySku(input.sku));
    }
    if (violation.code === 'SLUG_TAKEN' && input.slug !== undefined) {
      return this.taken(
        'SLUG_TAKEN',
        'slug',
        input.slug,
        await this.products.findBySlug(input.slug),
      );
    }
    if (violation.code === 'RESOURCE_IN_USE' && id !== undefined) {
      const count = await this.products.countOrdersReferencing(id);
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
