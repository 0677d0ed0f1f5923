import { OrderClient } from '../src/index.ts';

/**
 * An id the caller does not have (a variable never set, a field read from the wrong object) must not
 * become a request: openapi-fetch would send the template itself, `/orders/%7Bid%7D`, and an empty id
 * would even name another route (`/orders/`, the list).
 */
describe('a missing path parameter', () => {
  const requested: string[] = [];
  const fetch = ((input: Request) => {
    requested.push(input.url);
    return Promise.resolve(
      new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } }),
    );
  }) as typeof globalThis.fetch;
  const client = new OrderClient({ baseUrl: 'http://shop.test', token: 't', fetch });
  beforeEach(() => {
    requested.length = 0;
  });

  it.each([
    ['getOrder', (id: string) => client.getOrder(id)],
    ['getProduct', (id: string) => client.getProduct(id)],
    ['deleteProduct', (id: string) => client.deleteProduct(id, '"etag"')],
    ['transition', (id: string) => client.transition(id, 'pay')],
    ['editOrder', (id: string) => client.editOrder(id, (lines) => lines)],
    ['update', (id: string) => client.update('products', id, () => ({}))],
    [
      'api.GET',
      (id: string) => client.api.GET('/api/v1/orders/{id}', { params: { path: { id } } }),
    ],
  ])('%s refuses undefined, null and "" without requesting anything', async (_, call) => {
    for (const id of [undefined, null, '']) {
      await expect(call(id as unknown as string)).rejects.toThrow(
        /path parameter "id" of \/api\/v1\/[a-z/{}]+ is (undefined|null|an empty string)/,
      );
    }
    expect(requested).toEqual([]);
  });

  it('sends a real id, encoded', async () => {
    await client.getOrder('a b');
    expect(requested).toEqual(['http://shop.test/api/v1/orders/a%20b']);
  });
});
