/**
 * The client's HTTP: one undici pool per host origin (kept-alive connections, HTTPS verified
 * against the CA the program gave, on top of Node's), a deadline on every request, and failures
 * turned into KryptonClientError with whether the request can have reached the host. Streams
 * (server-sent events) get their own request without a body timeout.
 */

import { Pool } from 'undici';
import { KryptonClientError } from './errors.js';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface TransportOptions {
  /** PEM CA certificates trusted for https:// hosts, besides Node's own. */
  ca?: string | Buffer;
  /** Connections per host (undici's default: unbounded). */
  connections?: number;
}

/** Errors that prove the request never left: the connection was not made. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function codeOf(e: unknown): string | undefined {
  const err = e as { code?: unknown; cause?: { code?: unknown } };
  if (typeof err?.code === 'string') return err.code;
  if (typeof err?.cause?.code === 'string') return err.cause.code;
  return undefined;
}

export class Transport {
  private readonly pools = new Map<string, Pool>();
  private closed = false;

  constructor(private readonly opts: TransportOptions = {}) {}

  private pool(origin: string): Pool {
    if (this.closed) throw new KryptonClientError('usage', 'the client is closed');
    let p = this.pools.get(origin);
    if (!p) {
      p = new Pool(origin, {
        connections: this.opts.connections ?? null,
        connect: this.opts.ca === undefined ? undefined : { ca: this.opts.ca },
      });
      this.pools.set(origin, p);
    }
    return p;
  }

  async send(
    origin: string,
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    timeoutMs: number,
  ): Promise<Answer> {
    // undici's own timers bound the wait: an AbortSignal.timeout per request costs a timer that
    // outlives the request (measured: a third of the client's throughput under load).
    const timeout = Math.max(1, Math.ceil(timeoutMs));
    try {
      const r = await this.pool(origin).request({
        method: method as 'GET',
        path,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body,
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
    } catch (e) {
      throw failure(origin, method, path, e, false);
    }
  }

  /** A long-lived GET (server-sent events): the status and the body as it arrives. */
  async stream(
    origin: string,
    path: string,
    headers: Record<string, string>,
    connectTimeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<{ status: number; body: AsyncIterable<Buffer>; text(): Promise<string>; close(): void }> {
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const r = await this.pool(origin).request({
        method: 'GET',
        path,
        headers: { accept: 'text/event-stream', ...headers },
        signal: abort.signal,
        headersTimeout: Math.max(1, Math.ceil(connectTimeoutMs)),
        bodyTimeout: 0,
      });
      return {
        status: r.statusCode,
        body: r.body,
        text: () => r.body.text(),
        close: () => {
          signal?.removeEventListener('abort', onAbort);
          r.body.destroy();
        },
      };
    } catch (e) {
      signal?.removeEventListener('abort', onAbort);
      throw failure(origin, 'GET', path, e, false);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}

/** The host's certificate was not trusted: asking again cannot help, and nothing was sent. */
function isTlsRefusal(code: string | undefined): boolean {
  return code !== undefined && /CERT|SIGNATURE|ERR_TLS/.test(code);
}

function failure(origin: string, method: string, path: string, e: unknown, timedOut: boolean): KryptonClientError {
  if (e instanceof KryptonClientError) return e;
  const code = codeOf(e);
  if (timedOut || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new KryptonClientError('timeout', `${method} ${origin}${path}: no answer within the deadline`, { host: origin, cause: e });
  }
  const message = (e as Error).message;
  const what = code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
  return new KryptonClientError('network', `${method} ${origin}${path}: ${what}`, {
    host: origin,
    notSent: (code !== undefined && NOT_SENT.has(code)) || isTlsRefusal(code),
    permanent: isTlsRefusal(code),
    cause: e,
  });
}
