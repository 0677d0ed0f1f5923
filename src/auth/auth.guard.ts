import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import { createVerifier } from 'fast-jwt';
import type { FastifyRequest } from 'fastify';
import { ProblemError } from '../common/problems/problem.error';
import { type Caller, IS_PUBLIC, ROLES_KEY } from '../common/access';
import type { Env } from '../config/env';
import { UsersRepository } from '../users/users.repository';
import type { TokenPayload } from './auth.service';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Who may call a route, from its decorators. */
interface RouteAccess {
  isPublic: boolean;
  roles: Caller['role'][] | undefined;
}

const invalidToken = (detail: string): ProblemError =>
  new ProblemError(
    'UNAUTHENTICATED',
    detail,
    {},
    { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
  );

/**
 * Global guard: every route needs a valid bearer token unless marked @Public(). The role is read from
 * the database on each request, not trusted from the token, so a demoted or deleted account loses its
 * rights at once.
 *
 * On a public route a token that does not authenticate (malformed, expired, badly signed, naming a
 * deleted account) is ignored and the request proceeds anonymously: such routes never need a caller,
 * and refusing them would lock a client holding a stale token out of the very login that replaces it.
 * A valid token on a public route is still read, so the route may tailor its answer to the caller.
 *
 * Tokens are verified with fast-jwt (HS256 only, as they are signed), which remembers the tokens it
 * verified: a client sends the same token with every request, and its signature and claims are
 * checked once per instance, then looked up (each entry good until the token's own `exp`, at most
 * 10 minutes; at most 10,000 entries). Nothing about the account is remembered: its role is read on
 * every request.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly verify: (token: string) => TokenPayload;
  private readonly accessCache = new WeakMap<object, WeakMap<object, RouteAccess>>();

  constructor(
    private readonly reflector: Reflector,
    private readonly users: UsersRepository,
    config: ConfigService<Env, true>,
  ) {
    this.verify = createVerifier({
      key: Buffer.from(config.get('JWT_SECRET', { infer: true }), 'utf8'),
      algorithms: ['HS256'],
      cache: 10_000,
    }) as (token: string) => TokenPayload;
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const { isPublic, roles } = this.access(context);
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const header = request.headers.authorization;
    if (header === undefined) {
      if (isPublic) return true;
      throw new ProblemError(
        'UNAUTHENTICATED',
        'This endpoint needs `Authorization: Bearer <token>`; get a token from POST /api/v1/auth/login.',
      );
    }
    if (isPublic) {
      request.caller = await this.authenticate(header).catch((error: unknown) => {
        // Only the token's own faults are forgiven; a database outage still answers as such.
        if (error instanceof ProblemError && error.code === 'UNAUTHENTICATED') return undefined;
        throw error;
      });
      return true;
    }
    request.caller = await this.authenticate(header);
    if (roles && !roles.includes(request.caller.role)) {
      throw new ProblemError('FORBIDDEN', `This action is reserved to: ${roles.join(', ')}.`);
    }
    return true;
  }

  /**
   * The route's @Public() and @Roles(), read from its metadata once per handler: decorators are
   * fixed at start-up, and the two reflector lookups were a visible share of a refused PATCH's CPU.
   */
  private access(context: ExecutionContext): RouteAccess {
    const handler = context.getHandler();
    const controller = context.getClass();
    let byHandler = this.accessCache.get(controller);
    if (!byHandler) this.accessCache.set(controller, (byHandler = new WeakMap()));
    let access = byHandler.get(handler);
    if (!access) {
      const targets = [handler, controller];
      access = {
        isPublic: this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets) ?? false,
        roles: this.reflector.getAllAndOverride<Caller['role'][] | undefined>(ROLES_KEY, targets),
      };
      byHandler.set(handler, access);
    }
    return access;
  }

  private async authenticate(header: string): Promise<Caller> {
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(header.trim());
    if (!match) throw invalidToken('The Authorization header must be `Bearer <token>`.');
    let payload: TokenPayload;
    try {
      payload = this.verify(match[1]);
    } catch {
      throw invalidToken('The bearer token is invalid or expired; log in again.');
    }
    if (typeof payload.sub !== 'string' || !UUID.test(payload.sub)) {
      throw invalidToken('The bearer token names no account.');
    }
    const role = await this.users.findRole(payload.sub);
    if (!role) throw invalidToken('The account behind this token no longer exists.');
    return { id: payload.sub.toLowerCase(), role };
  }
}
