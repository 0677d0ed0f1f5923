import { startTracing } from './tracing';

/**
 * Imported first by main.ts, before anything loads http, pg or Nest: instrumentations patch modules
 * as they load, so the SDK must be running before the rest of the process is.
 */
export const tracingSdk = startTracing();
