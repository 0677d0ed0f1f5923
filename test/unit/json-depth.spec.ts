import {
  assertJsonDepth,
  assertSaneJson,
  illFormedStringAt,
  jsonDepth,
  MAX_JSON_DEPTH,
} from '../../src/common/http/json-depth';

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

describe('well-formed strings', () => {
  it('finds a lone surrogate in a value or a key, with its path', () => {
    expect(illFormedStringAt({ email: 'ok', name: 'fine é 😀' })).toBeUndefined();
    expect(illFormedStringAt({ email: '\ud800' })).toBe('email');
    expect(illFormedStringAt({ items: [{ productId: 'x' }, { productId: 'a\udc00' }] })).toBe(
      'items[1].productId',
    );
    expect(illFormedStringAt({ ['k\ud800']: 1 })).toBe('k\ud800');
    expect(illFormedStringAt('\ud800')).toBe('body');
  });

  it('refuses such a body with 400 naming the field', () => {
    expect(() => assertSaneJson({ email: '\ud800' })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });
});
