import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  allowedTransitions,
  type Capacity,
  isFinal,
  legalFrom,
  mayPerform,
  ORDER_ACTIONS,
  ORDER_STATUSES,
  type OrderAction,
  type OrderStatus,
  TRANSITIONS,
  transitionTable,
} from '../../src/orders/order-state';

/** The expected machine, written out by hand: every (status, action) pair and where it leads. */
const EXPECTED: Record<OrderStatus, Partial<Record<OrderAction, OrderStatus>>> = {
  pending: { pay: 'paid', cancel: 'cancelled' },
  paid: { ship: 'shipped', cancel: 'cancelled' },
  shipped: { deliver: 'delivered' },
  delivered: {},
  cancelled: {},
};

describe('the order state machine', () => {
  const pairs = ORDER_STATUSES.flatMap((s) => ORDER_ACTIONS.map((a) => [s, a] as const));

  it.each(pairs)('from %s, %s is legal exactly when the table says so', (status, action) => {
    const target = EXPECTED[status][action];
    expect(legalFrom(action, status)).toBe(target !== undefined);
    if (target) expect(TRANSITIONS[action].to).toBe(target);
  });

  it('has delivered and cancelled as its only final states', () => {
    expect(ORDER_STATUSES.filter(isFinal)).toEqual(['delivered', 'cancelled']);
  });

  it.each<[OrderAction, Capacity[], boolean]>([
    ['pay', ['owner'], true],
    ['pay', ['admin'], false],
    ['ship', ['owner'], false],
    ['ship', ['admin'], true],
    ['deliver', ['owner'], false],
    ['deliver', ['admin'], true],
    ['cancel', ['owner'], true],
    ['cancel', ['admin'], true],
    ['pay', ['owner', 'admin'], true],
  ])('%s by %j is %s', (action, capacities, allowed) => {
    expect(mayPerform(action, capacities)).toBe(allowed);
  });

  it('lists the transitions legal now for the caller', () => {
    expect(allowedTransitions('pending', ['owner'])).toEqual(['pay', 'cancel']);
    expect(allowedTransitions('pending', ['admin'])).toEqual(['cancel']);
    expect(allowedTransitions('paid', ['owner'])).toEqual(['cancel']);
    expect(allowedTransitions('paid', ['admin'])).toEqual(['ship', 'cancel']);
    expect(allowedTransitions('shipped', ['owner'])).toEqual([]);
    expect(allowedTransitions('shipped', ['admin'])).toEqual(['deliver']);
    expect(allowedTransitions('delivered', ['owner', 'admin'])).toEqual([]);
  });

  it('restocks on cancel only', () => {
    expect(
      ORDER_ACTIONS.filter((a) =>
        (TRANSITIONS[a].effects as readonly string[]).includes('releaseStock'),
      ),
    ).toEqual(['cancel']);
  });
});

describe('the README', () => {
  it('shows the transition table generated from the code', () => {
    const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
    const section = /<!-- prettier-ignore-start -->\n([\s\S]*?)\n<!-- prettier-ignore-end -->/.exec(
      readme.slice(readme.indexOf('<!-- transitions:start -->')),
    );
    expect(section?.[1]).toBe(transitionTable());
  });
});
