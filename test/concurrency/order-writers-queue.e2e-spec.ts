import { setTimeout as sleep } from 'node:timers/promises';
import type { Response } from 'supertest';
import { inTransaction } from '../../src/common/database/transaction';
import { HoldExpiry } from '../../src/orders/hold-expiry';
import { type Account, account, expectProblem } from '../support/http';
import { createProduct, placeOrder, stockOf } from '../support/fixtures';
import { held, holdRow, queuedBehindOrder, untilWaiting, waiting } from '../support/row-locks';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * Writers of one order that queue behind each other: a separate transaction holds the order's row
 * (`SELECT … FOR UPDATE`) until both writers wait for it, then lets go, so the second writer runs
 * only after the first committed, every time. Each must decide from what the first left (API.md §7):
 * stock + units held by live orders stays what it was, and the last answer is the order as it is.
 */

const INITIAL = 10;
const PLACED = 3;

type Rival = 'cancel' | 'edit';

describe('writers of one order queued behind each other (row held in a separate transaction)', () => {
  let t: TestApp;
  let admin: Account;
  let buyer: Account;
  beforeAll(async () => {
    t = await createTestApp({ ORDER_EXPIRY_SWEEP_SECONDS: '3600' });
    admin = await account(t, 'admin');
    buyer = await account(t);
  });
  afterAll(() => t.close());

  const edit = (id: string, ifMatch: string, quantity: number, productId: string) => () =>
    t
      .http()
      .patch(`/api/v1/orders/${id}`)
      .set(buyer.auth)
      .set('If-Match', ifMatch)
      .send({ items: [{ productId, quantity }] })
      .then((r) => r);

  const transition = (id: string, action: Rival, ifMatch?: string) => () => {
    const req = t.http().post(`/api/v1/orders/${id}/${action}`).set(buyer.auth);
    return (ifMatch ? req.set('If-Match', ifMatch) : req).send().then((r) => r);
  };

  /** The order as the database has it, in the shape of a response body. */
  async function orderNow(id: string): Promise<Record<string, unknown>> {
    const res = await t.http().get(`/api/v1/orders/${id}`).set(buyer.auth).expect(200);
    return res.body as Record<string, unknown>;
  }

  const shape = (body: Record<string, any>) => ({
    status: body.status,
    version: body.version,
    totalCents: body.totalCents,
    items: (body.items as { productId: string; quantity: number }[]).map((i) => ({
      productId: i.productId,
      quantity: i.quantity,
    })),
  });

  describe.each([
    ['without preconditions', false],
    ['with the same If-Match', true],
  ] as const)('%s', (_, preconditioned) => {
    describe.each([
      ['raises', 5],
      ['lowers', 1],
    ] as const)('an edit that %s the line', (_direction, editTo) => {
      describe.each([
        ['a cancel', 'cancel'],
        ['another edit', 'edit'],
      ] as const)('against %s', (_rivalName, rival) => {
        it.each(['edit first', `rival first`] as const)(
          'keeps stock exact and answers last with the order as it is (%s)',
          async (which) => {
            const p = await createProduct(t, admin, { stock: INITIAL, priceCents: 100 });
            const placed = await placeOrder(t, buyer, [
              { productId: p.id, quantity: PLACED },
            ]).expect(201);
            const id = placed.body.id as string;
            const etag = placed.headers.etag;
            const editing = edit(id, preconditioned ? etag : '*', editTo, p.id);
            const rivalling =
              rival === 'edit'
                ? edit(id, preconditioned ? etag : '*', 2, p.id)
                : transition(id, rival, preconditioned ? etag : undefined);
            const [first, second] =
              which === 'edit first' ? [editing, rivalling] : [rivalling, editing];
            const [a, b] = await queuedBehindOrder(t, id, first, second);

            // The first writer always wins; the second decides from what the first left.
            expect(a.status).toBe(200);
            if (preconditioned) {
              expectProblem(b, 'PRECONDITION_FAILED');
              expect(shape(b.body.current)).toEqual(shape(a.body));
            } else if (b.status !== 200) {
              // Only a pending order can be edited, and a cancelled one not cancelled again.
              expectProblem(b, b.body.code);
              expect(['ORDER_NOT_EDITABLE', 'ILLEGAL_STATE_TRANSITION']).toContain(b.body.code);
            }
            const last = b.status === 200 ? b : a;
            const now = await orderNow(id);
            expect(shape(last.body)).toEqual(shape(now));
            expect(last.headers.etag).toBeDefined();
            expect((await stockOf(t, p.id)) + (await held(t, p.id))).toBe(INITIAL);

            // Every event carries the order as it was at its version: lines and total agree.
            const events = await t.db.query(
              `SELECT body FROM outbox_events WHERE order_id = $1 ORDER BY order_version`,
              [id],
            );
            const lastEvent = JSON.parse(events[events.length - 1].body as string);
            expect(shape(lastEvent.data.order)).toEqual(shape(now));
            for (const e of events) {
              const order = JSON.parse(e.body as string).data.order;
              const sum = (order.items as { unitPriceCents: number; quantity: number }[]).reduce(
                (s, i) => s + i.unitPriceCents * i.quantity,
                0,
              );
              expect(order.totalCents).toBe(sum);
            }
          },
        );
      });
    });
  });

  // Opening a payment takes the order's row lock too (API.md §9): an edit and an opening never
  // interleave, so the payment is always for the total the order has when it opens.
  it.each(['edit first', 'opening first'] as const)(
    'never lets an edit and a payment opening interleave (%s): the payment is for the total as it is',
    async (which) => {
      const p = await createProduct(t, admin, { stock: INITIAL, priceCents: 100 });
      const placed = await placeOrder(t, buyer, [{ productId: p.id, quantity: PLACED }]).expect(
        201,
      );
      const id = placed.body.id as string;
      const editing = edit(id, placed.headers.etag, 5, p.id);
      const opening = () =>
        t
          .http()
          .post(`/api/v1/orders/${id}/payments`)
          .set(buyer.auth)
          .send({ provider: 'test' })
          .then((r) => r);
      const [a, b] =
        which === 'edit first'
          ? await queuedBehindOrder(t, id, editing, opening)
          : await queuedBehindOrder(t, id, opening, editing);
      const now = await orderNow(id);
      if (which === 'edit first') {
        expect(a.status).toBe(200);
        expect(b.status).toBe(201);
        expect(b.body.amountCents).toBe(500);
        expect(now.totalCents).toBe(500);
      } else {
        expect(a.status).toBe(201);
        expect(a.body.amountCents).toBe(PLACED * 100);
        expectProblem(b, 'PAYMENT_IN_PROGRESS');
        expect(b.body.paymentId).toBe(a.body.id);
        expect(now.totalCents).toBe(PLACED * 100);
      }
      expect((await stockOf(t, p.id)) + (await held(t, p.id))).toBe(INITIAL);
    },
  );

  it('expires an order with the lines an edit committed while the expiry waited for it', async () => {
    const p = await createProduct(t, admin, { stock: INITIAL, priceCents: 100 });
    const placed = await placeOrder(t, buyer, [{ productId: p.id, quantity: PLACED }]).expect(201);
    const id = placed.body.id as string;
    // The hold ends in 1.5 s: the edit takes the order's lock before, the expiry queues after.
    await t.db.query(
      `UPDATE orders SET expires_at = clock_timestamp() + interval '1500 milliseconds' WHERE id = $1`,
      [id],
    );
    const etag = (await t.http().get(`/api/v1/orders/${id}`).set(buyer.auth).expect(200)).headers
      .etag;
    const before = await waiting(t);
    // The edit holds the order's lock and waits for the product's, held here.
    const product = await holdRow(t, 'products', p.id);
    let expired: Promise<number> | undefined;
    let edited: Promise<Response> | undefined;
    try {
      edited = edit(id, etag, 7, p.id)();
      await untilWaiting(t, before + 1);
      const [{ left }] = await t.db.query(
        `SELECT extract(epoch FROM expires_at - clock_timestamp())::float8 AS left FROM orders WHERE id = $1`,
        [id],
      );
      await sleep(Math.max(0, left * 1000) + 50);
      const service = t.app.get(HoldExpiry);
      expired = inTransaction(t.db, (m) => service.expireOverdue(m, { orderIds: [id] }));
      await untilWaiting(t, before + 2);
    } finally {
      await product.release();
    }
    const res = await edited;
    expect(res.status).toBe(200);
    expect(res.body.items).toEqual([expect.objectContaining({ quantity: 7 })]);
    expect(await expired).toBe(1);
    expect((await orderNow(id)).status).toBe('expired');
    expect(await stockOf(t, p.id)).toBe(INITIAL);
    expect(await held(t, p.id)).toBe(0);
  });
});
