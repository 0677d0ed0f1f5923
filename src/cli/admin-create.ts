import 'reflect-metadata';
import { createInterface } from 'node:readline/promises';
import { loadEnv } from '../config/env';
import { createDataSource } from '../database/data-source';
import { resolveDatabase } from '../database/database';
import { runMigrations } from '../database/migrate';
import { UsersService } from '../users/users.service';
import { runCli } from './run-cli';

async function askPassword(): Promise<string> {
  if (process.env.ADMIN_PASSWORD) return process.env.ADMIN_PASSWORD;
  if (!process.stdin.isTTY) throw new Error('Set ADMIN_PASSWORD (no terminal to prompt on).');
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  try {
    return await rl.question('Password for the admin (8+ characters): ');
  } finally {
    rl.close();
  }
}

/**
 * `npm run admin:create -- <email> [name]`: creates an admin account, or promotes an existing account
 * (its password is then left as it is). Works against DATABASE_URL or the embedded database.
 */
runCli(async (log) => {
  const [email, name = 'Administrator'] = process.argv.slice(2);
  if (!email || !/^[^\s@]+@[^\s@]+$/.test(email.trim())) {
    throw new Error(
      'Usage: npm run admin:create -- <email> [name]   (password from ADMIN_PASSWORD or a prompt)',
    );
  }
  const password = await askPassword();
  if (password.length < 8) throw new Error('The password must have at least 8 characters.');
  const db = await resolveDatabase(loadEnv(), log);
  try {
    await runMigrations(db.url, log);
    const ds = createDataSource({ url: db.url, poolSize: 1 });
    await ds.initialize();
    try {
      const user = await new UsersService(ds).createOrPromoteAdmin(email.trim(), name, password);
      log(`${user.email} is an admin (id ${user.id}, version ${user.version}).`);
    } finally {
      await ds.destroy();
    }
  } finally {
    await db.embedded?.stop();
  }
});
