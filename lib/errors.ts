/**
 * Krypton's one error class and its stable codes (listed with their statuses in docs/errors.md).
 * Every failure a client or operator can see is a KryptonError with a string code: bad input, an
 * unreachable peer, a damaged log, a wrong flag. server/net/http-errors.ts is the only place that
 * turns codes into HTTP statuses and Xenon's ServiceErrorResponse. Two kinds of thrown value are
 * deliberately not KryptonErrors: broken invariants (bugs, see `invariant` and `invariantError`),
 * which crash loudly or answer 500, and the memory log backend's errno-shaped errors (wal/file.ts),
 * which mimic Node's so the log handles both backends alike. The benches, checkers, recipes and
 * torture runner (tools/bench, tools/check, tools/recipes, tools/torture) are clients of Krypton,
 * not part of it: like any client they throw plain Errors.
 */

export const ERROR_CODES = [
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'MARKED_DELETED',
  'VERSION_CONFLICT',
  'INVALID_BODY',
  'INVALID_ID',
  'INVALID_QUERY',
  'INVALID_ARGUMENT',
  'METHOD_NOT_ALLOWED',
  'BODY_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'QUORUM_UNAVAILABLE',
  'TIMEOUT',
  'LIMIT_EXCEEDED',
  'LOG_CORRUPT',
  'LOG_FAILED',
  'DISK_FULL',
  'REPLICATION_FAILED',
  'STALE_EPOCH',
  'STALE_VIEW',
  'PEER_UNAVAILABLE',
  'SHUTTING_DOWN',
  'SERVICES_DIFFER',
  'STARTING',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'INVALID_USAGE',
  'INVALID_SETUP',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** Whether a code read from the wire (a peer's answer) is one of ours. */
export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && KNOWN_CODES.has(x);
}

/** Xenon's numeric error codes (ServiceErrorResponse.errorCode), where Xenon defines one. */
export const XENON_ERROR_CODES = {
  SERVICE_NOT_FOUND: 0x80000000 | 0,
  STATE_MARKED_DELETED: 0x80000002 | 0,
  SERVICE_ALREADY_EXISTS: 0x80000003 | 0,
  SERVICE_QUEUE_LIMIT_EXCEEDED: 0x80000007 | 0,
} as const;

/**
 * Krypton's own numeric errorCode values, for answers a peer must recognize from the body alone
 * (a relayed answer carries only the status and Xenon's error body).
 */
export const KRYPTON_ERROR_CODES = {
  /** STALE_VIEW: a forward chosen under a view of the owner that the owner has since left behind. */
  STALE_VIEW: 0x40000001 | 0,
} as const;

/** Marks KryptonErrors across copies of this module (see isKryptonError). */
const BRAND = Symbol.for('krypton.error');

export class KryptonError extends Error {
  readonly [BRAND] = true;
  readonly code: ErrorCode;
  /** Xenon's numeric errorCode for the response body; 0 where Xenon has none. */
  readonly xenonErrorCode: number;
  /** Extra fields a caller may want to act on (file and offset for LOG_CORRUPT, say). */
  readonly detail: Readonly<Record<string, string | number>>;

  constructor(code: ErrorCode, message: string, opts: { xenonErrorCode?: number; detail?: Record<string, string | number> } = {}) {
    super(message);
    this.name = 'KryptonError';
    this.code = code;
    this.xenonErrorCode = opts.xenonErrorCode ?? defaultXenonCode(code);
    this.detail = opts.detail ?? {};
  }
}

function defaultXenonCode(code: ErrorCode): number {
  switch (code) {
    case 'NOT_FOUND':
      return XENON_ERROR_CODES.SERVICE_NOT_FOUND;
    case 'MARKED_DELETED':
      return XENON_ERROR_CODES.STATE_MARKED_DELETED;
    case 'ALREADY_EXISTS':
      return XENON_ERROR_CODES.SERVICE_ALREADY_EXISTS;
    case 'LIMIT_EXCEEDED':
      return XENON_ERROR_CODES.SERVICE_QUEUE_LIMIT_EXCEEDED;
    case 'STALE_VIEW':
      return KRYPTON_ERROR_CODES.STALE_VIEW;
    default:
      return 0;
  }
}

/**
 * Whether `e` is a KryptonError, also one made by another copy of this module: a service module
 * loaded with `--services` may import krypton/service from an install of its own.
 */
export function isKryptonError(e: unknown): e is KryptonError {
  if (e instanceof KryptonError) return true;
  const o = e as { [BRAND]?: unknown; code?: unknown } | null;
  return o !== null && typeof o === 'object' && o[BRAND] === true && isErrorCode(o.code);
}

/** The error of a broken invariant, for a caller that must reject with it rather than throw. */
export function invariantError(message: string): Error {
  return new Error(`invariant violated: ${message}`);
}

/** A broken invariant: a bug, never bad input. Crashes with a clear message. */
export function invariant(cond: unknown, message: string): asserts cond {
  if (!cond) throw invariantError(message);
}
