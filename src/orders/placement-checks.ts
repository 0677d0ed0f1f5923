import { ProblemError } from '../common/problems/problem.error';
import { validationProblem } from '../common/problems/validation';
import type { CreateOrderDto } from './dto/order.dto';
import { insufficientStock, type StockRow } from '../products/stock.repository';
import { promotionNotApplicable } from '../promotions/promotion-uses';
import { discountOf, lineOf, totalOf } from './order-lines';
import type { NewLine } from './orders.repository';
import type { PlacementAnswer } from './placements.repository';

/** What a placement checks of what it read, and the problems it answers with (pure). */

/** 409 PRICE_CHANGED: the total now is not the one the customer was shown; the lines as now. */
export function priceChanged(expected: number, total: number, lines: NewLine[]): ProblemError {
  return new ProblemError(
    'PRICE_CHANGED',
    `The order would cost ${total}, not the ${expected} expected: a price or the promotion changed. Nothing was reserved.`,
    {
      expectedTotalCents: expected,
      totalCents: total,
      items: lines.map((l) => ({
        productId: l.productId,
        sku: l.sku,
        name: l.name,
        unitPriceCents: l.unitPriceCents,
        quantity: l.quantity,
      })),
    },
  );
}

/** 422 for unknown products, 409 for inactive ones, 400 for mixed currencies. */
export function vet(locked: StockRow[], ids: string[], dto: CreateOrderDto): void {
  const known = new Set(locked.map((p) => p.id));
  const unknown = [...ids].sort().filter((id) => !known.has(id));
  if (unknown.length) {
    throw new ProblemError(
      'UNKNOWN_PRODUCT',
      `${unknown.length} product(s) in the order do not exist: ${unknown.join(', ')}. Nothing was reserved.`,
      { items: unknown.map((productId) => ({ productId })) },
    );
  }
  const inactive = locked.filter((p) => !p.active);
  if (inactive.length) {
    throw new ProblemError(
      'PRODUCT_UNAVAILABLE',
      `Not for sale: ${inactive.map((p) => p.sku).join(', ')}. Remove them and resubmit; nothing was reserved.`,
      { items: inactive.map((p) => ({ productId: p.id, sku: p.sku })) },
    );
  }
  const currencies = new Set(locked.map((p) => p.currency));
  if (currencies.size > 1) {
    throw validationProblem(
      dto.items.map((_, i) => ({
        field: `items[${i}].productId`,
        message: `an order has one currency; these products are priced in ${[...currencies].join(' and ')}`,
      })),
    );
  }
}

/**
 * A checkout with a code or an expected total that place_order refused, explained from what it
 * read under its locks, in API.md §11's order: 422/409/400 for the products, 409
 * PROMOTION_NOT_APPLICABLE, 409 PRICE_CHANGED, 409 INSUFFICIENT_STOCK. Returns (without throwing)
 * when the step-by-step path must decide instead: overdue holds that hold uses of the code (before
 * `exhausted` or `customer_limit`) or sit on the products (before a shortage) are to be expired
 * first, or nothing was refused (a total of 0, paid at placement).
 */
export function explainTerms(
  answer: Extract<PlacementAnswer, { refused: unknown }>,
  ids: string[],
  wanted: Map<string, number>,
  dto: CreateOrderDto,
): void {
  const { refused, promotion } = answer;
  vet(refused, ids, dto);
  let discount = 0;
  if (dto.promotionCode !== undefined) {
    if (!promotion) return;
    const { reason } = promotion;
    if ((reason === 'exhausted' || reason === 'customer_limit') && promotion.overdue) return;
    if (reason) throw promotionNotApplicable(dto.promotionCode, reason);
  }
  const byId = new Map(refused.map((p) => [p.id, p]));
  const lines = ids.map((id) => lineOf(byId.get(id)!, wanted.get(id)!));
  const subtotal = totalOf(lines);
  if (promotion) discount = discountOf(subtotal, promotion);
  const total = subtotal - discount;
  if (dto.expectedTotalCents !== undefined && total !== dto.expectedTotalCents) {
    throw priceChanged(dto.expectedTotalCents, total, lines);
  }
  if (answer.overdue) return;
  const short = insufficientStock(refused, wanted);
  if (short) throw short;
}
