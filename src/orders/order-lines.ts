import type { StockRow } from '../products/stock.repository';
import type { OrderItem } from './order.entity';
import type { NewLine } from './orders.repository';

/** Units per product, lines for the same product merged (first appearance keeps its place). */
export function unitsOf(
  items: readonly { productId: string; quantity: number }[],
): Map<string, number> {
  const units = new Map<string, number>();
  for (const { productId, quantity } of items) {
    const id = productId.toLowerCase();
    units.set(id, (units.get(id) ?? 0) + quantity);
  }
  return units;
}

/** A new line at the product's price now. */
export function lineOf(p: StockRow, quantity: number): NewLine {
  return { productId: p.id, sku: p.sku, name: p.name, unitPriceCents: p.priceCents, quantity };
}

/** A line kept by an edit: its snapshot (price, SKU, name) with a new quantity. */
export function keptLine(item: OrderItem, quantity: number): NewLine {
  return {
    productId: item.productId,
    sku: item.sku,
    name: item.name,
    unitPriceCents: item.unitPriceCents,
    quantity,
  };
}

export const totalOf = (lines: readonly NewLine[]): number =>
  lines.reduce((sum, l) => sum + l.unitPriceCents * l.quantity, 0);

/** A promotion's terms: exactly one of the two (API.md §11). */
export interface DiscountTerms {
  percentOff: number | null;
  amountOffCents: number | null;
}

/**
 * The discount on a subtotal (API.md §11): `floor(subtotal × percentOff / 100)`, or the amount off
 * but never more than the subtotal. The product is computed in BigInt, so it is exact whatever the
 * subtotal.
 */
export function discountOf(subtotalCents: number, terms: DiscountTerms | null): number {
  if (!terms) return 0;
  if (terms.percentOff !== null) {
    return Number((BigInt(subtotalCents) * BigInt(terms.percentOff)) / 100n);
  }
  return Math.min(subtotalCents, Number(terms.amountOffCents ?? 0));
}

/** The terms an order was placed with, which an edit reapplies; null without a code. */
export function termsOf(order: {
  promotionCode: string | null;
  promotionPercentOff: number | null;
  promotionAmountOffCents: number | null;
}): DiscountTerms | null {
  if (order.promotionCode === null) return null;
  return {
    percentOff: order.promotionPercentOff,
    amountOffCents:
      order.promotionAmountOffCents === null ? null : Number(order.promotionAmountOffCents),
  };
}
