import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { hydrate, one, sql, type WriteCondition } from '../common/database/sql';
import { notFound, ProblemError } from '../common/problems/problem.error';
import { validationProblem } from '../common/problems/validation';
import { MAX_STOCK } from './dto/product.dto';
import { Product } from './product.entity';

/** The stock of a product, its own resource (API.md §13): the level and its own version. */
export type StockLevel = Pick<
  Product,
  'id' | 'stock' | 'stockVersion' | 'stockUpdatedAt' | 'stockPreviousUpdatedAt'
>;

const STOCK_COLUMNS = 'id, stock, stock_version, stock_updated_at, stock_previous_updated_at';

/** A product row locked for a stock change, with what an order snapshots of it. */
export interface StockRow {
  id: string;
  sku: string;
  name: string;
  priceCents: number;
  currency: string;
  stock: number;
  active: boolean;
}

export interface RawStockRow {
  id: string;
  sku: string;
  name: string;
  price_cents: number;
  currency: string;
  stock: number;
  active: boolean;
}

export const stockRowOf = (r: RawStockRow): StockRow => ({
  id: r.id,
  sku: r.sku,
  name: r.name,
  priceCents: r.price_cents,
  currency: r.currency,
  stock: r.stock,
  active: r.active,
});

/** The 409 for every line asking more than its product has, or undefined when none does. */
export function insufficientStock(
  products: StockRow[],
  wanted: Map<string, number>,
): ProblemError | undefined {
  const short = products.filter((p) => (wanted.get(p.id) ?? 0) > p.stock);
  if (!short.length) return undefined;
  return new ProblemError(
    'INSUFFICIENT_STOCK',
    `Not enough stock for ${short.map((p) => `${p.sku} (${wanted.get(p.id)} requested, ${p.stock} available)`).join(', ')}. Nothing was reserved.`,
    {
      items: short.map((p) => ({
        productId: p.id,
        sku: p.sku,
        requested: wanted.get(p.id)!,
        available: p.stock,
      })),
    },
  );
}

/**
 * The one owner of `products.stock`. Every change of stock goes through here: orders reserve and
 * release units, admins adjust and take stock. (The placement statements, src/orders/sql, decrement it
 * too, under the same row lock.) The touch_product_version trigger moves the stock's own version on
 * every change of it, never the product's (API.md §13). Multi-product changes lock the rows in product-id order, so two
 * transactions over the same products can never deadlock, and every decrement stays conditional
 * (`stock >= n`), so the database has the last word even if a caller's check were wrong.
 */
@Injectable()
export class StockRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Locks the products (those that exist) in id order, for the rest of the transaction. */
  async lock(m: EntityManager, productIds: string[]): Promise<StockRow[]> {
    const { rows } = await sql<RawStockRow>(
      m,
      `SELECT id, sku, name, price_cents, currency, stock, active FROM products
        WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`,
      [[...productIds].sort()],
    );
    return rows.map(stockRowOf);
  }

  /**
   * Takes `wanted` units of locked products. If any product is short, nothing is taken and the
   * 409 INSUFFICIENT_STOCK lists every short line with what was requested and what is available.
   */
  async reserve(m: EntityManager, locked: StockRow[], wanted: Map<string, number>): Promise<void> {
    const short = insufficientStock(locked, wanted);
    if (short) throw short;
    const ids = [...wanted.keys()].filter((id) => wanted.get(id)! > 0).sort();
    if (!ids.length) return;
    // The rows are locked, but the decrement stays conditional: the database has the last word.
    const { affected } = await sql(
      m,
      `UPDATE products p SET stock = p.stock - v.qty
         FROM unnest($1::uuid[], $2::int[]) AS v(id, qty)
        WHERE p.id = v.id AND p.stock >= v.qty`,
      [ids, ids.map((id) => wanted.get(id)!)],
    );
    if (affected !== ids.length) throw new Error('Stock changed under a row lock');
  }

  /**
   * Gives units back (a cancelled or expired order, a line an edit lowered), locking in id order like
   * reserve does. Always succeeds: stock is a bigint without an upper bound for exactly this reason.
   */
  async release(m: EntityManager, units: Map<string, number>): Promise<void> {
    const ids = [...units.keys()].filter((id) => units.get(id)! > 0).sort();
    if (!ids.length) return;
    await this.lock(m, ids);
    await sql(
      m,
      `UPDATE products p SET stock = p.stock + v.qty
         FROM unnest($1::uuid[], $2::int[]) AS v(id, qty)
        WHERE p.id = v.id`,
      [ids, ids.map((id) => units.get(id)!)],
    );
  }

  /** The stock of a product; null when there is no such product. */
  level(productId: string, m: EntityManager = this.dataSource.manager): Promise<StockLevel | null> {
    return one(m, Product, `SELECT ${STOCK_COLUMNS} FROM products WHERE id = $1`, [productId]);
  }

  /**
   * A stock-take: the absolute level, checked and written in one statement (`… WHERE id = $1 AND
   * stock_version = $3`), never a read followed by a save. The stock's version moves even when the
   * level counted is the one held (the statement names it); the product's never does. Undefined when
   * no row matched (the stock moved on, or the product is gone).
   */
  async set(
    productId: string,
    condition: WriteCondition,
    stock: number,
  ): Promise<StockLevel | undefined> {
    const versioned = condition.kind === 'version';
    return (
      (await one(
        this.dataSource.manager,
        Product,
        `UPDATE products SET stock = $2, stock_version = stock_version + 1
          WHERE id = $1${versioned ? ' AND stock_version = $3' : ''}
          RETURNING ${STOCK_COLUMNS}`,
        versioned ? [productId, stock, condition.version] : [productId, stock],
      )) ?? undefined
    );
  }

  /**
   * An admin's relative change, one conditional statement: parallel adjustments serialise on the row
   * lock and none reads a stale value. Below zero → 409; an increase past MAX_STOCK → 400.
   */
  async adjust(productId: string, delta: number): Promise<StockLevel> {
    const m = this.dataSource.manager;
    const { rows } = await sql(
      m,
      `UPDATE products SET stock = stock + $2
        WHERE id = $1 AND stock + $2 >= 0 AND ($2 <= 0 OR stock + $2 <= $3)
        RETURNING ${STOCK_COLUMNS}`,
      [productId, delta, MAX_STOCK],
    );
    if (rows.length) return hydrate(m, Product, rows[0]);
    const { rows: current } = await sql<{ sku: string; stock: number }>(
      m,
      'SELECT sku, stock FROM products WHERE id = $1',
      [productId],
    );
    if (!current.length) throw notFound(`Product ${productId}`);
    const { sku } = current[0];
    const { stock } = current[0];
    if (delta > 0) {
      throw validationProblem([
        { field: 'delta', message: `stock would exceed ${MAX_STOCK} (it is ${stock})` },
      ]);
    }
    throw new ProblemError(
      'INSUFFICIENT_STOCK',
      `Product ${sku} has ${stock} unit(s); removing ${-delta} would go below zero. Nothing was changed.`,
      {
        available: stock,
        items: [{ productId, sku, requested: -delta, available: stock }],
      },
    );
  }
}
