import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import type { TestApp } from './test-app';

/**
 * Races made certain rather than lucky: a row held in a transaction of its own while the writers
 * under test queue behind it, then let go. Shared by the race suites.
 */

/** Units of a product held by orders that still hold them (not cancelled or expired). */
export async function held(t: TestApp, productId: string): Promise<number> {
  const [{ n }] = await t.db.query(
    `SELECT coalesce(sum(i.quantity), 0)::int AS n FROM order_items i JOIN orders o ON o.id = i.order_id
      WHERE i.product_id = $1 AND o.status NOT IN ('cancelled', 'expired')`,
    [productId],
  );
  return n as number;
}

/** Backends of this test's database waiting for a lock. */
export async function waiting(t: TestApp): Promise<number> {
  const [{ n }] = await t.db.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return n as number;
}

/** Until `n` backends of this test's database wait for a lock (at most 10 s). */
export async function untilWaiting(t: TestApp, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await waiting(t)) < n) {
    if (Date.now() > deadline) throw new Error(`${n} writers never queued`);
    await sleep(5);
  }
}

/** Holds a row (`table`, `id`) in a transaction of its own until `release()`. */
export async function holdRow(t: TestApp, table: 'orders' | 'products', id: string) {
  const blocker = new Client({ connectionString: t.databaseUrl });
  await blocker.connect();
  await blocker.query('BEGIN');
  await blocker.query(`SELECT id FROM ${table} WHERE id = $1 FOR UPDATE`, [id]);
  return {
    release: async (): Promise<void> => {
      try {
        await blocker.query('COMMIT');
      } finally {
        await blocker.end();
      }
    },
  };
}

/**
 * `first()` sent and seen waiting behind the held order row, then `second()` sent and seen waiting,
 * then the row let go: the answers, in the order the writers ran (who goes first is chosen).
 */
export async function queuedBehindOrder<A, B>(
  t: TestApp,
  orderId: string,
  first: () => Promise<A>,
  second: () => Promise<B>,
): Promise<[A, B]> {
  const before = await waiting(t);
  const hold = await holdRow(t, 'orders', orderId);
  try {
    const a = first();
    await untilWaiting(t, before + 1);
    const b = second();
    await untilWaiting(t, before + 2);
    await hold.release();
    return await Promise.all([a, b]);
  } catch (err) {
    await hold.release().catch(() => undefined);
    throw err;
  }
}

/** The value of one series of the service's /metrics (its whole name with labels, as printed). */
export async function metricValue(t: TestApp, series: string): Promise<number> {
  const text = (await t.http().get('/metrics').expect(200)).text;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`${series} is not in /metrics`);
  return Number(line.slice(series.length + 1));
}

/** Until at least `n` checkouts wait in the service's placement queue (at most 10 s). */
export async function untilQueued(t: TestApp, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await metricValue(t, 'order_placements_waiting')) < n) {
    if (Date.now() > deadline) throw new Error(`${n} checkouts never queued`);
    await sleep(20);
  }
}
