import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { JwtService } from '@nestjs/jwt';
import { InjectDataSource } from '@nestjs/typeorm';
import type { FastifyRequest } from 'fastify';
import { DataSource } from 'typeorm';
import { ProblemError } from '../common/problems/problem.error';
import { User } from '../users/user.entity';
import { type Caller, IS_PUBLIC, ROLES } from './auth.decorators';
import type { TokenPayload } from './auth.service';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly jwt: JwtService,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets) ?? false;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const header = request.headers.authorization;
    if (header === undefined) {
      if (isPublic) return true;
      throw new ProblemError(
        'UNAUTHENTICATED',
        'This endpoint needs `Authorization: Bearer <token>`; get a token from POST /api/v1/auth/login.',
      );
    }
    request.caller = await this.authenticate(header);
    const roles = this.reflector.getAllAndOverride<Caller['role'][] | undefined>(ROLES, targets);
    if (roles && !roles.includes(request.caller.role)) {
      throw new ProblemError('FORBIDDEN', `This action is reserved to: ${roles.join(', ')}.`);
    }
    return true;
  }

  private async authenticate(header: string): Promise<Caller> {
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(header.trim());
    if (!match) throw invalidToken('The Authorization header must be `Bearer <token>`.');
    let payload: TokenPayload;
    try {
      payload = await this.jwt.verifyAsync<TokenPayload>(match[1]);
    } catch {
      throw invalidToken('The bearer token is invalid or expired; log in again.');
    }
    if (typeof payload.sub !== 'string' || !UUID.test(payload.sub)) {
      throw invalidToken('The bearer token names no account.');
    }
    const user = await this.dataSource
      .getRepository(User)
      .findOne({ where: { id: payload.sub }, select: { id: true, role: true } });
    if (!user) throw invalidToken('The account behind this token no longer exists.');
    return { id: user.id, role: user.role };
  }
}
