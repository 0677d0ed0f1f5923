import { randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
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
import { afterCommit, ProblemError } from '../common/problems/problem.error';
import type { Env } from '../config/env';
import { MetricsService } from '../observability/metrics.service';
import { insufficientStock, type StockRow, StockRepository } from '../products/stock.repository';
import { promotionNotApplicable, PromotionUses } from '../promotions/promotion-uses';
import type { CreateOrderDto } from './dto/order.dto';
import { HoldExpiry } from './hold-expiry';
import { OrderChanges, traceparent } from './order-changes';
import { discountOf, lineOf, totalOf, unitsOf } from './order-lines';
import { allowedTransitions } from './order-state';
import { OrdersRepository, type OrderWithItems, type PromotionUse } from './orders.repository';
import {
  type Placement,
  type PlacementAnswer,
  type PlacementKey,
  PlacementsRepository,
} from './placements.repository';
import { explainTerms, priceChanged, vet } from './placement-checks';
import { PlacementQueue } from './placement-queue';

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

/**
 * The queue a checkout joins: a batch shares its products, or its promotion code (the hot row of
 * every checkout with it, whatever the products): place_orders locks all the batch's products, then
 * that one promotion, as every path does; never two codes (another batch could lock them the other
 * way round).
 */
function batchKey(p: Placement): string {
  const code = p.promotionCode;
  return code === undefined ? [...p.productIds].sort().join(' ') : `#${code.trim().toUpperCase()}`;
}

/** `POST /orders`: placing an order, at once, in a batch, or step by step to explain a refusal. */
@Injectable()
export class OrderPlacement {
  private readonly logger = new Logger('OrderPlacement');
  private readonly holdSeconds: number;
  /** How long a queued checkout may wait; also bounds a failed batch's one-by-one re-placement. */
  private readonly maxWaitMs: number;
  /** Checkouts outside a transaction of their own, by their products: see PlacementQueue. */
  private readonly placements: PlacementQueue<Placement, PlacementAnswer>;

  constructor(
    private readonly orders: OrdersRepository,
    private readonly placementStatements: PlacementsRepository,
    private readonly stock: StockRepository,
    private readonly holds: HoldExpiry,
    private readonly changes: OrderChanges,
    private readonly metrics: MetricsService,
    private readonly promotions: PromotionUses,
    @InjectDataSource() private readonly dataSource: DataSource,
    config: ConfigService<Env, true>,
  ) {
    this.holdSeconds = config.get('ORDER_HOLD_SECONDS', { infer: true });
    this.maxWaitMs = config.get('PLACEMENT_QUEUE_WAIT_MS', { infer: true });
    // Both 503 busy, with Retry-After: the queue sheds what it could not place in time.
    this.placements = new PlacementQueue((batch) => this.placeBatch(batch), {
      maxBatch: MAX_PLACEMENT_BATCH,
      maxWaitMs: this.maxWaitMs,
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
   * Places an order, in the caller's transaction or as one statement on the pool. Usually that one
   * statement (place_order) is all: lines merged per product, every line checked, order, history and
   * event written, then the products locked in id order (so two orders over the same products cannot
   * deadlock) and decremented conditionally, and the lines written: the locks are held as briefly as
   * the database allows (sql/place_order.sql). On the pool, checkouts of the same products (or of
   * the same promotion code, whatever their products) that arrive while one of them is in the
   * database queue behind it and are then placed together, one statement and one commit for all of
   * them (PlacementQueue, sql/place_orders.sql). A promotion code and an expected total go into that same statement: the
   * use is counted by one guarded write after the products' locks (API.md §11); a refusal is
   * explained from what place_order_locked read under its locks (explainTerms), and only overdue
   * holds in the way, or a total of 0, take the step-by-step path (placeStepByStep).
   * When a line fails, the step-by-step path explains it; a placement that is short first expires
   * the overdue holds on exactly its products and decides again, so nobody is refused while expired
   * holds sit on the stock. If any line still fails, nothing is reserved; the problem lists every
   * failing line.
   */
  async place(m: EntityManager, caller: Caller, dto: CreateOrderDto): Promise<OrderWithItems> {
    const wanted = unitsOf(dto.items);
    const ids = [...wanted.keys()];
    const placement = this.placementOf(caller, dto, wanted);
    // The usual case in one round trip. A refusal changes nothing and keeps no lock, and says
    // what it read: enough to explain it, unless overdue holds sit on these products.
    const answer = await (
      m.queryRunner
        ? this.placementStatements.placeAtOnce(m, placement)
        : this.placements.submit(batchKey(placement), placement)
    ).catch((err: unknown) => {
      throw missingParentProblem(err) ?? err;
    });
    if ('placed' in answer) return answer.placed;
    if ('keyed' in answer) throw new Error('A placement without a key answered as a keyed one');
    explainTerms(answer, ids, wanted, dto);
    // Overdue holds to expire first (or a refusal the checks above do not see, which cannot
    // happen), or a total of 0, paid at placement: several statements and savepoints, in the
    // caller's transaction or one of its own.
    if (m.queryRunner?.isTransactionActive) return this.placeStepByStep(m, caller, dto, wanted);
    return inTransaction(this.dataSource, (t) => this.placeStepByStep(t, caller, dto, wanted));
  }

  /**
   * A checkout with an Idempotency-Key, placed by the one statement that also claims the key and
   * stores the outcome with it (place_order_keyed): queued and batched like any checkout, so that a
   * retry-safe storefront's checkouts cost what unkeyed ones do (issue 26). Undefined when that
   * statement did nothing (the key taken, in flight or over its bound, or the checkout refused):
   * the caller then runs the usual keyed path (IdempotencyService.run), which waits, replays, or
   * explains the refusal and stores it.
   */
  async placeKeyed(
    caller: Caller,
    dto: CreateOrderDto,
    key: Omit<PlacementKey, 'role'>,
  ): Promise<OrderWithItems | undefined> {
    const placement = this.placementOf(caller, dto, unitsOf(dto.items));
    placement.key = { ...key, role: caller.role };
    const answer = await this.placements
      .submit(batchKey(placement), placement)
      .catch((err: unknown) => {
        throw missingParentProblem(err) ?? err;
      });
    return 'placed' in answer ? answer.placed : undefined;
  }

  private placementOf(caller: Caller, dto: CreateOrderDto, wanted: Map<string, number>): Placement {
    const ids = [...wanted.keys()];
    return {
      userId: caller.id,
      productIds: ids,
      quantities: ids.map((id) => wanted.get(id)!),
      holdSeconds: this.holdSeconds,
      eventId: randomUUID(),
      ownerActions: allowedTransitions('pending', ['owner']),
      traceparent: traceparent(),
      promotionCode: dto.promotionCode,
      expectedTotalCents: dto.expectedTotalCents,
    };
  }

  /**
   * A batch of PlacementQueue: alone in place_order, several in place_orders. When one checkout's
   * error aborted the batch, each is placed again on its own, one after the other (they want the
   * same rows: at once, they would only wait for each other holding pool connections), as long as
   * the database answers and for at most PLACEMENT_QUEUE_WAIT_MS; any other error (the database away, a
   * timeout) is every checkout's. Like a single checkout's, a batch whose connection is lost
   * mid-commit may have committed: every member gets the 503.
   */
  private async placeBatch(batch: Placement[]): Promise<PromiseSettledResult<PlacementAnswer>[]> {
    const m = this.dataSource.manager;
    this.metrics.placementBatch(batch.length);
    if (batch.length > 1) {
      try {
        const answers = await this.placementStatements.placeTogether(m, batch);
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
    // or the queue's wait has passed, the rest are answered without being sent.
    const settled: PromiseSettledResult<PlacementAnswer>[] = [];
    const until = performance.now() + this.maxWaitMs;
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
        await this.placementStatements.placeAtOnce(m, p).then(
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
   * A checkout place_order could not place at once, step by step in one transaction (with or
   * without a promotion code or an expected total, API.md §11), checked in the contract's order: 422 UNKNOWN_PRODUCT, 409 PRODUCT_UNAVAILABLE (and 400 for mixed
   * currencies) under the products' locks, 409 PROMOTION_NOT_APPLICABLE under the promotion's lock,
   * 409 PRICE_CHANGED, 409 INSUFFICIENT_STOCK; a refusal reserves and counts nothing. The use is
   * counted by one guarded write (PromotionUses.take) while the promotion's row is locked, so its
   * `usageLimit` and `perCustomerLimit` hold under any concurrency, across instances. Lock order:
   * products (id order), then the promotion; a cancel, expiry or revive locks the order, its
   * products, then the promotion, so the promotion is always last. A checkout about to be refused
   * `exhausted` or `customer_limit` first expires the overdue holds holding uses of the code; one
   * short of stock those on its products (after rolling back its own locks, all of them together,
   * so that the orders are locked before every product, theirs and its own, in one id order, and
   * the promotions after them, as every path does), and decides again.
   * Only for what place_order neither placed nor explained (explainTerms): overdue holds that may
   * change the answer, or a total of 0, which is paid here.
   */
  private async placeStepByStep(
    m: EntityManager,
    caller: Caller,
    dto: CreateOrderDto,
    wanted: Map<string, number>,
  ): Promise<OrderWithItems> {
    const ids = [...wanted.keys()];
    const code = dto.promotionCode;
    // The overdue holds to expire before deciding again: those of the code, those on the products.
    const overdue: { promotionId?: string; productIds?: string[] } = {};
    let released = 0;
    // Refused: the holds expired on the way stay expired.
    const refuse = (problem: ProblemError): ProblemError =>
      released ? afterCommit(problem) : problem;
    /**
     * Rolls back to before the first lock and expires every overdue hold asked for so far (again,
     * if some were expired already), so that orders are locked before every product (theirs and
     * this checkout's, in one id order) and promotions last, as on every path. How many expired.
     */
    const expire = async (more: typeof overdue): Promise<number> => {
      Object.assign(overdue, more);
      await sql(m, 'ROLLBACK TO SAVEPOINT terms');
      released = await this.holds.expireOverdue(m, overdue, { limit: 1000, alsoLock: ids });
      return released;
    };
    await sql(m, 'SAVEPOINT terms');
    for (;;) {
      await sql(m, 'SAVEPOINT placement');
      const locked = await this.vetProducts(m, ids, dto);
      const currency = locked[0].currency;
      const byId = new Map(locked.map((p) => [p.id, p]));
      const lines = ids.map((id) => lineOf(byId.get(id)!, wanted.get(id)!));
      const subtotal = totalOf(lines);
      let use: PromotionUse | undefined;
      if (code !== undefined) {
        const promotion = await this.promotions.lock(m, code);
        const reason = await this.promotions.refusal(m, promotion, caller.id, currency);
        if (
          (reason === 'exhausted' || reason === 'customer_limit') &&
          overdue.promotionId === undefined &&
          (await expire({ promotionId: promotion!.promotion.id }))
        ) {
          continue;
        }
        if (reason) throw refuse(promotionNotApplicable(code, reason));
        const p = promotion!.promotion;
        const terms = {
          percentOff: p.percentOff,
          amountOffCents: p.amountOffCents === null ? null : Number(p.amountOffCents),
        };
        use = { id: p.id, code: p.code, ...terms, discountCents: discountOf(subtotal, terms) };
      }
      const total = subtotal - (use?.discountCents ?? 0);
      if (dto.expectedTotalCents !== undefined && total !== dto.expectedTotalCents) {
        throw refuse(priceChanged(dto.expectedTotalCents, total, lines));
      }
      const short = insufficientStock(locked, wanted);
      if (short) {
        if (overdue.productIds === undefined && (await expire({ productIds: ids }))) continue;
        throw refuse(short);
      }
      await this.stock.reserve(m, locked, wanted);
      // Cannot fail under the lock the refusal was decided under; the guard is the rule's own.
      if (use && !(await this.promotions.take(m, use.id))) {
        throw new Error(`Promotion ${use.id} ran out under its own lock`);
      }
      const placed = await this.orders
        .insert(
          m,
          {
            userId: caller.id,
            totalCents: total,
            currency,
            holdSeconds: this.holdSeconds,
            promotion: use,
          },
          lines,
        )
        .catch((err: unknown) => {
          throw missingParentProblem(err) ?? err;
        });
      await this.changes.record(m, placed, { action: 'place', from: null, actorId: caller.id });
      if (total > 0) return placed;
      // Nothing owed (a 100% code): paid at placement, by nobody, without a payment (API.md §9).
      return (await this.changes.move(m, placed, 'pay', null))!;
    }
  }

  /** Locks the products in id order and vets them (see vet). */
  private async vetProducts(
    m: EntityManager,
    ids: string[],
    dto: CreateOrderDto,
  ): Promise<StockRow[]> {
    const locked = await this.stock.lock(m, ids);
    vet(locked, ids, dto);
    return locked;
  }
}
