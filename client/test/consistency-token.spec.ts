import { OrderClient } from '../src/index.ts';

/** The Consistency-Token the client sends back (API.md §12): the newest it was given. */
describe('the consistency token the client remembers', () => {
  const answers: (string | null)[] = [];
  const sent: (string | null)[] = [];
  const fetch = ((input: Request) => {
    sent.push(input.headers.get('consistency-token'));
    const token = answers.shift() ?? null;
    return Promise.resolve(
      new Response('{}', {
        status: 200,
        headers: {
          'content-type': 'application/json',
          ...(token ? { 'consistency-token': token } : {}),
        },
      }),
    );
  }) as typeof globalThis.fetch;

  it('keeps the newest position, sends it back, and lets a real one replace "read the primary"', async () => {
    const client = new OrderClient({ baseUrl: 'http://shop.test', token: 't', fetch });
    answers.push('0000000100000010', '0000000100000008', 'ffffffffffffffff', '0000000100000020');
    for (let i = 0; i < 5; i++) await client.api.GET('/api/v1/products');
    expect(sent).toEqual([
      null,
      '0000000100000010',
      '0000000100000010', // an older position arriving late does not move it back
      'ffffffffffffffff', // the service could not tell: every read on the primary
      '0000000100000020', // the next real position replaces it
    ]);
    expect(client.consistencyToken).toBe('0000000100000020');
  });
});
