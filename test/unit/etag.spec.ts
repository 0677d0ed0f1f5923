import {
  computeEtag,
  etagVersion,
  parseEtagList,
  strongMatch,
  weakMatch,
} from '../../src/common/http/etag';
import { decideWrite, parsePreconditions, versioned } from '../../src/common/http/preconditions';
import type { ProblemError } from '../../src/common/problems/problem.error';

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

describe('If-Match that matches nothing (issue 20): the 412 says why', () => {
  const current = versioned(
    'product',
    { id: 'p1', version: 3, updatedAt: new Date(), previousUpdatedAt: null },
    { id: 'p1' },
  );
  const detailOf = (ifMatch: string): string => {
    try {
      decideWrite(parsePreconditions({ 'if-match': ifMatch }), current, {
        resourceName: 'product p1',
      });
    } catch (e) {
      const problem = e as ProblemError;
      expect(problem.code).toBe('PRECONDITION_FAILED');
      expect(problem.extras).toMatchObject({
        currentVersion: 3,
        currentEtag: current.etag,
        current: { id: 'p1' },
      });
      return problem.detail;
    }
    throw new Error(`If-Match ${ifMatch} passed`);
  };
  const stale = computeEtag('product', 'p1', 2);

  it('tags name their version and are told from tags of another resource', () => {
    expect(current.etag).toMatch(/^"v3-[A-Za-z0-9_-]{27}"$/);
    expect(etagVersion(stale)).toBe(2);
    expect(etagVersion('"q0Yx2oN3cS1vEJrXc0b3A8v8k2Yq1bE"')).toBeUndefined();
  });

  it('a real earlier version: it has changed since you read it', () => {
    expect(detailOf(stale)).toMatch(
      /changed since you read it \(you hold version 2, now version 3\); nothing was changed/,
    );
    expect(detailOf(`"zz", ${stale}`)).toMatch(/you hold version 2/);
  });

  it('not a valid entity-tag: unquoted, backslash-escaped, garbage, empty', () => {
    const bare = current.etag.slice(1, -1);
    for (const [header, why] of [
      [bare, /double quotes are missing/],
      [`\\"${bare}\\"`, /backslashes, as copied from a JSON string/],
      [`"\\"${bare}\\""`, /backslashes/],
      ['hello world', /double quotes are missing/],
      ['"a" "b"', /neither `\*` nor a comma-separated list of quoted ETags/],
      ['', /is empty/],
    ] as const) {
      const detail = detailOf(header);
      expect(detail).toMatch(/is not a valid entity-tag/);
      expect(detail).toMatch(why);
      expect(detail).not.toMatch(/changed since you read it/);
      expect(detail).toContain(`If-Match: ${current.etag}`);
    }
  });

  it('well-formed but never issued: made up, another resource, a version not reached', () => {
    for (const header of [
      '"q0Yx2oN3cS1vEJrXc0b3A8v8k2Yq1bE"',
      '"q0Yx2\u00e2\u0080\u00a6"', // the README's "q0Yx2…" as UTF-8 bytes read as latin1
      computeEtag('product', 'p2', 2),
      computeEtag('user', 'p1', 2),
    ]) {
      const detail = detailOf(header);
      expect(detail).toMatch(/is not an ETag this service issued for product p1 as you read it/);
      expect(detail).not.toMatch(/changed since you read it/);
    }
    expect(detailOf(computeEtag('product', 'p1', 9))).toMatch(
      /not an ETag this service issued: it names version 9, and product p1 is at version 3/,
    );
  });

  it('a weak tag never matches If-Match, and says so', () => {
    expect(detailOf(`W/${current.etag}`)).toMatch(/A weak ETag .* never matches `If-Match`/);
  });
});
