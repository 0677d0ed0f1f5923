import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { context, propagation } from '@opentelemetry/api';
import type { EntityManager } from 'typeorm';
import { OutboxRepository } from '../events/outbox.repository';
import { StockRepository } from '../products/stock.repository';
import { PromotionUses, promotionNotApplicable } from '../promotions/promotion-uses';
import { OrderDto } from './dto/order.dto';
import { orderEvent } from './order-events';
import { type EffectHandler, OrderHooks } from './order-hooks';
import { unitsOf } from './order-lines';
import {
  allowedTransitions,
  eventOf,
  type OrderAction,
  type OrderHistoryAction,
  type OrderStatus,
  transition,
  TRANSITION_EFFECTS,
  type TransitionEffect,
} from './order-state';
import { OrdersRepository, type OrderWithItems } from './orders.repository';

/**
 * What every change of an order writes besides the change itself, in the change's transaction: the
 * history entry and the event; and the guarded status write with the transition's effects, shared by
 * the requests' transitions and the holds' expiry.
 */
@Injectable()
export class OrderChanges implements OnApplicationBootstrap {
  constructor(
    private readonly orders: OrdersRepository,
    private readonly stock: StockRepository,
    private readonly outbox: OutboxRepository,
    private readonly hooks: OrderHooks,
    private readonly promotions: PromotionUses,
  ) {}

  /**
   * The orders' own handlers of the table's effects (order-state.ts, TRANSITION_EFFECTS), run in the
   * transition's transaction after the guarded status update; the others come from OrderHooks.
   */
  private readonly own: Partial<Record<TransitionEffect, EffectHandler>> = {
    releaseStock: (m, { items }) => this.stock.release(m, unitsOf(items)),
    // All lines or none: INSUFFICIENT_STOCK leaves the caller to roll back to its savepoint.
    reserveStock: async (m, { items }) => {
      const units = unitsOf(items);
      await this.stock.reserve(m, await this.stock.lock(m, [...units.keys()]), units);
    },
    // The promotion last (after the order and its products): the lock order of every path.
    releasePromotion: async (m, { order }) => {
      if (order.promotionId) await this.promotions.giveBack(m, order.promotionId);
    },
    // The checkout's guarded write; refused, the caller rolls back to its savepoint (not revived).
    retakePromotion: async (m, { order }) => {
      if (!order.promotionId) return;
      const refused = await this.promotions.retake(m, order.promotionId, order.userId, order.id);
      if (refused) throw promotionNotApplicable(order.promotionCode!, refused);
    },
  };

  /** Every effect of the table has a handler, the orders' own or a hook's: checked at start-up. */
  onApplicationBootstrap(): void {
    const missing = (Object.keys(TRANSITION_EFFECTS) as TransitionEffect[]).filter(
      (e) => !this.handlerOf(e),
    );
    if (missing.length) throw new Error(`No handler for the order effect(s) ${missing.join(', ')}`);
  }

  private handlerOf(effect: TransitionEffect): EffectHandler | undefined {
    return this.own[effect] ?? this.hooks.effect(effect);
  }

  /**
   * The guarded status write, the action's effects and its history entry and event; null if the
   * guard failed. `paidBy`: the payment that pays the order (pay, revive), written with the status. `current` must have been read under the order's row lock (its lines are what the
   * effects act on).
   */
  async move(
    m: EntityManager,
    current: OrderWithItems,
    action: OrderAction,
    actorId: string | null,
    version?: number,
    paidBy?: { paymentId: string; cents: number },
  ): Promise<OrderWithItems | null> {
    const t = transition(action);
    const moved = await this.orders.moveStatus(m, current.order.id, t, version, paidBy);
    if (!moved) return null;
    const result = { order: moved.order, items: current.items };
    for (const effect of t.effects) await this.handlerOf(effect)!(m, result, actorId);
    await this.record(m, result, { action, from: moved.left, actorId });
    return result;
  }

  /**
   * What every change of an order records, in its own transaction: the history entry, and the event
   * (the order at this version, as its owner sees it) in the outbox, with a delivery for every
   * matching webhook subscription. An event exists if and only if the change committed.
   */
  async record(
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
      traceparent: traceparent(),
    });
  }
}

/** The trace of the request that caused a change: it goes with the event to its deliveries. */
export function traceparent(): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}
