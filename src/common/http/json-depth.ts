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
