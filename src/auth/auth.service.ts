import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { JwtService } from '@nestjs/jwt';
import type { Env } from '../config/env';
import { ProblemError } from '../common/problems/problem.error';
import type { User } from '../users/user.entity';
import { UsersRepository } from '../users/users.repository';
import type { LoginDto, TokenDto } from './dto/auth.dto';
import { PasswordHasher } from '../users/passwords';

export interface TokenPayload {
  sub: string;
  role: User['role'];
}

@Injectable()
export class AuthService {
  constructor(
    private readonly users: UsersRepository,
    private readonly passwords: PasswordHasher,
    private readonly jwt: JwtService,
    private readonly config: ConfigService<Env, true>,
  ) {}

  /** Same answer, and about the same time, whether the email is unknown or the password wrong. */
  async login({ email, password }: LoginDto): Promise<TokenDto> {
    const user = await this.users.findCredentials(email);
    const ok = await this.passwords.verify(user?.passwordHash, password);
    if (!user || !ok) {
      throw new ProblemError('UNAUTHENTICATED', 'The email or password is wrong.');
    }
    const payload: TokenPayload = { sub: user.id, role: user.role };
    return {
      accessToken: await this.jwt.signAsync(payload),
      tokenType: 'Bearer',
      expiresIn: this.config.get('JWT_EXPIRES_IN_SECONDS', { infer: true }),
    };
  }
}
