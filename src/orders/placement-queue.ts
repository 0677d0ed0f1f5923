import { type Context, context } from '@opentelemetry/api';

/**
 * Checkouts of exactly the same products that arrive while one of them is in the database wait here,
 * and go to the database together when it answers (issue 15, the hot product).
 *
 * Without it, each of them would wait in PostgreSQL instead, for the row locks the one in flight
 * holds until it commits: a hot product sells one order per lock hand-over and commit. Sent together
 * (one statement, one transaction: the SQL function place_orders), the waiting orders take the locks
 * once and commit once. Nothing waits that would not have waited anyway: a checkout whose products
 * have nothing in flight is sent at once, alone, and a queue is sent the moment the batch before it
 * answers (no timer). Only identical sets of products share a batch, so a batch takes exactly the
 * locks one of its checkouts takes, in the same id order; or checkouts with the same promotion
 * code (issue 23), whose hot row is the code's: place_orders then locks all their products first,
 * in id order, and the code's row after them.
 *
 * DataLoader-style batching (collect for one tick) is not this: here the batch is whatever queued
 * behind the one in flight, and batches of the same key never overlap.
 *
 * Per process, in memory, for the length of one statement: no state that must hold across instances
 * lives here; across instances the row locks order the checkouts as before.
 *
 * Bounded in time and in length (issue 20). A queued checkout has a timer of its own: at
 * `maxWaitMs` after it arrived it is taken out of the queue and answered `waitedTooLong()` (503
 * busy, "nothing was changed") at once, not when the batch ahead happens to answer, and it is never
 * sent. That answer is true only while it is queued: once its batch has been handed to the
 * database it may commit, so from then on it gets its batch's outcome, however long that takes
 * (bounded by the database's statement timeout, whose own 503 means rolled back). The rule: only
 * checkouts still queued time out; a sent one is never answered before the database answers it.
 * And a key's queue holds at most `maxQueued` checkouts: the next one is answered `queueFull()`
 * (503 busy with Retry-After) at once rather than waiting behind work it could not get through
 * in time, and the memory one hot product can take is bounded.
 */
export class PlacementQueue<A, R> {
  /** Per key (the products, or the code), the checkouts waiting for the batch in flight; a key is here while one is. */
  private readonly queues = new Map<string, Waiter<A, R>[]>();

  /**
   * @param send places a batch, in one statement when it holds more than one: a result per checkout,
   *   in order (or a rejection for all of them). An async function: it never throws, it rejects.
   * @param limits `maxBatch`, the most checkouts in one batch; `maxWaitMs`, how long a checkout may
   *   wait in the queue: at that deadline, still queued, it is rejected with `waitedTooLong()` and
   *   never sent (under overload, as a request waiting for a pool connection would be);
   *   `maxQueued`, the most checkouts waiting per key: one more is rejected with `queueFull()` at
   *   once. So the queue sheds load rather than growing.
   */
  constructor(
    private readonly send: (batch: A[]) => Promise<PromiseSettledResult<R>[]>,
    private readonly limits: {
      maxBatch: number;
      maxWaitMs: number;
      maxQueued: number;
      waitedTooLong: () => unknown;
      queueFull: () => unknown;
    },
  ) {}

  /** Checkouts waiting for a batch in flight on the same products. */
  get waiting(): number {
    let n = 0;
    for (const queue of this.queues.values()) n += queue.length;
    return n;
  }

  /** Places `args`: now, alone, or with the others that wait for the same products. */
  submit(key: string, args: A): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const waiter: Waiter<A, R> = { args, resolve, reject, context: context.active() };
      const queue = this.queues.get(key);
      if (!queue) {
        this.queues.set(key, []);
        this.dispatch(key, [waiter]);
        return;
      }
      if (queue.length >= this.limits.maxQueued) {
        waiter.reject(this.limits.queueFull());
        return;
      }
      queue.push(waiter);
      waiter.timer = setTimeout(() => this.expire(key, waiter), this.limits.maxWaitMs);
    });
  }

  /** `waiter`'s deadline: answered busy if it is still queued; a sent one is no longer ours to answer. */
  private expire(key: string, waiter: Waiter<A, R>): void {
    const queue = this.queues.get(key);
    const at = queue?.indexOf(waiter) ?? -1;
    if (at === -1) return;
    queue!.splice(at, 1);
    // The key stays: the batch ahead is still in flight, and frees it when it answers.
    waiter.reject(this.limits.waitedTooLong());
  }

  private dispatch(key: string, batch: Waiter<A, R>[]): void {
    // Sent: from here on each gets its batch's outcome, never a timeout of the queue's.
    for (const w of batch) clearTimeout(w.timer);
    // In the trace of the batch's first request (when tracing is on): its statement is a child span of
    // that request, not of whichever request's batch answered before it.
    context
      .with(batch[0].context, () => this.send(batch.map((w) => w.args)))
      .then(
        (results) =>
          batch.forEach((w, i) => {
            const result = results[i];
            if (result?.status === 'fulfilled') w.resolve(result.value);
            else w.reject(result ? result.reason : new Error('place_orders: an answer is missing'));
          }),
        (err: unknown) => batch.forEach((w) => w.reject(err)),
      )
      .finally(() => this.next(key));
  }

  /** The batch in flight for `key` has answered: send the next one, or free the key. */
  private next(key: string): void {
    const queue = this.queues.get(key)!;
    // Those whose deadline passed were answered by their timers and are gone.
    if (!queue.length) {
      this.queues.delete(key);
      return;
    }
    this.dispatch(key, queue.splice(0, this.limits.maxBatch));
  }
}

interface Waiter<A, R> {
  args: A;
  resolve: (value: R) => void;
  reject: (reason: unknown) => void;
  context: Context;
  /** Its deadline while queued (none when it was sent at once). */
  timer?: NodeJS.Timeout;
}
