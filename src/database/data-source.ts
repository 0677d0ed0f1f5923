import { Client, type ClientConfig, types } from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { CreateUsers1763790000000 } from '../../migrations/1763790000000-CreateUsers';
import { CreateProducts1763790100000 } from '../../migrations/1763790100000-CreateProducts';
import { CreateOrders1763790200000 } from '../../migrations/1763790200000-CreateOrders';
import { ProductStockMax1763790300000 } from '../../migrations/1763790300000-ProductStockMax';
import { Hardening1763790400000 } from '../../migrations/1763790400000-Hardening';
import { HoldsAndEdits1763790500000 } from '../../migrations/1763790500000-HoldsAndEdits';
import { Outbox1763790600000 } from '../../migrations/1763790600000-Outbox';
import { PlaceOrderAtOnce1763790700000 } from '../../migrations/1763790700000-PlaceOrderAtOnce';
import { CheckoutLocksLate1763790800000 } from '../../migrations/1763790800000-CheckoutLocksLate';
import { PlaceOrdersTogether1763790900000 } from '../../migrations/1763790900000-PlaceOrdersTogether';
import { OutboxRetention1763791000000 } from '../../migrations/1763791000000-OutboxRetention';
import { RepeatableMigrations1763791100000 } from '../../migrations/1763791100000-RepeatableMigrations';
import { Payments1763791200000 } from '../../migrations/1763791200000-Payments';
import { Promotions1763791300000 } from '../../migrations/1763791300000-Promotions';
import { PromotionUsesApart1763791400000 } from '../../migrations/1763791400000-PromotionUsesApart';
import { StockApart1763791500000 } from '../../migrations/1763791500000-StockApart';
import { Order, OrderHistoryEntry, OrderItem } from '../orders/order.entity';
import { Product } from '../products/product.entity';
import { Promotion } from '../promotions/promotion.entity';
import { User } from '../users/user.entity';

export const ENTITIES = [User, Product, Promotion, Order, OrderItem, OrderHistoryEntry];

/** Listed explicitly (not globbed) so that the compiled app, tests and the CLI load the same set. */
export const MIGRATIONS = [
  CreateUsers1763790000000,
  CreateProducts1763790100000,
  CreateOrders1763790200000,
  ProductStockMax1763790300000,
  Hardening1763790400000,
  HoldsAndEdits1763790500000,
  Outbox1763790600000,
  PlaceOrderAtOnce1763790700000,
  CheckoutLocksLate1763790800000,
  PlaceOrdersTogether1763790900000,
  OutboxRetention1763791000000,
  RepeatableMigrations1763791100000,
  Payments1763791200000,
  Promotions1763791300000,
  PromotionUsesApart1763791400000,
  StockApart1763791500000,
];

/**
 * A pg client that always has an 'error' listener. When PostgreSQL drops a connection that is checked
 * out between two queries (restart, pg_terminate_backend), pg emits 'error' on the client; TypeORM
 * listens only on the pool, so without this the process would crash. The failure still reaches the
 * request through its next query (answered 503), and the pool discards the broken client.
 */
export class ResilientClient extends Client {
  constructor(config?: string | ClientConfig) {
    super(config);
    this.on('error', () => undefined);
  }
}

/**
 * bigint (int8) columns as numbers: stock, money totals and history ids stay far below 2^53, and a
 * string where the schema says number would leak into JSON and comparisons. Per pool, not pg's global
 * parsers, so nothing else in the process is affected.
 */
const INT8_OID = 20;
const parseInt8 = (value: string): number => Number(value);
export const TYPE_PARSERS = {
  // Asked for each column of each result: one parser, not a new function every time.
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID
      ? parseInt8
      : types.getTypeParser(oid, format ?? 'text')) as typeof types.getTypeParser,
};

export interface DatabaseConfig {
  url: string;
  poolSize?: number;
  statementTimeoutMs?: number;
  applicationName?: string;
}

/**
 * How long a request may wait for a pool connection before it is answered 503 (busy). A checkout
 * queued behind a placement of the same products (PlacementQueue) is answered the same when it has
 * waited PLACEMENT_QUEUE_WAIT_MS, by default as long as this.
 */
export const POOL_WAIT_MS = 5_000;

export function dataSourceOptions({
  url,
  poolSize = 10,
  statementTimeoutMs = 15_000,
  applicationName = 'order-service',
}: DatabaseConfig): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsRun: false,
    migrationsTransactionMode: 'each',
    synchronize: false,
    // Not 'error': TypeORM would log failed queries with their parameters (password hashes, emails).
    logging: ['warn', 'migration'],
    applicationName,
    extra: {
      Client: ResilientClient,
      types: TYPE_PARSERS,
      max: poolSize,
      connectionTimeoutMillis: POOL_WAIT_MS,
      // A statement stuck behind a lock must not hang a request forever.
      statement_timeout: statementTimeoutMs,
      idle_in_transaction_session_timeout: 30_000,
    },
  };
}

export function createDataSource(config: DatabaseConfig): DataSource {
  return new DataSource(dataSourceOptions(config));
}

/** For the TypeORM CLI (`npx typeorm -d dist/src/database/data-source.js migration:show`). */
export default process.env.DATABASE_URL
  ? createDataSource({ url: process.env.DATABASE_URL })
  : undefined;
