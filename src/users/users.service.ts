import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { Caller, Role } from '../common/access';
import { PasswordHasher } from './passwords';
import { constraintViolation } from '../common/database/database-errors';
import type { Page } from '../common/http/pagination';
import {
  guardedMutation,
  type Preconditions,
  type Versioned,
  versioned,
} from '../common/http/preconditions';
import { notFound, ProblemError } from '../common/problems/problem.error';
import { type UpdateUserDto, UserDto } from './dto/user.dto';
import type { User } from './user.entity';
import { UsersRepository } from './users.repository';

export const userPath = (id: string): string => `/api/v1/users/${id}`;

@Injectable()
export class UsersService {
  constructor(
    private readonly users: UsersRepository,
    private readonly passwords: PasswordHasher,
  ) {}

  describe(user: User): Versioned<UserDto> {
    return versioned('user', user, UserDto.from(user));
  }

  /** Inserts; the unique index on lower(email) decides, and its violation becomes EMAIL_TAKEN. */
  async create(
    input: { email: string; name: string; password: string; role?: Role },
    caller?: Caller,
  ): Promise<User> {
    const passwordHash = await this.passwords.hash(input.password);
    try {
      return await this.users.insert({
        email: input.email,
        name: input.name,
        passwordHash,
        role: input.role ?? 'customer',
      });
    } catch (err) {
      throw await this.explainConflict(err, input.email, caller);
    }
  }

  /** `m`: where the read runs (a GET's Reader hands it a standby's manager); the primary by default. */
  async findVisible(id: string, caller: Caller, m?: EntityManager): Promise<User> {
    const user = await this.findVisibleOrNull(id, caller, m);
    if (!user) throw notFound(`User ${id}`);
    return user;
  }

  /** Customers see only themselves: anyone else does not exist for them. Null only for that. */
  private async findVisibleOrNull(
    id: string,
    caller: Caller,
    m?: EntityManager,
  ): Promise<User | null> {
    if (caller.role !== 'admin' && caller.id !== id) return null;
    return this.users.findById(id, m);
  }

  list(limit: number, offset: number, m?: EntityManager): Promise<Page<User>> {
    return this.users.list(limit, offset, m);
  }

  /**
   * 403 for a role change by a customer, 404, then the preconditions, and only then the password is
   * hashed (Argon2id, tens of ms): a request that fails a cheap check buys no expensive work.
   */
  async update(
    id: string,
    patch: UpdateUserDto,
    caller: Caller,
    preconditions: Preconditions,
  ): Promise<User> {
    if (patch.role !== undefined && caller.role !== 'admin') {
      throw new ProblemError('FORBIDDEN', 'Only admins may change roles.');
    }
    const { version, password, ...fields } = patch;
    try {
      return (await guardedMutation({
        preconditions,
        bodyVersion: version,
        resourceName: `user ${id}`,
        load: () => this.findVisibleOrNull(id, caller),
        describe: (u) => this.describe(u),
        notFound: () => notFound(`User ${id}`),
        write: async (condition) =>
          this.users.update(id, condition, {
            ...fields,
            ...(password !== undefined
              ? { passwordHash: await this.passwords.hash(password) }
              : {}),
          }),
      })) as User;
    } catch (err) {
      throw await this.explainConflict(err, patch.email, caller);
    }
  }

  async remove(id: string, caller: Caller, preconditions: Preconditions): Promise<void> {
    try {
      await guardedMutation({
        preconditions,
        acceptsBodyVersion: false,
        resourceName: `user ${id}`,
        load: () => this.findVisibleOrNull(id, caller),
        describe: (u) => this.describe(u),
        notFound: () => notFound(`User ${id}`),
        write: (condition) => this.users.delete(id, condition),
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
  ): Promise<unknown> {
    const violation = constraintViolation(err);
    if (violation?.code === 'EMAIL_TAKEN' && email !== undefined) {
      const existing = await this.users.findByEmail(email);
      const visible = existing && (caller?.role === 'admin' || caller?.id === existing.id);
      return new ProblemError('EMAIL_TAKEN', `The email ${email} is already registered.`, {
        field: 'email',
        value: email,
        ...(visible ? { conflictingResource: userPath(existing.id) } : {}),
      });
    }
    if (violation?.code === 'RESOURCE_IN_USE' && deletedId !== undefined) {
      const count = await this.users.countOrders(deletedId);
      return new ProblemError(
        'RESOURCE_IN_USE',
        `User ${deletedId} has ${count} order(s) and cannot be deleted; nothing was deleted.`,
        { dependents: { orders: count } },
      );
    }
    return err;
  }
}
