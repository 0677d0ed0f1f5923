import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { TransitionEffect } from './order-state';
import type { OrderWithItems } from './orders.repository';

/** A transition effect's handler, run in the transition's transaction after the status write. */
export type EffectHandler = (
  m: EntityManager,
  moved: OrderWithItems,
  actorId: string | null,
) => Promise<void>;

/** A check an edit must pass, under the order's row lock, after its precondition and status. */
export type EditCheck = (m: EntityManager, current: OrderWithItems) => Promise<void>;

/**
 * What another feature adds to the orders' use cases, registered at start-up (Vendure's order
 * process: data plus hooks): handlers for the transition table's effects that are not the orders'
 * own (the payments' `refundPayment`), and checks an edit must pass (no open payment). So orders
 * depend on no feature above them; a feature that is not loaded leaves its effect unhandled, which
 * OrderChanges refuses at start-up rather than skipping.
 */
@Injectable()
export class OrderHooks {
  private readonly effects = new Map<TransitionEffect, EffectHandler>();
  private readonly editChecks: EditCheck[] = [];

  onEffect(effect: TransitionEffect, handler: EffectHandler): void {
    if (this.effects.has(effect)) throw new Error(`Effect ${effect} has a handler already`);
    this.effects.set(effect, handler);
  }

  onEdit(check: EditCheck): void {
    this.editChecks.push(check);
  }

  effect(effect: TransitionEffect): EffectHandler | undefined {
    return this.effects.get(effect);
  }

  async checkEdit(m: EntityManager, current: OrderWithItems): Promise<void> {
    for (const check of this.editChecks) await check(m, current);
  }
}
