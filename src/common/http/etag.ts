import { createHash } from 'node:crypto';

/**
 * Strong, opaque entity tags (RFC 9110 §8.8.3). The tag is a digest of what determines the
 * representation (resource kind, id, version and, where the representation depends on the caller,
 * a variant), so it changes exactly when the representation does.
 */
export function computeEtag(kind: string, id: string, version: number, variant = ''): string {
  const digest = createHash('sha256')
    .update(`${kind}\0${id}\0${version}\0${variant}`)
    .digest('base64url')
    .slice(0, 27);
  return `"${digest}"`;
}

/** A strong ETag for a representation without a version (a list): a digest of its JSON. */
export function digestEtag(body: unknown): string {
  return `"${createHash('sha256').update(JSON.stringify(body)).digest('base64url').slice(0, 27)}"`;
}

export interface EntityTag {
  weak: boolean;
  /** The quoted opaque tag, as it appears on the wire (including the quotes). */
  tag: string;
}

export type EtagList = '*' | EntityTag[];

/**
 * Parses `If-Match` / `If-None-Match`: `*`, or a comma-separated list of (possibly weak) entity tags.
 * Returns undefined when the header is syntactically invalid; malformed members never match.
 */
export function parseEtagList(header: string | string[] | undefined): EtagList | undefined {
  if (header === undefined) return undefined;
  const value = (Array.isArray(header) ? header.join(',') : header).trim();
  if (value === '*') return '*';
  const tags: EntityTag[] = [];
  const re = /\s*(W\/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(,|$)/y;
  let index = 0;
  while (index < value.length) {
    re.lastIndex = index;
    const m = re.exec(value);
    if (!m) return undefined;
    tags.push({ weak: Boolean(m[1]), tag: m[2] });
    index = re.lastIndex;
    if (m[3] === '') break;
  }
  return tags;
}

/** `If-Match` uses the strong comparison: a weak tag never matches. */
export function strongMatch(list: EtagList, etag: string): boolean {
  return list === '*' || list.some((t) => !t.weak && t.tag === etag);
}

/** `If-None-Match` uses the weak comparison: `W/"x"` matches `"x"`. */
export function weakMatch(list: EtagList, etag: string): boolean {
  return list === '*' || list.some((t) => t.tag === etag);
}
