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

/** A promotion use an order is placed with: the code and its terms as they are now. */
export interface PromotionUse {
  id: string;
  code: string;
  percentOff: number | null;
  amountOffCents: number | null;
  discountCents: number;
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
    order: {
      userId: string;
      totalCents: number;
      currency: string;
      holdSeconds: number;
      /** The promotion whose use the order takes (counted by the caller), and its discount. */
      promotion?: PromotionUse;
    },
    lines: NewLine[],
  ): Promise<OrderWithItems> {
    const p = order.promotion;
    const created = (await one(
      m,
      Order,
      `INSERT INTO orders (user_id, status, total_cents, currency, expires_at, discount_cents,
                           promotion_id, promotion_code, promotion_percent_off,
                           promotion_amount_off_cents)
       VALUES ($1, 'pending', $2, $3, clock_timestamp() + make_interval(secs => $4), $5,
               $6, $7, $8, $9)
       RETURNING *`,
      [
        order.userId,
        order.totalCents,
        order.currency,
        order.holdSeconds,
        p?.discountCents ?? 0,
        p?.id ?? null,
        p?.code ?? null,
        p?.percentOff ?? null,
        p?.amountOffCents ?? null,
      ],
    ))!;
    return { order: created, items: await this.insertItems(m, created.id, lines) };
  }

  private async insertItems(
    m: EntityManager,
    orderId: string,
    lines: NewLine[],
  ): Promise<OrderItem[]> {
    const items = await many(
      m,
      OrderItem,
      `INSERT INTO order_items (order_id, line_no, product_id, sku, name, unit_price_cents, quantity)
       SELECT $1, n, product_id, sku, name, price, qty
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int[], $6::int[])
              WITH ORDINALITY AS l(product_id, sku, name, price, qty, n)
       RETURNING *`,
      [
        orderId,
        lines.map((l) => l.productId),
        lines.map((l) => l.sku),
        lines.map((l) => l.name),
        lines.map((l) => l.unitPriceCents),
        lines.map((l) => l.quantity),
      ],
    );
    return items.sort((a, b) => a.lineNo - b.lineNo);
  }

  /**
   * An edit's write, under the order's row lock (findById with `lock`): the new lines replace the old ones and the
   * total moves (the touch_version trigger bumps the version once).
   */
  async replaceLines(
    m: EntityManager,
    orderId: string,
    totalCents: number,
    discountCents: number,
    lines: NewLine[],
  ): Promise<OrderWithItems> {
    await sql(m, 'DELETE FROM order_items WHERE order_id = $1', [orderId]);
    const items = await this.insertItems(m, orderId, lines);
    const order = (await one(
      m,
      Order,
      'UPDATE orders SET total_cents = $2, discount_cents = $3 WHERE id = $1 RETURNING *',
      [orderId, totalCents, discountCents],
    ))!;
    return { order, items };
  }

  /**
   * Locks pending orders whose hold is over (by the database's clock), oldest first: those matching
   * any of the criteria given (among `orderIds`, holding any of `productIds`, holding a use of
   * `promotionId`), or any when none is given. With `skipLocked`, rows another transaction holds are
   * left to it (the sweeper on several instances); without, they are waited for.
   */
  async lockOverdue(
    m: EntityManager,
    filter: { orderIds?: string[]; productIds?: string[]; promotionId?: string },
    limit: number,
    skipLocked: boolean,
  ): Promise<string[]> {
    const { rows } = await sql<{ id: string }>(
      m,
      `SELECT id FROM orders
        WHERE status = 'pending' AND expires_at <= clock_timestamp()
          AND (($1::uuid[] IS NULL AND $2::uuid[] IS NULL AND $4::uuid IS NULL)
               OR id = ANY($1::uuid[])
               OR id IN (SELECT order_id FROM order_items WHERE product_id = ANY($2::uuid[]))
               OR promotion_id = $4::uuid)
        ORDER BY expires_at, id LIMIT $3
        FOR UPDATE${skipLocked ? ' SKIP LOCKED' : ''}`,
      [filter.orderIds ?? null, filter.productIds ?? null, limit, filter.promotionId ?? null],
    );
    return rows.map((r) => r.id);
  }

  /** The products the lines of these orders name (each once). */
  async productsOf(m: EntityManager, orderIds: string[]): Promise<string[]> {
    const { rows } = await sql<{ id: string }>(
      m,
      'SELECT DISTINCT product_id AS id FROM order_items WHERE order_id = ANY($1::uuid[])',
      [orderIds],
    );
    return rows.map((r) => r.id);
  }

  /** Seconds since the oldest overdue hold ended (0 when none): a stalled sweeper shows here. */
  async oldestOverdueSeconds(): Promise<number> {
    const { rows } = await sql<{ seconds: number | null }>(
      this.manager,
      `SELECT extract(epoch FROM clock_timestamp() - min(expires_at))::float8 AS seconds
         FROM orders WHERE status = 'pending' AND expires_at <= clock_timestamp()`,
    );
    return rows[0]?.seconds ?? 0;
  }

  /**
   * The order, and whether it is pending with its hold over (by the database's clock). With `lock`
   * (inside a transaction) the row is locked first and read as the last writer committed it: a
   * writer queued behind another decides from what that one left, never from an earlier read.
   */
  async findById(
    id: string,
    m: EntityManager = this.manager,
    lock = false,
  ): Promise<{ order: Order; overdue: boolean } | null> {
    const { rows } = await sql(
      m,
      `SELECT *, (status = 'pending' AND expires_at <= clock_timestamp()) AS overdue
         FROM orders WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
      [id],
    );
    return rows.length
      ? { order: hydrate(m, Order, rows[0]), overdue: rows[0].overdue === true }
      : null;
  }

  items(orderId: string, m: EntityManager = this.manager): Promise<OrderItem[]> {
    return many(m, OrderItem, 'SELECT * FROM order_items WHERE order_id = $1 ORDER BY line_no', [
      orderId,
    ]);
  }

  /** A page of orders (one user's, or everyone's), each with its lines, in a stable order. */
  async list(
    filter: {
      userId?: string;
      status?: OrderStatus;
      limit: number;
      offset: number;
    },
    m: EntityManager = this.manager,
  ): Promise<Page<OrderWithItems>> {
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

  /** One page of an order's history, oldest first. */
  async history(
    orderId: string,
    page: { limit: number; offset: number },
    m: EntityManager = this.manager,
  ): Promise<Page<OrderHistoryEntry>> {
    const { items, total } = await pageOf(m, OrderHistoryEntry, {
      from: 'FROM order_history WHERE order_id = $1',
      orderBy: 'id',
      parameters: [orderId],
      limit: page.limit,
      offset: page.offset,
    });
    return { items, total, limit: page.limit, offset: page.offset };
  }

  /**
   * One guarded status change: `status = ANY(from)` (and the version, when the client named one, and
   * the hold: live for `pay`, over for `expire`, by the database's clock). The row is locked by the
   * inner SELECT only if it still matches after any concurrent writer committed, so the status it
   * left is read from the row it changed, also when another transition won just before: the history
   * never records a `from` the row did not have. On no match nothing stays locked; null. `paidBy`
   * (pay, revive) records the paying payment in the same write, so the version moves once.
   */
  async moveStatus(
    m: EntityManager,
    id: string,
    move: { to: OrderStatus; from: readonly OrderStatus[]; hold?: 'live' | 'over' },
    version?: number,
    paidBy?: { paymentId: string; cents: number },
  ): Promise<{ order: Order; left: OrderStatus } | null> {
    const { rows } = await sql(
      m,
      `UPDATE orders o
          SET status = $2, expires_at = CASE WHEN $2 = 'pending' THEN o.expires_at END,
              payment_id = coalesce($6, o.payment_id),
              paid_cents = coalesce($7, o.paid_cents)
         FROM (SELECT id, status FROM orders
                WHERE id = $1 AND status = ANY($3::text[])
                  AND ($4::int IS NULL OR version = $4)
                  AND ($5::text IS NULL
                       OR ($5 = 'live' AND expires_at > clock_timestamp())
                       OR ($5 = 'over' AND expires_at <= clock_timestamp()))
                FOR UPDATE) AS before
        WHERE o.id = before.id
        RETURNING o.*, before.status AS left_status`,
      [
        id,
        move.to,
        move.from,
        version ?? null,
        move.hold ?? null,
        paidBy?.paymentId ?? null,
        paidBy?.cents ?? null,
      ],
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
      /** Null for the service's own actions. */
      actorId: string | null;
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
