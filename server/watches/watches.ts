/**
 * Watches on one host: Xenon-style callback subscriptions (`POST <link>/subscriptions` with a
 * `reference`) and server-sent-event streams (`GET <link>/subscriptions/stream`), for one
 * document or for every child of a factory. Each watch is fed by this host's change feed, which
 * every replica applies in log order, so a watch on any host keeps going when the document's
 * owner changes. A document watch delivers every version in order exactly once: duplicates are
 * dropped, and a version this host skipped (it caught up by synchronization) is filled from its
 * index or fetched from the owner; only a version nobody retains any more becomes a `gap` event.
 * A stream client that loses its host reconnects to another with `Last-Event-ID` and continues.
 * With authorization on, a watch only delivers events for documents its subscriber may read, and
 * ends when the subscriber's session does (the `mayRead` filter throws).
 */

import type http from 'node:http';
import type { Logger } from 'pino';
import type { ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Link } from '../../lib/ids.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import type { DocumentIndex } from '../../index/views.js';
import type { Change, ChangeFeed } from '../documents/changes.js';
import type { PeerClient } from '../net/peers.js';

export const SUBSCRIPTIONS_SUFFIX = '/subscriptions';
export const STREAM_SUFFIX = '/subscriptions/stream';

export type WatchEvent =
  | { type: 'update'; doc: ServiceDocument }
  | { type: 'expired'; link: Link }
  | { type: 'gap'; link: Link; fromVersion: number; toVersion: number };

export interface WatchesDeps {
  index: DocumentIndex;
  changes: ChangeFeed;
  peers: PeerClient;
  selfUri: () => string;
  logger: Logger;
  operationTimeoutMicros: number;
}

/** A queued change, or a replayed version to deliver as findVersion finds it (here if vouched for, else at the owner). */
type Queued = Change | { type: 'version'; link: Link; version: number };

/** One subscriber: its changes are handled one at a time, in the order the feed gave them. */
class Watch {
  private readonly queue: Queued[] = [];
  private running = false;
  private readonly lastVersion = new Map<Link, number>();
  closed = false;
  unlisten: () => void = () => undefined;

  constructor(
    private readonly w: Watches,
    readonly target: { link: Link; factory: boolean },
    private readonly sink: (e: WatchEvent) => Promise<void>,
    readonly onClose: (why?: string) => void,
  ) {}

  /** Marks what the subscriber already has, so live changes continue after it. */
  seen(doc: ServiceDocument): void {
    this.lastVersion.set(doc.documentSelfLink, doc.documentVersion);
  }

  push(c: Queued): void {
    if (this.closed) return;
    if (this.queue.length >= limits.watchQueueMax) {
      this.close(`more than ${limits.watchQueueMax} notifications queued: the subscriber is too slow`);
      return;
    }
    this.queue.push(c);
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (!this.closed && this.queue.length) {
        const c = this.queue.shift()!;
        if (c.type === 'expired') {
          this.lastVersion.delete(c.link);
          await this.sink({ type: 'expired', link: c.link });
        } else if (c.type === 'version') {
          // Unless live changes have delivered it already; a copy nobody answers waits for the next change.
          const doc = (this.lastVersion.get(c.link) ?? -1) < c.version ? await this.w.findVersion(c.link, c.version) : undefined;
          if (doc) await this.deliver(doc);
        } else {
          await this.deliver(c.doc);
        }
      }
    } catch (e) {
      this.close((e as Error).message);
    } finally {
      this.running = false;
    }
  }

  /** Delivers `doc` after any versions between the last delivered one and it. */
  async deliver(doc: ServiceDocument): Promise<void> {
    const link = doc.documentSelfLink;
    const last = this.lastVersion.get(link);
    const v = doc.documentVersion;
    if (last !== undefined && v <= last) {
      // An older or repeated version; a re-create after a DELETE starts a new life, though.
      if (doc.documentUpdateAction !== 'POST' || v === last) return;
    } else if (last !== undefined && v > last + 1) {
      for (let u = last + 1; u < v && !this.closed; u++) {
        const missing = await this.w.findVersion(link, u);
        if (missing) await this.sink({ type: 'update', doc: missing });
        else {
          await this.sink({ type: 'gap', link, fromVersion: u, toVersion: u });
        }
      }
    }
    this.lastVersion.set(link, v);
    await this.sink({ type: 'update', doc });
  }

  close(why?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.unlisten();
    this.w.remove(this);
    this.onClose(why);
  }
}

export interface Subscriber {
  reference: string;
  replayState: boolean;
  notificationCount: number;
  failedNotificationCount: number;
}

export class Watches {
  private readonly all = new Set<Watch>();
  private readonly callbacks = new Map<Link, Map<string, { sub: Subscriber; watch: Watch }>>();
  readonly stats = { streamsOpened: 0, notificationsSent: 0, notificationsFailed: 0, gapsFilled: 0 };

  constructor(private readonly d: WatchesDeps) {}

  get count(): number {
    return this.all.size;
  }

  remove(w: Watch): void {
    this.all.delete(w);
    const subs = this.callbacks.get(w.target.link);
    if (subs) for (const [ref, s] of subs) if (s.watch === w) subs.delete(ref);
  }

  /**
   * A retained version from this host's index, else from the owner (routed through this host). A
   * local copy counts only when the next version here is of the same epoch: one owner writes an
   * epoch's versions in order, so that vouches for it, while the last version of an epoch may be a
   * write a takeover discarded (lib/synch/history.ts), which only the owner can tell.
   */
  async findVersion(link: Link, version: number): Promise<ServiceDocument | undefined> {
    const local = this.d.index.version(link, version);
    const next = this.d.index.version(link, version + 1);
    if (local && next && (next.documentEpoch ?? 0) === (local.documentEpoch ?? 0)) return local;
    try {
      const r = await this.d.peers.json(`${this.d.selfUri()}${link}?documentVersion=${version}`, {
        method: 'GET',
        timeoutMs: msFromMicros(this.d.operationTimeoutMicros),
      });
      if (r.status === 200) {
        this.stats.gapsFilled++;
        return r.body as ServiceDocument;
      }
    } catch {
      // the owner is unreachable too: the caller reports a gap
    }
    return undefined;
  }

  private open(
    target: { link: Link; factory: boolean },
    deliver: (e: WatchEvent) => Promise<void>,
    onClose: (why?: string) => void,
    mayRead?: (link: Link) => boolean,
  ): Watch {
    if (this.all.size >= limits.watchesMax)
      throw new KryptonError('LIMIT_EXCEEDED', `this host already serves ${limits.watchesMax} watches`);
    const sink = mayRead
      ? (e: WatchEvent) => (mayRead(e.type === 'update' ? e.doc.documentSelfLink : e.link) ? deliver(e) : Promise.resolve())
      : deliver;
    const w = new Watch(this, target, sink, onClose);
    this.all.add(w);
    const listen = (c: Change) => w.push(c);
    w.unlisten = target.factory ? this.d.changes.onFactory(target.link, listen) : this.d.changes.onLink(target.link, listen);
    return w;
  }

  /**
   * What a watch replays before going live. A document: every retained version after `since`,
   * or (without `since`) its current state. A factory: every retained version of every child
   * updated after `since` (micros), in update-time order; nothing without `since`.
   */
  private backlog(target: { link: Link; factory: boolean }, since: number | undefined): ServiceDocument[] {
    if (!target.factory) {
      if (since === undefined) {
        const cur = this.d.index.latest(target.link);
        return cur ? [cur] : [];
      }
      return this.d.index.versions(target.link).filter((d) => d.documentVersion > since);
    }
    if (since === undefined) return [];
    const out: ServiceDocument[] = [];
    for (const l of this.d.index.linksUnder(target.link))
      for (const d of this.d.index.versions(l)) if (d.documentUpdateTimeMicros > since) out.push(d);
    return out.sort((a, b) => a.documentUpdateTimeMicros - b.documentUpdateTimeMicros || a.documentVersion - b.documentVersion);
  }

  /** `GET <link>/subscriptions/stream`: answers with text/event-stream until the client leaves or the host stops. */
  async stream(
    target: { link: Link; factory: boolean },
    since: number | undefined,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    mayRead?: (link: Link) => boolean,
  ): Promise<void> {
    let ping: NodeJS.Timeout | undefined;
    const write = (chunk: string) =>
      new Promise<void>((resolve, reject) => {
        if (res.destroyed || res.writableEnded) return reject(new KryptonError('PEER_UNAVAILABLE', 'stream closed'));
        // Waiting for drain makes a slow reader back up into the watch's bounded queue.
        if (res.write(chunk)) resolve();
        else res.once('drain', resolve);
      });
    const sink = (e: WatchEvent) => write(formatEvent(e, target.factory));
    const w = this.open(
      target,
      sink,
      (why) => {
        if (ping) clearInterval(ping);
        if (why && !res.writableEnded && !res.destroyed) res.write(`event: error\ndata: ${JSON.stringify({ message: why })}\n\n`);
        res.end();
      },
      mayRead,
    );
    this.stats.streamsOpened++;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`: watching ${target.link}\n\n`);
    req.once('close', () => w.close());
    ping = setInterval(() => void write(': ping\n\n').catch(() => w.close()), limits.watchStreamPingMs);
    ping.unref();
    const backlog = this.backlog(target, since);
    if (target.factory || since === undefined) {
      for (const doc of backlog) w.push({ type: 'update', doc });
      return;
    }
    // A resumed document stream replays each version as findVersion finds it: the latest and an
    // epoch's last version here may be a write a takeover discarded (this host's own, as a stale
    // owner, before it restarted), so those come from the owner.
    w.seen({ documentSelfLink: target.link, documentVersion: since } as ServiceDocument);
    for (const doc of backlog) w.push({ type: 'version', link: target.link, version: doc.documentVersion });
  }

  /** `POST <link>/subscriptions`: notifications go to `reference` with the update's action and state. */
  subscribe(target: { link: Link; factory: boolean }, body: unknown, mayRead?: (link: Link) => boolean): Subscriber {
    const b = body as { reference?: unknown; replayState?: unknown } | null;
    if (!b || typeof b.reference !== 'string') throw new KryptonError('INVALID_BODY', 'reference is required');
    let url: URL;
    try {
      url = new URL(b.reference);
    } catch {
      throw new KryptonError('INVALID_BODY', `reference is not a URI: ${b.reference}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new KryptonError('INVALID_BODY', 'reference must be an http or https URI');
    const existing = this.callbacks.get(target.link)?.get(b.reference);
    if (existing) return existing.sub;
    const sub: Subscriber = {
      reference: b.reference,
      replayState: b.replayState === true,
      notificationCount: 0,
      failedNotificationCount: 0,
    };
    const sink = async (e: WatchEvent) => {
      if (e.type === 'gap') return; // a callback has no way to be told; the next state follows
      const method = e.type === 'expired' ? 'DELETE' : e.doc.documentUpdateAction;
      const payload = e.type === 'expired' ? { documentSelfLink: e.link } : e.doc;
      for (let attempt = 1; ; attempt++) {
        try {
          const r = await this.d.peers.request(sub.reference, {
            method,
            body: JSON.stringify(payload),
            headers: { pragma: 'xn-nt', 'x-krypton-watched-link': target.link },
            timeoutMs: limits.notificationTimeoutMs,
            external: true,
          });
          if (r.status < 500) {
            sub.notificationCount++;
            this.stats.notificationsSent++;
            return;
          }
        } catch {
          // retried below
        }
        sub.failedNotificationCount++;
        this.stats.notificationsFailed++;
        if (attempt >= limits.notificationAttemptsMax)
          throw new KryptonError('PEER_UNAVAILABLE', `notification to ${sub.reference} failed ${attempt} times`);
        await new Promise((r) => setTimeout(r, limits.notificationRetryBaseMs * 2 ** attempt));
      }
    };
    const w = this.open(
      target,
      sink,
      (why) => {
        if (why) this.d.logger.warn({ link: target.link, reference: sub.reference, why }, 'subscription removed');
      },
      mayRead,
    );
    let subs = this.callbacks.get(target.link);
    if (!subs) {
      subs = new Map();
      this.callbacks.set(target.link, subs);
    }
    subs.set(sub.reference, { sub, watch: w });
    if (sub.replayState && !target.factory) {
      const cur = this.d.index.latest(target.link);
      if (cur) w.push({ type: 'update', doc: cur });
    } else if (!target.factory) {
      const cur = this.d.index.latest(target.link);
      if (cur) w.seen(cur);
    }
    return sub;
  }

  unsubscribe(link: Link, body: unknown): boolean {
    const ref = (body as { reference?: unknown } | null)?.reference;
    if (typeof ref !== 'string') throw new KryptonError('INVALID_BODY', 'reference is required');
    const s = this.callbacks.get(link)?.get(ref);
    s?.watch.close();
    return s !== undefined;
  }

  /** `GET <link>/subscriptions`: Xenon's ServiceSubscriptionState. */
  subscriptions(link: Link): { subscribers: Record<string, Subscriber>; documentSelfLink: string } {
    const subscribers: Record<string, Subscriber> = {};
    for (const [ref, s] of this.callbacks.get(link) ?? []) subscribers[ref] = s.sub;
    return { subscribers, documentSelfLink: link + SUBSCRIPTIONS_SUFFIX };
  }

  /** Ends every stream and subscription (host stop). */
  stop(): void {
    for (const w of [...this.all]) w.close();
  }
}

function formatEvent(e: WatchEvent, factory: boolean): string {
  if (e.type === 'update') {
    const id = factory ? e.doc.documentUpdateTimeMicros : e.doc.documentVersion;
    return `id: ${id}\nevent: update\ndata: ${JSON.stringify(e.doc)}\n\n`;
  }
  if (e.type === 'expired') return `event: expired\ndata: ${JSON.stringify({ documentSelfLink: e.link })}\n\n`;
  return `event: gap\ndata: ${JSON.stringify({ documentSelfLink: e.link, fromVersion: e.fromVersion, toVersion: e.toVersion })}\n\n`;
}
