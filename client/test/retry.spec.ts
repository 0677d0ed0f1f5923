import { ApiProblem, type ProblemBody } from '../src/problem.ts';
import { retry } from '../src/retry.ts';

const problem = (code: ProblemBody['code'], status: number, retryAfter?: string): ApiProblem =>
  new ApiProblem(
    { type: '/problems/x', title: 't', status, detail: 'd', instance: '/', code, requestId: 'r' },
    new Headers(retryAfter ? { 'retry-after': retryAfter } : {}),
  );

describe('retry', () => {
  const waits: number[] = [];
  const sleep = async (ms: number): Promise<void> => void waits.push(ms);
  beforeEach(() => (waits.length = 0));

  it('honours Retry-After, then succeeds', async () => {
    let calls = 0;
    const result = await retry(
      async () => {
        if (++calls < 3) throw problem('RATE_LIMITED', 429, '2');
        return 'ok';
      },
      { sleep },
    );
    expect(result).toBe('ok');
    expect(waits).toEqual([2000, 2000]);
  });

  it('backs off exponentially with full jitter when there is no Retry-After', async () => {
    await expect(
      retry(async () => Promise.reject(problem('SERVICE_UNAVAILABLE', 503)), {
        sleep,
        attempts: 4,
        baseDelayMs: 100,
        random: () => 1,
      }),
    ).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(waits).toEqual([100, 200, 400]);
  });

  it.each([
    ['INSUFFICIENT_STOCK', 409],
    ['VALIDATION_FAILED', 400],
    ['PRECONDITION_FAILED', 412],
    ['INTERNAL', 500],
  ] as const)('never retries %s', async (code, status) => {
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw problem(code, status);
        },
        { sleep },
      ),
    ).rejects.toMatchObject({ code });
    expect(calls).toBe(1);
  });

  it('retries lost answers only when told it is safe', async () => {
    let calls = 0;
    const lost = async (): Promise<never> => {
      calls++;
      throw new TypeError('fetch failed');
    };
    await expect(retry(lost, { sleep })).rejects.toThrow(TypeError);
    expect(calls).toBe(1);
    await expect(retry(lost, { sleep, retryNetworkErrors: true, attempts: 3 })).rejects.toThrow(
      TypeError,
    );
    expect(calls).toBe(4);
  });

  it('stops when the total time budget would be exceeded', async () => {
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw problem('RATE_LIMITED', 429, '60');
        },
        { sleep, maxTotalMs: 10_000 },
      ),
    ).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(calls).toBe(1);
  });
});
