import { Module } from '@nestjs/common';
import { NatsRelay } from './nats-relay';
import { OutboxPublishingRepository } from './outbox-publishing.repository';

/**
 * Publishes the outbox to NATS JetStream (NATS_URL). Without NATS_URL, or built without a database
 * (the OpenAPI document), NatsRelay connects to nothing and starts no timer.
 */
@Module({ providers: [OutboxPublishingRepository, NatsRelay] })
export class NatsModule {}
