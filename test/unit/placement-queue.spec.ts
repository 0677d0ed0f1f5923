import { PlacementQueue } from '../../src/orders/placement-queue';

/**
 * The queue's own rules, with a `send` that the test answers by hand: what goes alone, what waits,
 * how a queue is cut into batches, and whose answer reaches whom. The database side (place_orders,
 * the batch that fails for one checkout) is in test/concurrency/orders-races.e2e-spec.ts.
 */
describe('PlacementQueue', () => {
  interface Sent {
    batch: number[];
    answer: (results: PromiseSettledResult<string>[]) => void;
    fail: (err: Error) => void;
  }

  const setup = (maxBatch: number, maxWaitMs = 60_000, maxQueued = 10_000) => {
    const sent: Sent[] = [];
    const queue = new PlacementQueue<number, string>(
      (batch) =>
        new Promise((answer, fail) => {
          sent.push({ batch, answer, fail });
        }),
      {
        maxBatch,
        maxWaitMs,
        maxQueued,
        waitedTooLong: () => new Error('busy'),
        queueFull: () => new Error('queue full'),
      },
    );
    const ok = (batch: number[]): PromiseSettledResult<string>[] =>
      batch.map((n) => ({ status: 'fulfilled', value: `placed ${n}` }));
    return { sent, queue, ok };
  };
  const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  /** How a promise stands after `ms`: its outcome, or 'pending'. */
  const settledWithin = <T>(p: Promise<T>, ms: number): Promise<string> =>
    Promise.race([
      p.then(
        (v) => `resolved ${String(v)}`,
        (e: Error) => `rejected ${e.message}`,
      ),
      sleep(ms).then(() => 'pending'),
    ]);

  it('sends a checkout at once when nothing of its products is in flight, and only then', async () => {
    const { sent, queue, ok } = setup(32);
    const first = queue.submit('p1', 1);
    const other = queue.submit('p2', 2);
    const behind = queue.submit('p1', 3);
    expect(sent.map((s) => s.batch)).toEqual([[1], [2]]);
    expect(queue.waiting).toBe(1);
    sent[0].answer(ok([1]));
    await expect(first).resolves.toBe('placed 1');
    await tick();
    expect(sent.map((s) => s.batch)).toEqual([[1], [2], [3]]);
    expect(queue.waiting).toBe(0);
    sent[1].answer(ok([2]));
    sent[2].answer(ok([3]));
    await expect(other).resolves.toBe('placed 2');
    await expect(behind).resolves.toBe('placed 3');
  });

  it('cuts what queued into batches of at most maxBatch, in arrival order, one batch in flight per key', async () => {
    const { sent, queue, ok } = setup(4);
    const answers = Array.from({ length: 11 }, (_, n) => queue.submit('hot', n));
    expect(queue.waiting).toBe(10);
    const sizes: number[][] = [];
    for (let round = 0; round < 4; round++) {
      expect(sent).toHaveLength(round + 1);
      const s = sent[round];
      sizes.push(s.batch);
      s.answer(ok(s.batch));
      await tick();
    }
    expect(sizes).toEqual([[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]);
    expect(await Promise.all(answers)).toEqual(Array.from({ length: 11 }, (_, n) => `placed ${n}`));
    expect(queue.waiting).toBe(0);
  });

  it("gives each checkout its own outcome, and a batch's failure to all of it; the next batch still goes", async () => {
    const { sent, queue, ok } = setup(32);
    const first = queue.submit('k', 0);
    const a = queue.submit('k', 1);
    const b = queue.submit('k', 2);
    sent[0].fail(new Error('the database is away'));
    await expect(first).rejects.toThrow('the database is away');
    await tick();
    const c = queue.submit('k', 3);
    sent[1].answer([
      { status: 'rejected', reason: new Error('account gone') },
      { status: 'fulfilled', value: 'placed 2' },
    ]);
    await expect(a).rejects.toThrow('account gone');
    await expect(b).resolves.toBe('placed 2');
    await tick();
    expect(sent[2].batch).toEqual([3]);
    sent[2].answer([]);
    await expect(c).rejects.toThrow('an answer is missing');
    await tick();
    expect(queue.waiting).toBe(0);
    // The key is free again: the next checkout goes at once.
    void queue.submit('k', 4);
    expect(sent[3].batch).toEqual([4]);
    sent[3].answer(ok([4]));
  });

  it('answers busy, without sending them, the checkouts that waited longer than maxWaitMs, and frees the key', async () => {
    const { sent, queue, ok } = setup(32, 50);
    const first = queue.submit('k', 0);
    const late = [queue.submit('k', 1), queue.submit('k', 2)];
    await new Promise((r) => setTimeout(r, 80));
    const inTime = queue.submit('k', 3);
    sent[0].answer(ok([0]));
    await expect(first).resolves.toBe('placed 0');
    for (const l of late) await expect(l).rejects.toThrow('busy');
    await tick();
    // Only the one that had not waited too long went, alone.
    expect(sent.map((s) => s.batch)).toEqual([[0], [3]]);
    expect(queue.waiting).toBe(0);
    sent[1].answer(ok([3]));
    await expect(inTime).resolves.toBe('placed 3');
    await tick();
    void queue.submit('k', 4);
    expect(sent[2].batch).toEqual([4]);
    sent[2].answer(ok([4]));
  });

  it('answers a queued checkout busy at its own deadline while the batch ahead is still in the database, and never sends it', async () => {
    const { sent, queue, ok } = setup(32, 60);
    const first = queue.submit('k', 0);
    const started = performance.now();
    const behind = queue.submit('k', 1);
    // The batch ahead does not answer: the one behind is answered at its deadline all the same.
    expect(await settledWithin(behind, 1_000)).toBe('rejected busy');
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(55);
    expect(waited).toBeLessThan(500);
    expect(queue.waiting).toBe(0);
    // When the batch ahead answers, nothing is left to send and the key is free again.
    sent[0].answer(ok([0]));
    await expect(first).resolves.toBe('placed 0');
    await tick();
    expect(sent.map((s) => s.batch)).toEqual([[0]]);
    void queue.submit('k', 2);
    expect(sent.map((s) => s.batch)).toEqual([[0], [2]]);
    sent[1].answer(ok([2]));
  });

  it('times out only the checkouts still queued: one whose batch was sent waits for its outcome, however long', async () => {
    const { sent, queue, ok } = setup(32, 60);
    const first = queue.submit('k', 0);
    const sentInTime = queue.submit('k', 1);
    await sleep(20);
    sent[0].answer(ok([0]));
    await expect(first).resolves.toBe('placed 0');
    await tick();
    expect(sent.map((s) => s.batch)).toEqual([[0], [1]]);
    const stillQueued = queue.submit('k', 2);
    // Past both deadlines: the sent one may commit, so it is not told "nothing happened"; the
    // queued one is.
    expect(await settledWithin(stillQueued, 1_000)).toBe('rejected busy');
    expect(await settledWithin(sentInTime, 100)).toBe('pending');
    sent[1].answer(ok([1]));
    await expect(sentInTime).resolves.toBe('placed 1');
    await tick();
    expect(sent.map((s) => s.batch)).toEqual([[0], [1]]);
    expect(queue.waiting).toBe(0);
  });

  it('keeps the other waiters of a key, in order, when one in the middle times out', async () => {
    const { sent, queue, ok } = setup(32, 80);
    void queue.submit('k', 0);
    const early = queue.submit('k', 1);
    await sleep(50);
    const later = queue.submit('k', 2);
    expect(await settledWithin(early, 1_000)).toBe('rejected busy');
    expect(queue.waiting).toBe(1);
    sent[0].answer(ok([0]));
    await tick();
    expect(sent.map((s) => s.batch)).toEqual([[0], [2]]);
    sent[1].answer(ok([2]));
    await expect(later).resolves.toBe('placed 2');
  });

  it('queues at most maxQueued checkouts per key: the next is answered at once and never sent, other keys unaffected', async () => {
    const { sent, queue, ok } = setup(2, 60_000, 3);
    const first = queue.submit('hot', 0);
    const queued = [1, 2, 3].map((n) => queue.submit('hot', n));
    expect(await settledWithin(queue.submit('hot', 4), 100)).toBe('rejected queue full');
    expect(queue.waiting).toBe(3);
    // Another key has its own queue.
    const elsewhere = [queue.submit('cold', 10), queue.submit('cold', 11)];
    expect(queue.waiting).toBe(4);
    sent[0].answer(ok([0]));
    await expect(first).resolves.toBe('placed 0');
    await tick();
    // Two of the three went as a batch: room for two more behind it.
    expect(sent.map((s) => s.batch)).toEqual([[0], [10], [1, 2]]);
    const room = [queue.submit('hot', 5), queue.submit('hot', 6)];
    expect(await settledWithin(queue.submit('hot', 7), 100)).toBe('rejected queue full');
    sent[2].answer(ok([1, 2]));
    await tick();
    expect(sent[3].batch).toEqual([3, 5]);
    sent[3].answer(ok([3, 5]));
    await tick();
    expect(sent[4].batch).toEqual([6]);
    sent[4].answer(ok([6]));
    sent[1].answer(ok([10]));
    await tick();
    sent[5].answer(ok([11]));
    expect(await Promise.all([...queued, ...room, ...elsewhere])).toEqual(
      [1, 2, 3, 5, 6, 10, 11].map((n) => `placed ${n}`),
    );
    expect(queue.waiting).toBe(0);
  });
});
