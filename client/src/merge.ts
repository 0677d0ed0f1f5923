/** Fields the server maintains: never part of a client's change, never a conflict. */
const SERVER_FIELDS = new Set(['id', 'version', 'createdAt', 'updatedAt']);

export type Snapshot = Record<string, unknown>;

export interface FieldConflict {
  base: unknown;
  mine: unknown;
  theirs: unknown;
}

/** Two writers changed the same field to different values: a person has to choose. */
export class MergeConflict extends Error {
  override readonly name = 'MergeConflict';
  constructor(
    readonly resource: string,
    readonly fields: Record<string, FieldConflict>,
    /** The server's current representation (and its ETag), to start again from. */
    readonly current: Snapshot,
    readonly currentEtag: string,
  ) {
    super(`Conflicting edits of ${resource}: ${Object.keys(fields).join(', ')}`);
  }
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The editable fields whose values differ between two snapshots. */
export function changedFields(from: Snapshot, to: Snapshot): string[] {
  return Object.keys(to).filter((k) => !SERVER_FIELDS.has(k) && !same(from[k], to[k]));
}

export type MergeResult =
  { ok: true; patch: Snapshot } | { ok: false; conflicts: Record<string, FieldConflict> };

/**
 * Three-way merge of my change against what someone else wrote since my read. My change re-applies
 * when the fields they changed do not overlap the fields I change (or they set the same value);
 * otherwise every overlapping field is reported with base, mine and theirs.
 */
export function threeWayMerge(base: Snapshot, mine: Snapshot, theirs: Snapshot): MergeResult {
  const myFields = changedFields(base, mine);
  const theirFields = new Set(changedFields(base, theirs));
  const conflicts: Record<string, FieldConflict> = {};
  for (const f of myFields) {
    if (theirFields.has(f) && !same(mine[f], theirs[f])) {
      conflicts[f] = { base: base[f], mine: mine[f], theirs: theirs[f] };
    }
  }
  if (Object.keys(conflicts).length) return { ok: false, conflicts };
  return { ok: true, patch: Object.fromEntries(myFields.map((f) => [f, mine[f]])) };
}

/**
 * An order's lines as the client edits them: productId → quantity. A product that is absent (or 0)
 * is not in the order, so adding and removing a product are quantity changes like any other.
 */
export type Lines = Record<string, number>;

export type LinesMergeResult =
  { ok: true; lines: Lines } | { ok: false; conflicts: Record<string, FieldConflict> };

/**
 * Three-way merge of an order's lines, one product at a time: a product whose quantity only I changed
 * takes mine, one only they changed keeps theirs, and one we both changed to different quantities is a
 * conflict (base, mine, theirs; 0 meaning "not in the order"). The result is the whole list to send,
 * since an order edit replaces every line.
 */
export function mergeLines(base: Lines, mine: Lines, theirs: Lines): LinesMergeResult {
  // Every product any side mentions, absent as 0: threeWayMerge compares only the keys it is given.
  const ids = [...new Set([...Object.keys(theirs), ...Object.keys(base), ...Object.keys(mine)])];
  const padded = (lines: Lines): Snapshot =>
    Object.fromEntries(ids.map((id) => [id, lines[id] ?? 0]));
  const merged = threeWayMerge(padded(base), padded(mine), padded(theirs));
  if (!merged.ok) return merged;
  const lines: Lines = { ...theirs, ...(merged.patch as Lines) };
  return { ok: true, lines: Object.fromEntries(Object.entries(lines).filter(([, q]) => q !== 0)) };
}
