import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { Caller } from '../common/access';
import { decideWrite, type Preconditions, staleWrite } from '../common/http/preconditions';
import { afterCommit, ProblemError } from '../common/problems/problem.error';
import { OrderChanges } from './order-changes';
import { capacities, OrderReads, versionedOrder } from './order-reads';
import {
  allowedTransitions,
  type Capacity,
  legalFrom,
  mayPerform,
  type OrderAction,
  transition,
} from './order-state';
import type { Order } from './order.entity';
import type { OrderWithItems } from './orders.repository';

/** `POST /orders/{id}/{action}`: the transition table (order-state.ts) applied to one order. */
@Injectable()
export class OrderTransitions {
  constructor(
    private readonly reads: OrderReads,
    private readonly changes: OrderChanges,
  ) {}

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
    const current = await this.reads.findVisible(id, caller, m, { lock: true });
    const caps = capacities(current.order, caller);
    const t = transition(action);
    if (!mayPerform(action, caps)) {
      const who = t.by.map((c) => (c === 'system' ? 'the service' : c)).join(' or ');
      throw new ProblemError('FORBIDDEN', `Only ${who} may ${action} an order.`);
    }
    const resourceName = `order ${id}`;
    const condition = decideWrite(preconditions, versionedOrder(current, caller), {
      resourceName,
      acceptsBodyVersion: false,
      required: false,
    });
    if (!legalFrom(action, current.order.status)) {
      throw illegal(current.order, action, caps, current.expiredNow);
    }
    const version = condition?.kind === 'version' ? condition.version : undefined;
    const moved = await this.changes.move(m, current, action, caller.id, version);
    if (moved) return moved;
    // Lost a race, or (pay) reached the deadline: the fresh state says which.
    const fresh = await this.reads.findVisible(id, caller, m);
    if (
      condition &&
      fresh.order.version !== current.order.version &&
      legalFrom(action, fresh.order.status)
    ) {
      throw staleWrite(condition, versionedOrder(fresh, caller), resourceName);
    }
    throw illegal(fresh.order, action, caps, fresh.expiredNow);
  }
}

function illegal(
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
