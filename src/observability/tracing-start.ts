import { EnvError } from '../config/env';
import { startTracing } from './tracing';

/**
 * Imported first by main.ts, before anything loads http, pg and Nest: instrumentations patch modules
 * as they load, so the SDK must be running before the rest of the process is. An invalid
 * OTEL_TRACES_SAMPLER(_ARG) starts nothing here: loadEnv, next, stops the process with its name.
 */
function start(): ReturnType<typeof startTracing> {
  try {
    return startTracing();
  } catch (err) {
    if (err instanceof EnvError) return undefined;
    throw err;
  }
}

export const tracingSdk = start();
