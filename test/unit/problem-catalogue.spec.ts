import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RETRYABLE } from '../../client/src/retry';
import {
  catalogueTable,
  PROBLEM_CODES,
  PROBLEMS,
  RETRYABLE_CODES,
} from '../../src/common/problems/problem-catalogue';
import { ProblemError } from '../../src/common/problems/problem.error';

/** The catalogue is the one source of code, status, title, members, retryability and Retry-After. */
describe('the problem catalogue', () => {
  it('gives every code its own slug and title', () => {
    expect(new Set(PROBLEM_CODES.map((c) => PROBLEMS[c].slug)).size).toBe(PROBLEM_CODES.length);
    expect(new Set(PROBLEM_CODES.map((c) => PROBLEMS[c].title)).size).toBe(PROBLEM_CODES.length);
  });

  it('is what the client retries: exactly the codes with a Retry-After', () => {
    expect([...RETRYABLE].sort()).toEqual([...RETRYABLE_CODES].sort());
  });

  it('puts the catalogue Retry-After on every retryable problem, unless the thrower knows better', () => {
    for (const code of PROBLEM_CODES) {
      const seconds = (PROBLEMS[code] as { retryAfterSeconds?: number }).retryAfterSeconds;
      expect(new ProblemError(code, 'x').headers['Retry-After']).toBe(
        seconds === undefined ? undefined : String(seconds),
      );
    }
    expect(new ProblemError('RATE_LIMITED', 'x', {}, { 'Retry-After': '7' }).headers).toEqual({
      'Retry-After': '7',
    });
  });

  it('is the table the README shows', () => {
    const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
    const section = /<!-- prettier-ignore-start -->\n([\s\S]*?)\n<!-- prettier-ignore-end -->/.exec(
      readme.slice(readme.indexOf('<!-- problems:start -->')),
    );
    expect(section?.[1]).toBe(catalogueTable());
  });
});
