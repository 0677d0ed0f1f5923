import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { sql } from '../database/sql';

/** What the key's row holds once the first request is done (see IdempotencyService). */
export interface StoredKey<R> {
  fingerprint: string;
  response: R | null;
}

export interface NewKey {
  userId: string;
  key: string;
  fingerprint: string;
  method: string;
  path: string;
  ttlHours: number;
  /** A caller already holding this many live keys cannot claim another. */
  maxLivePerUser: number;
}

/** Every SQL statement on `idempotency_keys`. */
@Injectable()
export class IdempotencyRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** How long this transaction waits for a key another request holds (`DEFAULT`: as configured). */
  async waitForKeysAtMost(m: EntityManager, lockTimeout: string): Promise<void> {
    await sql(
      m,
      lockTimeout === 'DEFAULT'
        ? 'SET LOCAL lock_timeout = DEFAULT'
        : `SET LOCAL lock_timeout = '${lockTimeout}'`,
    );
  }

  /**
   * Claims the key for this transaction (claim_idempotency_key, src/common/http/sql): false when a
   * live record already exists, or when the caller already holds `maxLivePerUser` live keys. Waits,
   * for at most the transaction's lock_timeout, while another transaction holds the same key.
   */
  async claim(m: EntityManager, k: NewKey): Promise<boolean> {
    const { rows } = await sql<{ claimed: boolean }>(
      m,
      'SELECT claim_idempotency_key($1, $2, $3, $4, $5, $6, $7) AS claimed',
      [k.userId, k.key, k.fingerprint, k.method, k.path, k.ttlHours, k.maxLivePerUser],
    );
    return rows[0].claimed;
  }

  async find<R>(m: EntityManager, userId: string, key: string): Promise<StoredKey<R> | undefined> {
    const { rows } = await sql<StoredKey<R>>(
      m,
      // Live only: an expired key not yet purged is not replayed (a caller at its bound of live
      // keys, who could not re-claim it, gets 429, not an outcome older than the TTL).
      `SELECT fingerprint, response FROM idempotency_keys
        WHERE user_id = $1 AND key = $2 AND expires_at > now()`,
      [userId, key],
    );
    return rows[0];
  }

  async store(m: EntityManager, userId: string, key: string, response: unknown): Promise<void> {
    await sql(m, 'UPDATE idempotency_keys SET response = $3 WHERE user_id = $1 AND key = $2', [
      userId,
      key,
      JSON.stringify(response),
    ]);
  }

  /** Seconds until the caller's oldest live key expires (at least 1). */
  async secondsUntilOldestExpires(m: EntityManager, userId: string): Promise<number> {
    const { rows } = await sql<{ seconds: number | null }>(
      m,
      `SELECT ceil(extract(epoch FROM min(expires_at) - now()))::int AS seconds
         FROM idempotency_keys WHERE user_id = $1 AND expires_at > now()`,
      [userId],
    );
    return Math.max(1, rows[0]?.seconds ?? 1);
  }

  /**
   * Deletes up to `batch` expired keys in one short statement; SKIP LOCKED lets every instance purge
   * at once without waiting on each other. Returns how many went.
   */
  async purgeBatch(batch: number): Promise<number> {
    const { affected } = await sql(
      this.dataSource.manager,
      `DELETE FROM idempotency_keys WHERE (user_id, key) IN (
         SELECT user_id, key FROM idempotency_keys WHERE expires_at <= now()
          LIMIT $1 FOR UPDATE SKIP LOCKED)`,
      [batch],
    );
    return affected;
  }
}
