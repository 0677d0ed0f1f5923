import type { DataSource } from 'typeorm';
import { sql } from '../common/database/sql';
import { hashPassword } from './passwords';
import type { User } from './user.entity';

/**
 * Making admins outside the API (`npm run admin:create`, tests). Every decision is taken by one
 * statement, never by a read before a write: between a read and the write someone may register the
 * same email, and the write would then act on a stranger's account.
 */

export interface AccountSummary {
  id: string;
  email: string;
  role: User['role'];
  version: number;
}

const SUMMARY = 'id, email, role, version';

/** Creates an admin with this password; null when the email (in any case) is already registered. */
export async function insertAdmin(
  dataSource: DataSource,
  input: { email: string; name: string; password: string },
): Promise<AccountSummary | null> {
  const { rows } = await sql<AccountSummary>(
    dataSource.manager,
    `INSERT INTO users (email, name, password_hash, role) VALUES ($1, $2, $3, 'admin')
     ON CONFLICT ((lower(email))) DO NOTHING
     RETURNING ${SUMMARY}`,
    [input.email, input.name, await hashPassword(input.password)],
  );
  return rows[0] ?? null;
}

/**
 * Makes an existing non-admin account an admin, leaving its password (and everything else) alone.
 * Null when no such account exists, or it already is an admin.
 */
export async function promoteToAdmin(
  dataSource: DataSource,
  email: string,
): Promise<AccountSummary | null> {
  // The version moves like any other write (touch_version), so that an admin holding the old ETag
  // gets 412.
  const { rows } = await sql<AccountSummary>(
    dataSource.manager,
    `UPDATE users SET role = 'admin'
     WHERE lower(email) = lower($1) AND role <> 'admin'
     RETURNING ${SUMMARY}`,
    [email],
  );
  return rows[0] ?? null;
}

/** Only to describe an outcome the statements above have already decided. */
export async function findAccount(
  dataSource: DataSource,
  email: string,
): Promise<AccountSummary | null> {
  const { rows } = await sql<AccountSummary>(
    dataSource.manager,
    `SELECT ${SUMMARY} FROM users WHERE lower(email) = lower($1)`,
    [email],
  );
  return rows[0] ?? null;
}

export type AdminOutcome =
  | { kind: 'created'; account: AccountSummary }
  | { kind: 'promoted'; account: AccountSummary }
  /** Asked to promote an account that already is an admin: nothing was changed. */
  | { kind: 'already-admin'; account: AccountSummary }
  /** Registered, and promotion was not asked for: nothing was changed. */
  | { kind: 'exists'; account: AccountSummary };

/**
 * Creates the admin account with this password. When the email is taken, the existing account is
 * promoted only if `promote` says so, and it keeps its own password either way: a password typed for
 * a new account must never be mistaken for the password of someone else's.
 */
export async function createAdmin(
  dataSource: DataSource,
  input: { email: string; name: string; password: string; promote: boolean },
): Promise<AdminOutcome> {
  const created = await insertAdmin(dataSource, input);
  if (created) return { kind: 'created', account: created };
  if (input.promote) {
    const promoted = await promoteToAdmin(dataSource, input.email);
    if (promoted) return { kind: 'promoted', account: promoted };
  }
  const existing = await findAccount(dataSource, input.email);
  if (existing && !input.promote) return { kind: 'exists', account: existing };
  if (existing?.role === 'admin') return { kind: 'already-admin', account: existing };
  // Deleted or demoted between two statements: the command is safe to run again.
  throw new Error(`${input.email} changed while this ran; nothing was changed, try again.`);
}
