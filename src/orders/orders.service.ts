import { randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { context, propagation } from '@opentelemetry/api';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { Caller } from '../common/access';
import {
  databaseErrorInfo,
  loggableDatabaseError,
  missingParentProblem,
} from '../common/database/database-errors';
import { sql } from '../common/database/sql';
import { inTransaction, serviceUnavailable } from '../common/database/transaction';
import type { Page } from '../common/http/pagination';
import {
  decideWrite,
  type Preconditions,
  staleWrite,
  type Versioned,
  versioned,
} from '../common/http/preconditions';
import { afterCommit, notFound, ProblemError } from '../common/problems/problem.error';
import { validationProblem } from '../common/problems/validation';
import type { Env } from '../config/env';
import { POOL_WAIT_MS } from '../database/data-source';
import { OutboxRepository } from '../events/outbox.repository';
import { MetricsService } from '../observability/metrics.service';
import { insufficientStock, type StockRow, StockRepository } from '../products/stock.repository';
import {
  type CreateOrderDto,
  OrderDto,
  type OrderQueryDto,
  type UpdateOrderDto,
} from './dto/order.dto';
import {
  allowedTransitions,
  type Capacity,
  EDITABLE_STATUSES,
  eventOf,
  legalFrom,
  mayPerform,
  type OrderAction,
  type OrderHistoryAction,
  type OrderStatus,
  transition,
  type TransitionEffect,
} from './order-state';
import { orderEvent } from './order-events';
import type { Order, OrderHistoryEntry, OrderItem } from './order.entity';
import {
  type NewLine,
  type Placement,
  type PlacementAnswer,
  OrdersRepository,
  type OrderWithItems,
} from './orders.repository';
import { PlacementQueue } from './placement-queue';

export type { OrderWithItems } from './orders.repository';

export const orderPath = (id: string): string => `/api/v1/orders/${id}`;

export function capacities(order: Order, caller: Caller): Capacity[] {
  const c: Capacity[] = [];
  if (order.userId === caller.id) c.push('owner');
  if (caller.role === 'admin') c.push('admin');
  return c;
}

/** Units per product, lines for the same product merged (first appearance keeps its place). */
function unitsOf(items: readonly { productId: string; quantity: number }[]): Map<string, number> {
  const units = new Map<string, number>();
  for (const { productId, quantity } of items) {
    const id = productId.toLowerCase();
    units.set(id, (units.get(id) ?? 0) + quantity);
  }
  return units;
}

/** An order read for a decision, and whether reading it just expired it (see findVisible). */
interface Current extends OrderWithItems {
  expiredNow: boolean;
}

/** How many overdue holds one sweep transaction expires. */
const SWEEP_BATCH = 50;

/**
 * The most checkouts placed together (place_orders). Each is a subtransaction that writes (the
 * exception block of place_order), and PostgreSQL keeps only 64 of those per transaction in shared
 * memory before every snapshot in the cluster gets slower: stay well below.
 */
const MAX_PLACEMENT_BATCH = 32;

/**
 * An error of one checkout of a batch rather than of the database: bad data (class 22) or a
 * constraint (class 23: the account deleted meanwhile). It aborted the whole batch, so each of its
 * checkouts is placed again on its own, to be answered by its own outcome.
 */
function oneCheckoutsError(err: unknown): boolean {
  const state = databaseErrorInfo(err)?.sqlState;
  return state !== undefined && (state.startsWith('22') || state.startsWith('23'));
}

@Injectable()
export class OrdersService {
  private readonly logger = new Logger('OrdersService');
  private readonly holdSeconds: number;
  /** Checkouts outside a transaction of their own, by their products: see PlacementQueue. */
  private readonly placements: PlacementQueue<Placement, PlacementAnswer>;

  constructor(
    private readonly orders: OrdersRepository,
    private readonly stock: StockRepository,
    private readonly metrics: MetricsService,
    private readonly outbox: OutboxRepository,
    @InjectDataSource() private readonly dataSource: DataSource,
    config: ConfigService<Env, true>,
  ) {
    this.holdSeconds = config.get('ORDER_HOLD_SECONDS', { infer: true });
    // Both 503 busy, with Retry-After: the queue sheds what it could not place in time.
    this.placements = new PlacementQueue((batch) => this.placeBatch(batch), {
      maxBatch: MAX_PLACEMENT_BATCH,
      maxWaitMs: config.get('PLACEMENT_QUEUE_WAIT_MS', { infer: true }),
      maxQueued: config.get('PLACEMENT_QUEUE_MAX', { infer: true }),
      waitedTooLong: () => {
        metrics.placementShed('waited');
        return serviceUnavailable('busy');
      },
      queueFull: () => {
        metrics.placementShed('queue_full');
        return serviceUnavailable('busy');
      },
    });
    metrics.measurePlacementsWaiting(() => this.placements.waiting);
  }

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
   * Places an order, in the caller's transaction or as one statement on the pool. Usually that one
   * statement (place_order) is all: lines merged per product, every line checked, order, history and
   * event written, then the products locked in id order (so two orders over the same products cannot
   * deadlock) and decremented conditionally, and the lines written: the locks are held as briefly as
   * the database allows (migration CheckoutLocksLate). On the pool, checkouts of the same products
   * that arrive while one of them is in the database queue behind it and are then placed together,
   * one statement and one commit for all of them (PlacementQueue, migration PlaceOrdersTogether).
   * When a line fails, the step-by-step path explains it; a placement that is short first expires
   * the overdue holds on exactly its products and decides again, so nobody is refused while expired
   * holds sit on the stock. If any line still fails, nothing is reserved; the problem lists every
   * failing line.
   */
  async place(m: EntityManager, caller: Caller, dto: CreateOrderDto): Promise<OrderWithItems> {
    const wanted = unitsOf(dto.items);
    const ids = [...wanted.keys()];
    const placement: Placement = {
      userId: caller.id,
      productIds: ids,
      quantities: ids.map((id) => wanted.get(id)!),
      holdSeconds: this.holdSeconds,
      eventId: randomUUID(),
      ownerActions: allowedTransitions('pending', ['owner']),
      traceparent: this.traceparent(),
    };
    // The usual case in one round trip. A refusal changes nothing and keeps no lock, and says
    // what it read: enough to explain it, unless overdue holds sit on these products.
    const answer = await (
      m.queryRunner
        ? this.orders.placeAtOnce(m, placement)
        : this.placements.submit([...ids].sort().join(' '), placement)
    ).catch((err: unknown) => {
      throw missingParentProblem(err) ?? err;
    });
    if ('placed' in answer) return answer.placed;
    if (!answer.overdue) {
      this.vet(answer.refused, ids, dto);
      const short = insufficientStock(answer.refused, wanted);
      if (short) throw short;
    }
    // Overdue holds to expire first (or a refusal the checks above do not see, which cannot
    // happen): several statements and savepoints, in the caller's transaction or one of its own.
    if (m.queryRunner?.isTransactionActive) return this.placeExplaining(m, caller, dto, wanted);
    return inTransaction(this.dataSource, (t) => this.placeExplaining(t, caller, dto, wanted));
  }

  /**
   * A batch of PlacementQueue: alone in place_order, several in place_orders. When one checkout's
   * error aborted the batch, each is placed again on its own, one after the other (they want the
   * same rows: at once, they would only wait for each other holding pool connections), as long as
   * the database answers and for at most POOL_WAIT_MS; any other error (the database away, a
   * timeout) is every checkout's. Like a single checkout's, a batch whose connection is lost
   * mid-commit may have committed: every member gets the 503.
   */
  private async placeBatch(batch: Placement[]): Promise<PromiseSettledResult<PlacementAnswer>[]> {
    const m = this.dataSource.manager;
    this.metrics.placementBatch(batch.length);
    if (batch.length > 1) {
      try {
        const answers = await this.orders.placeTogether(m, batch);
        return answers.map((value) => ({ status: 'fulfilled', value }));
      } catch (err) {
        if (!oneCheckoutsError(err)) throw err;
        this.logger.warn(
          { err: loggableDatabaseError(err), checkouts: batch.length },
          'A checkout failed its batch; placing each checkout of it alone',
        );
      }
    }
    // One after the other, but not for ever: once one fails for the database's reasons (away, busy)
    // or the pool's wait has passed, the rest are answered without being sent.
    const settled: PromiseSettledResult<PlacementAnswer>[] = [];
    const until = performance.now() + POOL_WAIT_MS;
    let stop: unknown;
    for (const p of batch) {
      if (stop === undefined && performance.now() > until) {
        stop = serviceUnavailable('busy');
      }
      if (stop !== undefined) {
        settled.push({ status: 'rejected', reason: stop });
        continue;
      }
      settled.push(
        await this.orders.placeAtOnce(m, p).then(
          (value) => ({ status: 'fulfilled', value }) as const,
          (reason: unknown) => {
            if (!oneCheckoutsError(reason)) stop = reason;
            return { status: 'rejected', reason } as const;
          },
        ),
      );
    }
    return settled;
  }

  /**
   * The placement that failed at once, done step by step to say why: unknown (422), inactive (409),
   * mixed currency (400), or short, after first expiring the overdue holds on exactly its products.
   */
  private async placeExplaining(
    m: EntityManager,
    caller: Caller,
    dto: CreateOrderDto,
    wanted: Map<string, number>,
  ): Promise<OrderWithItems> {
    const ids = [...wanted.keys()];
    // Rolling back to here releases the product locks, so that overdue orders can be locked before
    // their products, in the order every other path takes (orders, then products).
    await sql(m, 'SAVEPOINT placement');
    let locked = await this.vetProducts(m, ids, dto);
    let released = 0;
    if (this.isShort(locked, wanted)) {
      await sql(m, 'ROLLBACK TO SAVEPOINT placement');
      released = await this.expireOverdue(m, { productIds: ids }, { limit: 1000 });
      if (released) locked = await this.vetProducts(m, ids, dto);
    }
    await this.stock.reserve(m, locked, wanted).catch((err: unknown) => {
      // Still short: refused, but the holds expired on the way stay expired.
      throw released && err instanceof ProblemError ? afterCommit(err) : err;
    });

    const byId = new Map(locked.map((p) => [p.id, p]));
    const lines = ids.map((id) => this.line(byId.get(id)!, wanted.get(id)!));
    const placed = await this.orders
      .insert(
        m,
        {
          userId: caller.id,
          totalCents: lines.reduce((sum, l) => sum + l.unitPriceCents * l.quantity, 0),
          currency: locked[0].currency,
          holdSeconds: this.holdSeconds,
        },
        lines,
      )
      // The caller's account deleted since the guard read it (its products are locked, so they stay).
      .catch((err: unknown) => {
        throw missingParentProblem(err) ?? err;
      });
    await this.recordChange(m, placed, { action: 'place', from: null, actorId: caller.id });
    return placed;
  }

  private line(p: StockRow, quantity: number, unitPriceCents = p.priceCents): NewLine {
    return { productId: p.id, sku: p.sku, name: p.name, unitPriceCents, quantity };
  }

  private isShort(locked: StockRow[], wanted: Map<string, number>): boolean {
    return locked.some((p) => (wanted.get(p.id) ?? 0) > p.stock);
  }

  /** Locks the products in id order: 422 for unknown ones, 409 for inactive, 400 for mixed currency. */
  /** Locks the products in id order and vets them (see vet). */
  private async vetProducts(
    m: EntityManager,
    ids: string[],
    dto: CreateOrderDto,
  ): Promise<StockRow[]> {
    const locked = await this.stock.lock(m, ids);
    this.vet(locked, ids, dto);
    return locked;
  }

  /** 422 for unknown products, 409 for inactive ones, 400 for mixed currencies. */
  private vet(locked: StockRow[], ids: string[], dto: CreateOrderDto): void {
    const known = new Set(locked.map((p) => p.id));
    const unknown = [...ids].sort().filter((id) => !known.has(id));
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
  }

  /**
   * Customers see their own orders only: anyone else's is 404. A pending order whose hold is over
   * (by the database's clock) is expired on the way, so no answer ever shows it pending: inside the
   * caller's transaction when there is one, else in a transaction of its own. A writer passes
   * `lock`: the order's row is locked before anything is read, so the order and its lines are as
   * the last writer left them and stay so until the caller's transaction ends (every writer of an
   * order takes this lock first: a writer that queued behind another decides from what it left).
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
    if (found.overdue) {
      expiredNow =
        (m
          ? await this.expireOverdue(m, { orderIds: [id] })
          : await inTransaction(this.dataSource, (t) =>
              this.expireOverdue(t, { orderIds: [id] }),
            )) > 0;
      found = await read(m ?? this.orders.manager);
    }
    return { order: found.order, items: await this.orders.items(id, m), expiredNow };
  }

  async list(caller: Caller, query: OrderQueryDto): Promise<Page<OrderWithItems>> {
    const filter = {
      userId: caller.role === 'admin' ? undefined : caller.id,
      status: query.status,
      limit: query.limit,
      offset: query.offset,
    };
    const page = await this.orders.list(filter);
    // No page shows an order pending past its hold: expire those on it, then read the page again.
    const due = page.items.filter(
      ({ order }) => order.status === 'pending' && order.expiresAt! <= new Date(),
    );
    if (!due.length) return page;
    const orderIds = due.map(({ order }) => order.id);
    const expired = await inTransaction(this.dataSource, (m) =>
      this.expireOverdue(m, { orderIds }),
    );
    return expired ? this.orders.list(filter) : page;
  }

  async history(
    id: string,
    caller: Caller,
    page: { limit: number; offset: number },
  ): Promise<Page<OrderHistoryEntry>> {
    await this.findVisible(id, caller);
    return this.orders.history(id, page);
  }

  /**
   * One transition inside the caller's transaction: the order's row locked and read first, then
   * 404 → 403 (role may never) → 412 (a stated precondition fails) → 409 (illegal from the current
   * status), each decided from what was read under the lock, then one conditional write guarded by
   * the allowed source states (and the version, when If-Match named one, and the hold), then the
   * transition's effects (on the lines as they are now) and its history entry. Two racing writers
   * queue on the row lock: the second decides from what the first left.
   */
  async transition(
    m: EntityManager,
    id: string,
    action: OrderAction,
    caller: Caller,
    preconditions: Preconditions,
  ): Promise<OrderWithItems> {
    const current = await this.findVisible(id, caller, m, { lock: true });
    const caps = capacities(current.order, caller);
    const t = transition(action);
    if (!mayPerform(action, caps)) {
      const who = t.by.map((c) => (c === 'system' ? 'the service' : c)).join(' or ');
      throw new ProblemError('FORBIDDEN', `Only ${who} may ${action} an order.`);
    }
    const resourceName = `order ${id}`;
    const condition = decideWrite(preconditions, this.describe(current, caller), {
      resourceName,
      acceptsBodyVersion: false,
      required: false,
    });
    if (!legalFrom(action, current.order.status)) {
      throw this.illegal(current.order, action, caps, current.expiredNow);
    }
    const version = condition?.kind === 'version' ? condition.version : undefined;
    const moved = await this.apply(m, current, action, caller.id, version);
    if (moved) return moved;
    // Lost a race, or (pay) reached the deadline: the fresh state says which.
    const fresh = await this.findVisible(id, caller, m);
    if (
      condition &&
      fresh.order.version !== current.order.version &&
      legalFrom(action, fresh.order.status)
    ) {
      throw staleWrite(condition, this.describe(fresh, caller), resourceName);
    }
    throw this.illegal(fresh.order, action, caps, fresh.expiredNow);
  }

  /**
   * What every change of an order records, in its own transaction: the history entry, and the event
   * (the order at this version, as its owner sees it) in the outbox, with a delivery for every
   * matching webhook subscription. An event exists if and only if the change committed.
   */
  private async recordChange(
    m: EntityManager,
    { order, items }: OrderWithItems,
    change: { action: OrderHistoryAction; from: OrderStatus | null; actorId: string | null },
  ): Promise<void> {
    await this.orders.recordHistory(m, {
      orderId: order.id,
      action: change.action,
      from: change.from,
      to: order.status,
      actorId: change.actorId,
    });
    const event = orderEvent(
      eventOf(change.action),
      OrderDto.from(order, items, allowedTransitions(order.status, ['owner'])),
    );
    await this.outbox.append(m, {
      id: event.id,
      type: event.type,
      orderId: order.id,
      orderVersion: order.version,
      occurredAt: event.occurredAt,
      body: JSON.stringify(event),
      traceparent: this.traceparent(),
    });
  }

  /** The trace of the request that caused a change: it goes with the event to its deliveries. */
  private traceparent(): string | undefined {
    const carrier: Record<string, string> = {};
    propagation.inject(context.active(), carrier);
    return carrier.traceparent;
  }

  /** The guarded status write, the action's effects and its history entry; null if the guard failed. */
  private async apply(
    m: EntityManager,
    current: OrderWithItems,
    action: OrderAction,
    actorId: string | null,
    version?: number,
  ): Promise<OrderWithItems | null> {
    const t = transition(action);
    const moved = await this.orders.moveStatus(m, current.order.id, t, version);
    if (!moved) return null;
    const result = { order: moved.order, items: current.items };
    for (const effect of t.effects) await this.effects[effect](m, result);
    await this.recordChange(m, result, { action, from: moved.left, actorId });
    return result;
  }

  /**
   * Expires pending orders whose hold is over, each one exactly once whoever races for it (the
   * sweeper on every instance, a read, a pay, a placement short of stock): the rows are locked
   * first (`skipLocked` for the sweeper, which leaves them to whoever holds them), and the status
   * write is guarded by the hold being over. Returns how many it expired.
   */
  async expireOverdue(
    m: EntityManager,
    filter: { orderIds?: string[]; productIds?: string[] },
    { limit = SWEEP_BATCH, skipLocked = false }: { limit?: number; skipLocked?: boolean } = {},
  ): Promise<number> {
    const ids = await this.orders.lockOverdue(m, filter, limit, skipLocked);
    let expired = 0;
    for (const id of ids) {
      const found = await this.orders.findById(id, m);
      if (!found) continue;
      const current = { order: found.order, items: await this.orders.items(id, m) };
      if (await this.apply(m, current, 'expire', null)) expired++;
    }
    if (expired) this.metrics.holdsExpired(expired);
    return expired;
  }

  /** One sweep: batches of overdue holds until none is left that no one else holds. */
  async sweep(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await inTransaction(this.dataSource, (m) =>
        this.expireOverdue(m, {}, { skipLocked: true }),
      );
      total += n;
      if (n < SWEEP_BATCH) return total;
    }
  }

  oldestOverdueSeconds(): Promise<number> {
    return this.orders.oldestOverdueSeconds();
  }

  /**
   * Replaces a pending order's lines (API.md §7): 404 → 428/412/409 (preconditions) → 409
   * ORDER_NOT_EDITABLE, then, under the order's row lock and the products' (ids in order), stock moves
   * by the difference only: more units are reserved, fewer returned, removed lines return all theirs.
   * Kept products keep their price, added ones take today's. Short lines → 409 INSUFFICIENT_STOCK
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
    const current = await this.findVisible(id, caller, m, { lock: true });
    decideWrite(preconditions, this.describe(current, caller), {
      resourceName: `order ${id}`,
      bodyVersion: dto.version,
    });
    if (!EDITABLE_STATUSES.includes(current.order.status)) {
      throw this.notEditable(current.order, current.expiredNow);
    }

    const wanted = unitsOf(dto.items);
    const held = unitsOf(current.items);
    const added = [...wanted.keys()].filter((pid) => !held.has(pid));
    const all = [...new Set([...held.keys(), ...wanted.keys()])];
    const locked = await this.stock.lock(m, all);
    // Only the products the edit adds must exist, be for sale and share the order's currency.
    const addedRows = this.vetAdded(locked, added, dto, current.order.currency);
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
        ? this.keptLine(before, wanted.get(pid)!)
        : this.line(addedRows.get(pid) ?? byId.get(pid)!, wanted.get(pid)!);
    });
    const total = lines.reduce((sum, l) => sum + l.unitPriceCents * l.quantity, 0);
    const edited = await this.orders.replaceLines(m, id, total, lines);
    await this.recordChange(m, edited, { action: 'edit', from: 'pending', actorId: caller.id });
    return edited;
  }

  private keptLine(item: OrderItem, quantity: number): NewLine {
    return {
      productId: item.productId,
      sku: item.sku,
      name: item.name,
      unitPriceCents: item.unitPriceCents,
      quantity,
    };
  }

  private vetAdded(
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

  private notEditable(order: Order, expiredNow: boolean): ProblemError {
    const problem = new ProblemError(
      'ORDER_NOT_EDITABLE',
      `Order ${order.id} is ${order.status}; only a pending order can be edited. Nothing was changed.`,
      { currentStatus: order.status },
    );
    return expiredNow ? afterCommit(problem) : problem;
  }

  private illegal(
    order: Order,
    action: OrderAction,
    caps: Capacity[],
    expiredNow = false,
  ): ProblemError {
    const allowed = allowedTransitions(order.status, caps);
    const to = transition(action).to;
    const problem = new ProblemError(
      'ILLEGAL_STATE_TRANSITION',
      `Order ${order.id} is ${order.status}; it cannot be ${to === 'cancelled' ? 'cancelled' : `moved to ${to}`} now.${allowed.length ? ` Allowed now: ${allowed.join(', ')}.` : ''}`,
      { currentStatus: order.status, attemptedTransition: action, allowedTransitions: allowed },
    );
    // An order found overdue was expired on the way: that stands, whatever this request's fate.
    return expiredNow ? afterCommit(problem) : problem;
  }
}
