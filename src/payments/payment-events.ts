import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { OutboxRepository } from '../events/outbox.repository';
import { OrderDto } from '../orders/dto/order.dto';
import { traceparent } from '../orders/order-changes';
import { allowedTransitions, type PaymentEventType } from '../orders/order-state';
import { OrdersRepository } from '../orders/orders.repository';
import { PaymentDto, RefundDto } from './dto/payment.dto';
import type { Payment } from './payments.repository';
import type { Refund } from './refunds.repository';

/** `{id, type, occurredAt, data: {order, payment | refund}}` (API.md §9). */
export interface PaymentEvent {
  id: string;
  type: PaymentEventType;
  occurredAt: string;
  data: { order: OrderDto; payment?: PaymentDto; refund?: RefundDto };
}

/**
 * The `payment.*` and `refund.*` events, written into the outbox in the transaction of the change
 * they stand for, with the order as it is after it (read here, under the caller's row lock), as its
 * owner sees it. Never a client secret, never a refund's last error.
 */
@Injectable()
export class PaymentEvents {
  constructor(
    private readonly orders: OrdersRepository,
    private readonly outbox: OutboxRepository,
  ) {}

  async emit(
    m: EntityManager,
    type: PaymentEventType,
    subject: { payment: Payment } | { refund: Refund },
  ): Promise<void> {
    const orderId = 'payment' in subject ? subject.payment.orderId : subject.refund.orderId;
    const found = (await this.orders.findById(orderId, m))!;
    const items = await this.orders.items(orderId, m);
    const order = OrderDto.from(
      found.order,
      items,
      allowedTransitions(found.order.status, ['owner']),
    );
    const at = new Date();
    const event: PaymentEvent = {
      id: randomUUID(),
      type,
      occurredAt: at.toISOString(),
      data:
        'payment' in subject
          ? { order, payment: PaymentDto.from(subject.payment, false) }
          : { order, refund: RefundDto.from(subject.refund, false) },
    };
    await this.outbox.append(m, {
      id: event.id,
      type,
      orderId,
      orderVersion: found.order.version,
      occurredAt: event.occurredAt,
      body: JSON.stringify(event),
      traceparent: traceparent(),
    });
  }
}
