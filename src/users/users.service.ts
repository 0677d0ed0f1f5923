import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { FastifyRequest } from 'fastify';
import { DataSource, type EntityManager } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import type { Caller } from '../auth/auth.decorators';
import { hashPassword } from '../auth/passwords';
import { deleteIfVersion, hydrate, updateIfVersion } from '../common/database/conditional-write';
import { constraintViolation } from '../common/database/database-errors';
import { computeEtag } from '../common/http/etag';
import type { Page } from '../common/http/pagination';
import { guardedMutation, type Versioned } from '../common/http/preconditions';
import { notFound, ProblemError } from '../common/problems/problem.error';
import { UserDto, type UpdateUserDto } from './dto/user.dto';
import { type Role, User } from './user.entity';

export const userPath = (id: string): string => `/api/v1/users/${id}`;

@Injectable()
export class UsersService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  describe(user: User): Versioned<UserDto> {
    return {
      version: user.version,
      etag: computeEtag('user', user.id, user.version),
      updatedAt: user.updatedAt,
      representation: UserDto.from(user),
    };
  }

  /** Inserts; the unique index on lower(email) decides, and its violation becomes EMAIL_TAKEN. */
  async create(
    input: { email: string; name: string; password: string; role?: Role },
    caller?: Caller,
  ): Promise<User> {
    const passwordHash = await hashPassword(input.password);
    try {
      const result = await this.dataSource
        .createQueryBuilder()
        .insert()
        .into(User)
        .values({
          email: input.email,
          name: input.name,
          passwordHash,
          role: input.role ?? 'customer',
        })
        .returning('*')
        .execute();
      return hydrate(this.dataSource.manager, User, (result.raw as Record<string, unknown>[])[0]);
    } catch (err) {
      throw await this.explainConflict(err, input.email, caller);
    }
  }

  /** `npm run admin:create`: creates the account as admin, or promotes the existing one. */
  async createOrPromoteAdmin(email: string, name: string, password: string): Promise<User> {
    const rows: Record<string, unknown>[] = await this.dataSource.query(
      `INSERT INTO users (email, name, password_hash, role) VALUES ($1, $2, $3, 'admin')
       ON CONFLICT ((lower(email))) DO UPDATE
         SET role = 'admin', version = users.version + 1, updated_at = now()
         WHERE users.role <> 'admin'
       RETURNING *`,
      [email, name, await hashPassword(password)],
    );
    if (rows.length) return hydrate(this.dataSource.manager, User, rows[0]);
    return this.dataSource
      .getRepository(User)
      .createQueryBuilder('u')
      .where('lower(u.email) = lower(:email)', { email })
      .getOneOrFail();
  }

  async findVisible(id: string, caller: Caller): Promise<User> {
    // Customers see only themselves: anyone else does not exist for them.
    if (caller.role !== 'admin' && caller.id !== id) throw notFound(`User ${id}`);
    const user = await this.dataSource.getRepository(User).findOneBy({ id });
    if (!user) throw notFound(`User ${id}`);
    return user;
  }

  /** Null only for "does not exist for you"; database failures propagate (503, not 404). */
  private async findVisibleOrNull(id: string, caller: Caller): Promise<User | null> {
    if (caller.role !== 'admin' && caller.id !== id) return null;
    return this.dataSource.getRepository(User).findOneBy({ id });
  }

  async list(limit: number, offset: number): Promise<Page<User>> {
    const [items, total] = await this.dataSource.getRepository(User).findAndCount({
      order: { createdAt: 'ASC', id: 'ASC' },
      take: limit,
      skip: offset,
    });
    return { items, total, limit, offset };
  }

  async update(
    id: string,
    patch: UpdateUserDto,
    caller: Caller,
    request: FastifyRequest,
  ): Promise<User> {
    if (patch.role !== undefined && caller.role !== 'admin') {
      throw new ProblemError('FORBIDDEN', 'Only admins may change roles.');
    }
    const { version, password, ...fields } = patch;
    const changes: QueryDeepPartialEntity<User> = { ...fields };
    if (password !== undefined) changes.passwordHash = await hashPassword(password);
    try {
      return (await guardedMutation({
        request,
        bodyVersion: version,
        resourceName: `user ${id}`,
        load: () => this.findVisibleOrNull(id, caller),
        describe: (u) => this.describe(u),
        notFound: () => notFound(`User ${id}`),
        write: (condition) =>
          updateIfVersion(this.dataSource.manager, User, id, condition, changes),
      })) as User;
    } catch (err) {
      throw await this.explainConflict(err, patch.email, caller);
    }
  }

  async remove(id: string, caller: Caller, request: FastifyRequest): Promise<void> {
    try {
      await guardedMutation({
        request,
        acceptsBodyVersion: false,
        resourceName: `user ${id}`,
        load: () => this.findVisibleOrNull(id, caller),
        describe: (u) => this.describe(u),
        notFound: () => notFound(`User ${id}`),
        write: (condition) => deleteIfVersion(this.dataSource.manager, User, id, condition),
      });
    } catch (err) {
      throw await this.explainConflict(err, undefined, caller, id);
    }
  }

  /**
   * Turns a constraint violation into its precise problem. The lookups here only enrich the answer
   * after the database has decided; they never decide anything themselves.
   */
  private async explainConflict(
    err: unknown,
    email: string | undefined,
    caller: Caller | undefined,
    deletedId?: string,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<unknown> {
    const violation = constraintViolation(err);
    if (violation?.code === 'EMAIL_TAKEN' && email !== undefined) {
      const existing = await manager
        .getRepository(User)
        .createQueryBuilder('u')
        .where('lower(u.email) = lower(:email)', { email })
        .getOne();
      const visible = existing && (caller?.role === 'admin' || caller?.id === existing.id);
      return new ProblemError('EMAIL_TAKEN', `The email ${email} is already registered.`, {
        field: 'email',
        value: email,
        ...(visible ? { conflictingResource: userPath(existing.id) } : {}),
      });
    }
    if (violation?.code === 'RESOURCE_IN_USE' && deletedId !== undefined) {
      const [{ count }] = await manager.query<{ count: number }[]>(
        'SELECT count(*)::int AS count FROM orders WHERE user_id = $1',
        [deletedId],
      );
      return new ProblemError(
        'RESOURCE_IN_USE',
        `User ${deletedId} has ${count} order(s) and cannot be deleted; nothing was deleted.`,
        { dependents: { orders: count } },
      );
    }
    return err;
  }
}
