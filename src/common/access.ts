import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

/**
 * Who is calling, and the route metadata the auth guard reads. It lives at the bottom of the tree so
 * that any module (feature or common) can mark a route public or read the caller without depending on
 * the auth module.
 */
export const ROLES = ['customer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const IS_PUBLIC = 'auth:public';
export const ROLES_KEY = 'auth:roles';

/** The route needs no bearer token (a valid token, when sent, is still read). */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);

/** Only these roles may call the route; others get 403 FORBIDDEN. */
export const Roles = (...roles: Role[]): MethodDecorator & ClassDecorator =>
  SetMetadata(ROLES_KEY, roles);

/** The authenticated caller, as services see it: no token, no request. */
export interface Caller {
  id: string;
  role: Role;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
}

/** The authenticated caller (the guard guarantees one on non-public routes). */
export const CurrentUser = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): Caller | undefined =>
    ctx.switchToHttp().getRequest<FastifyRequest>().caller,
);
