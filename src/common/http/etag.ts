import { hash } from 'node:crypto';

/**
 * Strong entity tags (RFC 9110 §8.8.3) of versioned resources: `"v<version>-<digest>"`, the digest
 * covering what determines the representation (resource kind, id, version and, where the
 * representation depends on the caller, a variant), so the tag changes exactly when the
 * representation does. Clients treat it as opaque; the service reads the version back only to explain
 * an `If-Match` that does not match (an earlier version of this resource, or a tag it never issued).
 */
export function computeEtag(kind: string, id: string, version: number, variant = ''): string {
  // One-shot hash(): no Hash object per tag (createHash().update().digest() took twice the time on
  // the product read, bench/README.md). Same digest, same tag.
  const digest = hash('sha256', `${kind}\0${id}\0${version}\0${variant}`, 'base64url');
  return `"v${version}-${digest.slice(0, 27)}"`;
}

const VERSIONED_TAG = /^"v([1-9][0-9]{0,9})-[A-Za-z0-9_-]{27}"$/;

/** The version a tag of computeEtag's shape names (not yet proof that it was issued); else undefined. */
export function etagVersion(tag: string): number | undefined {
  const m = VERSIONED_TAG.exec(tag);
  return m ? Number(m[1]) : undefined;
}

/**
 * Why a header value is not a valid `If-Match` (RFC 9110: `*` or a comma-separated list of quoted
 * entity-tags), said so that the sender can fix it: the usual ways a copied ETag gets mangled first.
 */
export function invalidEtagListReason(raw: string): string {
  const value = raw.trim();
  if (value === '') return 'it is empty';
  if (value.includes('\\')) {
    return 'it contains backslashes, as copied from a JSON string (`\\"…\\"`): send the ETag without them';
  }
  if (!value.includes('"')) {
    return 'its double quotes are missing: the quotes are part of the ETag and must be sent';
  }
  return 'it is neither `*` nor a comma-separated list of quoted ETags';
}

/** A strong ETag for a representation without a version (a list): a digest of its JSON. */
export function digestEtag(body: unknown): string {
  return `"${hash('sha256', JSON.stringify(body), 'base64url').slice(0, 27)}"`;
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
