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
  STATE_DIAGRAM,
  type OrderStatus,
  TRANSITIONS,
  transitionTable,
} from '../../src/orders/order-state';

/** The expected machine, written out by hand: every (status, action) pair and where it leads. */
const EXPECTED: Record<OrderStatus, Partial<Record<OrderAction, OrderStatus>>> = {
  pending: { pay: 'paid', cancel: 'cancelled', expire: 'expired' },
  paid: { ship: 'shipped', cancel: 'cancelled' },
  shipped: { deliver: 'delivered' },
  delivered: {},
  cancelled: {},
  expired: { revive: 'paid' },
};

describe('the order state machine', () => {
  const pairs = ORDER_STATUSES.flatMap((s) => ORDER_ACTIONS.map((a) => [s, a] as const));

  it.each(pairs)('from %s, %s is legal exactly when the table says so', (status, action) => {
    const target = EXPECTED[status][action];
    expect(legalFrom(action, status)).toBe(target !== undefined);
    if (target) expect(TRANSITIONS[action].to).toBe(target);
  });

  it('has delivered and cancelled as its only final states (an expired order may be revived)', () => {
    expect(ORDER_STATUSES.filter(isFinal)).toEqual(['delivered', 'cancelled']);
  });

  it('lets only the service pay and revive (a confirmed payment), and never lists them for a caller', () => {
    for (const action of ['pay', 'revive'] as const) {
      expect(mayPerform(action, ['owner', 'admin'])).toBe(false);
      expect(mayPerform(action, ['system'])).toBe(true);
      for (const status of ORDER_STATUSES) {
        expect(allowedTransitions(status, ['owner', 'admin'])).not.toContain(action);
      }
    }
  });

  it('lets only the service expire, and never lists expire for a caller', () => {
    expect(mayPerform('expire', ['owner', 'admin'])).toBe(false);
    expect(mayPerform('expire', ['system'])).toBe(true);
    for (const status of ORDER_STATUSES) {
      expect(allowedTransitions(status, ['owner', 'admin'])).not.toContain('expire');
    }
  });

  it.each<[OrderAction, Capacity[], boolean]>([
    ['pay', ['owner'], false],
    ['pay', ['admin'], false],
    ['ship', ['owner'], false],
    ['ship', ['admin'], true],
    ['deliver', ['owner'], false],
    ['deliver', ['admin'], true],
    ['cancel', ['owner'], true],
    ['cancel', ['admin'], true],
    ['pay', ['owner', 'admin'], false],
  ])('%s by %j is %s', (action, capacities, allowed) => {
    expect(mayPerform(action, capacities)).toBe(allowed);
  });

  it('lists the transitions legal now for the caller', () => {
    expect(allowedTransitions('pending', ['owner'])).toEqual(['cancel']);
    expect(allowedTransitions('pending', ['admin'])).toEqual(['cancel']);
    expect(allowedTransitions('paid', ['owner'])).toEqual(['cancel']);
    expect(allowedTransitions('paid', ['admin'])).toEqual(['ship', 'cancel']);
    expect(allowedTransitions('shipped', ['owner'])).toEqual([]);
    expect(allowedTransitions('shipped', ['admin'])).toEqual(['deliver']);
    expect(allowedTransitions('delivered', ['owner', 'admin'])).toEqual([]);
  });

  it('returns the stock on cancel and expire only', () => {
    expect(
      ORDER_ACTIONS.filter((a) =>
        (TRANSITIONS[a].effects as readonly string[]).includes('releaseStock'),
      ),
    ).toEqual(['cancel', 'expire']);
  });

  it('owes a refund of a paid order on cancel, and takes the units again on revive', () => {
    const withEffect = (effect: string) =>
      ORDER_ACTIONS.filter((a) => (TRANSITIONS[a].effects as readonly string[]).includes(effect));
    expect(withEffect('refundPayment')).toEqual(['cancel']);
    expect(withEffect('reserveStock')).toEqual(['revive']);
  });
});

describe('the state diagram', () => {
  it('names every status and every action of the table', () => {
    for (const name of [...ORDER_STATUSES, ...ORDER_ACTIONS]) expect(STATE_DIAGRAM).toContain(name);
  });
});

describe('the README', () => {
  it('shows the state diagram of the code', () => {
    const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
    const section = /<!-- diagram:start -->\s*```\n([\s\S]*?)\n```\s*<!-- diagram:end -->/.exec(
      readme,
    );
    expect(section?.[1]).toBe(STATE_DIAGRAM);
  });

  it('shows the transition table generated from the code', () => {
    const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
    const section = /<!-- prettier-ignore-start -->\n([\s\S]*?)\n<!-- prettier-ignore-end -->/.exec(
      readme.slice(readme.indexOf('<!-- transitions:start -->')),
    );
    expect(section?.[1]).toBe(transitionTable());
  });
});
