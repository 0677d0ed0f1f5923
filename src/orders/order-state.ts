/**
 * The order state machine (API.md §2) as data. The service, `allowedTransitions`, error bodies, the
 * OpenAPI description and the README diagram all come from this table. Pure: no Nest, no database.
 *
 *   pending ──pay──▶ paid ──ship──▶ shipped ──deliver──▶ delivered
 *      │               │
 *      └──cancel──▶ cancelled ◀──cancel──┘
 */
export const ORDER_STATUSES = ['pending', 'paid', 'shipped', 'delivered', 'cancelled'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** How a caller relates to an order: its owner, an admin, or both. */
export type Capacity = 'owner' | 'admin';

export interface Transition {
  from: readonly OrderStatus[];
  to: OrderStatus;
  /** Who may ever perform it; anyone else gets 403, whatever the state. */
  by: readonly Capacity[];
  /** Cancelling gives the reserved stock back, in the same transaction. */
  restocks: boolean;
}

export const TRANSITIONS = {
  pay: { from: ['pending'], to: 'paid', by: ['owner'], restocks: false },
  ship: { from: ['paid'], to: 'shipped', by: ['admin'], restocks: false },
  deliver: { from: ['shipped'], to: 'delivered', by: ['admin'], restocks: false },
  cancel: { from: ['pending', 'paid'], to: 'cancelled', by: ['owner', 'admin'], restocks: true },
} as const satisfies Record<string, Transition>;

export type OrderAction = keyof typeof TRANSITIONS;
export const ORDER_ACTIONS = Object.keys(TRANSITIONS) as OrderAction[];

export function isFinal(status: OrderStatus): boolean {
  return !ORDER_ACTIONS.some((a) =>
    (TRANSITIONS[a].from as readonly OrderStatus[]).includes(status),
  );
}

/** May a caller in these capacities ever perform the action? (No: 403.) */
export function mayPerform(action: OrderAction, capacities: readonly Capacity[]): boolean {
  return TRANSITIONS[action].by.some((c) => capacities.includes(c));
}

/** Is the action legal from this status? (No: 409.) */
export function legalFrom(action: OrderAction, status: OrderStatus): boolean {
  return (TRANSITIONS[action].from as readonly OrderStatus[]).includes(status);
}

/** The actions legal now for this caller: what `allowedTransitions` lists. */
export function allowedTransitions(
  status: OrderStatus,
  capacities: readonly Capacity[],
): OrderAction[] {
  return ORDER_ACTIONS.filter((a) => legalFrom(a, status) && mayPerform(a, capacities));
}

/** Markdown table of the transitions, for the OpenAPI description and the README. */
export function transitionTable(): string {
  const rows = ORDER_ACTIONS.map((a) => {
    const t = TRANSITIONS[a];
    return `| \`${a}\` | ${t.from.map((s) => `\`${s}\``).join(', ')} | \`${t.to}\` | ${t.by.join(', ')} |${t.restocks ? ' returns the reserved stock' : ''} |`;
  });
  return ['| action | from | to | who | effect |', '|---|---|---|---|---|', ...rows].join('\n');
}
