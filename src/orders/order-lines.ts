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
