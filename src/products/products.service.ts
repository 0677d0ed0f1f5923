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
  type ProductWithStockDto,
  type PutProductDto,
  type SetStockDto,
  STOCK_IS_ITS_OWN_RESOURCE,
  StockDto,
  type UpdateProductDto,
} from './dto/product.dto';
import { Product } from './product.entity';
import { type ProductFields, ProductsRepository } from './products.repository';
import { type StockLevel, StockRepository } from './stock.repository';

export const productPath = (id: string): string => `/api/v1/products/${id}`;
export const stockPath = (id: string): string => `/api/v1/products/${id}/stock`;

/**
 * The product's ETag names its representation without `stock` (API.md §13): a tag issued before
 * stock moved apart, for the same version, described a body with `stock` in it, so a client holding
 * one gets 200 with the new body, not a 304 that keeps a frozen stock. A variant, not a version bump
 * in the migration: the product's version and Last-Modified still count only its own edits, and a
 * body `version` or If-Unmodified-Since held from before the deploy is still current.
 */
const PRODUCT_ETAG_VARIANT = 'without-stock';

/** A create's defaults, and the full set of fields a PUT replaces. */
function fields(input: CreateProductDto): ProductFields {
  return {
    sku: input.sku,
    slug: input.slug,
    name: input.name,
    description: input.description ?? '',
    priceCents: input.priceCents,
    currency: input.currency,
    stock: input.stock ?? 0,
    active: input.active ?? true,
  };
}

const sameSku = (a: string, b: string): boolean =>
  a.trim().toUpperCase() === b.trim().toUpperCase();

/** `stock` on a replacing PUT: 400 naming it (API.md §13). */
function refuseStockOnReplace(input: PutProductDto): void {
  if (input.stock !== undefined) {
    throw validationProblem([{ field: 'stock', message: STOCK_IS_ITS_OWN_RESOURCE }]);
  }
}

@Injectable()
export class ProductsService {
  constructor(
    private readonly products: ProductsRepository,
    private readonly stock: StockRepository,
  ) {}

  describe(product: Product): Versioned<ProductDto> {
    return versioned('product', product, ProductDto.from(product), PRODUCT_ETAG_VARIANT);
  }

  /** The stock's own ETag and Last-Modified: its version and timestamps, not the product's. */
  describeStock(level: StockLevel): Versioned<StockDto> {
    return versioned(
      'stock',
      {
        id: level.id,
        version: level.stockVersion,
        updatedAt: level.stockUpdatedAt,
        previousUpdatedAt: level.stockPreviousUpdatedAt,
      },
      StockDto.from(level),
    );
  }

  /** A list item: the product, and its stock level when the list was asked to include it. */
  listItem(product: Product, includeStock: boolean): ProductWithStockDto {
    const item: ProductWithStockDto = ProductDto.from(product);
    if (includeStock) item.stock = product.stock;
    return item;
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
    const createOnly = preconditions.ifNoneMatch === '*' && preconditions.ifMatch === undefined;
    // A replace never sets stock (API.md §13); only a create takes the initial level. Validation
    // comes before existence and preconditions: If-Match or If-Unmodified-Since name a replace.
    const replaces =
      preconditions.ifMatch !== undefined || preconditions.ifUnmodifiedSince !== undefined;
    if (!createOnly && replaces) refuseStockOnReplace(input);
    const replacement = fields({ ...input, sku: input.sku ?? sku });
    const resourceName = `product with SKU ${sku}`;
    try {
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
      // The product exists: without a precondition this is a replace too (400 before the 428).
      refuseStockOnReplace(input);
      const condition = decideWrite(preconditions, this.describe(current), {
        resourceName,
        acceptsBodyVersion: false,
      })!;
      const replaced = await this.products.update(current.id, condition, {
        ...replacement,
        stock: undefined,
      });
      if (replaced) return { product: replaced, created: false };
      const fresh = await this.products.findBySku(sku);
      if (!fresh) throw notFound(`Product with SKU ${sku}`);
      throw staleWrite(condition, this.describe(fresh), resourceName);
    } catch (err) {
      throw await this.explainConflict(err, replacement);
    }
  }

  /** `m`: where the read runs (a GET's Reader); the primary by default. */
  async findStock(id: string, m?: EntityManager): Promise<StockLevel> {
    const level = await this.stock.level(id, m);
    if (!level) throw notFound(`Product ${id}`);
    return level;
  }

  /**
   * `PUT /products/{id}/stock`, a stock-take: the preconditions of §3 on the stock's own ETag or
   * version, then one guarded write; a sale between our read and our write makes it 412/409 with the
   * stock as it is now.
   */
  async setStock(
    id: string,
    input: SetStockDto,
    preconditions: Preconditions,
  ): Promise<StockLevel> {
    return (await guardedMutation({
      preconditions,
      bodyVersion: input.version,
      resourceName: `stock of product ${id}`,
      load: () => this.stock.level(id),
      describe: (level) => this.describeStock(level),
      notFound: () => notFound(`Product ${id}`),
      write: (condition) => this.stock.set(id, condition, input.stock),
    })) as StockLevel;
  }

  adjustStock(id: string, delta: number): Promise<StockLevel> {
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
