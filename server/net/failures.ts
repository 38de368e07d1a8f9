/**
 * The one log line of a request that failed on this host with a 5xx: a bug (not a KryptonError)
 * at error level with its stack, any other 5xx (a write short of its quorum, a full queue, a
 * failed log) at warn with its code and message, the cause an operator looks for. A failure an
 * owner relays through an entry host is logged by the owner, where it happened, not again by
 * the entry host; 4xx answers are the client's doing and are not logged, and neither is the 503
 * of an availability probe (`<service>/available`), which is its answer, not a failure.
 */

import type { Logger } from 'pino';
import { isKryptonError } from '../../lib/errors.js';

export function logFailure(
  logger: Logger,
  e: unknown,
  answer: { status: number; internal: boolean },
  req: { method?: string | undefined; url?: string | undefined },
  what = 'request',
): void {
  if (answer.internal) {
    logger.error({ err: e, method: req.method, url: req.url }, `${what} failed with an internal error`);
  } else if (answer.status >= 500 && isKryptonError(e) && !isAvailabilityProbe(req.url)) {
    logger.warn(
      { status: answer.status, code: e.code, method: req.method, url: req.url, cause: e.message },
      `${what} failed with ${answer.status} ${e.code}: ${e.message}`,
    );
  }
}

function isAvailabilityProbe(url: string | undefined): boolean {
  if (url === undefined) return false;
  const q = url.indexOf('?');
  return (q < 0 ? url : url.slice(0, q)).endsWith('/available');
}
