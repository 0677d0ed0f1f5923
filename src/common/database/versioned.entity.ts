import { Column, CreateDateColumn, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/**
 * What every versioned resource (users, products, orders) has: a UUID, a version that goes +1 on
 * every change (guarded writes compare it), and timestamps. Versions and timestamps are moved by the
 * database itself (the touch_version trigger, on every UPDATE), never by TypeORM's save().
 */
export abstract class VersionedEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ type: 'integer', default: 1 })
  version: number;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ type: 'timestamptz', name: 'updated_at' })
  updatedAt: Date;

  /** When the previous version was made; null for the first. Set by the touch_version trigger. */
  @Column({ type: 'timestamptz', name: 'previous_updated_at', nullable: true })
  previousUpdatedAt: Date | null;
}
