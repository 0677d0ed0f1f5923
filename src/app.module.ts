import { type DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from './auth/auth.module';
import { ProblemsController } from './common/problems/problems.controller';
import type { Env } from './config/env';
import { dataSourceOptions } from './database/data-source';
import { HealthModule } from './health/health.module';
import { OrdersModule } from './orders/orders.module';
import { ProductsModule } from './products/products.module';
import { UsersModule } from './users/users.module';

export interface AppOptions {
  env: Env;
  /** The resolved database (DATABASE_URL, or the embedded server main.ts started). */
  databaseUrl: string;
}

@Module({})
export class AppModule {
  static forRoot({ env, databaseUrl }: AppOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [() => env] }),
        TypeOrmModule.forRoot(
          dataSourceOptions({
            url: databaseUrl,
            poolSize: env.DB_POOL_SIZE,
            statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS,
          }),
        ),
        HealthModule,
        AuthModule,
        UsersModule,
        ProductsModule,
        OrdersModule,
      ],
      controllers: [ProblemsController],
    };
  }
}
