/**
 * The client hosts use to talk to each other: one undici Pool per peer origin, kept alive, so a
 * forwarded request or a gossip round reuses connections. Every call has a deadline; a refused
 * connection, a reset or a timeout comes back as a KryptonError with code PEER_UNAVAILABLE (see
 * peerError) rather than a hang. Requests carry
 * the member headers (the peer secret, server/auth/peer-auth.ts) unless marked external: a URL a
 * client chose, such as a watch's callback, never sees them.
 */

import { Pool, type Dispatcher } from 'undici';
import { isKryptonError, KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';
import type { TlsClientOptions } from './tls.js';

export interface PeerReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** undici's own deadline errors; ours is the TIMEOUT error of `send`. */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * A request to a peer that got no answer (or one its caller could not take); `detail.url` names
 * it, and `detail.timedOut` is 1 when its deadline passed (the peer may be alive but slow, unlike
 * a refused connection).
 */
export function peerError(url: string, cause: unknown): KryptonError {
  const why = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown } | undefined)?.code;
  const timedOut = (isKryptonError(cause) && cause.code === 'TIMEOUT') || (typeof code === 'string' && TIMEOUT_CODES.has(code));
  return new KryptonError('PEER_UNAVAILABLE', `request to ${url} failed: ${why}`, { detail: { url, timedOut: timedOut ? 1 : 0 } });
}

/** Whether `e` says a peer could not be reached, so the request may be tried again or elsewhere. */
export function isPeerError(e: unknown): e is KryptonError {
  return isKryptonError(e) && e.code === 'PEER_UNAVAILABLE';
}

/** Whether `e` says a peer did not answer by the request's deadline. */
export function isPeerTimeout(e: unknown): boolean {
  return isPeerError(e) && e.detail.timedOut === 1;
}

type DispatchController = Dispatcher.DispatchController;

interface Target {
  origin: string;
  path: string;
}

export interface PeerStats {
  requests: number;
  failures: number;
  /** Request and response bodies plus an estimate of the request line and headers. */
  bytesSent: number;
  bytesReceived: number;
}

export class PeerClient {
  private readonly pools = new Map<string, Pool>();
  private readonly targets = new Map<string, Target>();
  private closed = false;
  private readonly disconnectListeners: ((origin: string) => void)[] = [];
  private readonly abandonListeners: ((origin: string) => void)[] = [];
  readonly stats: PeerStats = { requests: 0, failures: 0, bytesSent: 0, bytesReceived: 0 };

  /**
   * `tls`: the host's certificate, presented to https:// peers that ask for one, and the CAs their
   * certificates are verified against; without it https:// peers are verified against Node's
   * default CAs (plus NODE_EXTRA_CA_CERTS) and no certificate is presented. `memberHeaders`: the
   * proof of membership, sent to members and self, never with external requests.
   */
  constructor(private readonly opts: { tls?: TlsClientOptions; memberHeaders?: Record<string, string> } = {}) {}

  private pool(origin: string): Pool {
    let p = this.pools.get(origin);
    if (!p) {
      const connect = this.opts.tls && origin.startsWith('https:') ? { connect: { ...this.opts.tls } } : {};
      p = new Pool(origin, { connections: limits.peerConnectionsMax, keepAliveTimeout: limits.peerKeepAliveMs, pipelining: 1, ...connect });
      // A killed peer's kernel closes every connection to it at once: membership probes it now.
      p.on('disconnect', (_o, _targets, err) => {
        if (this.closed || err?.code === 'UND_ERR_INFO' || err?.code === 'UND_ERR_DESTROYED') return;
        for (const l of this.disconnectListeners) l(origin);
      });
      this.pools.set(origin, p);
    }
    return p;
  }

  /** Called with a peer's origin when abandon() writes it off: requests queued for it elsewhere should fail too. */
  onAbandon(cb: (origin: string) => void): void {
    this.abandonListeners.push(cb);
  }

  /** Called with a peer's origin when a connection to it closes for any reason but this client's own choice. */
  onDisconnect(cb: (origin: string) => void): void {
    this.disconnectListeners.push(cb);
  }

  /** One request, its whole answer collected. */
  request(
    url: string,
    opts: { method: string; body?: string | Buffer; headers?: Record<string, string>; timeoutMs: number; external?: boolean },
  ): Promise<PeerReply> {
    const headers: Record<string, string> = opts.external ? { ...opts.headers } : { ...this.opts.memberHeaders, ...opts.headers };
    if (opts.body !== undefined) headers['content-type'] ??= 'application/json';
    return this.send(url, opts.method, headers, opts.body, opts.timeoutMs);
  }

  /**
   * A request whose 2xx answer is read as it arrives: each chunk goes to `onChunk` (a batch of
   * forwarded requests answers each one as soon as it is done). Any other status comes back with
   * its whole body. The deadline covers the whole answer.
   */
  async streamed(
    url: string,
    opts: { method: string; body: Buffer; headers: Record<string, string>; timeoutMs: number },
    onChunk: (chunk: Buffer) => void,
  ): Promise<{ status: number; body?: Buffer }> {
    const r = await this.send(url, opts.method, { ...this.opts.memberHeaders, ...opts.headers }, opts.body, opts.timeoutMs, onChunk);
    return r.status >= 200 && r.status < 300 ? { status: r.status } : { status: r.status, body: r.body };
  }

  /**
   * Both kinds of request, through undici's dispatch API with a handler of its own rather than
   * `pool.request`: no body stream, no AbortSignal, no promise per stage. Measured against a
   * loopback node server with a 3 KB body (the size of a replication batch): 75 -> 46 us of CPU
   * per request, client and server together. Every replication batch and gossip round pays it.
   * `stream`: where a 2xx answer's chunks go instead of into the returned body.
   */
  private send(
    url: string,
    method: string,
    headers: Record<string, string>,
    body: string | Buffer | undefined,
    timeoutMs: number,
    stream?: (chunk: Buffer) => void,
  ): Promise<PeerReply> {
    if (this.closed) return Promise.reject(peerError(url, 'peer client closed'));
    let target: Target;
    try {
      target = this.target(url);
    } catch (e) {
      return Promise.reject(peerError(url, e));
    }
    this.stats.requests++;
    this.stats.bytesSent += (body?.length ?? 0) + target.path.length + 64;
    return new Promise<PeerReply>((resolve, reject) => {
      const call = new PeerCall(
        timeoutMs,
        stream,
        (r) => {
          this.stats.bytesReceived += r.received;
          resolve(r.reply);
        },
        (e) => {
          this.stats.failures++;
          reject(peerError(url, e));
        },
      );
      try {
        this.pool(target.origin).dispatch(
          { path: target.path, method: method as 'GET', headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs },
          call,
        );
      } catch (e) {
        call.fail(e);
      }
    });
  }

  /** Origin and path of `url`, parsed once per distinct URL (a host calls the same few over and over). */
  private target(url: string): Target {
    let t = this.targets.get(url);
    if (t === undefined) {
      const u = new URL(url);
      t = { origin: u.origin, path: u.pathname + u.search };
      // Callback URLs are the client's choice: the cache must not grow with them.
      if (this.targets.size >= limits.peerUrlsCachedMax) this.targets.clear();
      this.targets.set(url, t);
    }
    return t;
  }

  async json(
    url: string,
    opts: { method: string; body?: unknown; headers?: Record<string, string>; timeoutMs: number },
  ): Promise<{ status: number; body: unknown }> {
    const r = await this.request(url, { ...opts, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    let body: unknown;
    try {
      body = r.body.length ? JSON.parse(r.body.toString('utf8')) : undefined;
    } catch {
      body = undefined;
    }
    return { status: r.status, body };
  }

  /**
   * Fails every request in flight to `origin` now and starts its connections afresh: for a peer
   * the group has just written off, whose answers nobody should wait out the long deadlines for.
   */
  abandon(origin: string): void {
    for (const l of this.abandonListeners) l(origin);
    const p = this.pools.get(origin);
    if (!p) return;
    this.pools.delete(origin);
    void p.destroy(new KryptonError('PEER_UNAVAILABLE', 'peer marked UNAVAILABLE')).catch(() => undefined);
  }

  /** Whether close() was called: every request from then on fails, for good. */
  get isClosed(): boolean {
    return this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
    this.pools.clear();
  }
}

/**
 * One request in flight, as undici's dispatch handler: it collects the answer (or hands a 2xx
 * answer's chunks to `stream`) and settles exactly once, at the end of the answer, on an error,
 * or at the deadline. The deadline covers the wait for a connection too, which undici's own
 * timeouts do not.
 */
class PeerCall {
  private settled = false;
  private controller: DispatchController | undefined;
  private cancelled: Error | undefined;
  private status = 0;
  private headers: PeerReply['headers'] = {};
  private streaming = false;
  private received = 64;
  private readonly chunks: Buffer[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    timeoutMs: number,
    private readonly stream: ((chunk: Buffer) => void) | undefined,
    private readonly done: (r: { reply: PeerReply; received: number }) => void,
    private readonly failed: (e: unknown) => void,
  ) {
    this.timer = setTimeout(() => {
      this.cancelled = new KryptonError('TIMEOUT', `timed out after ${timeoutMs} ms`);
      this.controller?.abort(this.cancelled);
      this.fail(this.cancelled);
    }, timeoutMs);
  }

  fail(e: unknown): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.failed(e);
  }

  onRequestStart(c: DispatchController): void {
    this.controller = c;
    if (this.cancelled) c.abort(this.cancelled);
  }

  onResponseStart(_c: DispatchController, statusCode: number, h: PeerReply['headers']): void {
    this.status = statusCode;
    this.headers = h;
    this.streaming = this.stream !== undefined && statusCode >= 200 && statusCode < 300;
  }

  onResponseData(_c: DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    this.received += chunk.length;
    if (!this.streaming) {
      this.chunks.push(chunk);
      return;
    }
    try {
      this.stream!(chunk);
    } catch (e) {
      // The caller could not take the answer: stop reading it and fail the request.
      this.controller?.abort(e as Error);
      this.fail(e);
    }
  }

  onResponseEnd(): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.done({ reply: { status: this.status, headers: this.headers, body }, received: this.received });
  }

  onResponseError(_c: DispatchController, e: Error): void {
    this.fail(e);
  }
}
