import { Injectable } from '@nestjs/common';

/** Set when a shutdown signal arrives, so that readiness fails while in-flight requests drain. */
@Injectable()
export class ShutdownState {
  draining = false;
}
