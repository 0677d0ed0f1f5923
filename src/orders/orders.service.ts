import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { FastifyRequest } from 'fastify';
import { DataSource, type EntityManager, In } from 'typeorm';
import type { Caller } from '../auth/auth.decorators';
import { hydrate, sql } from '../common/database/conditional-write';
import { computeEtag } from '../common/http/etag';
import type { Page } from '../common/http/pagination';
import { requireWriteCondition, staleWrite, type Versioned } from '../common/http/preconditions';
import { notFound, ProblemError } from '../common/problems/problem.error';
import { validationProblem } from '../common/problems/validation';
import { type CreateOrderDto, OrderDto, type OrderQueryDto } from './dto/order.dto';
import {
  allowedTransitions,
  type Capacity,
  legalFrom,
  mayPerform,
  type OrderAction,
  TRANSITIONS,
} from './order-state';
import { Order, OrderEvent, OrderItem } from './order.entity';

export const orderPath = (id: string): string => `/api/v1/orders/${id}`;

export interface OrderWithItems {
  order: Order;
  items: OrderItem[];
}

interface LockedProduct {
  id: string;
  sku: string;
  name: string;
  price_cents: number;
  currency: string;
  stock: number;
  active: boolean;
}

export function capacities(order: Order, caller: Caller): Capacity[] {
  const c: Capacity[] = [];
  if (order.userId === caller.id) c.push('owner');
  if (caller.role === 'admin') c.push('admin');
  return c;
}

@Injectable()
export class OrdersService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** The representation depends on the caller (allowedTransitions), and so does the ETag. */
  describe({ order, items }: OrderWithItems, caller: Caller): Versioned<OrderDto> {
    const caps = capacities(order, caller);
    return {
      version: order.version,
      etag: computeEtag('order', order.id, order.version, caps.join('+')),
      updatedAt: order.updatedAt,
      representation: OrderDto.from(order, items, allowedTransitions(order.status, caps)),
    };
  }

  /**
   * Places an order inside the caller's transaction. Lines are merged per product; the products are
   * locked in id order (so concurrent orders over the same products cannot deadlock), checked all
   * at once, and decremented with a conditional UPDATE. If any line fails, the transaction rolls back
   * and nothing is reserved; the problem lists every failing line.
   */
  async place(m: EntityManager, caller: Caller, dto: CreateOrderDto): Promise<OrderWithItems> {
    const quantities = new Map<string, number>();
    for (const line of dto.items) {
      const id = line.productId.toLowerCase();
      quantities.set(id, (quantities.get(id) ?? 0) + line.quantity);
    }
    const ids = [...quantities.keys()].sort();
    const { rows: locked } = await sql<LockedProduct>(
      m,
      `SELECT id, sku, name, price_cents, currency, stock, active FROM products
        WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`,
      [ids],
    );
    const byId = new Map(locked.map((p) => [p.id, p]));

    const unknown = ids.filter((id) => !byId.has(id));
    if (unknown.length) {
      throw new ProblemError(
        'UNKNOWN_PRODUCT',
        `${unknown.length} product(s) in the order do not exist: ${unknown.join(', ')}. Nothing was reserved.`,
        { items: unknown.map((productId) => ({ productId })) },
      );
    }
    const inactive = locked.filter((p) => !p.active);
    if (inactive.length) {
      throw new ProblemError(
        'PRODUCT_UNAVAILABLE',
        `Not for sale: ${inactive.map((p) => p.sku).join(', ')}. Remove them and resubmit; nothing was reserved.`,
        { items: inactive.map((p) => ({ productId: p.id, sku: p.sku })) },
      );
    }
    const currencies = new Set(locked.map((p) => p.currency));
    if (currencies.size > 1) {
      throw validationProblem(
        dto.items.map((line, i) => ({
          field: `items[${i}].productId`,
          message: `an order has one currency; these products are priced in ${[...currencies].join(' and ')}`,
        })),
      );
    }
    const short = locked.filter((p) => p.stock < quantities.get(p.id)!);
    if (short.length) {
      throw new ProblemError(
        'INSUFFICIENT_STOCK',
        `Not enough stock for ${short.map((p) => `${p.sku} (${quantities.get(p.id)} requested, ${p.stock} available)`).join(', ')}. Nothing was reserved.`,
        {
          items: short.map((p) => ({
            productId: p.id,
            sku: p.sku,
            requested: quantities.get(p.id)!,
            available: p.stock,
          })),
        },
      );
    }

    // The rows are locked, but the decrement stays conditional: the database has the last word.
    const { affected } = await sql(
      m,
      `UPDATE products p
          SET stock = p.stock - v.qty, version = p.version + 1, updated_at = now()
         FROM unnest($1::uuid[], $2::int[]) AS v(id, qty)
        WHERE p.id = v.id AND p.stock >= v.qty`,
      [ids, ids.map((id) => quantities.get(id)!)],
    );
    if (affected !== ids.length) throw new Error('Stock changed under a row lock');

    // Lines keep the client's order (first appearance of each product).
    const lines = [...quantities.keys()].map((id) => ({
      product: byId.get(id)!,
      qty: quantities.get(id)!,
    }));
    const total = lines.reduce((sum, l) => sum + l.product.price_cents * l.qty, 0);
    const { rows: orderRows } = await sql(
      m,
      `INSERT INTO orders (user_id, status, total_cents, currency) VALUES ($1, 'pending', $2, $3) RETURNING *`,
      [caller.id, total, locked[0].currency],
    );
    const order = hydrate(m, Order, orderRows[0]);
    const { rows: itemRows } = await sql(
      m,
      `INSERT INTO order_items (order_id, line_no, product_id, sku, name, unit_price_cents, quantity)
       SELECT $1, n, product_id, sku, name, price, qty
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int[], $6::int[])
              WITH ORDINALITY AS l(product_id, sku, name, price, qty, n)
       RETURNING *`,
      [
        order.id,
        lines.map((l) => l.product.id),
        lines.map((l) => l.product.sku),
        lines.map((l) => l.product.name),
        lines.map((l) => l.product.price_cents),
        lines.map((l) => l.qty),
      ],
    );
    await this.recordEvent(m, order.id, null, 'pending', caller.id);
    const items = itemRows.map((r) => hydrate(m, OrderItem, r)).sort((a, b) => a.lineNo - b.lineNo);
    return { order, items };
  }

  /** Customers see their own orders only: anyone else's is 404. */
  async findVisible(
    id: string,
    caller: Caller,
    m: EntityManager = this.dataSource.manager,
  ): Promise<OrderWithItems> {
    const order = await m.getRepository(Order).findOneBy({ id });
    if (!order || (caller.role !== 'admin' && order.userId !== caller.id))
      throw notFound(`Order ${id}`);
    const items = await m
      .getRepository(OrderItem)
      .find({ where: { orderId: id }, order: { lineNo: 'ASC' } });
    return { order, items };
  }

  async list(caller: Caller, query: OrderQueryDto): Promise<Page<OrderWithItems>> {
    const where = {
      ...(caller.role === 'admin' ? {} : { userId: caller.id }),
      ...(query.status ? { status: query.status } : {}),
    };
    const [orders, total] = await this.dataSource.getRepository(Order).findAndCount({
      where,
      order: { createdAt: 'ASC', id: 'ASC' },
      take: query.limit,
      skip: query.offset,
    });
    const items = orders.length
      ? await this.dataSource.getRepository(OrderItem).find({
          where: { orderId: In(orders.map((o) => o.id)) },
          order: { lineNo: 'ASC' },
        })
      : [];
    return {
      items: orders.map((order) => ({ order, items: items.filter((i) => i.orderId === order.id) })),
      total,
      limit: query.limit,
      offset: query.offset,
    };
  }

  async history(id: string, caller: Caller): Promise<OrderEvent[]> {
    await this.findVisible(id, caller);
    return this.dataSource
      .getRepository(OrderEvent)
      .find({ where: { orderId: id }, order: { id: 'ASC' } });
  }

  /**
   * One transition inside the caller's transaction: 404 → 403 (role may never) → 412 (If-Match)
   * → 409 (illegal from the current status), then one conditional write guarded by the allowed
   * source states (and the version, when If-Match was given). Two racing transitions never both
   * win: the loser's UPDATE matches no row and it answers from the fresh state.
   */
  async transition(
    m: EntityManager,
    id: string,
    action: OrderAction,
    caller: Caller,
    request: FastifyRequest,
  ): Promise<OrderWithItems> {
    const current = await this.findVisible(id, caller, m);
    const caps = capacities(current.order, caller);
    if (!mayPerform(action, caps)) {
      throw new ProblemError(
        'FORBIDDEN',
        `Only ${TRANSITIONS[action].by.join(' or ')} may ${action} an order.`,
      );
    }
    const withIfMatch = request.headers['if-match'] !== undefined;
    const condition = withIfMatch
      ? requireWriteCondition(request, undefined, this.describe(current, caller), `order ${id}`)
      : undefined;
    if (!legalFrom(action, current.order.status)) throw this.illegal(current.order, action, caps);

    const t = TRANSITIONS[action];
    const params: unknown[] = [id, t.to, t.from];
    let guard = 'id = $1 AND status = ANY($3::text[])';
    if (condition?.kind === 'version') {
      params.push(condition.version);
      guard += ' AND version = $4';
    }
    const { rows } = await sql(
      m,
      `UPDATE orders SET status = $2, version = version + 1, updated_at = now() WHERE ${guard} RETURNING *`,
      params,
    );
    if (!rows.length) {
      const fresh = await this.findVisible(id, caller, m);
      if (
        condition &&
        fresh.order.version !== current.order.version &&
        legalFrom(action, fresh.order.status)
      ) {
        throw staleWrite(condition, this.describe(fresh, caller), `order ${id}`);
      }
      throw this.illegal(fresh.order, action, caps);
    }
    const order = hydrate(m, Order, rows[0]);
    if (t.restocks) await this.restock(m, id);
    await this.recordEvent(m, id, current.order.status, t.to, caller.id);
    return { order, items: current.items };
  }

  /** Gives an order's units back, locking the products in id order like order placement does. */
  private async restock(m: EntityManager, orderId: string): Promise<void> {
    await sql(
      m,
      `SELECT p.id FROM products p JOIN order_items i ON i.product_id = p.id
        WHERE i.order_id = $1 ORDER BY p.id FOR UPDATE OF p`,
      [orderId],
    );
    await sql(
      m,
      `UPDATE products p SET stock = p.stock + i.quantity, version = p.version + 1, updated_at = now()
         FROM order_items i WHERE i.order_id = $1 AND p.id = i.product_id`,
      [orderId],
    );
  }

  private async recordEvent(
    m: EntityManager,
    orderId: string,
    from: string | null,
    to: string,
    actorId: string,
  ): Promise<void> {
    await sql(
      m,
      'INSERT INTO order_events (order_id, from_status, to_status, actor_id) VALUES ($1, $2, $3, $4)',
      [orderId, from, to, actorId],
    );
  }

  private illegal(order: Order, action: OrderAction, caps: Capacity[]): ProblemError {
    const allowed = allowedTransitions(order.status, caps);
    return new ProblemError(
      'ILLEGAL_STATE_TRANSITION',
      `Order ${order.id} is ${order.status}; it cannot be ${TRANSITIONS[action].to === 'cancelled' ? 'cancelled' : `moved to ${TRANSITIONS[action].to}`} now.${allowed.length ? ` Allowed now: ${allowed.join(', ')}.` : ''}`,
      { currentStatus: order.status, attemptedTransition: action, allowedTransitions: allowed },
    );
  }
}
