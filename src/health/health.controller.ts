import { Controller, Get } from '@nestjs/common';
import {
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  type HealthCheckResult,
  TypeOrmHealthIndicator,
} from '@nestjs/terminus';
import { Public } from '../common/access';
import { ShutdownState } from './shutdown-state';

@ApiTags('operations')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly shutdown: ShutdownState,
  ) {}

  @Get('live')
  @ApiOperation({
    summary: 'Liveness',
    description: 'The process is up. Does not touch the database.',
  })
  @ApiOkResponse({ schema: { example: { status: 'ok' } } })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({
    summary: 'Readiness',
    description: 'The database answers a ping within 1.5 s and the process is not draining.',
  })
  @ApiOkResponse({ description: 'Ready to take traffic.' })
  @ApiServiceUnavailableResponse({
    description: 'Database unreachable, or shutting down (problem+json 503).',
  })
  ready(): Promise<HealthCheckResult> {
    return this.health.check([
      () => {
        const session = this.indicators.check('shutdown');
        return this.shutdown.draining ? session.down({ draining: true }) : session.up();
      },
      this.db.pingCheck('database', { timeout: 1500 }),
    ]);
  }
}
