import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import {
  deleteIfVersion,
  insert,
  one,
  pageOf,
  sql,
  updateIfVersion,
  type WriteCondition,
} from '../common/database/sql';
import type { Page } from '../common/http/pagination';
import type { PromotionQueryDto } from './dto/promotion.dto';
import { Promotion } from './promotion.entity';

/** What a create or a change writes (everything but timesUsed, which only checkouts move). */
export type PromotionFields = Pick<
  Promotion,
  | 'code'
  | 'percentOff'
  | 'amountOffCents'
  | 'currency'
  | 'startsAt'
  | 'endsAt'
  | 'usageLimit'
  | 'perCustomerLimit'
  | 'active'
>;

/** Every SQL statement on `promotions` outside a checkout (the use is counted by the placement). */
@Injectable()
export class PromotionsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  private get m(): EntityManager {
    return this.dataSource.manager;
  }

  findById(id: string, m: EntityManager = this.m): Promise<Promotion | null> {
    return one(m, Promotion, 'SELECT * FROM promotions WHERE id = $1', [id]);
  }

  /** Codes are one identity trimmed and upper-case (promotions_code_key). */
  findByCode(code: string, m: EntityManager = this.m): Promise<Promotion | null> {
    return one(m, Promotion, 'SELECT * FROM promotions WHERE code = upper(btrim($1))', [code]);
  }

  async list(query: PromotionQueryDto, m: EntityManager = this.m): Promise<Page<Promotion>> {
    const page = await pageOf(m, Promotion, {
      from: 'FROM promotions',
      orderBy: 'created_at, id',
      limit: query.limit,
      offset: query.offset,
    });
    return { ...page, limit: query.limit, offset: query.offset };
  }

  /** Inserts; the unique index on the code decides, never a read before. */
  async insert(fields: PromotionFields): Promise<Promotion> {
    return (await insert(this.m, Promotion, fields))!;
  }

  update(
    id: string,
    condition: WriteCondition,
    changes: Partial<PromotionFields>,
  ): Promise<Promotion | undefined> {
    return updateIfVersion<Promotion>(this.m, Promotion, id, condition, changes);
  }

  delete(id: string, condition: WriteCondition): Promise<boolean> {
    return deleteIfVersion(this.m, Promotion, id, condition);
  }

  async countOrdersReferencing(id: string): Promise<number> {
    const { rows } = await sql<{ n: number }>(
      this.m,
      'SELECT count(*)::int AS n FROM orders WHERE promotion_id = $1',
      [id],
    );
    return rows[0].n;
  }
}
