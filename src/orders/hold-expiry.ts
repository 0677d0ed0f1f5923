import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { inTransaction } from '../common/database/transaction';
import { MetricsService } from '../observability/metrics.service';
import { StockRepository } from '../products/stock.repository';
import { PromotionUses } from '../promotions/promotion-uses';
import { OrderChanges } from './order-changes';
import { OrdersRepository } from './orders.repository';

/** How many overdue holds one sweep transaction expires. */
const SWEEP_BATCH = 50;

/**
 * Pending orders whose hold is over end `expired`, their units returned (API.md §6): by the
 * sweeper on every instance (HoldSweeper), and by whoever meets them first (a read, a pay, a
 * placement short of stock).
 */
@Injectable()
export class HoldExpiry {
  constructor(
    private readonly orders: OrdersRepository,
    private readonly changes: OrderChanges,
    private readonly metrics: MetricsService,
    private readonly promotions: PromotionUses,
    private readonly stock: StockRepository,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  /**
   * Expires pending orders whose hold is over, each one exactly once whoever races for it (the
   * sweeper on every instance, a read, a pay, a placement short of stock): the rows are locked
   * first (`skipLocked` for the sweeper, which leaves them to whoever holds them), then every
   * product their lines name, with `alsoLock` (a checkout's own products, about to be locked again),
   * all in one id order, never order by order: a batch or a multi-line checkout takes them in id
   * order too. Each order and its lines are read under those locks, and the status write is
   * guarded by the hold being over. The promotion uses they held are given back last, in one
   * statement (PromotionUses.givingBackLast): orders, products, then promotions, as every path.
   * Returns how many it expired.
   */
  async expireOverdue(
    m: EntityManager,
    filter: { orderIds?: string[]; productIds?: string[]; promotionId?: string },
    {
      limit = SWEEP_BATCH,
      skipLocked = false,
      alsoLock = [],
    }: { limit?: number; skipLocked?: boolean; alsoLock?: string[] } = {},
  ): Promise<number> {
    const ids = await this.orders.lockOverdue(m, filter, limit, skipLocked);
    if (!ids.length) return 0;
    const products = new Set([...(await this.orders.productsOf(m, ids)), ...alsoLock]);
    await this.stock.lock(m, [...products]);
    const expired = await this.promotions.givingBackLast(m, async () => {
      let n = 0;
      for (const id of ids) {
        const found = await this.orders.findById(id, m);
        if (!found) continue;
        const current = { order: found.order, items: await this.orders.items(id, m) };
        if (await this.changes.move(m, current, 'expire', null)) n++;
      }
      return n;
    });
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
}
