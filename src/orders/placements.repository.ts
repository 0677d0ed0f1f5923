import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { Role } from '../common/access';
import { hydrate, prepared, sql } from '../common/database/sql';
import type { KeyClaim } from '../common/http/idempotency.service';
import { type RawStockRow, stockRowOf, type StockRow } from '../products/stock.repository';
import type { PromotionRefusal } from '../promotions/promotion-uses';
import { Order, OrderItem } from './order.entity';
import type { OrderWithItems } from './orders.repository';

/** The one-round-trip checkout (sql/place_order.sql), prepared once per connection. */
const PLACE_ORDER = prepared(
  'place_order',
  'SELECT place_order($1, $2::uuid[], $3::int[], $4, $5, $6::text[], $7, $8::text, $9::bigint) AS answer',
);

/** The same with an Idempotency-Key claimed and its outcome stored (sql/place_order_keyed.sql). */
const PLACE_ORDER_KEYED = prepared(
  'place_order_keyed',
  'SELECT place_order_keyed($10::json, $1, $2::uuid[], $3::int[], $4, $5, $6::text[], $7, $8::text, $9::bigint) AS answer',
);

/** Several checkouts in one statement (sql/place_orders.sql). */
const PLACE_ORDERS = prepared(
  'place_orders',
  'SELECT place_orders($1::uuid[], $2::uuid[], $3::int[], $4, $5::uuid[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::json[]) AS answer',
);

/** A checkout's Idempotency-Key, claimed by the placement statement itself (place_order_keyed). */
export interface PlacementKey extends KeyClaim {
  /** The caller's role, stored with the outcome: the replay renders the order as the first did. */
  role: Role;
}

/** One checkout as place_order takes it. */
export interface Placement {
  userId: string;
  productIds: string[];
  quantities: number[];
  holdSeconds: number;
  eventId: string;
  ownerActions: readonly string[];
  traceparent?: string;
  /** The promotion code as the client sent it (API.md §11). */
  promotionCode?: string;
  /** The total the client was shown. */
  expectedTotalCents?: number;
  /** Its Idempotency-Key, when the statement claims it (API.md §4). */
  key?: PlacementKey;
}

/**
 * What a checkout's code was found to be under its lock, when place_order refused (API.md §11): the
 * first reason it cannot be used (null: usable), its terms, and whether overdue holds hold uses of it.
 */
export interface PromotionSeen {
  reason: PromotionRefusal | null;
  percentOff: number | null;
  amountOffCents: number | null;
  overdue: boolean;
}

/**
 * What place_order answers: the order placed, or what it read under its locks when it refused: the
 * products, whether overdue holds sit on them, and (with a code) what the code was found to be.
 * A keyed placement answers `{keyed: false}` when it did nothing: its key taken or in flight, or the
 * checkout not placed (the usual keyed path then runs, and explains a refusal).
 */
export type PlacementAnswer =
  | { placed: OrderWithItems }
  | { refused: StockRow[]; overdue: boolean; promotion?: PromotionSeen | null }
  | { keyed: false };

/** place_order's answer as the database wrote it; what a keyed placement stores with its key. */
export type RawPlaced = { order: Record<string, unknown>; items: Record<string, unknown>[] };

type RawAnswer =
  | RawPlaced
  | { refused: RawStockRow[]; overdue: boolean; promotion?: PromotionSeen | null }
  | { key: false };

/** The outcome place_order_keyed stores with a key: rendered again for a replay. */
export interface StoredPlacement {
  placed: RawPlaced;
  requestId: string;
  role: Role;
}

export function isStoredPlacement(stored: unknown): stored is StoredPlacement {
  return typeof stored === 'object' && stored !== null && 'placed' in stored && 'role' in stored;
}

/** The placement statements: place_order, place_order_keyed and place_orders. */
@Injectable()
export class PlacementsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * The whole placement in one round trip (place_order, or place_order_keyed with a key): the
   * order, or, when any line is unknown, inactive, short or in another currency, what it read of the
   * products, with nothing changed and no lock kept; the caller then explains on its own path.
   */
  async placeAtOnce(m: EntityManager, p: Placement): Promise<PlacementAnswer> {
    const args = [
      p.userId,
      p.productIds,
      p.quantities,
      p.holdSeconds,
      p.eventId,
      p.ownerActions,
      p.traceparent ?? null,
      p.promotionCode ?? null,
      p.expectedTotalCents ?? null,
    ];
    const { rows } = p.key
      ? await sql<{ answer: RawAnswer }>(m, PLACE_ORDER_KEYED, [...args, keyArgument(p.key)])
      : await sql<{ answer: RawAnswer }>(m, PLACE_ORDER, args);
    return answerOf(m, rows[0].answer);
  }

  /**
   * Several checkouts of the same products, or of the same promotion code, in one statement and
   * one transaction (place_orders): each decided as place_order (or place_order_keyed) decides it,
   * an answer per checkout, in order. Any error is the whole call's: nothing of it committed. The
   * hold and the owner's actions are the service's, the same for every checkout: the first one's
   * are sent. Orders of fewer lines than the longest are padded with nulls (a two-dimensional
   * array is rectangular).
   */
  async placeTogether(m: EntityManager, batch: Placement[]): Promise<PlacementAnswer[]> {
    const width = Math.max(...batch.map((p) => p.productIds.length));
    const padded = <T>(row: T[]): (T | null)[] => [
      ...row,
      ...Array<null>(width - row.length).fill(null),
    ];
    const { rows } = await sql<{ answer: RawAnswer[] }>(m, PLACE_ORDERS, [
      batch.map((p) => p.userId),
      batch.map((p) => padded(p.productIds)),
      batch.map((p) => padded(p.quantities)),
      batch[0].holdSeconds,
      batch.map((p) => p.eventId),
      batch[0].ownerActions,
      batch.map((p) => p.traceparent ?? null),
      batch.map((p) => p.promotionCode ?? null),
      batch.map((p) => p.expectedTotalCents ?? null),
      batch.map((p) => (p.key ? keyArgument(p.key) : null)),
    ]);
    return rows[0].answer.map((answer) => answerOf(m, answer));
  }

  /** An order a keyed placement stored with its key, as it was placed (for a replay). */
  storedOrder(stored: StoredPlacement): OrderWithItems {
    return placedOf(this.dataSource.manager, stored.placed);
  }
}

/** p_key of place_order_keyed: see its header. */
function keyArgument(k: PlacementKey): string {
  return JSON.stringify({
    key: k.key,
    fingerprint: k.fingerprint,
    method: k.method,
    path: k.path,
    ttlHours: k.ttlHours,
    maxLive: k.maxLivePerUser,
    requestId: k.requestId,
    role: k.role,
  });
}

function placedOf(m: EntityManager, raw: RawPlaced): OrderWithItems {
  return {
    order: hydrate(m, Order, raw.order),
    items: raw.items.map((row) => hydrate(m, OrderItem, row)),
  };
}

function answerOf(m: EntityManager, answer: RawAnswer): PlacementAnswer {
  if ('key' in answer) return { keyed: false };
  if ('refused' in answer) {
    const promotion = answer.promotion && {
      ...answer.promotion,
      amountOffCents:
        answer.promotion.amountOffCents === null ? null : Number(answer.promotion.amountOffCents),
    };
    return { refused: answer.refused.map(stockRowOf), overdue: answer.overdue, promotion };
  }
  return { placed: placedOf(m, answer) };
}
