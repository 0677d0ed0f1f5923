import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateUsers1763790000000 implements MigrationInterface {
  name = 'CreateUsers1763790000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE users (
        id            uuid        NOT NULL DEFAULT gen_random_uuid(),
        email         text        NOT NULL,
        name          text        NOT NULL,
        password_hash text        NOT NULL,
        role          text        NOT NULL DEFAULT 'customer',
        version       integer     NOT NULL DEFAULT 1,
        created_at    timestamptz NOT NULL DEFAULT now(),
        updated_at    timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT users_pkey PRIMARY KEY (id),
        CONSTRAINT users_role_check CHECK (role IN ('customer', 'admin')),
        CONSTRAINT users_email_trimmed CHECK (email = btrim(email) AND email <> ''),
        CONSTRAINT users_version_positive CHECK (version > 0)
      )`);
    // Uniqueness is decided here, case-insensitively, never by a read before the insert.
    await q.query(`CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email))`);
    await q.query(`CREATE INDEX users_created_at_idx ON users (created_at, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE users`);
  }
}
