import { Client } from 'pg';
import { PRIMARY_ONLY_TOKEN, tokenOfLsn } from '../common/database/reader';
import { ResilientClient } from './data-source';

/** A question about the primary's position that takes longer fails (the token then reads the primary). */
const POSITION_TIMEOUT_MS = 1_000;

/**
 * The primary's WAL position after a commit, for the `Consistency-Token` of every successful write
 * (API.md §12): `pg_current_wal_insert_lsn()`, which is past the end of the commit record of every
 * transaction committed before it is asked (also with synchronous_commit off, where the write
 * position may still be behind it). One connection of its own, and one question at a time: every
 * caller that asks while a question is out joins the next one, which is sent after it asked, so it
 * covers its commit. Under load that is one statement for many writes, and a write never waits for
 * a pool connection for its token.
 */
export class PrimaryPosition {
  private client?: Client;
  private next?: Promise<string>;
  private sending: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly url: string,
    private readonly onError: (err: unknown) => void,
  ) {}

  current(): Promise<string> {
    this.next ??= this.sending.then(() => {
      // From here on, whoever asks gets the next question: this one is sent after they asked.
      this.next = undefined;
      const question = this.ask();
      this.sending = question.catch(() => undefined);
      return question;
    });
    return this.next;
  }

  /** The token for a response: never rejects (a failure gives the token that reads the primary). */
  token(): Promise<string> {
    return this.current().catch((err: unknown) => {
      this.onError(err);
      return PRIMARY_ONLY_TOKEN;
    });
  }

  private async ask(): Promise<string> {
    try {
      const client = this.client ?? (await this.connect());
      const { rows } = await client.query<{ lsn: string }>(
        'SELECT pg_current_wal_insert_lsn()::text AS lsn',
      );
      return tokenOfLsn(rows[0].lsn);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  private async connect(): Promise<Client> {
    const client = new ResilientClient({
      connectionString: this.url,
      connectionTimeoutMillis: POSITION_TIMEOUT_MS,
      statement_timeout: POSITION_TIMEOUT_MS,
      // The client's own bound too: a connection cut without a reset never answers the server's.
      query_timeout: POSITION_TIMEOUT_MS,
      application_name: 'order-service-position',
    });
    client.on('error', () => this.close());
    await client.connect();
    this.client = client;
    return client;
  }

  close(): void {
    const client = this.client;
    this.client = undefined;
    void client?.end().catch(() => undefined);
  }
}
