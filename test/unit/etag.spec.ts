import { computeEtag, parseEtagList, strongMatch, weakMatch } from '../../src/common/http/etag';

describe('entity tags', () => {
  const tag = computeEtag('product', 'abc', 3);

  it('are strong, quoted and change with the version and the variant', () => {
    expect(tag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(computeEtag('product', 'abc', 4)).not.toBe(tag);
    expect(computeEtag('product', 'abc', 3, 'admin')).not.toBe(tag);
    expect(computeEtag('product', 'abc', 3)).toBe(tag);
  });

  it('parse lists, weak tags and the wildcard', () => {
    expect(parseEtagList('*')).toBe('*');
    expect(parseEtagList(`"a", W/"b" ,"c"`)).toEqual([
      { weak: false, tag: '"a"' },
      { weak: true, tag: '"b"' },
      { weak: false, tag: '"c"' },
    ]);
    expect(parseEtagList(undefined)).toBeUndefined();
  });

  it('reject malformed headers instead of guessing', () => {
    expect(parseEtagList('abc')).toBeUndefined();
    expect(parseEtagList('"a" "b"')).toBeUndefined();
  });

  it('match If-Match strongly: a weak tag never matches', () => {
    expect(strongMatch(parseEtagList(tag)!, tag)).toBe(true);
    expect(strongMatch(parseEtagList(`W/${tag}`)!, tag)).toBe(false);
    expect(strongMatch(parseEtagList(`"zz", ${tag}`)!, tag)).toBe(true);
    expect(strongMatch('*', tag)).toBe(true);
  });

  it('match If-None-Match weakly', () => {
    expect(weakMatch(parseEtagList(`W/${tag}`)!, tag)).toBe(true);
    expect(weakMatch(parseEtagList('"other"')!, tag)).toBe(false);
  });
});
