/**
 * HTTP-date (RFC 9110 §5.6.7), parsed strictly: the preferred IMF-fixdate and the two obsolete forms a
 * recipient must accept (RFC 850 and asctime). Anything else is not a date, however `Date.parse`
 * might read it (it takes "0" and "x 2001" as dates), and a precondition with such a value is ignored.
 */
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = '(Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY = '(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';

// Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
// Sunday, 06-Nov-94 08:49:37 GMT
const RFC850 = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
// Sun Nov  6 08:49:37 1994
const ASCTIME = new RegExp(`^${DAY} ${MONTH} ( \\d|\\d{2}) ${TIME} (\\d{4})$`);

function build(
  year: number,
  month: string,
  day: string,
  h: string,
  m: string,
  s: string,
): Date | undefined {
  const monthIndex = MONTHS.indexOf(month);
  const date = new Date(Date.UTC(year, monthIndex, Number(day), Number(h), Number(m), Number(s)));
  // Reject what Date.UTC would silently roll over (31 Feb, 25:00, 61 seconds).
  const exact =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === monthIndex &&
    date.getUTCDate() === Number(day) &&
    date.getUTCHours() === Number(h) &&
    date.getUTCMinutes() === Number(m) &&
    date.getUTCSeconds() === Number(s);
  return exact ? date : undefined;
}

/** RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is in the past century. */
function fullYear(twoDigits: number, now = new Date()): number {
  const current = now.getUTCFullYear();
  let year = Math.floor(current / 100) * 100 + twoDigits;
  if (year > current + 50) year -= 100;
  return year;
}

export function parseHttpDate(value: string | string[] | undefined): Date | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  let m = IMF_FIXDATE.exec(text);
  if (m) return build(Number(m[4]), m[3], m[2], m[5], m[6], m[7]);
  m = RFC850.exec(text);
  if (m) return build(fullYear(Number(m[4])), m[3], m[2], m[5], m[6], m[7]);
  m = ASCTIME.exec(text);
  if (m) return build(Number(m[7]), m[2], m[3].trim(), m[4], m[5], m[6]);
  return undefined;
}

/** Last-Modified, as an IMF-fixdate (one-second resolution). */
export function toHttpDate(date: Date): string {
  return date.toUTCString();
}

export function truncateToSecond(date: Date): number {
  return Math.floor(date.getTime() / 1000) * 1000;
}
