/**
 * The client hosts use to talk to each other: one undici Pool per peer origin, kept alive, so a
 * forwarded request or a gossip round reuses connections. Every call has a deadline; a refused
 * connection, a reset or a timeout comes back as a PeerError rather than a hang. Requests carry
 * the member headers (the peer secret, server/peer-auth.ts) unless marked external: a URL a
 * client chose, such as a watch's callback, never sees them.
 */

import { Pool, type Dispatcher } from 'undici';
import { limits } from '../lib/limits.js';
import type { TlsClientOptions } from './tls.js';

export interface PeerReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export class PeerError extends Error {
  constructor(readonly url: string, cause: unknown) {
    super(`request to ${url} failed: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

type DispatchController = Dispatcher.DispatchController;

interface Target {
  origin: string;
  path: string;
}

/** Connections per peer; forwarding at 64 client connections fits comfortably. */
const POOL_CONNECTIONS = 32;

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
      p = new Pool(origin, { connections: POOL_CONNECTIONS, keepAliveTimeout: 30_000, pipelining: 1, ...connect });
      this.pools.set(origin, p);
    }
    return p;
  }

  /**
   * One request, its whole answer collected. Through undici's dispatch API with a handler of its
   * own rather than `pool.request`: no body stream, no AbortSignal, no promise per stage. Measured
   * against a loopback node server with a 3 KB body (the size of a replication batch): 75 -> 46 us
   * of CPU per request, client and server together. Every replication batch and gossip round pays it.
   */
  request(
    url: string,
    opts: { method: string; body?: string | Buffer; headers?: Record<string, string>; timeoutMs: number; external?: boolean },
  ): Promise<PeerReply> {
    if (this.closed) return Promise.reject(new PeerError(url, new Error('peer client closed')));
    let target: Target;
    try {
      target = this.target(url);
    } catch (e) {
      return Promise.reject(new PeerError(url, e));
    }
    const headers: Record<string, string> = opts.external ? { ...opts.headers } : { ...this.opts.memberHeaders, ...opts.headers };
    if (opts.body !== undefined) headers['content-type'] ??= 'application/json';
    this.stats.requests++;
    this.stats.bytesSent += (opts.body?.length ?? 0) + target.path.length + 64;
    return new Promise<PeerReply>((resolve, reject) => {
      let settled = false;
      let controller: DispatchController | undefined;
      let cancelled: Error | undefined;
      let status = 0;
      let replyHeaders: PeerReply['headers'] = {};
      const chunks: Buffer[] = [];
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.stats.failures++;
        reject(new PeerError(url, e));
      };
      // The deadline covers the wait for a connection too, which undici's own timeouts do not.
      const timer = setTimeout(() => {
        cancelled = new Error(`timed out after ${opts.timeoutMs} ms`);
        controller?.abort(cancelled);
        fail(cancelled);
      }, opts.timeoutMs);
      try {
        this.pool(target.origin).dispatch(
          { path: target.path, method: opts.method as 'GET', headers, body: opts.body, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs },
          {
            onRequestStart: (c) => {
              controller = c;
              if (cancelled) c.abort(cancelled);
            },
            onResponseStart: (_c, statusCode, h) => {
              status = statusCode;
              replyHeaders = h;
            },
            onResponseData: (_c, chunk) => {
              chunks.push(chunk);
            },
            onResponseEnd: () => {
              if (settled) return;
              settled = true;
              clearTimeout(timer);
              const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
              this.stats.bytesReceived += body.length + 64;
              resolve({ status, headers: replyHeaders, body });
            },
            onResponseError: (_c, e) => fail(e),
          },
        );
      } catch (e) {
        fail(e);
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
    if (this.closed) throw new PeerError(url, new Error('peer client closed'));
    const u = new URL(url);
    this.stats.requests++;
    this.stats.bytesSent += opts.body.length + u.pathname.length + 64;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error(`timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs);
    try {
      const res = await this.pool(u.origin).request({
        path: u.pathname + u.search,
        method: opts.method as 'POST',
        headers: { ...this.opts.memberHeaders, ...opts.headers },
        body: opts.body,
        signal: ac.signal,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
      });
      let received = 64;
      if (res.statusCode >= 200 && res.statusCode < 300) {
        for await (const c of res.body) {
          received += (c as Buffer).length;
          onChunk(c as Buffer);
        }
        this.stats.bytesReceived += received;
        return { status: res.statusCode };
      }
      const body = await readAll(res.body);
      this.stats.bytesReceived += received + body.length;
      return { status: res.statusCode, body };
    } catch (e) {
      this.stats.failures++;
      throw new PeerError(url, e);
    } finally {
      clearTimeout(timer);
    }
  }

  async json(url: string, opts: { method: string; body?: unknown; headers?: Record<string, string>; timeoutMs: number }): Promise<{ status: number; body: unknown }> {
    const r = await this.request(url, { ...opts, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    let body: unknown;
    try {
      body = r.body.length ? JSON.parse(r.body.toString('utf8')) : undefined;
    } catch {
      body = undefined;
    }
    return { status: r.status, body };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
    this.pools.clear();
  }
}

/**
 * A whole answer body. Stream events rather than `for await`, whose async iterator costs several
 * microseconds per answer: every replication batch and forward reads one.
 */
function readAll(body: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    body.on('data', (c: Buffer) => chunks.push(c));
    body.once('end', () => {
      ended = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    body.once('error', reject);
    // Destroyed without an error: the answer was cut off (settling twice is a no-op).
    body.once('close', () => ended || reject(new Error('the answer was closed before its end')));
  });
}
