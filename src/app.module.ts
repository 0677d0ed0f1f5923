import { type DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { LoggerModule } from 'nestjs-pino';
import type { Logger } from 'pino';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from './auth/auth.module';
import { ProblemsController } from './common/problems/problems.controller';
import type { Env } from './config/env';
import { dataSourceOptions } from './database/data-source';
import { ReadReplicasModule } from './database/read-replicas';
import { NatsModule } from './events/nats/nats.module';
import { HealthModule } from './health/health.module';
import { ObservabilityModule } from './observability/observability.module';
import { OrdersModule } from './orders/orders.module';
import { PaymentsModule } from './payments/payments.module';
import { ProductsModule } from './products/products.module';
import { PromotionsModule } from './promotions/promotions.module';
import { UsersModule } from './users/users.module';
import { WebhooksModule } from './webhooks/webhooks.module';

export interface AppOptions {
  env: Env;
  /** The resolved database (DATABASE_URL, or the embedded server main.ts started). */
  databaseUrl: string;
  /** The root pino logger: request lines and Nest's own logs go through it. */
  logger: Logger;
  /** Build without connecting to the database (generating the OpenAPI document). */
  lazyDatabase?: boolean;
}

@Module({})
export class AppModule {
  static forRoot({ env, databaseUrl, logger, lazyDatabase = false }: AppOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [() => env] }),
        // Nest's logs go through the root pino logger. The request line is written by the onResponse
        // hook (app.factory.ts), so pino-http's per-request middleware, which costs ~13% of a product
        // read in child loggers and AsyncLocalStorage, is not installed (no routes).
        LoggerModule.forRoot({ pinoHttp: { logger }, forRoutes: [] }),
        ObservabilityModule,
        TypeOrmModule.forRoot({
          ...dataSourceOptions({
            url: databaseUrl,
            poolSize: env.DB_POOL_SIZE,
            statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS,
          }),
          manualInitialization: lazyDatabase,
        }),
        ReadReplicasModule,
        HealthModule,
        AuthModule,
        UsersModule,
        ProductsModule,
        PromotionsModule,
        OrdersModule,
        PaymentsModule,
        WebhooksModule,
        NatsModule,
      ],
      controllers: [ProblemsController],
    };
  }
}
