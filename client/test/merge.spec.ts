import { changedFields, mergeLines, threeWayMerge } from '../src/merge.ts';

describe('three-way merge', () => {
  const base = { id: 'p', version: 1, name: 'Mug', priceCents: 100, stock: 5 };

  it('ignores server-maintained fields', () => {
    expect(changedFields(base, { ...base, version: 2, updatedAt: 'x' })).toEqual([]);
  });

  it('re-applies my change when theirs touched other fields', () => {
    const mine = { ...base, priceCents: 120 };
    const theirs = { ...base, version: 2, name: 'Big mug', stock: 4 };
    expect(threeWayMerge(base, mine, theirs)).toEqual({ ok: true, patch: { priceCents: 120 } });
  });

  it('reports each overlapping field with base, mine and theirs', () => {
    const mine = { ...base, name: 'Cup', priceCents: 120 };
    const theirs = { ...base, version: 2, name: 'Big mug' };
    expect(threeWayMerge(base, mine, theirs)).toEqual({
      ok: false,
      conflicts: { name: { base: 'Mug', mine: 'Cup', theirs: 'Big mug' } },
    });
  });

  it('accepts the same value written by both', () => {
    const mine = { ...base, name: 'Cup' };
    expect(threeWayMerge(base, mine, { ...base, version: 2, name: 'Cup' })).toEqual({
      ok: true,
      patch: { name: 'Cup' },
    });
  });
});

describe('three-way merge of order lines (productId → quantity)', () => {
  const base = { a: 1, b: 1 };

  it('takes what only I changed and what only they changed, adds and removals included', () => {
    const mine = { a: 2, b: 1, c: 4 }; // a changed, c added
    const theirs = { a: 1, d: 3 }; // b removed, d added
    expect(mergeLines(base, mine, theirs)).toEqual({ ok: true, lines: { a: 2, d: 3, c: 4 } });
  });

  it('removes a line I removed, whether I dropped it or set it to 0', () => {
    expect(mergeLines(base, { a: 1 }, { a: 1, b: 1, c: 1 })).toEqual({
      ok: true,
      lines: { a: 1, c: 1 },
    });
    expect(mergeLines(base, { a: 1, b: 0 }, base)).toEqual({ ok: true, lines: { a: 1 } });
  });

  it('without a concurrent change, sends exactly mine', () => {
    expect(mergeLines(base, { b: 5, e: 1 }, base)).toEqual({ ok: true, lines: { b: 5, e: 1 } });
  });

  it('reports a product both changed differently, absent as 0', () => {
    expect(mergeLines(base, { a: 2, b: 1 }, { a: 3, b: 1 })).toEqual({
      ok: false,
      conflicts: { a: { base: 1, mine: 2, theirs: 3 } },
    });
    // I removed b while they changed it; they added c, which I added with another quantity.
    expect(mergeLines(base, { a: 1, c: 1 }, { a: 1, b: 2, c: 2 })).toEqual({
      ok: false,
      conflicts: { b: { base: 1, mine: 0, theirs: 2 }, c: { base: 0, mine: 1, theirs: 2 } },
    });
  });

  it('accepts the same quantity set by both', () => {
    expect(mergeLines(base, { a: 3, b: 1 }, { a: 3 })).toEqual({ ok: true, lines: { a: 3 } });
  });
});
