import pino, { type DestinationStream, type Logger } from 'pino';
import { loggableDatabaseError } from '../common/database/database-errors';
import type { Env } from '../config/env';

/** Never written to logs, wherever they appear in a logged object. */
export const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.password',
  '*.passwordHash',
  '*.password_hash',
  '*.accessToken',
  '*.token',
  'err.parameters',
];

function prettyAvailable(): boolean {
  try {
    require.resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/** JSON lines in production and tests; pretty-printed in development when pino-pretty is installed. */
export function createRootLogger(env: Env, destination?: DestinationStream): Logger {
  const options = {
    level: env.LOG_LEVEL,
    redact: { paths: REDACT, censor: '[redacted]' },
    base: { service: 'order-service' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Wherever a database error is logged, only its SQLSTATE and names go out (never row content).
    serializers: {
      err: (err: unknown): unknown =>
        loggableDatabaseError(err) ?? pino.stdSerializers.err(err as Error),
    },
  };
  if (destination) return pino(options, destination);
  if (env.NODE_ENV === 'development' && process.stdout.isTTY && prettyAvailable()) {
    return pino({
      ...options,
      transport: {
        target: 'pino-pretty',
        options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' },
      },
    });
  }
  return pino(options);
}
