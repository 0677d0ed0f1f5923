import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsEmail, IsIn, IsInt, IsString, Length, MaxLength, Min } from 'class-validator';
import { PageMetaDto } from '../../common/http/pagination';
import { Omittable } from '../../common/http/omittable';
import { trim } from '../../common/http/transforms';
import { ROLES, type Role } from '../../common/access';
import type { User } from '../user.entity';

export class UserDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ example: 'ada@example.com' }) email: string;
  @ApiProperty({ example: 'Ada Lovelace' }) name: string;
  @ApiProperty({ enum: ROLES }) role: Role;
  @ApiProperty({ example: 1, description: '+1 on every change.' }) version: number;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;

  static from(user: User): UserDto {
    return {
      id: user.id,
      email: user.email,
      name: user.name,
      role: user.role,
      version: user.version,
      createdAt: user.createdAt.toISOString(),
      updatedAt: user.updatedAt.toISOString(),
    };
  }
}

export class UserPageDto extends PageMetaDto {
  @ApiProperty({ type: [UserDto] }) items: UserDto[];
}

export class UpdateUserDto {
  @ApiPropertyOptional({ example: 'ada@example.org' })
  @Omittable()
  @Transform(trim)
  @IsEmail({}, { message: 'email must be an email address' })
  @MaxLength(254)
  email?: string;

  @ApiPropertyOptional({ example: 'Ada King' })
  @Omittable()
  @Transform(trim)
  @IsString()
  @Length(1, 200)
  name?: string;

  @ApiPropertyOptional({ minLength: 8, maxLength: 200 })
  @Omittable()
  @IsString()
  @Length(8, 200)
  password?: string;

  @ApiPropertyOptional({ enum: ROLES, description: 'Admins only.' })
  @Omittable()
  @IsIn(ROLES)
  role?: Role;

  @ApiPropertyOptional({
    example: 3,
    description: 'The version this change is based on, when no If-Match header is sent.',
  })
  @Omittable()
  @IsInt()
  @Min(1)
  version?: number;
}
