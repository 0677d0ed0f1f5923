import { changedFields, threeWayMerge } from '../src/merge';

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
