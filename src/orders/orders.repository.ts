import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { hydrate, many, one, pageOf, sql } from '../common/database/sql';
import type { Page } from '../common/http/pagination';
import type { OrderHistoryAction, OrderStatus } from './order-state';
import { Order, OrderHistoryEntry, OrderItem } from './order.entity';

export interface OrderWithItems {
  order: Order;
  items: OrderItem[];
}

export interface NewLine {
  productId: string;
  sku: string;
  name: string;
  unitPriceCents: number;
  quantity: number;
}

/** Every SQL statement on `orders`, `order_items` and `order_history`. */
@Injectable()
export class OrdersRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  get manager(): EntityManager {
    return this.dataSource.manager;
  }

  async insert(
    m: EntityManager,
    order: { userId: string; totalCents: number; currency: string },
    lines: NewLine[],
  ): Promise<OrderWithItems> {
    const created = (await one(
      m,
      Order,
      `INSERT INTO orders (user_id, status, total_cents, currency) VALUES ($1, 'pending', $2, $3)
       RETURNING *`,
      [order.userId, order.totalCents, order.currency],
    ))!;
    const items = await many(
      m,
      OrderItem,
      `INSERT INTO order_items (order_id, line_no, product_id, sku, name, unit_price_cents, quantity)
       SELECT $1, n, product_id, sku, name, price, qty
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int[], $6::int[])
              WITH ORDINALITY AS l(product_id, sku, name, price, qty, n)
       RETURNING *`,
      [
        created.id,
        lines.map((l) => l.productId),
        lines.map((l) => l.sku),
        lines.map((l) => l.name),
        lines.map((l) => l.unitPriceCents),
        lines.map((l) => l.quantity),
      ],
    );
    return { order: created, items: items.sort((a, b) => a.lineNo - b.lineNo) };
  }

  findById(id: string, m: EntityManager = this.manager): Promise<Order | null> {
    return one(m, Order, 'SELECT * FROM orders WHERE id = $1', [id]);
  }

  items(orderId: string, m: EntityManager = this.manager): Promise<OrderItem[]> {
    return many(m, OrderItem, 'SELECT * FROM order_items WHERE order_id = $1 ORDER BY line_no', [
      orderId,
    ]);
  }

  /** A page of orders (one user's, or everyone's), each with its lines, in a stable order. */
  async list(filter: {
    userId?: string;
    status?: OrderStatus;
    limit: number;
    offset: number;
  }): Promise<Page<OrderWithItems>> {
    const m = this.manager;
    const { items: orders, total } = await pageOf(m, Order, {
      from: `FROM orders
        WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::text IS NULL OR status = $2)`,
      orderBy: 'created_at, id',
      parameters: [filter.userId ?? null, filter.status ?? null],
      limit: filter.limit,
      offset: filter.offset,
    });
    const items = orders.length
      ? await many(
          m,
          OrderItem,
          'SELECT * FROM order_items WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, line_no',
          [orders.map((o) => o.id)],
        )
      : [];
    return {
      items: orders.map((order) => ({ order, items: items.filter((i) => i.orderId === order.id) })),
      total,
      limit: filter.limit,
      offset: filter.offset,
    };
  }

  history(orderId: string): Promise<OrderHistoryEntry[]> {
    return many(
      this.manager,
      OrderHistoryEntry,
      'SELECT * FROM order_history WHERE order_id = $1 ORDER BY id',
      [orderId],
    );
  }

  /**
   * One guarded status change: `WHERE status = ANY(from)` (and the version, when the client named
   * one). The row is locked first, so the status it left is read from the row it changed, also when
   * another transition committed just before: the history never records a `from` the row did not have.
   * Null when the guard did not match.
   */
  async moveStatus(
    m: EntityManager,
    id: string,
    to: OrderStatus,
    from: readonly OrderStatus[],
    version?: number,
  ): Promise<{ order: Order; left: OrderStatus } | null> {
    const { rows } = await sql(
      m,
      `UPDATE orders o SET status = $2
         FROM (SELECT id, status FROM orders WHERE id = $1 FOR UPDATE) AS before
        WHERE o.id = before.id AND before.status = ANY($3::text[])
          AND ($4::int IS NULL OR o.version = $4)
        RETURNING o.*, before.status AS left_status`,
      [id, to, from, version ?? null],
    );
    if (!rows.length) return null;
    return { order: hydrate(m, Order, rows[0]), left: rows[0].left_status as OrderStatus };
  }

  async recordHistory(
    m: EntityManager,
    entry: {
      orderId: string;
      action: OrderHistoryAction;
      from: OrderStatus | null;
      to: OrderStatus;
      actorId: string;
    },
  ): Promise<void> {
    await sql(
      m,
      `INSERT INTO order_history (order_id, action, from_status, to_status, actor_id)
       VALUES ($1, $2, $3, $4, $5)`,
      [entry.orderId, entry.action, entry.from, entry.to, entry.actorId],
    );
  }
}
