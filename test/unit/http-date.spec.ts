import { parseHttpDate } from '../../src/common/http/http-date';

describe('HTTP dates (RFC 9110 §5.6.7)', () => {
  const expected = Date.UTC(1994, 10, 6, 8, 49, 37);

  it.each([
    ['IMF-fixdate', 'Sun, 06 Nov 1994 08:49:37 GMT'],
    ['the obsolete RFC 850 form', 'Sunday, 06-Nov-94 08:49:37 GMT'],
    ['the obsolete asctime form', 'Sun Nov  6 08:49:37 1994'],
  ])('reads %s', (_, text) => {
    expect(parseHttpDate(text)?.getTime()).toBe(expected);
  });

  it.each([
    '0',
    'x 2001',
    '2001',
    '1994-11-06T08:49:37Z',
    'Sun, 06 Nov 1994 08:49:37 +0000',
    'Sun, 6 Nov 1994 08:49:37 GMT',
    'sun, 06 nov 1994 08:49:37 gmt',
    'Sun, 31 Feb 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 25:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 GMT trailing',
    '',
  ])('ignores %j, which is not an HTTP-date (Date.parse would accept some of these)', (text) => {
    expect(parseHttpDate(text)).toBeUndefined();
  });

  it('ignores absent and repeated headers', () => {
    expect(parseHttpDate(undefined)).toBeUndefined();
    expect(parseHttpDate(['Sun, 06 Nov 1994 08:49:37 GMT'])).toBeUndefined();
  });
});
