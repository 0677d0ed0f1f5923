import { jsonDepth, MAX_JSON_DEPTH, assertJsonDepth } from '../../src/common/http/json-depth';

describe('JSON depth', () => {
  it('measures nesting of objects and arrays', () => {
    expect(jsonDepth(1)).toBe(0);
    expect(jsonDepth({})).toBe(1);
    expect(jsonDepth({ items: [{ productId: 'x', quantity: 1 }] })).toBe(3);
  });

  it('handles 100,000 levels without recursion', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    expect(jsonDepth(deep)).toBe(100_000);
    expect(() => assertJsonDepth(deep)).toThrow(
      expect.objectContaining({
        code: 'VALIDATION_FAILED',
        extras: {
          errors: [
            { field: 'body', message: `must not be nested deeper than ${MAX_JSON_DEPTH} levels` },
          ],
        },
      }),
    );
  });

  it('accepts bodies up to the limit', () => {
    let ok: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH; i++) ok = [ok];
    expect(() => assertJsonDepth(ok)).not.toThrow();
  });
});
