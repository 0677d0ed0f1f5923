import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Patch,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiNoContentResponse,
  ApiNotModifiedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Caller, CurrentUser, Roles } from '../auth/auth.decorators';
import {
  ApiConditionalGetHeaders,
  ApiPreconditionHeaders,
  VALIDATOR_HEADERS,
} from '../common/http/openapi-headers';
import { PageQueryDto } from '../common/http/pagination';
import { conditionalGet, setValidators } from '../common/http/preconditions';
import { UuidPipe } from '../common/http/uuid.pipe';
import { ApiProblems } from '../common/problems/openapi';
import { UpdateUserDto, UserDto, UserPageDto } from './dto/user.dto';
import { UsersService } from './users.service';

@ApiTags('users')
@ApiBearerAuth()
@ApiProblems('UNAUTHENTICATED')
@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Get('me')
  @ApiOperation({
    summary: 'The calling user',
    description: 'With `ETag`; send it back as `If-Match` when you PATCH yourself.',
  })
  @ApiOkResponse({ type: UserDto, headers: VALIDATOR_HEADERS })
  @ApiNotModifiedResponse({ description: 'If-None-Match matched.' })
  @ApiConditionalGetHeaders()
  async me(
    @CurrentUser() caller: Caller,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<UserDto | undefined> {
    return this.respond(await this.users.findVisible(caller.id, caller), request, reply);
  }

  @Get()
  @Roles('admin')
  @ApiOperation({
    summary: 'List users (admin)',
    description: 'Ordered by creation time, then id.',
  })
  @ApiOkResponse({ type: UserPageDto })
  @ApiProblems('FORBIDDEN', 'VALIDATION_FAILED')
  async list(@Query() query: PageQueryDto): Promise<UserPageDto> {
    const page = await this.users.list(query.limit, query.offset);
    return { ...page, items: page.items.map((u) => UserDto.from(u)) };
  }

  @Get(':id')
  @ApiOperation({
    summary: 'One user',
    description: 'Customers may read only themselves; others are 404.',
  })
  @ApiOkResponse({ type: UserDto, headers: VALIDATOR_HEADERS })
  @ApiNotModifiedResponse({ description: 'If-None-Match matched.' })
  @ApiConditionalGetHeaders()
  @ApiProblems('NOT_FOUND', 'VALIDATION_FAILED')
  async get(
    @Param('id', UuidPipe) id: string,
    @CurrentUser() caller: Caller,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<UserDto | undefined> {
    return this.respond(await this.users.findVisible(id, caller), request, reply);
  }

  @Patch(':id')
  @ApiOperation({
    summary: 'Change a user (self or admin)',
    description:
      'Needs a precondition: `If-Match` (or `If-Unmodified-Since`), or `version` in the body. Only admins may change `role`.',
  })
  @ApiPreconditionHeaders()
  @ApiOkResponse({ type: UserDto, headers: VALIDATOR_HEADERS })
  @ApiProblems(
    'VALIDATION_FAILED',
    'FORBIDDEN',
    'NOT_FOUND',
    'EMAIL_TAKEN',
    'VERSION_MISMATCH',
    'PRECONDITION_FAILED',
    'PRECONDITION_REQUIRED',
    'UNSUPPORTED_MEDIA_TYPE',
  )
  async update(
    @Param('id', UuidPipe) id: string,
    @Body() body: UpdateUserDto,
    @CurrentUser() caller: Caller,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<UserDto> {
    const user = await this.users.update(id, body, caller, request);
    setValidators(reply, this.users.describe(user));
    return UserDto.from(user);
  }

  @Delete(':id')
  @HttpCode(204)
  @Roles('admin')
  @ApiOperation({
    summary: 'Delete a user (admin)',
    description: 'Needs a precondition, like PATCH.',
  })
  @ApiPreconditionHeaders()
  @ApiNoContentResponse({ description: 'Deleted.' })
  @ApiProblems(
    'FORBIDDEN',
    'NOT_FOUND',
    'RESOURCE_IN_USE',
    'PRECONDITION_FAILED',
    'PRECONDITION_REQUIRED',
    'VALIDATION_FAILED',
  )
  async remove(
    @Param('id', UuidPipe) id: string,
    @CurrentUser() caller: Caller,
    @Req() request: FastifyRequest,
  ): Promise<void> {
    await this.users.remove(id, caller, request);
  }

  private respond(
    user: Parameters<UsersService['describe']>[0],
    request: FastifyRequest,
    reply: FastifyReply,
  ): UserDto | undefined {
    const versioned = this.users.describe(user);
    return conditionalGet(request, reply, versioned);
  }
}
