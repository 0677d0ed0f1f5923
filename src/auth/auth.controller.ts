import { Body, Controller, Header, HttpCode, Post } from '@nestjs/common';
import {
  ApiConsumes,
  ApiCreatedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { VersionedResponse } from '../common/http/responses';
import { ApiProblems } from '../common/problems/openapi';
import { UserDto } from '../users/dto/user.dto';
import { userPath, UsersService } from '../users/users.service';
import { Public } from '../common/access';
import { AuthService } from './auth.service';
import { LoginDto, OAuthTokenDto, RegisterDto, TokenDto, TokenRequestDto } from './dto/auth.dto';

@ApiTags('auth')
@Public()
@Controller('auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly users: UsersService,
  ) {}

  @Post('register')
  @ApiOperation({
    summary: 'Register a customer account',
    description:
      'Always creates a customer. The email is unique case-insensitively after trimming; the database decides, so of two simultaneous registrations exactly one succeeds.',
  })
  @ApiCreatedResponse({
    type: UserDto,
    description: 'Created; `Location` names the user, `ETag` its version.',
  })
  @ApiProblems('VALIDATION_FAILED', 'EMAIL_TAKEN', 'UNSUPPORTED_MEDIA_TYPE', 'PAYLOAD_TOO_LARGE')
  async register(@Body() body: RegisterDto): Promise<VersionedResponse<UserDto>> {
    const user = await this.users.create(body);
    return new VersionedResponse(this.users.describe(user), { location: userPath(user.id) });
  }

  @Post('login')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Exchange email and password for a bearer token',
    description:
      'Wrong credentials answer 401 with the same body whether or not the email exists. Strictly rate-limited (login brute force).',
  })
  @ApiOkResponse({ type: TokenDto })
  @ApiProblems('VALIDATION_FAILED', 'UNAUTHENTICATED', 'UNSUPPORTED_MEDIA_TYPE')
  login(@Body() body: LoginDto): Promise<TokenDto> {
    return this.auth.login(body);
  }

  @Post('token')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'OAuth 2.0 password grant (for the Swagger UI’s Authorize dialog)',
    description:
      'The same credentials and token as `POST /auth/login`, as RFC 6749 §4.3 asks: an `application/x-www-form-urlencoded` body `grant_type=password&username=<email>&password=…` (JSON is accepted too), answered `{access_token, token_type, expires_in}`. Client credentials and `scope` are ignored. Wrong credentials → 401 problem+json, as on login. Strictly rate-limited.',
  })
  @ApiConsumes('application/x-www-form-urlencoded', 'application/json')
  @ApiOkResponse({ type: OAuthTokenDto })
  @ApiProblems('VALIDATION_FAILED', 'UNAUTHENTICATED', 'UNSUPPORTED_MEDIA_TYPE')
  async token(@Body() body: TokenRequestDto): Promise<OAuthTokenDto> {
    const token = await this.auth.login({ email: body.username, password: body.password });
    return {
      access_token: token.accessToken,
      token_type: token.tokenType,
      expires_in: token.expiresIn,
    };
  }
}
