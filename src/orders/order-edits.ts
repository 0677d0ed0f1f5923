import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { Caller } from '../common/access';
import { decideWrite, type Preconditions } from '../common/http/preconditions';
import { afterCommit, ProblemError } from '../common/problems/problem.error';
import { validationProblem } from '../common/problems/validation';
import { type StockRow, StockRepository } from '../products/stock.repository';
import type { UpdateOrderDto } from './dto/order.dto';
import { OrderChanges } from './order-changes';
import { OrderHooks } from './order-hooks';
import { discountOf, keptLine, lineOf, termsOf, totalOf, unitsOf } from './order-lines';
import { versionedOrder, OrderReads } from './order-reads';
import { EDITABLE_STATUSES } from './order-state';
import type { Order } from './order.entity';
import { OrdersRepository, type OrderWithItems } from './orders.repository';

/** `PATCH /orders/{id}`: a pending order's lines replaced (API.md §7). */
@Injectable()
export class OrderEdits {
  constructor(
    private readonly orders: OrdersRepository,
    private readonly stock: StockRepository,
    private readonly reads: OrderReads,
    private readonly changes: OrderChanges,
    private readonly hooks: OrderHooks,
  ) {}

  /**
   * Replaces a pending order's lines: the order's row locked and read first, then 404 → 428/412/409
   * (preconditions) → 409 ORDER_NOT_EDITABLE → 409 PAYMENT_IN_PROGRESS, then, under the products' locks too (ids in order),
   * stock moves by the difference only: more units are reserved, fewer returned, removed lines
   * return all theirs. Kept products keep their price, added ones take today's; a product no longer
   * for sale may be lowered or removed, not raised or added. Short lines → 409 INSUFFICIENT_STOCK
   * listing each, `requested` and `available` both counting beyond what this order already holds;
   * nothing changes. The hold's expiresAt does not move.
   */
  async edit(
    m: EntityManager,
    id: string,
    caller: Caller,
    dto: UpdateOrderDto,
    preconditions: Preconditions,
  ): Promise<OrderWithItems> {
    // Locked first: the precondition, the status and the lines the difference is taken from are
    // what the last writer left, and stay so until this transaction ends.
    const current = await this.reads.findVisible(id, caller, m, { lock: true });
    decideWrite(preconditions, versionedOrder(current, caller), {
      resourceName: `order ${id}`,
      bodyVersion: dto.version,
    });
    if (!EDITABLE_STATUSES.includes(current.order.status)) {
      throw notEditable(current.order, current.expiredNow);
    }
    // What other features forbid (an open payment: 409 PAYMENT_IN_PROGRESS), under this row lock.
    await this.hooks.checkEdit(m, current);

    const wanted = unitsOf(dto.items);
    const held = unitsOf(current.items);
    const added = [...wanted.keys()].filter((pid) => !held.has(pid));
    const all = [...new Set([...held.keys(), ...wanted.keys()])];
    const locked = await this.stock.lock(m, all);
    // Only the products the edit adds must exist, be for sale and share the order's currency.
    const addedRows = vetAdded(locked, added, dto, current.order.currency);
    const more = new Map<string, number>();
    const fewer = new Map<string, number>();
    for (const pid of all) {
      const delta = (wanted.get(pid) ?? 0) - (held.get(pid) ?? 0);
      if (delta > 0) more.set(pid, delta);
      if (delta < 0) fewer.set(pid, -delta);
    }
    // A product no longer for sale can be lowered or removed, never raised (at its old price).
    const raisedInactive = locked.filter((p) => !p.active && more.has(p.id) && held.has(p.id));
    if (raisedInactive.length) {
      throw new ProblemError(
        'PRODUCT_UNAVAILABLE',
        `Not for sale any more: ${raisedInactive.map((p) => p.sku).join(', ')}. Their lines can be lowered or removed, not raised; nothing was changed.`,
        { items: raisedInactive.map((p) => ({ productId: p.id, sku: p.sku })) },
      );
    }
    await this.stock.reserve(m, locked, more);
    await this.stock.release(m, fewer);

    const kept = new Map(current.items.map((i) => [i.productId, i]));
    const byId = new Map(locked.map((p) => [p.id, p]));
    const lines = [...wanted.keys()].map((pid) => {
      const before = kept.get(pid);
      return before
        ? keptLine(before, wanted.get(pid)!)
        : lineOf(addedRows.get(pid) ?? byId.get(pid)!, wanted.get(pid)!);
    });
    // The code's terms as they were at placement, whatever the code's state now; no new use.
    const subtotal = totalOf(lines);
    const discount = discountOf(subtotal, termsOf(current.order));
    const edited = await this.orders.replaceLines(m, id, subtotal - discount, discount, lines);
    await this.changes.record(m, edited, { action: 'edit', from: 'pending', actorId: caller.id });
    return edited;
  }
}

function vetAdded(
  locked: StockRow[],
  added: string[],
  dto: UpdateOrderDto,
  currency: string,
): Map<string, StockRow> {
  const rows = locked.filter((p) => added.includes(p.id));
  const known = new Set(rows.map((p) => p.id));
  const unknown = added.filter((pid) => !known.has(pid)).sort();
  if (unknown.length) {
    throw new ProblemError(
      'UNKNOWN_PRODUCT',
      `${unknown.length} product(s) added to the order do not exist: ${unknown.join(', ')}. Nothing was changed.`,
      { items: unknown.map((productId) => ({ productId })) },
    );
  }
  const inactive = rows.filter((p) => !p.active);
  if (inactive.length) {
    throw new ProblemError(
      'PRODUCT_UNAVAILABLE',
      `Not for sale: ${inactive.map((p) => p.sku).join(', ')}. Remove them and resubmit; nothing was changed.`,
      { items: inactive.map((p) => ({ productId: p.id, sku: p.sku })) },
    );
  }
  const foreign = rows.filter((p) => p.currency !== currency);
  if (foreign.length) {
    throw validationProblem(
      dto.items
        .map((line, i) => ({ line, i }))
        .filter(({ line }) => foreign.some((p) => p.id === line.productId.toLowerCase()))
        .map(({ i }) => ({
          field: `items[${i}].productId`,
          message: `the order is in ${currency}; this product is priced in another currency`,
        })),
    );
  }
  return new Map(rows.map((p) => [p.id, p]));
}

function notEditable(order: Order, expiredNow: boolean): ProblemError {
  const problem = new ProblemError(
    'ORDER_NOT_EDITABLE',
    `Order ${order.id} is ${order.status}; only a pending order can be edited. Nothing was changed.`,
    { currentStatus: order.status },
  );
  return expiredNow ? afterCommit(problem) : problem;
}
