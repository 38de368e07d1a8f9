/**
 * The Krypton client (`krypton/client`): typed CRUD on factories and documents, query tasks, a
 * login whose token it keeps and renews, and watches as async iterators that resume on another
 * host with `Last-Event-ID`. It routes each document request straight to the link's owner by the
 * hosts' own selection over the membership it learned (view.ts), refreshes that view when it is
 * old or a host fails, and falls back to any host (which forwards). Reads are retried with
 * backoff until the deadline; writes are retried only under an `Idempotency-Key`, which the
 * owner uses to answer a retry with the first try's outcome, so no write is applied twice.
 */

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DEFAULT_GROUP_LINK } from '../lib/group/types.js';
import { errorBodyOf, KryptonClientError } from './errors.js';
import { QueryBuilder } from './query.js';
import { sseFrames } from './sse.js';
import { type Answer, Transport } from './transport.js';
import { GroupView } from './view.js';

/** The fields the hosts stamp on every stored state. */
export interface DocumentFields {
  documentSelfLink: string;
  documentKind: string;
  documentVersion: number;
  documentEpoch?: number;
  documentOwner?: string;
  documentUpdateTimeMicros: number;
  documentUpdateAction?: string;
  documentExpirationTimeMicros: number;
}

/** A stored document: the service's own fields and the common ones. */
export type Doc<S> = S & DocumentFields;

export interface ClientOptions {
  /** Some hosts of the group (URIs); the rest are learned from their membership. */
  hosts: readonly string[];
  /** PEM CA certificates trusted for https:// hosts (with `caFile`, read once). */
  ca?: string | Buffer;
  caFile?: string;
  /** How long a call may take, retries included (default 30 s). */
  deadlineMs?: number;
  /** First retry delay; it doubles up to `retryMaxMs` (defaults 20 ms and 1 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** 'owner' (default) sends document requests to their owner; 'any' to any host, which forwards. */
  routing?: 'owner' | 'any';
  /** The membership view is refreshed when it is older than this (default 5 s) or a host fails. */
  viewMaxAgeMs?: number;
  /** Headers sent with every request (a peer secret, say). */
  headers?: Record<string, string>;
  /** Connections per host (default unbounded). */
  connections?: number;
}

export interface CallOptions {
  /** The key the owner is chosen by; document requests use their link. Absent: any host. */
  routeKey?: string;
  /** A write's key: the same value on every try, so the owner applies it once. `false`: send none. */
  idempotencyKey?: string | false;
  headers?: Record<string, string>;
  deadlineMs?: number;
}

export interface ClientStats {
  requests: number;
  retries: number;
  /** Requests sent to the host the view names as the owner. */
  toOwner: number;
  /** Requests sent to some host (no owner known, or not a document request). */
  toAny: number;
  viewRefreshes: number;
}

export type WatchEvent<S> =
  | { type: 'update'; id: string; state: Doc<S> }
  | { type: 'gap'; documentSelfLink: string; fromVersion: number; toVersion: number }
  | { type: 'expired'; documentSelfLink: string };

export interface WatchOptions {
  /** Resume after this event id (a document's version, a factory's update time). */
  since?: string | number;
  signal?: AbortSignal;
}

export interface QueryResult<S> {
  documentLinks: string[];
  documents: Record<string, Doc<S>>;
  documentCount: number;
  nextPageLink?: string;
}

const WRITE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Shortest time between two refreshes of the view the client starts on its own. */
const VIEW_REFRESH_GAP_MS = 250;
const RETRY_STATUSES = new Set([408, 502, 503, 504]);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export class KryptonClient {
  readonly stats: ClientStats = { requests: 0, retries: 0, toOwner: 0, toAny: 0, viewRefreshes: 0 };
  private readonly transport: Transport;
  private readonly view: GroupView;
  private readonly deadlineMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly viewMaxAgeMs: number;
  private readonly routing: 'owner' | 'any';
  private readonly headers: Record<string, string>;
  private refreshing: Promise<void> | undefined;
  private session: { user: string; password: string; seconds: number; token: string; renewAtMs: number } | undefined;
  private renewing: Promise<void> | undefined;

  constructor(opts: ClientOptions) {
    if (opts.hosts.length === 0) throw new KryptonClientError('usage', 'ClientOptions.hosts needs at least one host');
    const ca = opts.ca ?? (opts.caFile === undefined ? undefined : readFileSync(opts.caFile));
    this.transport = new Transport({ ca, connections: opts.connections });
    this.view = new GroupView(opts.hosts);
    this.deadlineMs = opts.deadlineMs ?? 30_000;
    this.retryBaseMs = opts.retryBaseMs ?? 20;
    this.retryMaxMs = opts.retryMaxMs ?? 1000;
    this.viewMaxAgeMs = opts.viewMaxAgeMs ?? 5000;
    this.routing = opts.routing ?? 'owner';
    this.headers = { ...opts.headers };
  }

  /** A client that has learned the group's membership (so its first requests already go to owners). */
  static async connect(opts: ClientOptions): Promise<KryptonClient> {
    const c = new KryptonClient(opts);
    await c.refreshView().catch(() => undefined);
    return c;
  }

  /** The membership the client routes by, as a host last answered it. */
  get membership() {
    return this.view.membership;
  }

  factory<S extends object>(link: string): Factory<S> {
    return new Factory<S>(this, link.replace(/\/+$/, ''));
  }

  document<S extends object>(link: string): DocumentRef<S> {
    return new DocumentRef<S>(this, link);
  }

  /** Asks a host for the membership now, and routes by it from here on. */
  refreshView(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const a = await this.call<unknown>('GET', DEFAULT_GROUP_LINK, undefined, { deadlineMs: Math.min(this.deadlineMs, 5000) }, false);
        this.view.learn(a, performance.now());
        this.stats.viewRefreshes++;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /**
   * Logs in (`POST /core/authn/basic`) and sends the token with every request from now on; the
   * client logs in again before the session ends, after 80% of `sessionSeconds` (default 3600).
   */
  async login(user: string, password: string, sessionSeconds = 3600): Promise<void> {
    const token = await this.loginOnce(user, password, sessionSeconds);
    this.session = { user, password, seconds: sessionSeconds, token, renewAtMs: performance.now() + sessionSeconds * 800 };
  }

  async logout(): Promise<void> {
    if (!this.session) return;
    await this.call('POST', '/core/authn/basic', { requestType: 'LOGOUT' }, { idempotencyKey: false }, false);
    this.session = undefined;
  }

  /** The token the client sends, if logged in. */
  get token(): string | undefined {
    return this.session?.token;
  }

  private async loginOnce(user: string, password: string, seconds: number): Promise<string> {
    const basic = Buffer.from(`${user}:${password}`).toString('base64');
    const a = await this.exchange(
      'POST',
      '/core/authn/basic',
      { requestType: 'LOGIN', sessionExpirationSeconds: seconds },
      { idempotencyKey: false, headers: { authorization: `Basic ${basic}` } },
      false,
      false,
    );
    const token = a.headers['x-xenon-auth-token'];
    if (typeof token !== 'string') throw new KryptonClientError('http', 'the login answered no x-xenon-auth-token', { status: a.status });
    return token;
  }

  private async renewIfDue(): Promise<void> {
    const s = this.session;
    if (!s || performance.now() < s.renewAtMs) return;
    this.renewing ??= (async () => {
      try {
        s.token = await this.loginOnce(s.user, s.password, s.seconds);
        s.renewAtMs = performance.now() + s.seconds * 800;
      } finally {
        this.renewing = undefined;
      }
    })();
    await this.renewing;
  }

  /** A direct query task (`POST /core/query-tasks`): the first page of results. */
  async query<S extends object = Record<string, unknown>>(
    q: QueryBuilder | object,
    opts: { local?: boolean } = {},
  ): Promise<QueryResult<S>> {
    const querySpec = q instanceof QueryBuilder ? q.toSpec() : q;
    const task = await this.call<{ results?: QueryResult<S> }>(
      'POST',
      opts.local ? '/core/local-query-tasks' : '/core/query-tasks',
      { taskInfo: { isDirect: true }, querySpec },
      { idempotencyKey: false },
      true,
    );
    return normalizeResults(task.results);
  }

  /** Every page of a paged query (`pageSize`), one after another. */
  async *queryPages<S extends object = Record<string, unknown>>(q: QueryBuilder): AsyncGenerator<QueryResult<S>> {
    let page = await this.query<S>(q);
    for (;;) {
      // The first answer of a paged query holds only the link to its first page.
      if (page.documentLinks.length > 0 || page.nextPageLink === undefined) yield page;
      if (page.nextPageLink === undefined) return;
      const next = await this.call<QueryResult<S> | { results?: QueryResult<S> }>('GET', page.nextPageLink, undefined, {}, true);
      page = normalizeResults(isObject(next) && 'results' in next ? next.results : (next as QueryResult<S>));
    }
  }

  /**
   * Follows a document (`/core/x/id`) or a factory (`/core/x`) as server-sent events. When the
   * host serving the stream fails or stops, the watch reconnects to another with the last event
   * id, so it goes on without a gap or a repeat; it ends on `close()`, on the signal, or when no
   * host has taken it up again within the deadline.
   */
  watch<S extends object>(link: string, opts: WatchOptions = {}): Watch<S> {
    return new Watch<S>((since, signal, onHost) => this.watchFrom<S>(link, since, signal, onHost), opts);
  }

  private async *watchFrom<S>(
    link: string,
    since: string | undefined,
    signal: AbortSignal,
    onHost: (origin: string) => void,
  ): AsyncGenerator<WatchEvent<S>> {
    let last = since;
    let lastHost: string | undefined;
    let failingSince: number | undefined;
    let attempt = 0;
    while (!signal.aborted) {
      await this.viewIfStale();
      const origin = this.view.any(performance.now(), lastHost);
      const headers = this.requestHeaders({}, undefined);
      if (last !== undefined) headers['last-event-id'] = last;
      let s: Awaited<ReturnType<Transport['stream']>> | undefined;
      try {
        s = await this.transport.stream(origin, `${link}/subscriptions/stream`, headers, Math.min(this.deadlineMs, 5000), signal);
        onHost(origin);
        if (s.status >= 400) {
          const text = await s.text();
          if (!RETRY_STATUSES.has(s.status)) {
            throw new KryptonClientError('http', errorBodyOf(s.status, text).message, {
              status: s.status,
              body: errorBodyOf(s.status, text),
              host: origin,
            });
          }
        } else {
          for await (const f of sseFrames(s.body)) {
            failingSince = undefined;
            attempt = 0;
            const ev = toWatchEvent<S>(f.event, f.id, f.data);
            if (!ev) continue;
            if (ev.type === 'update') last = ev.id;
            yield ev;
          }
        }
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof KryptonClientError && e.kind === 'http') throw e;
      } finally {
        s?.close();
      }
      if (signal.aborted) return;
      // The stream ended or failed: that host is stopping or gone; go on elsewhere.
      lastHost = origin;
      this.view.suspect(origin, performance.now());
      failingSince ??= performance.now();
      if (performance.now() - failingSince > this.deadlineMs) {
        throw new KryptonClientError('timeout', `watch of ${link}: no host took the stream up again within ${this.deadlineMs} ms`);
      }
      void this.refreshView().catch(() => undefined);
      await sleep(this.backoff(attempt++), signal);
    }
  }

  /** Any request, routed and retried like the typed ones; answers the parsed body. */
  async request<T = unknown>(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
    return this.call<T>(method, path, body, opts, true);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  /** @internal the typed handles call this */
  async call<T>(method: string, path: string, body: unknown, opts: CallOptions, viewCheck: boolean): Promise<T> {
    const a = await this.exchange(method, path, body, opts, viewCheck, true);
    if (a.text === '') return undefined as T;
    const parsed = JSON.parse(a.text) as T;
    // A document's owner is in its state: one the view did not pick means the membership moved
    // (the host forwarded the request), so the view is read again, in the background.
    if (viewCheck && opts.routeKey !== undefined && this.routing === 'owner' && isObject(parsed)) {
      const owner = parsed.documentOwner;
      if (typeof owner === 'string' && owner !== this.view.ownerId(opts.routeKey)) this.refreshSoon();
    }
    return parsed;
  }

  /** A background refresh, at most one per VIEW_REFRESH_GAP_MS. */
  private refreshSoon(): void {
    if (this.refreshing || performance.now() - this.view.refreshedAt < VIEW_REFRESH_GAP_MS) return;
    void this.refreshView().catch(() => undefined);
  }

  private async viewIfStale(): Promise<void> {
    if (performance.now() - this.view.refreshedAt <= this.viewMaxAgeMs) return;
    // With a view to route by, requests go on with it while a fresh one is read.
    if (this.view.membership) this.refreshSoon();
    else await this.refreshView().catch(() => undefined);
  }

  private requestHeaders(extra: Record<string, string>, key: string | undefined): Record<string, string> {
    const h: Record<string, string> = { ...this.headers, ...extra };
    if (this.session) h['x-xenon-auth-token'] = this.session.token;
    if (key !== undefined) h['idempotency-key'] = key;
    return h;
  }

  private backoff(attempt: number): number {
    const d = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** attempt);
    return d / 2 + Math.random() * (d / 2);
  }

  /**
   * One call: to the owner when a route key is given and routing is owner-aware, else to any
   * host; retried while the deadline allows when retrying is safe (see the file comment).
   */
  private async exchange(
    method: string,
    path: string,
    body: unknown,
    opts: CallOptions,
    viewCheck: boolean,
    renew: boolean,
  ): Promise<Answer> {
    const started = performance.now();
    const deadline = started + (opts.deadlineMs ?? this.deadlineMs);
    if (renew) await this.renewIfDue();
    if (viewCheck && opts.routeKey !== undefined && this.routing === 'owner') await this.viewIfStale();
    const key = WRITE.has(method) && opts.idempotencyKey !== false ? (opts.idempotencyKey ?? randomUUID()) : undefined;
    const safe = method === 'GET' || key !== undefined || (method === 'POST' && path.endsWith('query-tasks'));
    const text = body === undefined ? undefined : JSON.stringify(body);
    let avoid: string | undefined;
    for (let attempt = 0; ; attempt++) {
      const now = performance.now();
      const owner = opts.routeKey !== undefined && this.routing === 'owner' ? this.view.owner(opts.routeKey, now) : undefined;
      const origin = owner !== undefined && owner !== avoid ? owner : this.view.any(now, avoid);
      if (origin === owner) this.stats.toOwner++;
      else this.stats.toAny++;
      this.stats.requests++;
      if (attempt > 0) this.stats.retries++;
      let failure: KryptonClientError;
      try {
        const a = await this.transport.send(origin, method, path, this.requestHeaders(opts.headers ?? {}, key), text, deadline - now);
        if (a.status < 400) return a;
        const errBody = errorBodyOf(a.status, a.text);
        failure = new KryptonClientError('http', errBody.message, { status: a.status, body: errBody, host: origin });
        if (!safe || !RETRY_STATUSES.has(a.status)) throw failure;
      } catch (e) {
        if (!(e instanceof KryptonClientError)) throw e;
        failure = e;
        if (e.kind === 'http' && (!safe || !RETRY_STATUSES.has(e.status))) throw e;
        if (e.kind === 'network' && e.permanent) throw e;
        if (e.kind === 'network' || e.kind === 'timeout') {
          this.view.suspect(origin, performance.now());
          if (viewCheck) this.refreshSoon();
          // A write that may have reached the host is sent again only under its key.
          if (!safe && !(e.kind === 'network' && e.notSent)) throw e;
        }
      }
      avoid = origin;
      const wait = this.backoff(attempt);
      if (performance.now() + wait >= deadline) {
        if (failure.kind === 'http') throw failure;
        throw new KryptonClientError(
          'timeout',
          `${method} ${path}: no answer within ${Math.round(deadline - started)} ms (${failure.message})`,
          {
            host: failure.host,
            cause: failure,
          },
        );
      }
      await sleep(wait);
    }
  }
}

function normalizeResults<S>(r: QueryResult<S> | undefined): QueryResult<S> {
  return {
    documentLinks: r?.documentLinks ?? [],
    documents: r?.documents ?? {},
    documentCount: r?.documentCount ?? 0,
    ...(r?.nextPageLink === undefined ? {} : { nextPageLink: r.nextPageLink }),
  };
}

function toWatchEvent<S>(event: string, id: string | undefined, data: string): WatchEvent<S> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (!isObject(parsed)) return undefined;
  if (event === 'update' && id !== undefined) return { type: 'update', id, state: parsed as Doc<S> };
  if (event === 'gap') {
    return {
      type: 'gap',
      documentSelfLink: String(parsed.documentSelfLink),
      fromVersion: Number(parsed.fromVersion),
      toVersion: Number(parsed.toVersion),
    };
  }
  if (event === 'expired') return { type: 'expired', documentSelfLink: String(parsed.documentSelfLink) };
  return undefined;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** An async iterator over a watch's events; `close()` (or `break`) ends it and its stream. */
export class Watch<S> implements AsyncIterable<WatchEvent<S>> {
  private readonly abort = new AbortController();
  private readonly source: AsyncGenerator<WatchEvent<S>>;
  /** The host whose stream the watch reads now (it changes when one fails). */
  host: string | undefined;

  constructor(
    open: (since: string | undefined, signal: AbortSignal, onHost: (origin: string) => void) => AsyncGenerator<WatchEvent<S>>,
    opts: WatchOptions,
  ) {
    opts.signal?.addEventListener('abort', () => this.abort.abort(), { once: true });
    this.source = open(opts.since === undefined ? undefined : String(opts.since), this.abort.signal, (o) => (this.host = o));
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent<S>> {
    return {
      next: () => this.source.next(),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.source.return(undefined);
  }
}

/** A factory: creates children and lists them. */
export class Factory<S extends object> {
  constructor(
    private readonly c: KryptonClient,
    readonly link: string,
  ) {}

  /**
   * Creates a child. With `documentSelfLink` the create goes to that link's owner and may be
   * retried safely; without one the host that takes it picks the id (one it owns itself).
   */
  create(body: S & { documentSelfLink?: string }, opts: { idempotencyKey?: string } = {}): Promise<Doc<S>> {
    const named = typeof body.documentSelfLink === 'string' && body.documentSelfLink !== '';
    const link = named ? this.childLink(body.documentSelfLink!) : undefined;
    return this.c.call<Doc<S>>(
      'POST',
      this.link,
      body,
      // A key only counts for a named create (the owner keeps it per link).
      link === undefined ? { idempotencyKey: false } : { routeKey: link, idempotencyKey: opts.idempotencyKey },
      true,
    );
  }

  doc(id: string): DocumentRef<S> {
    return new DocumentRef<S>(this.c, this.childLink(id));
  }

  get(id: string, version?: number): Promise<Doc<S>> {
    return this.doc(id).get(version);
  }

  /** The links of the live children, from the host that answers (every host lists the same once replicated). */
  async list(): Promise<string[]> {
    const r = await this.c.call<{ documentLinks?: string[] }>('GET', this.link, undefined, {}, true);
    return r.documentLinks ?? [];
  }

  /** The live children themselves. */
  async listDocuments(): Promise<Doc<S>[]> {
    const r = await this.c.call<{ documentLinks?: string[]; documents?: Record<string, Doc<S>> }>(
      'GET',
      `${this.link}?expand`,
      undefined,
      {},
      true,
    );
    return (r.documentLinks ?? []).map((l) => r.documents?.[l]).filter((d): d is Doc<S> => d !== undefined);
  }

  watch(opts?: WatchOptions): Watch<S> {
    return this.c.watch<S>(this.link, opts);
  }

  private childLink(id: string): string {
    if (id.startsWith(`${this.link}/`)) return id;
    return `${this.link}/${id.replace(/^\/+/, '')}`;
  }
}

/** One document, by link. */
export class DocumentRef<S extends object> {
  constructor(
    private readonly c: KryptonClient,
    readonly link: string,
  ) {}

  get(version?: number): Promise<Doc<S>> {
    const path = version === undefined ? this.link : `${this.link}?documentVersion=${version}`;
    return this.c.call<Doc<S>>('GET', path, undefined, { routeKey: this.link }, true);
  }

  /** The latest state, or undefined when there is none (never created, or deleted). */
  async find(): Promise<Doc<S> | undefined> {
    try {
      return await this.get();
    } catch (e) {
      if (e instanceof KryptonClientError && e.kind === 'http' && e.status === 404) return undefined;
      throw e;
    }
  }

  put(body: S, opts: { idempotencyKey?: string; headers?: Record<string, string> } = {}): Promise<Doc<S>> {
    return this.c.call<Doc<S>>('PUT', this.link, body, { routeKey: this.link, ...opts }, true);
  }

  patch(
    body: Partial<S> & Record<string, unknown>,
    opts: { idempotencyKey?: string; headers?: Record<string, string> } = {},
  ): Promise<Doc<S>> {
    return this.c.call<Doc<S>>('PATCH', this.link, body, { routeKey: this.link, ...opts }, true);
  }

  /** Deletes the document; answers its tombstone, or undefined when there was nothing to delete. */
  async delete(opts: { idempotencyKey?: string } = {}): Promise<Doc<S> | undefined> {
    const r = await this.c.call<Doc<S> | undefined>('DELETE', this.link, undefined, { routeKey: this.link, ...opts }, true);
    return isObject(r) && typeof r.documentSelfLink === 'string' ? r : undefined;
  }

  watch(opts?: WatchOptions): Watch<S> {
    return this.c.watch<S>(this.link, opts);
  }
}
