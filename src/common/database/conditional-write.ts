import type { EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import type { WriteCondition } from '../http/preconditions';

/** Hydrates a raw `RETURNING *` row into an entity, using the entity's column metadata. */
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

/**
 * The check and the write in one statement: `UPDATE … SET …, version = version + 1 WHERE id = $1
 * AND version = $2 RETURNING *`. Returns the updated row, or undefined when no row matched (the
 * version moved on, or the row is gone): two writers holding the same version never both succeed.
 */
export async function updateIfVersion<E extends ObjectLiteral>(
  manager: EntityManager,
  target: EntityTarget<E>,
  id: string,
  condition: WriteCondition,
  changes: QueryDeepPartialEntity<E>,
): Promise<E | undefined> {
  const qb = manager
    .createQueryBuilder()
    .update(target)
    .set({
      ...changes,
      version: () => 'version + 1',
      updatedAt: () => 'now()',
    })
    .where('id = :id', { id });
  if (condition.kind === 'version')
    qb.andWhere('version = :version', { version: condition.version });
  const result = await qb.returning('*').execute();
  const rows = result.raw as Record<string, unknown>[];
  return rows.length ? hydrate(manager, target, rows[0]) : undefined;
}

/** `DELETE … WHERE id = $1 AND version = $2`: true when the row was deleted. */
export async function deleteIfVersion<E extends ObjectLiteral>(
  manager: EntityManager,
  target: EntityTarget<E>,
  id: string,
  condition: WriteCondition,
): Promise<boolean> {
  const qb = manager.createQueryBuilder().delete().from(target).where('id = :id', { id });
  if (condition.kind === 'version')
    qb.andWhere('version = :version', { version: condition.version });
  const result = await qb.execute();
  return (result.affected ?? 0) > 0;
}

export interface StatementResult<R> {
  rows: R[];
  affected: number;
}

/**
 * Runs one SQL statement on the manager's connection and returns its rows and row count in one
 * shape, whatever the command (TypeORM's plain `query()` returns `[rows, count]` for UPDATE and
 * DELETE but bare rows for SELECT and INSERT).
 */
export async function sql<R = Record<string, unknown>>(
  manager: EntityManager,
  text: string,
  parameters: unknown[] = [],
): Promise<StatementResult<R>> {
  const runner = manager.queryRunner ?? manager.connection.createQueryRunner();
  try {
    const result = await runner.query(text, parameters, true);
    return { rows: result.records as R[], affected: result.affected ?? result.records.length };
  } finally {
    if (!manager.queryRunner) await runner.release();
  }
}
