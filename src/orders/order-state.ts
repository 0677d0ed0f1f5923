/**
 * The order state machine as data. The service, `allowedTransitions`, error bodies, the routes (one
 * per action, generated), the OpenAPI description, the client's action type and the README's table
 * and diagram all come from this file (STATE_DIAGRAM below). Pure: no Nest, no database.
 *
 * Adding a transition is one entry in TRANSITIONS (plus, for a new status, ORDER_STATUSES and a
 * migration of the CHECK constraints, which a test compares with these lists).
 */
export const ORDER_STATUSES = [
  'pending',
  'paid',
  'shipped',
  'delivered',
  'cancelled',
  'expired',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/**
 * The events an order change produces (API.md §8): one per change, written in the change's own
 * transaction (see OutboxRepository), so an event exists if and only if its change committed.
 */
export const ORDER_EVENT_TYPES = [
  'order.created',
  'order.edited',
  'order.paid',
  'order.shipped',
  'order.delivered',
  'order.cancelled',
  'order.expired',
] as const;
export type OrderEventType = (typeof ORDER_EVENT_TYPES)[number];

/**
 * The events of money moving (API.md §9, §10): `{id, type, occurredAt, data: {order, payment |
 * refund}}`, through the same outbox as the order's own, in the same transaction as the change.
 */
export const PAYMENT_EVENT_TYPES = [
  'payment.succeeded',
  'payment.failed',
  'refund.succeeded',
  'refund.failed',
] as const;
export type PaymentEventType = (typeof PAYMENT_EVENT_TYPES)[number];

/** Every event type a webhook may subscribe to (and the outbox's CHECK allows). */
export const EVENT_TYPES = [...ORDER_EVENT_TYPES, ...PAYMENT_EVENT_TYPES] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * How a caller relates to an order: its owner, an admin, or both; `system` is the service itself
 * (the hold sweeper), which no request ever is.
 */
export type Capacity = 'owner' | 'admin' | 'system';

/**
 * What a transition does besides moving the status, in the same transaction. Each effect is a hook
 * the service runs after the guarded status update (see OrderChanges.effects).
 */
export const TRANSITION_EFFECTS = {
  releaseStock: {
    table: 'returns the reserved stock',
    inTransaction: 'the reserved stock is returned in the same transaction',
  },
  reserveStock: {
    table: 'takes its units again, all lines or none, at their snapshotted prices',
    inTransaction: 'its units are taken again in the same transaction, all lines or none',
  },
  releasePromotion: {
    table: 'gives its promotion use back',
    inTransaction: 'its promotion code use is given back in the same transaction',
  },
  retakePromotion: {
    table: 'takes its promotion use again (or is not revived)',
    inTransaction:
      'its promotion code use is taken again by the same guarded write as a checkout, or the order is not revived',
  },
  refundPayment: {
    table: 'owes a full refund of the payment that paid it',
    inTransaction:
      'a paid order is owed a full refund of its payment (`pending`, `reason: "order_cancelled"`) in the same transaction',
  },
} as const;
export type TransitionEffect = keyof typeof TRANSITION_EFFECTS;

export interface Transition {
  from: readonly OrderStatus[];
  to: OrderStatus;
  /** Who may ever perform it; anyone else gets 403, whatever the state. */
  by: readonly Capacity[];
  effects: readonly TransitionEffect[];
  /** Shown in the OpenAPI operation. */
  summary: string;
  /** The event the change emits (through the outbox, in its transaction). */
  event: OrderEventType;
  /**
   * `live`: only while the hold is live (the guarded write requires `expires_at > clock_timestamp()`);
   * `over`: only once it has ended. The database's clock decides the deadline, not the sweeper.
   */
  hold?: 'live' | 'over';
}

export const TRANSITIONS = {
  pay: {
    from: ['pending'],
    to: 'paid',
    by: ['system'],
    effects: [],
    summary: 'Pay (a confirmed payment: see POST /orders/{id}/payments)',
    hold: 'live',
    event: 'order.paid',
  },
  ship: {
    from: ['paid'],
    to: 'shipped',
    by: ['admin'],
    effects: [],
    summary: 'Ship',
    event: 'order.shipped',
  },
  deliver: {
    from: ['shipped'],
    to: 'delivered',
    by: ['admin'],
    effects: [],
    summary: 'Deliver',
    event: 'order.delivered',
  },
  cancel: {
    from: ['pending', 'paid'],
    to: 'cancelled',
    by: ['owner', 'admin'],
    effects: ['releaseStock', 'releasePromotion', 'refundPayment'],
    summary: 'Cancel',
    event: 'order.cancelled',
  },
  expire: {
    from: ['pending'],
    to: 'expired',
    by: ['system'],
    effects: ['releaseStock', 'releasePromotion'],
    summary: 'Expire',
    hold: 'over',
    event: 'order.expired',
  },
  revive: {
    from: ['expired'],
    to: 'paid',
    by: ['system'],
    effects: ['reserveStock', 'retakePromotion'],
    summary: 'Revive (money for an expired order arrived and its units are still there)',
    event: 'order.paid',
  },
} as const satisfies Record<string, Transition>;

export type OrderAction = keyof typeof TRANSITIONS;
export const ORDER_ACTIONS = Object.keys(TRANSITIONS) as OrderAction[];

/** The actions a request may perform (for the others, `pay`, `expire`, `revive`, every caller gets 403). */
export const CALLER_ACTIONS = ORDER_ACTIONS.filter((a) =>
  (TRANSITIONS[a].by as readonly Capacity[]).some((c) => c !== 'system'),
);

/** What a history entry records: placement, or one of the actions. */
export const HISTORY_ACTIONS = ['place', ...ORDER_ACTIONS, 'edit'] as const;
export type OrderHistoryAction = 'place' | OrderAction | 'edit';

/** The event every recorded change emits. */
export function eventOf(action: OrderHistoryAction): OrderEventType {
  if (action === 'place') return 'order.created';
  if (action === 'edit') return 'order.edited';
  return transition(action).event;
}

/** Only a pending order can be edited (its lines, not its status). */
export const EDITABLE_STATUSES: readonly OrderStatus[] = ['pending'];

export function transition(action: OrderAction): Transition {
  return TRANSITIONS[action];
}

export function isFinal(status: OrderStatus): boolean {
  return !ORDER_ACTIONS.some((a) => transition(a).from.includes(status));
}

/** May a caller in these capacities ever perform the action? (No: 403.) */
export function mayPerform(action: OrderAction, capacities: readonly Capacity[]): boolean {
  return transition(action).by.some((c) => capacities.includes(c));
}

/** Is the action legal from this status? (No: 409.) */
export function legalFrom(action: OrderAction, status: OrderStatus): boolean {
  return transition(action).from.includes(status);
}

/** The actions legal now for this caller: what `allowedTransitions` lists. */
export function allowedTransitions(
  status: OrderStatus,
  capacities: readonly Capacity[],
): OrderAction[] {
  return ORDER_ACTIONS.filter((a) => legalFrom(a, status) && mayPerform(a, capacities));
}

/**
 * The machine drawn once, for the README and the OpenAPI description; a unit test checks that it
 * names every status and action of the table.
 */
export const STATE_DIAGRAM = [
  'pending ──pay──▶ paid ──ship──▶ shipped ──deliver──▶ delivered',
  '   │  │            │',
  '   │  └──cancel──▶ cancelled ◀──cancel──┘',
  '   └──expire──▶ expired ──revive──▶ paid',
  '(pay, expire, revive: the service only; pay and revive when a payment is confirmed)',
].join('\n');

/** Markdown table of the transitions, for the OpenAPI description and the README. */
export function transitionTable(): string {
  const rows = ORDER_ACTIONS.map((a) => {
    const t = transition(a);
    const effects = t.effects.map((e) => ` ${TRANSITION_EFFECTS[e].table}`).join(';');
    const who = t.by.map((c) => (c === 'system' ? 'the service' : c)).join(', ');
    return `| \`${a}\` | ${t.from.map((s) => `\`${s}\``).join(', ')} | \`${t.to}\` | ${who} |${effects} |`;
  });
  return ['| action | from | to | who | effect |', '|---|---|---|---|---|', ...rows].join('\n');
}
