import { randomUUID } from 'node:crypto';
import type { OrderDto } from './dto/order.dto';

/**
 * The events an order change produces (API.md §8): one per change, written in the change's own
 * transaction (see OutboxRepository), so an event exists if and only if its change committed.
 */
export const ORDER_EVENT_TYPES = [
  'order.created',
  'order.edited',
  'order.paid',
  'order.shipped',
  'order.delivered',
  'order.cancelled',
  'order.expired',
] as const;
export type OrderEventType = (typeof ORDER_EVENT_TYPES)[number];

/** `{id, type, occurredAt, data: {order}}`: the order at that version, as its owner sees it. */
export interface OrderEvent {
  id: string;
  type: OrderEventType;
  occurredAt: string;
  data: { order: OrderDto };
}

export function orderEvent(type: OrderEventType, order: OrderDto, at = new Date()): OrderEvent {
  return { id: randomUUID(), type, occurredAt: at.toISOString(), data: { order } };
}
