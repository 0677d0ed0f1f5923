import { createSecretKey } from 'node:crypto';
import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { APP_GUARD } from '@nestjs/core';
import { JwtModule } from '@nestjs/jwt';
import type { Env } from '../config/env';
import { UsersModule } from '../users/users.module';
import { AuthController } from './auth.controller';
import { AuthGuard } from './auth.guard';
import { AuthService } from './auth.service';

@Module({
  imports: [
    UsersModule,
    JwtModule.registerAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<Env, true>) => ({
        // A KeyObject, not the string: given a string, jsonwebtoken first tries to parse it as a key
        // in PEM on every sign (an exception each time; on verify it cost more CPU than the rest of
        // an authenticated request together, bench/results/2026-11-23-profile.md).
        secret: createSecretKey(Buffer.from(config.get('JWT_SECRET', { infer: true }), 'utf8')),
        // Signed as HS256 only; AuthGuard verifies (fast-jwt) and accepts HS256 only.
        signOptions: {
          algorithm: 'HS256',
          expiresIn: config.get('JWT_EXPIRES_IN_SECONDS', { infer: true }),
        },
      }),
    }),
  ],
  controllers: [AuthController],
  providers: [AuthService, { provide: APP_GUARD, useClass: AuthGuard }],
})
export class AuthModule {}
