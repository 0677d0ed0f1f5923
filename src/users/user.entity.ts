import { Column, Entity } from 'typeorm';
import type { Role } from '../common/access';
import { VersionedEntity } from '../common/database/versioned.entity';

@Entity({ name: 'users' })
export class User extends VersionedEntity {
  /** Stored trimmed, as typed; unique case-insensitively by the index users_email_lower_key. */
  @Column({ type: 'text' })
  email: string;

  @Column({ type: 'text' })
  name: string;

  @Column({ type: 'text', name: 'password_hash', select: false })
  passwordHash: string;

  @Column({ type: 'text' })
  role: Role;
}
