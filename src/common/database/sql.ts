import {
  type EntityManager,
  type EntityTarget,
  type ObjectLiteral,
  type QueryRunner,
  QueryRunnerAlreadyReleasedError,
} from 'typeorm';

/**
 * The one data-access style of this service (docs/architecture.md): each aggregate's repository
 * writes its SQL by hand as parameterised text, runs it with `sql()` on the manager it is given (a
 * transaction's, or the data source's), and hydrates rows into entities with `hydrate()`. TypeORM
 * supplies the connection pool, transactions, migrations and the column mapping; no query builder,
 * no `find`, no `save()`. What runs is what the file says, and a change of a query shows in review.
 */

/** The version a conditional write must find, and how the client stated it. */
export type WriteCondition =
  | { kind: 'any' }
  | { kind: 'version'; version: number; via: 'if-match' | 'if-unmodified-since' | 'body' };

export interface StatementResult<R> {
  rows: R[];
  affected: number;
}

/**
 * A fixed statement PostgreSQL parses and plans once per connection and then only executes (a
 * named prepared statement in the extended protocol). For the hottest statements only, whose text
 * never varies and whose result columns are listed, not `*`: a prepared `SELECT *` would fail with
 * "cached plan must not change result type" on a connection that outlives a migration adding a
 * column. Behind a pooler in transaction mode, named statements need PgBouncer >= 1.21 with
 * `max_prepared_statements` set.
 */
export interface Prepared {
  readonly name: string;
  readonly text: string;
}

export const prepared = (name: string, text: string): Prepared => ({ name, text });

/**
 * The query config pg gets for a prepared statement: the statement's name and text inherited from
 * it, only `values` its own. pg copies every config it is given, prototype kept, own properties by
 * descriptor (`cloneQueryConfig`); with one own property instead of three that copy takes half the
 * time, and it ran on every read (bench/README.md, the profile of a product read).
 */
function preparedQuery(statement: Prepared, values: unknown[]): PreparedQuery {
  const query = Object.create(statement) as PreparedQuery;
  query.values = values;
  return query;
}

interface PreparedQuery extends Prepared {
  values: unknown[];
}

type Statement = string | Prepared;

/** What `sql()` runs a statement on: pg's pool, or the client a transaction holds. */
interface Queryable {
  query(
    query: string | PreparedQuery,
    values?: unknown[],
  ): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/**
 * Where a statement runs: the transaction's own connection when the manager belongs to one, else
 * the pool (pg checks a client out for the statement and returns it). Straight to pg, not through
 * TypeORM's query runner: the runner adds a connection object, logging and event broadcasts per
 * statement, none of which this service uses, and the read path is measured against plain pg
 * (bench/README.md). Errors are pg's own DatabaseError, which database-errors.ts reads directly.
 */
async function transactionQueryable(runner: QueryRunner): Promise<Queryable> {
  // What TypeORM would throw: a transaction whose connection died was released under us.
  if (runner.isReleased) throw new QueryRunnerAlreadyReleasedError();
  return (await runner.connect()) as Queryable;
}

function poolQueryable(manager: EntityManager): Queryable {
  const pool = (manager.connection.driver as unknown as { master?: Queryable }).master;
  if (!pool) throw new Error('Connection is not established with the database');
  return pool;
}

/** Runs one statement; rows and row count in one shape, whatever the command. */
export async function sql<R = Record<string, unknown>>(
  manager: EntityManager,
  statement: Statement,
  parameters: unknown[] = [],
): Promise<StatementResult<R>> {
  // The pool without an await of its own: most statements (every read) run outside a transaction.
  const runner = manager.queryRunner;
  const target = runner ? await transactionQueryable(runner) : poolQueryable(manager);
  const result =
    typeof statement === 'string'
      ? await target.query(statement, parameters)
      : await target.query(preparedQuery(statement, parameters));
  return { rows: result.rows as R[], affected: result.rowCount ?? result.rows.length };
}

/** Hydrates a raw row (`RETURNING *`, `SELECT *`) into an entity, using its column metadata. */
export function hydrate<E extends ObjectLiteral>(
  manager: EntityManager,
  target: EntityTarget<E>,
  row: Record<string, unknown>,
): E {
  const metadata = manager.connection.getMetadata(target);
  const entity = metadata.create() as E;
  for (const column of metadata.columns) {
    if (!(column.databaseName in row)) continue;
    column.setEntityValue(
      entity,
      manager.connection.driver.prepareHydratedValue(row[column.databaseName], column),
    );
  }
  return entity;
}

/** The first row hydrated, or null. */
export async function one<E extends ObjectLiteral>(
  manager: EntityManager,
  target: EntityTarget<E>,
  statement: Statement,
  parameters: unknown[] = [],
): Promise<E | null> {
  const { rows } = await sql(manager, statement, parameters);
  return rows.length ? hydrate(manager, target, rows[0]) : null;
}

export async function many<E extends ObjectLiteral>(
  manager: EntityManager,
  target: EntityTarget<E>,
  text: string,
  parameters: unknown[] = [],
): Promise<E[]> {
  const { rows } = await sql(manager, text, parameters);
  return rows.map((row) => hydrate(manager, target, row));
}

/** `SET a = $3, b = $4` from entity properties, with their values appended to `parameters`. */
function assignments<E extends ObjectLiteral>(
  manager: EntityManager,
  target: EntityTarget<E>,
  changes: Partial<E>,
  parameters: unknown[],
): string[] {
  const metadata = manager.connection.getMetadata(target);
  const sets: string[] = [];
  for (const [property, value] of Object.entries(changes)) {
    if (value === undefined) continue;
    const column = metadata.findColumnWithPropertyName(property);
    if (!column) throw new Error(`${metadata.name} has no column for ${property}`);
    parameters.push(value);
    sets.push(`${column.databaseName} = $${parameters.length}`);
  }
  return sets;
}

/**
 * The check and the write in one statement: `UPDATE … SET … WHERE id = $1 AND version = $2
 * RETURNING *` (the touch_version trigger moves the version and timestamps). Returns the updated row,
 * or undefined when no row matched (the version moved on, or the row is gone): two writers holding
 * the same version never both succeed.
 */
export async function updateIfVersion<E extends ObjectLiteral>(
  manager: EntityManager,
  target: EntityTarget<E>,
  id: string,
  condition: WriteCondition,
  changes: Partial<E>,
): Promise<E | undefined> {
  const table = manager.connection.getMetadata(target).tableName;
  const parameters: unknown[] = [id];
  // An empty change is still a write (the version moves), as a PATCH with `{}` has always been.
  const sets = assignments(manager, target, changes, parameters);
  if (!sets.length) sets.push('id = id');
  let guard = 'id = $1';
  if (condition.kind === 'version') {
    parameters.push(condition.version);
    guard += ` AND version = $${parameters.length}`;
  }
  return (
    (await one(
      manager,
      target,
      `UPDATE ${table} SET ${sets.join(', ')} WHERE ${guard} RETURNING *`,
      parameters,
    )) ?? undefined
  );
}

/** `DELETE … WHERE id = $1 AND version = $2`: true when the row was deleted. */
export async function deleteIfVersion<E extends ObjectLiteral>(
  manager: EntityManager,
  target: EntityTarget<E>,
  id: string,
  condition: WriteCondition,
): Promise<boolean> {
  const table = manager.connection.getMetadata(target).tableName;
  const versioned = condition.kind === 'version';
  const { affected } = await sql(
    manager,
    `DELETE FROM ${table} WHERE id = $1${versioned ? ' AND version = $2' : ''}`,
    versioned ? [id, condition.version] : [id],
  );
  return affected > 0;
}

/** INSERT of entity properties, `RETURNING *` hydrated. */
export async function insert<E extends ObjectLiteral>(
  manager: EntityManager,
  target: EntityTarget<E>,
  values: Partial<E>,
  suffix = '',
): Promise<E | null> {
  const metadata = manager.connection.getMetadata(target);
  const parameters: unknown[] = [];
  const columns: string[] = [];
  for (const [property, value] of Object.entries(values)) {
    if (value === undefined) continue;
    const column = metadata.findColumnWithPropertyName(property);
    if (!column) throw new Error(`${metadata.name} has no column for ${property}`);
    parameters.push(value);
    columns.push(column.databaseName);
  }
  return one(
    manager,
    target,
    `INSERT INTO ${metadata.tableName} (${columns.join(', ')})
     VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) ${suffix} RETURNING *`,
    parameters,
  );
}

/**
 * One page of rows in a stable order, and how many match in all, in one round trip (a window count);
 * a second query counts only when the page is past the end. `from` is `FROM … [WHERE …]`.
 */
export async function pageOfRows<R>(
  manager: EntityManager,
  query: {
    columns?: string;
    from: string;
    orderBy: string;
    parameters?: unknown[];
    limit: number;
    offset: number;
  },
): Promise<{ rows: R[]; total: number }> {
  const parameters = query.parameters ?? [];
  const n = parameters.length;
  const { rows } = await sql<R & { page_total: string }>(
    manager,
    `SELECT ${query.columns ?? '*'}, count(*) OVER () AS page_total ${query.from}
      ORDER BY ${query.orderBy} LIMIT $${n + 1} OFFSET $${n + 2}`,
    [...parameters, query.limit, query.offset],
  );
  const total = rows.length
    ? Number(rows[0].page_total)
    : (await sql<{ n: number }>(manager, `SELECT count(*)::int AS n ${query.from}`, parameters))
        .rows[0].n;
  for (const row of rows) delete (row as { page_total?: string }).page_total;
  return { rows, total };
}

/** pageOfRows, each row hydrated into an entity. */
export async function pageOf<E extends ObjectLiteral>(
  manager: EntityManager,
  target: EntityTarget<E>,
  query: Parameters<typeof pageOfRows>[1],
): Promise<{ items: E[]; total: number }> {
  const { rows, total } = await pageOfRows<Record<string, unknown>>(manager, query);
  return { items: rows.map((row) => hydrate(manager, target, row)), total };
}
