import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { Caller } from '../common/access';
import { NeedsPrimary, onStandby } from '../common/database/reader';
import { inTransaction } from '../common/database/transaction';
import type { Page } from '../common/http/pagination';
import { type Versioned, versioned } from '../common/http/preconditions';
import { notFound } from '../common/problems/problem.error';
import { type OrderQueryDto, OrderDto } from './dto/order.dto';
import { HoldExpiry } from './hold-expiry';
import { allowedTransitions, type Capacity } from './order-state';
import type { Order, OrderHistoryEntry } from './order.entity';
import { OrdersRepository, type OrderWithItems } from './orders.repository';

export const orderPath = (id: string): string => `/api/v1/orders/${id}`;

export function capacities(order: Order, caller: Caller): Capacity[] {
  const c: Capacity[] = [];
  if (order.userId === caller.id) c.push('owner');
  if (caller.role === 'admin') c.push('admin');
  return c;
}

/** The representation depends on the caller (allowedTransitions), and so does the ETag. */
export function versionedOrder(
  { order, items }: OrderWithItems,
  caller: Caller,
): Versioned<OrderDto> {
  const caps = capacities(order, caller);
  const representation = OrderDto.from(order, items, allowedTransitions(order.status, caps));
  // A computed expiry has the version the expiry will write, but its own tag: its updatedAt is the
  // hold's end, the written one's the moment the primary expires it.
  const variant = COMPUTED.has(order) ? `${caps.join('+')}:computed` : caps.join('+');
  const v = versioned('order', order, representation, variant);
  return COMPUTED.has(order) ? { ...v, computed: true } : v;
}

/** Orders shown expired by a read on a standby, before the primary has expired them. */
const COMPUTED = new WeakSet<Order>();

/**
 * An overdue pending order as a standby shows it (API.md §12): as the primary's expiry will leave it
 * (status `expired`, no hold, the version one on), computed, since a standby never writes; the
 * expiry itself is the primary's (the sweeper, or the next read or write there).
 */
function asExpired(order: Order): Order {
  const view = Object.assign(
    Object.create(Object.getPrototypeOf(order) as object) as Order,
    order,
    {
      status: 'expired',
      expiresAt: null,
      version: order.version + 1,
      previousUpdatedAt: order.updatedAt,
      updatedAt: order.expiresAt ?? order.updatedAt,
    },
  );
  COMPUTED.add(view);
  return view;
}

/** An order read for a decision, and whether reading it just expired it (see findVisible). */
export interface Current extends OrderWithItems {
  expiredNow: boolean;
}

/** Orders as a caller may see them: never one pending past its hold. */
@Injectable()
export class OrderReads {
  constructor(
    private readonly orders: OrdersRepository,
    private readonly holds: HoldExpiry,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  /**
   * Customers see their own orders only: anyone else's is 404. A pending order whose hold is over
   * (by the database's clock) is expired on the way, so no answer ever shows it pending: inside the
   * caller's transaction when there is one, else in a transaction of its own. A writer passes
   * `lock`: the order's row is locked before anything is read, so the order and its lines are as
   * the last writer left them and stay so until the caller's transaction ends (every writer of an
   * order takes this lock first: a writer that queued behind another decides from what it left).
   * On a standby's manager (a GET's Reader) nothing is written: an overdue order is shown expired.
   */
  async findVisible(
    id: string,
    caller: Caller,
    m?: EntityManager,
    { lock = false }: { lock?: boolean } = {},
  ): Promise<Current> {
    const read = async (manager: EntityManager) => {
      const found = await this.orders.findById(id, manager, lock && m !== undefined);
      if (!found || (caller.role !== 'admin' && found.order.userId !== caller.id)) {
        throw notFound(`Order ${id}`);
      }
      return found;
    };
    let found = await read(m ?? this.orders.manager);
    let expiredNow = false;
    if (found.overdue && m && onStandby(m)) {
      return { order: asExpired(found.order), items: await this.orders.items(id, m), expiredNow };
    }
    if (found.overdue) {
      // In the caller's transaction when there is one; a GET's Reader hands the primary's bare
      // manager, whose statements would each autocommit on any pool connection: one of its own.
      const tx = m?.queryRunner?.isTransactionActive === true ? m : undefined;
      expiredNow =
        (tx
          ? await this.holds.expireOverdue(tx, { orderIds: [id] })
          : await inTransaction(this.dataSource, (t) =>
              this.holds.expireOverdue(t, { orderIds: [id] }),
            )) > 0;
      found = await read(m ?? this.orders.manager);
    }
    return { order: found.order, items: await this.orders.items(id, m), expiredNow };
  }

  /** `m`: where the page is read (a GET's Reader hands it a standby's); the primary by default. */
  async list(
    caller: Caller,
    query: OrderQueryDto,
    m?: EntityManager,
  ): Promise<Page<OrderWithItems>> {
    const standby = m !== undefined && onStandby(m);
    // Overdue holds are still `pending` in a standby's rows: only the primary can filter by them.
    if (standby && query.status === 'expired') throw new NeedsPrimary('expired orders');
    const filter = {
      userId: caller.role === 'admin' ? undefined : caller.id,
      status: query.status,
      limit: query.limit,
      offset: query.offset,
    };
    const page = await this.orders.list(filter, m);
    // No page shows an order pending past its hold: expire those on it, then read the page again.
    const due = page.items.filter(
      ({ order }) => order.status === 'pending' && order.expiresAt! <= new Date(),
    );
    if (!due.length) return page;
    if (standby) {
      if (query.status === 'pending') throw new NeedsPrimary('pending orders past their hold');
      const shown = page.items.map((o) =>
        due.includes(o) ? { ...o, order: asExpired(o.order) } : o,
      );
      return { ...page, items: shown };
    }
    const orderIds = due.map(({ order }) => order.id);
    const expired = await inTransaction(this.dataSource, (m) =>
      this.holds.expireOverdue(m, { orderIds }),
    );
    return expired ? this.orders.list(filter) : page;
  }

  async history(
    id: string,
    caller: Caller,
    page: { limit: number; offset: number },
    m?: EntityManager,
  ): Promise<Page<OrderHistoryEntry>> {
    const { order } = await this.findVisible(id, caller, m);
    // Its `expire` entry is not written yet: the primary writes it, then answers.
    if (COMPUTED.has(order)) throw new NeedsPrimary('an order past its hold');
    return this.orders.history(id, page, m);
  }
}
