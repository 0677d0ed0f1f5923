import type { EntityManager } from 'typeorm';

/**
 * Where a read that is not part of a write runs (API.md §12): the primary, or a streaming standby
 * chosen for this request (src/database/read-replicas.ts). A GET handler gets its Reader with
 * `@ReadFrom()` and runs its reads through it; the reads themselves are the repositories' ordinary
 * `sql()` statements on the manager the Reader hands them, as every other read of the service. Writes,
 * and every read inside a write, never see a Reader: they use the primary's managers as before.
 */
export interface Reader {
  /** 'primary', or the standby's name ('standby-0', …) this request was routed to. */
  readonly target: string;
  /**
   * One resource. On a standby the work runs again on the primary when the standby fails, finds
   * nothing (never a stale 404), says the read needs the primary (NeedsPrimary), or holds an older
   * version than an If-None-Match of the request names (never a stale 200, never a wrong 304).
   */
  one<T>(work: (m: EntityManager) => Promise<T>): Promise<T>;
  /** A list: as `one`; a conditional list read (If-None-Match) goes to the primary. */
  list<T>(work: (m: EntityManager) => Promise<T>): Promise<T>;
}

/** Thrown by a read on a standby that only the primary may answer; the Reader reruns it there. */
export class NeedsPrimary extends Error {
  constructor(reason: string) {
    super(`needs the primary: ${reason}`);
  }
}

const STANDBY_MANAGERS = new WeakSet<EntityManager>();

/** Registers a standby's manager (read-replicas.ts), so that reads can tell where they run. */
export function markStandby(manager: EntityManager): void {
  STANDBY_MANAGERS.add(manager);
}

/** Whether statements on this manager run on a standby: a read there must not write. */
export function onStandby(manager: EntityManager): boolean {
  return STANDBY_MANAGERS.has(manager);
}

/** Every read on the primary: the Reader of writes, and of every request when no standby is set. */
export function primaryReader(manager: EntityManager, counted?: () => void): Reader {
  const run = <T>(work: (m: EntityManager) => Promise<T>): Promise<T> => {
    counted?.();
    return work(manager);
  };
  return { target: 'primary', one: run, list: run };
}

/**
 * The `Consistency-Token` of API.md §12: a WAL position (LSN) of the primary, as 16 lowercase hex
 * digits (the LSN's 64 bits, zero-padded), so that two tokens compare as strings. Opaque to clients.
 */
const TOKEN = /^[0-9a-f]{16}$/;

/** The token of an LSN as PostgreSQL prints it (`16/B374D848`). */
export function tokenOfLsn(lsn: string): string {
  const [high, low] = lsn.split('/');
  return (high.padStart(8, '0') + low.padStart(8, '0')).toLowerCase();
}

/** A token as a client sent it back; undefined when it is not one this service issues. */
export function parseConsistencyToken(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const token = header.trim().toLowerCase();
  return TOKEN.test(token) ? token : undefined;
}

/**
 * The token when the primary's position could not be read after a write (the write committed):
 * beyond every position, so that the client's next reads go to the primary until its next write.
 */
export const PRIMARY_ONLY_TOKEN = 'ffffffffffffffff';

/** What the HTTP edge asks of the read routing (src/database/read-replicas.ts). */
export interface ReadRouting {
  /** Where this request's reads go: the primary for anything but GET/HEAD. */
  reader(request: {
    method: string;
    headers: Record<string, string | string[] | undefined>;
  }): Reader;
  /** The `Consistency-Token` of a successful write's response, read after its commit. */
  token(): Promise<string>;
}
