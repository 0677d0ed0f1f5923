import { validationProblem } from '../problems/validation';

/** No request of this API nests deeper than a few levels; 32 leaves ample room. */
export const MAX_JSON_DEPTH = 32;

/**
 * The nesting depth of a parsed JSON value, measured without recursion (a hostile body of thousands
 * of levels must not overflow the stack here, nor later in validation).
 */
export function jsonDepth(value: unknown, limit = Infinity): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    const d = depth + 1;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const child of Object.values(v as Record<string, unknown>)) stack.push([child, d]);
  }
  return max;
}

/** Rejects bodies nested deeper than MAX_JSON_DEPTH with 400, before anything walks them recursively. */
export function assertJsonDepth(body: unknown): void {
  if (jsonDepth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw validationProblem([
      { field: 'body', message: `must not be nested deeper than ${MAX_JSON_DEPTH} levels` },
    ]);
  }
}

/**
 * The path of the first string (value or key) that is not well-formed UTF-16, i.e. holds a lone
 * surrogate (`"\ud800"` is valid JSON). Such a string cannot be stored as UTF-8 and makes some
 * validators throw instead of answering false, so it is refused before anything looks at it.
 */
export function illFormedStringAt(value: unknown): string | undefined {
  const stack: [unknown, string][] = [[value, 'body']];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (!v.isWellFormed()) return path;
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push([item, `${path}[${i}]`]));
    } else if (v !== null && typeof v === 'object') {
      for (const [key, child] of Object.entries(v as Record<string, unknown>)) {
        const at = path === 'body' ? key : `${path}.${key}`;
        if (!key.isWellFormed()) return at;
        stack.push([child, at]);
      }
    }
  }
  return undefined;
}

/** What every JSON body must be before validation walks it: not too deep, well-formed text. */
export function assertSaneJson(body: unknown): void {
  // A raw body kept as bytes (a provider's signed webhook) is not JSON yet: nothing to walk, and
  // walking a Buffer would visit every byte.
  if (Buffer.isBuffer(body)) return;
  // No body (every GET): nothing to walk.
  if (body === undefined || body === null) return;
  assertJsonDepth(body);
  const at = illFormedStringAt(body);
  if (at !== undefined) {
    throw validationProblem([
      { field: at, message: 'must be well-formed Unicode (it holds a lone surrogate)' },
    ]);
  }
}
