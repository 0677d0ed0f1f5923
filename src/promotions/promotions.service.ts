import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { constraintViolation } from '../common/database/database-errors';
import type { Page } from '../common/http/pagination';
import {
  guardedMutation,
  type Preconditions,
  type Versioned,
  versioned,
} from '../common/http/preconditions';
import { notFound, ProblemError } from '../common/problems/problem.error';
import { validationProblem } from '../common/problems/validation';
import {
  type CreatePromotionDto,
  PromotionDto,
  type PromotionQueryDto,
  type UpdatePromotionDto,
} from './dto/promotion.dto';
import type { Promotion } from './promotion.entity';
import { type PromotionFields, PromotionsRepository } from './promotions.repository';

export const promotionPath = (id: string): string => `/api/v1/promotions/${id}`;

const dateOf = (v: string | null | undefined): Date | null | undefined =>
  v === undefined ? undefined : v === null ? null : new Date(v);

/** The fields a body names, as the columns take them (undefined: left as it is). */
function changesOf(input: Omit<UpdatePromotionDto, 'version'>): Partial<PromotionFields> {
  const changes: Partial<PromotionFields> = {
    code: input.code,
    percentOff: input.percentOff,
    amountOffCents: input.amountOffCents,
    currency: input.currency,
    startsAt: dateOf(input.startsAt),
    endsAt: dateOf(input.endsAt),
    usageLimit: input.usageLimit,
    perCustomerLimit: input.perCustomerLimit,
    active: input.active,
  };
  // Choosing one kind of discount clears the other.
  if (input.percentOff != null) {
    changes.amountOffCents ??= null;
    changes.currency ??= null;
  }
  if (input.amountOffCents != null) changes.percentOff ??= null;
  return changes;
}

/** 400 unless exactly one discount, a currency exactly with an amount, and an end after the start. */
function checkTerms(p: Partial<PromotionFields>): void {
  const errors: { field: string; message: string }[] = [];
  const percent = p.percentOff != null;
  const amount = p.amountOffCents != null;
  if (percent === amount) {
    errors.push({
      field: percent ? 'amountOffCents' : 'percentOff',
      message: 'exactly one of percentOff and amountOffCents must be given',
    });
  }
  if (amount && p.currency == null) {
    errors.push({ field: 'currency', message: 'currency is required with amountOffCents' });
  }
  if (!amount && p.currency != null) {
    errors.push({ field: 'currency', message: 'currency goes only with amountOffCents' });
  }
  if (p.startsAt && p.endsAt && p.endsAt <= p.startsAt) {
    errors.push({ field: 'endsAt', message: 'endsAt must be after startsAt' });
  }
  if (errors.length) throw validationProblem(errors);
}

const defined = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** `/promotions` (admin): a versioned resource like products (API.md §3, §11). */
@Injectable()
export class PromotionsService {
  constructor(private readonly promotions: PromotionsRepository) {}

  describe(promotion: Promotion): Versioned<PromotionDto> {
    return versioned('promotion', promotion, PromotionDto.from(promotion));
  }

  async create(input: CreatePromotionDto): Promise<Promotion> {
    const fields: PromotionFields = {
      code: input.code,
      percentOff: input.percentOff ?? null,
      amountOffCents: input.amountOffCents ?? null,
      currency: input.currency ?? null,
      startsAt: dateOf(input.startsAt) ?? null,
      endsAt: dateOf(input.endsAt) ?? null,
      usageLimit: input.usageLimit ?? null,
      perCustomerLimit: input.perCustomerLimit ?? null,
      active: input.active ?? true,
    };
    checkTerms(fields);
    try {
      return await this.promotions.insert(fields);
    } catch (err) {
      throw await this.explainConflict(err, input.code);
    }
  }

  async findById(id: string, m?: EntityManager): Promise<Promotion> {
    const promotion = await this.promotions.findById(id, m);
    if (!promotion) throw notFound(`Promotion ${id}`);
    return promotion;
  }

  list(query: PromotionQueryDto, m?: EntityManager): Promise<Page<Promotion>> {
    return this.promotions.list(query, m);
  }

  async update(
    id: string,
    patch: UpdatePromotionDto,
    preconditions: Preconditions,
  ): Promise<Promotion> {
    const { version, ...input } = patch;
    const changes = defined(changesOf(input));
    try {
      return (await guardedMutation({
        preconditions,
        bodyVersion: version,
        resourceName: `promotion ${id}`,
        load: () => this.promotions.findById(id),
        describe: (p) => this.describe(p),
        notFound: () => notFound(`Promotion ${id}`),
        // Checked against the version the write is guarded by: the terms as they will be.
        write: (condition, current) => {
          checkTerms({ ...current, ...changes });
          return this.promotions.update(id, condition, changes);
        },
      })) as Promotion;
    } catch (err) {
      throw await this.explainConflict(err, input.code, id);
    }
  }

  async remove(id: string, preconditions: Preconditions): Promise<void> {
    try {
      await guardedMutation({
        preconditions,
        acceptsBodyVersion: false,
        resourceName: `promotion ${id}`,
        load: () => this.promotions.findById(id),
        describe: (p) => this.describe(p),
        notFound: () => notFound(`Promotion ${id}`),
        write: (condition) => this.promotions.delete(id, condition),
      });
    } catch (err) {
      throw await this.explainConflict(err, undefined, id);
    }
  }

  /** A constraint violation as its precise problem; the lookups only enrich the answer. */
  private async explainConflict(err: unknown, code?: string, id?: string): Promise<unknown> {
    const violation = constraintViolation(err);
    if (!violation) return err;
    if (violation.code === 'PROMOTION_CODE_TAKEN' && code !== undefined) {
      const existing = await this.promotions.findByCode(code);
      return new ProblemError(
        'PROMOTION_CODE_TAKEN',
        `Another promotion already uses the code "${code}".`,
        {
          field: 'code',
          value: code,
          ...(existing ? { conflictingResource: promotionPath(existing.id) } : {}),
        },
      );
    }
    if (violation.code === 'RESOURCE_IN_USE' && id !== undefined) {
      const count = await this.promotions.countOrdersReferencing(id);
      return new ProblemError(
        'RESOURCE_IN_USE',
        `Promotion ${id} is on ${count} order(s) and cannot be deleted; set active to false to stop it. Nothing was deleted.`,
        { dependents: { orders: count } },
      );
    }
    return err;
  }
}
