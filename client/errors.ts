/**
 * What the client throws: one error class whose `kind` says what failed (the host answered with
 * an error status, the network failed, the deadline passed, the client was used wrongly) and
 * which carries the host's answer as it came, Xenon's ServiceErrorResponse, so a program can act
 * on the status and the message without parsing text.
 */

/** Xenon's ServiceErrorResponse, the body of every error answer (docs/errors.md). */
export interface XenonErrorBody {
  message: string;
  statusCode: number;
  documentKind?: string;
  errorCode?: number;
  [field: string]: unknown;
}

export type ClientErrorKind = 'http' | 'network' | 'timeout' | 'usage';

export class KryptonClientError extends Error {
  readonly kind: ClientErrorKind;
  /** The answer's status (kind 'http'), 0 otherwise. */
  readonly status: number;
  /** The answer's error body (kind 'http'); a body that was not Xenon's is wrapped with its text as the message. */
  readonly body: XenonErrorBody | undefined;
  /** The host that answered or failed, when one did. */
  readonly host: string | undefined;
  /** For 'network': whether the request is known never to have reached the host (connection refused). */
  readonly notSent: boolean;
  /** For 'network': a failure asking again cannot mend (the host's certificate is not trusted). */
  readonly permanent: boolean;

  constructor(
    kind: ClientErrorKind,
    message: string,
    opts: { status?: number; body?: XenonErrorBody; host?: string; notSent?: boolean; permanent?: boolean; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KryptonClientError';
    this.kind = kind;
    this.status = opts.status ?? 0;
    this.body = opts.body;
    this.host = opts.host;
    this.notSent = opts.notSent ?? false;
    this.permanent = opts.permanent ?? false;
  }
}

export function isClientError(e: unknown): e is KryptonClientError {
  return e instanceof KryptonClientError;
}

/** A 404: the document does not exist (or is deleted). */
export function isNotFound(e: unknown): boolean {
  return isClientError(e) && e.kind === 'http' && e.status === 404;
}

/** A 409: the document already exists, or a version or epoch conflict. */
export function isConflict(e: unknown): boolean {
  return isClientError(e) && e.kind === 'http' && e.status === 409;
}

/** The error body of an answer, whatever the host sent. */
export function errorBodyOf(status: number, text: string): XenonErrorBody {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object' && typeof (parsed as { message?: unknown }).message === 'string') {
      return { statusCode: status, ...(parsed as Record<string, unknown>) } as XenonErrorBody;
    }
  } catch {
    // Not JSON: the text itself is the message.
  }
  return { message: text || `status ${status}`, statusCode: status };
}
