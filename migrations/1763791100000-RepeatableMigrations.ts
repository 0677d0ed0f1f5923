import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SQL functions as repeatable migrations (issue 21, Flyway's model): the current text of each SQL
 * function lives in one file, `src/<feature>/sql/<name>.sql`, and after the versioned migrations the
 * runner (src/database/migrate.ts) applies every file whose sha256 differs from the one recorded
 * here, and records it. The versioned migrations that created those functions stay as history; from
 * now on a function's text changes in its file only. A change a file cannot make (a new signature or
 * return type: `CREATE OR REPLACE` would add an overload, or fail) goes into a versioned migration
 * that drops the old function and deletes its row here; the runner then creates it from its file.
 */
export class RepeatableMigrations1763791100000 implements MigrationInterface {
  name = 'RepeatableMigrations1763791100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE repeatable_migrations (
        -- The function's name, which is also its file's name (src/<feature>/sql/<name>.sql).
        name       text        NOT NULL,
        -- sha256 of the file's bytes, in hex, as last applied.
        checksum   text        NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        CONSTRAINT repeatable_migrations_pkey PRIMARY KEY (name),
        CONSTRAINT repeatable_migrations_checksum_format CHECK (checksum ~ '^[0-9a-f]{64}$')
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE repeatable_migrations`);
  }
}
