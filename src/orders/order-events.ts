import { randomUUID } from 'node:crypto';
import type { OrderDto } from './dto/order.dto';
import type { OrderEventType } from './order-state';

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
