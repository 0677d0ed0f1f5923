import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { one, sql } from '../common/database/sql';
import { ProblemError } from '../common/problems/problem.error';
import { Promotion } from './promotion.entity';

/** Why a code cannot be used, in the order API.md §11 checks them. */
export const PROMOTION_REFUSALS = [
  'unknown',
  'inactive',
  'not_started',
  'ended',
  'currency',
  'customer_limit',
  'exhausted',
] as const;
export type PromotionRefusal = (typeof PROMOTION_REFUSALS)[number];

/** A promotion locked by a checkout, with the database's clock's view of its period. */
export interface LockedPromotion {
  promotion: Promotion;
  notStarted: boolean;
  ended: boolean;
}

export function promotionNotApplicable(code: string, reason: PromotionRefusal): ProblemError {
  const why: Record<PromotionRefusal, string> = {
    unknown: 'no promotion has this code',
    inactive: 'the code is not active',
    not_started: 'the code is not valid yet',
    ended: 'the code has ended',
    currency: "the code's amount is in another currency than the order",
    customer_limit: 'you already hold as many orders with this code as it allows per customer',
    exhausted: 'the code has been used as many times as it allows',
  };
  return new ProblemError(
    'PROMOTION_NOT_APPLICABLE',
    `The promotion code ${code} cannot be used: ${why[reason]}. Nothing was reserved.`,
    { promotionCode: code, reason },
  );
}

/**
 * A promotion's uses, counted in the transaction of the order that takes or gives one back
 * (API.md §11). Lock order: a checkout locks its products, then the promotion; a cancel, an expiry
 * or a revive locks the order, its products, then the promotion; several orders expired together
 * lock all their products before the promotions (givingBackLast): the promotion is always last, so
 * no two of them wait for each other in a cycle. The one-statement checkout (sql/place_order.sql)
 * takes a use with the same guard as `take`, after its products' locks.
 * `times_used` is a counter, not an edit: its writes leave the promotion's version and ETag as
 * they are (migration PromotionUsesApart), so a use never makes an admin's If-Match stale.
 */
@Injectable()
export class PromotionUses {
  /** Per transaction (its manager), the uses given back at the end of givingBackLast: id → count. */
  private readonly later = new WeakMap<EntityManager, Map<string, number>>();

  /** The code's row, locked against other checkouts and give-backs; null if no code matches. */
  async lock(m: EntityManager, code: string): Promise<LockedPromotion | null> {
    const { rows } = await sql<{ id: string; not_started: boolean; ended: boolean }>(
      m,
      `SELECT id, coalesce(starts_at > clock_timestamp(), false) AS not_started,
              coalesce(ends_at <= clock_timestamp(), false) AS ended
         FROM promotions WHERE code = upper(btrim($1)) FOR NO KEY UPDATE`,
      [code],
    );
    if (!rows.length) return null;
    const promotion = (await one(m, Promotion, 'SELECT * FROM promotions WHERE id = $1', [
      rows[0].id,
    ]))!;
    return { promotion, notStarted: rows[0].not_started, ended: rows[0].ended };
  }

  /**
   * The first reason the locked code cannot be used for this order, or null. The per-customer count
   * is a statement after the lock, so it sees every order committed by whoever held it before.
   */
  async refusal(
    m: EntityManager,
    locked: LockedPromotion | null,
    userId: string,
    currency: string,
  ): Promise<PromotionRefusal | null> {
    if (!locked) return 'unknown';
    const { promotion: p } = locked;
    if (!p.active) return 'inactive';
    if (locked.notStarted) return 'not_started';
    if (locked.ended) return 'ended';
    if (p.amountOffCents !== null && p.currency !== currency) return 'currency';
    if (p.perCustomerLimit !== null) {
      const { rows } = await sql<{ n: number }>(
        m,
        `SELECT count(*)::int AS n FROM orders
          WHERE promotion_id = $1 AND user_id = $2 AND status NOT IN ('cancelled', 'expired')`,
        [p.id, userId],
      );
      if (rows[0].n >= p.perCustomerLimit) return 'customer_limit';
    }
    if (p.usageLimit !== null && p.timesUsed >= p.usageLimit) return 'exhausted';
    return null;
  }

  /** One use taken, by the one guarded write: false when the limit is reached. */
  async take(m: EntityManager, promotionId: string): Promise<boolean> {
    const { affected } = await sql(
      m,
      `UPDATE promotions SET times_used = times_used + 1
        WHERE id = $1 AND (usage_limit IS NULL OR times_used < usage_limit)`,
      [promotionId],
    );
    return affected === 1;
  }

  /**
   * A use taken again by a revived order (API.md §9, §11), whatever the code's dates or state now,
   * but never past its limits: under the code's row lock, the customer's other live orders with it
   * against `perCustomerLimit`, then the guarded write against `usageLimit`. The reason it cannot,
   * or null when taken.
   */
  async retake(
    m: EntityManager,
    promotionId: string,
    userId: string,
    orderId: string,
  ): Promise<'customer_limit' | 'exhausted' | null> {
    const { rows } = await sql<{ per_customer_limit: number | null }>(
      m,
      'SELECT per_customer_limit FROM promotions WHERE id = $1 FOR NO KEY UPDATE',
      [promotionId],
    );
    const limit = rows[0]?.per_customer_limit ?? null;
    if (limit !== null) {
      const { rows: held } = await sql<{ n: number }>(
        m,
        `SELECT count(*)::int AS n FROM orders
          WHERE promotion_id = $1 AND user_id = $2 AND id <> $3
            AND status NOT IN ('cancelled', 'expired')`,
        [promotionId, userId, orderId],
      );
      if (held[0].n >= limit) return 'customer_limit';
    }
    return (await this.take(m, promotionId)) ? null : 'exhausted';
  }

  /**
   * A use given back (a cancelled or expired order), at once, or with the others at the end of the
   * givingBackLast this transaction is in.
   */
  async giveBack(m: EntityManager, promotionId: string): Promise<void> {
    const later = this.later.get(m);
    if (later) {
      later.set(promotionId, (later.get(promotionId) ?? 0) + 1);
      return;
    }
    await this.giveBackAll(m, new Map([[promotionId, 1]]));
  }

  /**
   * Runs `work` (which may end several orders, each locking its products) and gives the uses it
   * gave back all at once at its end, in one statement that locks the promotions in id order: a
   * promotion is never locked before a later order's products, so the lock order of every path
   * (orders, products, promotion) holds for several orders in one transaction too (HoldExpiry).
   * Nothing is given back if `work` throws (its transaction, or savepoint, is rolled back).
   */
  async givingBackLast<T>(m: EntityManager, work: () => Promise<T>): Promise<T> {
    // Outside a transaction, or inside another givingBackLast (whose end gives back): as it is.
    if (!m.queryRunner || this.later.has(m)) return work();
    const uses = new Map<string, number>();
    this.later.set(m, uses);
    let result: T;
    try {
      result = await work();
    } finally {
      this.later.delete(m);
    }
    await this.giveBackAll(m, uses);
    return result;
  }

  /** One statement: the promotions locked in id order (the materialized CTE), then each decremented. */
  private async giveBackAll(m: EntityManager, uses: Map<string, number>): Promise<void> {
    if (!uses.size) return;
    const ids = [...uses.keys()].sort();
    await sql(
      m,
      `WITH locked AS MATERIALIZED (
         SELECT id FROM promotions WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE)
       UPDATE promotions p SET times_used = greatest(p.times_used - u.n, 0)
         FROM locked JOIN unnest($1::uuid[], $2::int[]) AS u(id, n) ON u.id = locked.id
        WHERE p.id = locked.id`,
      [ids, ids.map((id) => uses.get(id)!)],
    );
  }
}
