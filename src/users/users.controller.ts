import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Query } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiNoContentResponse,
  ApiNotModifiedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { type Caller, CurrentUser, Roles } from '../common/access';
import {
  ApiConditionalGetHeaders,
  ApiPreconditionHeaders,
  VALIDATOR_HEADERS,
} from '../common/http/openapi-headers';
import { PageQueryDto } from '../common/http/pagination';
import type { Preconditions } from '../common/http/preconditions';
import type { Reader } from '../common/database/reader';
import { ReadFrom, RequestPreconditions, VersionedResponse } from '../common/http/responses';
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
    @ReadFrom() reader: Reader,
  ): Promise<VersionedResponse<UserDto>> {
    return new VersionedResponse(
      await reader.one(async (m) =>
        this.users.describe(await this.users.findVisible(caller.id, caller, m)),
      ),
    );
  }

  @Get()
  @Roles('admin')
  @ApiOperation({
    summary: 'List users (admin)',
    description: 'Ordered by creation time, then id.',
  })
  @ApiOkResponse({ type: UserPageDto })
  @ApiProblems('FORBIDDEN', 'VALIDATION_FAILED')
  async list(@Query() query: PageQueryDto, @ReadFrom() reader: Reader): Promise<UserPageDto> {
    const page = await reader.list((m) => this.users.list(query.limit, query.offset, m));
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
    @ReadFrom() reader: Reader,
  ): Promise<VersionedResponse<UserDto>> {
    return new VersionedResponse(
      await reader.one(async (m) =>
        this.users.describe(await this.users.findVisible(id, caller, m)),
      ),
    );
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
    @RequestPreconditions() preconditions: Preconditions,
  ): Promise<VersionedResponse<UserDto>> {
    const user = await this.users.update(id, body, caller, preconditions);
    return new VersionedResponse(this.users.describe(user));
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
    @RequestPreconditions() preconditions: Preconditions,
  ): Promise<void> {
    await this.users.remove(id, caller, preconditions);
  }
}
