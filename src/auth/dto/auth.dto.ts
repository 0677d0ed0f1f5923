import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsEmail, IsIn, IsString, Length, MaxLength } from 'class-validator';
import { Omittable } from '../../common/http/omittable';
import { trim } from '../../common/http/transforms';

export class RegisterDto {
  @ApiProperty({
    example: 'ada@example.com',
    description: 'Unique, compared case-insensitively after trimming.',
  })
  @Transform(trim)
  @IsEmail({}, { message: 'email must be an email address' })
  @MaxLength(254)
  email: string;

  @ApiProperty({ example: 'correct horse battery staple', minLength: 8, maxLength: 200 })
  @IsString()
  @Length(8, 200)
  password: string;

  @ApiProperty({ example: 'Ada Lovelace', minLength: 1, maxLength: 200 })
  @Transform(trim)
  @IsString()
  @Length(1, 200)
  name: string;
}

/** The example is the demo customer (seeded on `npm start`'s embedded database, outside production). */
export class LoginDto {
  @ApiProperty({ example: 'customer@example.com' })
  @Transform(trim)
  @IsString()
  @MaxLength(254)
  email: string;

  @ApiProperty({ example: 'customer-demo-password' })
  @IsString()
  @MaxLength(200)
  password: string;
}

export class TokenDto {
  @ApiProperty({ description: 'JWT (HS256) to send as `Authorization: Bearer <accessToken>`.' })
  accessToken: string;

  @ApiProperty({ enum: ['Bearer'], example: 'Bearer' })
  tokenType: 'Bearer';

  @ApiProperty({ description: 'Seconds until the token expires.', example: 3600 })
  expiresIn: number;
}

/**
 * `POST /auth/token`: the OAuth 2.0 password grant (RFC 6749 §4.3), form-encoded, so that the Swagger
 * UI's Authorize dialog can log in with an email and a password. Client credentials and scope are
 * accepted and ignored: there are no registered clients and no scopes.
 */
export class TokenRequestDto {
  @ApiProperty({ enum: ['password'], example: 'password' })
  @IsIn(['password'], { message: 'grant_type must be "password"' })
  grant_type: 'password';

  @ApiProperty({ example: 'customer@example.com', description: 'The account’s email.' })
  @Transform(trim)
  @IsString()
  @MaxLength(254)
  username: string;

  @ApiProperty({ example: 'customer-demo-password' })
  @IsString()
  @MaxLength(200)
  password: string;

  @ApiPropertyOptional({ description: 'Ignored (no scopes).' })
  @Omittable()
  @IsString()
  @MaxLength(1000)
  scope?: string;

  @ApiPropertyOptional({ description: 'Ignored (no registered clients).' })
  @Omittable()
  @IsString()
  @MaxLength(200)
  client_id?: string;

  @ApiPropertyOptional({ description: 'Ignored (no registered clients).' })
  @Omittable()
  @IsString()
  @MaxLength(200)
  client_secret?: string;
}

/** RFC 6749 §5.1: the same token as `POST /auth/login` gives, under OAuth's field names. */
export class OAuthTokenDto {
  @ApiProperty({ description: 'JWT (HS256) to send as `Authorization: Bearer <access_token>`.' })
  access_token: string;

  @ApiProperty({ enum: ['Bearer'], example: 'Bearer' })
  token_type: 'Bearer';

  @ApiProperty({ description: 'Seconds until the token expires.', example: 3600 })
  expires_in: number;
}
