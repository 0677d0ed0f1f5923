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
