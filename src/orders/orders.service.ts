import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { Caller } from '../common/access';
import { missingParentProblem } from '../common/database/database-errors';
import type { Page } from '../common/http/pagination';
import {
  decideWrite,
  type Preconditions,
  staleWrite,
  type Versioned,
  versioned,
} from '../common/http/preconditions';
import { notFound, ProblemError } from '../common/problems/problem.error';
import { validationProblem } from '../common/problems/validation';
import { StockRepository } from '../products/stock.repository';
import { type CreateOrderDto, OrderDto, type OrderQueryDto } from './dto/order.dto';
import {
  allowedTransitions,
  type Capacity,
  legalFrom,
  mayPerform,
  type OrderAction,
  transition,
  type TransitionEffect,
} from './order-state';
import type { Order, OrderHistoryEntry } from './order.entity';
import { OrdersRepository, type OrderWithItems } from './orders.repository';

export type { OrderWithItems } from './orders.repository';

export const orderPath = (id: string): string => `/api/v1/orders/${id}`;

export function capacities(order: Order, caller: Caller): Capacity[] {
  const c: Capacity[] = [];
  if (order.userId === caller.id) c.push('owner');
  if (caller.role === 'admin') c.push('admin');
  return c;
}

/** Units per product, lines for the same product merged. */
function unitsOf(items: readonly { productId: string; quantity: number }[]): Map<string, number> {
  const units = new Map<string, number>();
  for (const { productId, quantity } of items) {
    const id = productId.toLowerCase();
    units.set(id, (units.get(id) ?? 0) + quantity);
  }
  return units;
}

@Injectable()
export class OrdersService {
  constructor(
    private readonly orders: OrdersRepository,
    private readonly stock: StockRepository,
  ) {}

  /**
   * The hooks behind the table's effects, run in the transition's transaction after the guarded
   * status update.
   */
  private readonly effects: Record<
    TransitionEffect,
    (m: EntityManager, moved: OrderWithItems) => Promise<void>
  > = {
    releaseStock: (m, { items }) => this.stock.release(m, unitsOf(items)),
  };

  /** The representation depends on the caller (allowedTransitions), and so does the ETag. */
  describe({ order, items }: OrderWithItems, caller: Caller): Versioned<OrderDto> {
    const caps = capacities(order, caller);
    const representation = OrderDto.from(order, items, allowedTransitions(order.status, caps));
    return versioned('order', order, representation, caps.join('+'));
  }

  /**
   * Places an order inside the caller's transaction. Lines are merged per product; the products are
   * locked in id order (so concurrent orders over the same products cannot deadlock) and checked all
   * at once; the stock owner then decrements conditionally. If any line fails, the transaction rolls
   * back and nothing is reserved; the problem lists every failing line.
   */
  async place(m: EntityManager, caller: Caller, dto: CreateOrderDto): Promise<OrderWithItems> {
    const wanted = unitsOf(dto.items);
    const ids = [...wanted.keys()];
    const locked = await this.stock.lock(m, ids);
    const byId = new Map(locked.map((p) => [p.id, p]));

    const unknown = [...ids].sort().filter((id) => !byId.has(id));
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
        dto.items.map((_, i) => ({
          field: `items[${i}].productId`,
          message: `an order has one currency; these products are priced in ${[...currencies].join(' and ')}`,
        })),
      );
    }
    await this.stock.reserve(m, locked, wanted);

    // Lines keep the client's order (first appearance of each product).
    const lines = ids.map((id) => {
      const p = byId.get(id)!;
      return {
        productId: p.id,
        sku: p.sku,
        name: p.name,
        unitPriceCents: p.priceCents,
        quantity: wanted.get(id)!,
      };
    });
    const placed = await this.orders
      .insert(
        m,
        {
          userId: caller.id,
          totalCents: lines.reduce((sum, l) => sum + l.unitPriceCents * l.quantity, 0),
          currency: locked[0].currency,
        },
        lines,
      )
      // The caller's account deleted since the guard read it (its products are locked, so they stay).
      .catch((err: unknown) => {
        throw missingParentProblem(err) ?? err;
      });
    await this.orders.recordHistory(m, {
      orderId: placed.order.id,
      action: 'place',
      from: null,
      to: 'pending',
      actorId: caller.id,
    });
    return placed;
  }

  /** Customers see their own orders only: anyone else's is 404. */
  async findVisible(
    id: string,
    caller: Caller,
    m: EntityManager = this.orders.manager,
  ): Promise<OrderWithItems> {
    const order = await this.orders.findById(id, m);
    if (!order || (caller.role !== 'admin' && order.userId !== caller.id))
      throw notFound(`Order ${id}`);
    return { order, items: await this.orders.items(id, m) };
  }

  list(caller: Caller, query: OrderQueryDto): Promise<Page<OrderWithItems>> {
    return this.orders.list({
      userId: caller.role === 'admin' ? undefined : caller.id,
      status: query.status,
      limit: query.limit,
      offset: query.offset,
    });
  }

  async history(id: string, caller: Caller): Promise<OrderHistoryEntry[]> {
    await this.findVisible(id, caller);
    return this.orders.history(id);
  }

  /**
   * One transition inside the caller's transaction: 404 → 403 (role may never) → 412 (a stated
   * precondition fails) → 409 (illegal from the current status), then one conditional write guarded
   * by the allowed source states (and the version, when If-Match named one), then the transition's
   * effects and its history entry. Two racing transitions never both win: the loser's UPDATE
   * matches no row and it answers from the fresh state.
   */
  async transition(
    m: EntityManager,
    id: string,
    action: OrderAction,
    caller: Caller,
    preconditions: Preconditions,
  ): Promise<OrderWithItems> {
    const current = await this.findVisible(id, caller, m);
    const caps = capacities(current.order, caller);
    const t = transition(action);
    if (!mayPerform(action, caps)) {
      throw new ProblemError('FORBIDDEN', `Only ${t.by.join(' or ')} may ${action} an order.`);
    }
    const resourceName = `order ${id}`;
    const condition = decideWrite(preconditions, this.describe(current, caller), {
      resourceName,
      acceptsBodyVersion: false,
      required: false,
    });
    if (!legalFrom(action, current.order.status)) throw this.illegal(current.order, action, caps);

    const version = condition?.kind === 'version' ? condition.version : undefined;
    const moved = await this.orders.moveStatus(m, id, t.to, t.from, version);
    if (!moved) {
      const fresh = await this.findVisible(id, caller, m);
      if (
        condition &&
        fresh.order.version !== current.order.version &&
        legalFrom(action, fresh.order.status)
      ) {
        throw staleWrite(condition, this.describe(fresh, caller), resourceName);
      }
      throw this.illegal(fresh.order, action, caps);
    }
    const result = { order: moved.order, items: current.items };
    for (const effect of t.effects) await this.effects[effect](m, result);
    await this.orders.recordHistory(m, {
      orderId: id,
      action,
      from: moved.left,
      to: t.to,
      actorId: caller.id,
    });
    return result;
  }

  private illegal(order: Order, action: OrderAction, caps: Capacity[]): ProblemError {
    const allowed = allowedTransitions(order.status, caps);
    const to = transition(action).to;
    return new ProblemError(
      'ILLEGAL_STATE_TRANSITION',
      `Order ${order.id} is ${order.status}; it cannot be ${to === 'cancelled' ? 'cancelled' : `moved to ${to}`} now.${allowed.length ? ` Allowed now: ${allowed.join(', ')}.` : ''}`,
      { currentStatus: order.status, attemptedTransition: action, allowedTransitions: allowed },
    );
  }
}
