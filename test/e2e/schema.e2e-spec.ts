import { EVENT_TYPES } from '../../src/orders/order-state';
import { HISTORY_ACTIONS, ORDER_STATUSES } from '../../src/orders/order-state';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * The schema's CHECKs and the transition table are one fact written twice (the database must hold
 * even when code is wrong): adding a status or an action without its migration fails here, not as a
 * 500 in production.
 */
describe('the schema and the transition table', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  async function allowedBy(constraint: string): Promise<string[]> {
    const [{ def }] = await t.db.query(
      'SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = $1',
      [constraint],
    );
    return [...(def as string).matchAll(/'([^']+)'/g)].map((m) => m[1]).sort();
  }

  it('allows exactly ORDER_STATUSES in orders.status', async () => {
    expect(await allowedBy('orders_status_check')).toEqual([...ORDER_STATUSES].sort());
  });

  it('allows exactly the event types (of the transition table and of payments) in the outbox', async () => {
    expect(await allowedBy('outbox_events_type_check')).toEqual([...EVENT_TYPES].sort());
  });

  it('allows exactly the history actions (place and every action of the table)', async () => {
    expect(await allowedBy('order_history_action_check')).toEqual([...HISTORY_ACTIONS].sort());
  });
});
