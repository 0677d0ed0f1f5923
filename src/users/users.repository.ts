import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import {
  deleteIfVersion,
  insert,
  one,
  pageOf,
  prepared,
  sql,
  updateIfVersion,
  type WriteCondition,
} from '../common/database/sql';
import type { Page } from '../common/http/pagination';
import { User } from './user.entity';

/** Every column but the password hash, which only login reads. */
const PUBLIC_COLUMNS =
  'id, email, name, role, version, created_at, updated_at, previous_updated_at';

/** Read by the auth guard on every authenticated request: prepared once per connection. */
const USER_ROLE = prepared('user_role', 'SELECT role FROM users WHERE id = $1');

/** Every SQL statement on `users`. */
@Injectable()
export class UsersRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  private get m(): EntityManager {
    return this.dataSource.manager;
  }

  findById(id: string, m: EntityManager = this.m): Promise<User | null> {
    return one(m, User, `SELECT ${PUBLIC_COLUMNS} FROM users WHERE id = $1`, [id]);
  }

  /** Emails are one identity whatever their case (users_email_lower_key). */
  findByEmail(email: string): Promise<User | null> {
    return one(this.m, User, `SELECT ${PUBLIC_COLUMNS} FROM users WHERE lower(email) = lower($1)`, [
      email,
    ]);
  }

  /** For login only: the one read that includes the password hash. */
  findCredentials(email: string): Promise<User | null> {
    return one(this.m, User, 'SELECT * FROM users WHERE lower(email) = lower($1)', [email]);
  }

  /** The caller's current role, read on every authenticated request (demotion takes effect at once). */
  async findRole(id: string): Promise<User['role'] | null> {
    const { rows } = await sql<{ role: User['role'] }>(this.m, USER_ROLE, [id]);
    return rows[0]?.role ?? null;
  }

  async list(limit: number, offset: number, m: EntityManager = this.m): Promise<Page<User>> {
    const page = await pageOf(m, User, {
      columns: PUBLIC_COLUMNS,
      from: 'FROM users',
      orderBy: 'created_at, id',
      limit,
      offset,
    });
    return { ...page, limit, offset };
  }

  /** The unique index on lower(email) decides, never a read before. */
  async insert(values: Pick<User, 'email' | 'name' | 'passwordHash' | 'role'>): Promise<User> {
    const user = (await insert(this.m, User, values))!;
    return this.withoutHash(user);
  }

  async update(
    id: string,
    condition: WriteCondition,
    changes: Partial<Pick<User, 'email' | 'name' | 'passwordHash' | 'role'>>,
  ): Promise<User | undefined> {
    const user = await updateIfVersion<User>(this.m, User, id, condition, changes);
    return user && this.withoutHash(user);
  }

  delete(id: string, condition: WriteCondition): Promise<boolean> {
    return deleteIfVersion(this.m, User, id, condition);
  }

  async countOrders(id: string): Promise<number> {
    const { rows } = await sql<{ n: number }>(
      this.m,
      'SELECT count(*)::int AS n FROM orders WHERE user_id = $1',
      [id],
    );
    return rows[0].n;
  }

  /** `RETURNING *` brings the hash back; it never leaves this file. */
  private withoutHash(user: User): User {
    delete (user as Partial<User>).passwordHash;
    return user;
  }
}
