import { Module } from '@nestjs/common';
import { OutboxRepository } from './outbox.repository';
import { OutboxRetention } from './outbox-retention';

@Module({ providers: [OutboxRepository, OutboxRetention], exports: [OutboxRepository] })
export class EventsModule {}
