/**
 * The one place that maps KryptonError codes to HTTP statuses and Xenon's ServiceErrorResponse
 * body (docs/errors.md lists them). Anything that is not a KryptonError is a bug: it is logged with its
 * stack and answered 500 with a generic message, never with internals.
 */

import { KINDS } from '../../lib/document.js';
import { isKryptonError, KryptonError, type ErrorCode } from '../../lib/errors.js';

const STATUS: Record<ErrorCode, number> = {
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  MARKED_DELETED: 409,
  VERSION_CONFLICT: 400,
  INVALID_BODY: 400,
  INVALID_ID: 400,
  INVALID_QUERY: 400,
  INVALID_ARGUMENT: 400,
  METHOD_NOT_ALLOWED: 405,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  QUORUM_UNAVAILABLE: 503,
  TIMEOUT: 408,
  LIMIT_EXCEEDED: 503,
  LOG_CORRUPT: 500,
  LOG_FAILED: 500,
  DISK_FULL: 507,
  REPLICATION_FAILED: 500,
  STALE_EPOCH: 409,
  STALE_VIEW: 503,
  PEER_UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
  SERVICES_DIFFER: 409,
  STARTING: 503,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  // The command-line codes: a host that got this far has no such problem, so one reaching a client is a bug.
  INVALID_USAGE: 500,
  INVALID_SETUP: 500,
};

export interface ServiceErrorResponse {
  message: string;
  statusCode: number;
  documentKind: string;
  errorCode: number;
}

export function errorResponse(statusCode: number, message: string, errorCode = 0): ServiceErrorResponse {
  return { message, statusCode, documentKind: KINDS.serviceErrorResponse, errorCode };
}

/** The HTTP status a code is answered with. */
export function statusOf(code: ErrorCode): number {
  return STATUS[code];
}

/** Status and body for any thrown value; `internal` tells the caller to log it as a bug. */
export function toErrorResponse(e: unknown): { status: number; body: ServiceErrorResponse; internal: boolean } {
  if (isKryptonError(e)) {
    const status = statusOf(e.code);
    return { status, body: errorResponse(status, e.message, e.xenonErrorCode), internal: false };
  }
  return { status: 500, body: errorResponse(500, 'internal error'), internal: true };
}

/** Xenon's 405 for a known path that does not take this verb. */
export function notAllowed(method: string): never {
  throw new KryptonError('METHOD_NOT_ALLOWED', `Action not supported: ${method}`);
}
