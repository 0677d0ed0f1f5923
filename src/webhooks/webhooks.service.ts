import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Caller } from '../common/access';
import type { Page } from '../common/http/pagination';
import { notFound, ProblemError } from '../common/problems/problem.error';
import { validationProblem } from '../common/problems/validation';
import type { Env } from '../config/env';
import type {
  CreatedWebhookDto,
  CreateWebhookDto,
  DeliveryDto,
  WebhookDto,
} from './dto/webhook.dto';
import { refuseWebhookUrl, type UrlPolicy } from './webhook-url';
import { type SubscriptionRow, WebhooksRepository } from './webhooks.repository';

export const webhookPath = (id: string): string => `/api/v1/webhooks/${id}`;

const toDto = (s: SubscriptionRow): WebhookDto => ({
  id: s.id,
  url: s.url,
  events: s.events,
  createdAt: s.created_at.toISOString(),
});

/** Webhook subscriptions and their deliveries (API.md §8); the sending is WebhookRelay's. */
@Injectable()
export class WebhooksService {
  readonly urlPolicy: UrlPolicy;

  constructor(
    private readonly webhooks: WebhooksRepository,
    config: ConfigService<Env, true>,
  ) {
    const env = config.get('NODE_ENV', { infer: true });
    this.urlPolicy = {
      allowPrivate:
        env !== 'production' || config.get('WEBHOOK_ALLOW_PRIVATE_URLS', { infer: true }),
    };
  }

  /** The secret follows the Standard Webhooks format: `whsec_` and 24 random bytes in base64. */
  async create(dto: CreateWebhookDto, caller: Caller): Promise<CreatedWebhookDto> {
    const refused = await refuseWebhookUrl(dto.url, this.urlPolicy);
    if (refused) throw validationProblem([{ field: 'url', message: `url ${refused}` }]);
    const events = dto.events.includes('*') ? ['*'] : [...new Set(dto.events)];
    const secret = `whsec_${randomBytes(24).toString('base64')}`;
    const row = await this.webhooks.insert(dto.url, events, secret, caller.id);
    return { ...toDto(row), secret };
  }

  async list(limit: number, offset: number): Promise<Page<WebhookDto>> {
    const { rows, total } = await this.webhooks.list(limit, offset);
    return { items: rows.map(toDto), total, limit, offset };
  }

  async get(id: string): Promise<WebhookDto> {
    const row = await this.webhooks.find(id);
    if (!row) throw notFound(`Webhook ${id}`);
    return toDto(row);
  }

  async remove(id: string): Promise<void> {
    if (!(await this.webhooks.delete(id))) throw notFound(`Webhook ${id}`);
  }

  async deliveries(id: string, limit: number, offset: number): Promise<Page<DeliveryDto>> {
    await this.get(id);
    const { rows, total } = await this.webhooks.deliveries(id, limit, offset);
    return {
      items: rows.map((d) => ({
        id: d.id,
        eventId: d.event_id,
        type: d.type,
        orderId: d.order_id,
        status: d.status,
        attempts: d.attempts,
        lastStatus: d.last_status,
        lastError: d.last_error,
        nextAttemptAt: d.status === 'pending' ? d.next_attempt_at.toISOString() : null,
      })),
      total,
      limit,
      offset,
    };
  }

  /** A failed delivery, queued again (one conditional write); anything else is 404 or 409. */
  async redeliver(id: string, deliveryId: string): Promise<void> {
    if (await this.webhooks.requeueFailed(id, deliveryId)) return;
    const delivery = await this.webhooks.findDelivery(id, deliveryId);
    if (!delivery) throw notFound(`Delivery ${deliveryId} of webhook ${id}`);
    throw new ProblemError(
      'DELIVERY_NOT_FAILED',
      `Delivery ${deliveryId} is ${delivery.status}; only a failed delivery can be redelivered.`,
      { deliveryStatus: delivery.status },
    );
  }
}
