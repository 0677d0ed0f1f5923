import 'reflect-metadata';
import { createInterface } from 'node:readline/promises';
import { loadEnv } from '../config/env';
import { createDataSource } from '../database/data-source';
import { resolveDatabase } from '../database/database';
import { runMigrations } from '../database/migrate';
import { type AdminOutcome, createAdmin } from '../users/admin-accounts';
import { runCli } from './run-cli';

const USAGE =
  'Usage: npm run admin:create -- [--promote] <email> [name]   (password from ADMIN_PASSWORD or a prompt)';

async function askPassword(promote: boolean): Promise<string> {
  if (process.env.ADMIN_PASSWORD) return process.env.ADMIN_PASSWORD;
  if (!process.stdin.isTTY) throw new Error('Set ADMIN_PASSWORD (no terminal to prompt on).');
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  try {
    return await rl.question(
      promote
        ? 'Password, if the account is created (an existing one keeps its own; 8+ characters): '
        : 'Password for the new admin (8+ characters): ',
    );
  } finally {
    rl.close();
  }
}

function report(outcome: AdminOutcome): { ok: boolean; message: string } {
  const { email, id, role, version } = outcome.account;
  switch (outcome.kind) {
    case 'created':
      return {
        ok: true,
        message: `Created admin account ${email} (id ${id}) with the password given.`,
      };
    case 'promoted':
      return {
        ok: true,
        message: `Promoted existing account ${email} to admin (id ${id}, version ${version}); its password was not changed.`,
      };
    case 'already-admin':
      return {
        ok: true,
        message: `${email} already is an admin (id ${id}); nothing was changed, and its password was not changed.`,
      };
    case 'exists':
      return {
        ok: false,
        message:
          `${email} is already registered (role ${role}, id ${id}); nothing was changed. ` +
          'Run again with --promote to make that account an admin: it keeps its own password, ' +
          'and the password given here is not used.',
      };
  }
}

/**
 * `npm run admin:create -- [--promote] <email> [name]`: creates an admin account with the password
 * given. An email that is already registered may belong to anyone (registration is open), so it is
 * refused unless --promote says to make that account an admin, keeping its own password. Works
 * against DATABASE_URL or the embedded database.
 */
runCli(async (log) => {
  const args = process.argv.slice(2);
  const promote = args.includes('--promote');
  const [email = '', ...names] = args.filter((a) => a !== '--promote').map((a) => a.trim());
  const name = names.join(' ') || 'Administrator';
  if (!/^[^\s@]+@[^\s@]+$/.test(email) || names.some((a) => a.startsWith('--'))) {
    throw new Error(USAGE);
  }
  const password = await askPassword(promote);
  if (password.length < 8) throw new Error('The password must have at least 8 characters.');
  const db = await resolveDatabase(loadEnv(), log);
  let result: { ok: boolean; message: string };
  try {
    await runMigrations(db.url, log);
    const ds = createDataSource({ url: db.url, poolSize: 1 });
    await ds.initialize();
    try {
      result = report(await createAdmin(ds, { email, name, password, promote }));
    } finally {
      await ds.destroy();
    }
  } finally {
    await db.embedded?.stop();
  }
  if (!result.ok) {
    // A refusal is an answer, not a crash: one line and exit 1, without runCli's stack trace.
    console.error(result.message);
    process.exit(1);
  }
  log(result.message);
});
