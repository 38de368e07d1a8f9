/**
 * Continuous query tasks (CONTINUOUS, CONTINUOUS_STOP_MATCH; docs/xenon-compatibility.md,
 * Queries): after a task's first results, every later state this host applies that matches its
 * query becomes a notification, numbered in order, kept (the last limits.continuousQueryEventsKept)
 * and delivered to the task's subscribers: a PATCH of the task, carrying that one result, to each
 * `reference` (`POST <task>/subscriptions`), and an event on each server-sent-event stream
 * (`GET <task>/subscriptions/stream`, resumable from `Last-Event-ID`). The feed is this host's
 * change feed, which every replica applies, so a document's owner changing does not interrupt
 * it; a version older than one already delivered (history catching up) is not delivered again.
 * With CONTINUOUS_STOP_MATCH a document that matched and stops matching is delivered once more
 * with `documentUpdateAction` DELETE. The task lives on the host that ran it, as in Xenon.
 */

import type http from 'node:http';
import type { Logger } from 'pino';
import { isTombstone, type JsonObject, type ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Link } from '../../lib/ids.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import type { QueryPlan } from '../../lib/query/spec.js';
import { compileQuery } from '../../index/match.js';
import type { Change, ChangeFeed } from '../documents/changes.js';
import type { PeerClient } from '../net/peers.js';

export interface ContinuousDeps {
  changes: ChangeFeed;
  peers: PeerClient;
  logger: Logger;
  hostId: string;
}

/** What a continuous task reports in `results.continuousResults`, as Xenon counts them. */
export interface ContinuousCounts extends JsonObject {
  documentCountAdded: number;
  documentCountUpdated: number;
  documentCountDeleted: number;
}

interface Notice {
  seq: number;
  /** The task's JSON with this one result, made once for every subscriber and stream. */
  text: string;
}

interface Subscriber {
  url: string;
  queue: Notice[];
  running: boolean;
}

interface Stream {
  write(n: Notice): void;
  close(why?: string): void;
}

class Live {
  seq = 0;
  readonly notices: Notice[] = [];
  readonly matched = new Set<Link>();
  readonly delivered = new Map<Link, number>();
  readonly subscribers = new Map<string, Subscriber>();
  readonly streams = new Set<Stream>();
  readonly matches: (doc: ServiceDocument) => boolean;

  constructor(
    readonly task: { documentSelfLink: string; results?: JsonObject } & JsonObject,
    readonly plan: QueryPlan,
    readonly counts: ContinuousCounts,
    readonly mayRead: ((link: Link) => boolean) | undefined,
  ) {
    this.matches = compileQuery(plan.query);
  }
}

export class ContinuousQueries {
  private readonly live = new Map<string, Live>();
  private unlisten: (() => void) | undefined;

  constructor(private readonly d: ContinuousDeps) {}

  /**
   * Starts delivering later matches of `task`, whose first results (`initial`) are already in.
   * Returns the counters the task's results show.
   */
  start(
    task: { documentSelfLink: string } & JsonObject,
    plan: QueryPlan,
    initial: readonly { link: Link; version: number }[],
    mayRead?: (link: Link) => boolean,
  ): ContinuousCounts {
    if (this.live.size >= limits.continuousQueryTasksMax) {
      throw new KryptonError('LIMIT_EXCEEDED', `more than ${limits.continuousQueryTasksMax} continuous query tasks on this host`);
    }
    const counts: ContinuousCounts = { documentCountAdded: 0, documentCountUpdated: 0, documentCountDeleted: 0 };
    const l = new Live(task, plan, counts, mayRead);
    for (const h of initial) {
      l.matched.add(h.link);
      l.delivered.set(h.link, Math.max(h.version, l.delivered.get(h.link) ?? -1));
    }
    this.live.set(task.documentSelfLink, l);
    this.unlisten ??= this.d.changes.onAny((c) => this.changed(c));
    return counts;
  }

  /** Stops a task (deleted or expired): its streams end, its subscribers hear nothing more. */
  stop(link: string): void {
    const l = this.live.get(link);
    if (!l) return;
    this.live.delete(link);
    for (const s of l.streams) s.close('the query task ended');
    l.subscribers.clear();
    if (this.live.size === 0) {
      this.unlisten?.();
      this.unlisten = undefined;
    }
  }

  isLive(link: string): boolean {
    return this.live.has(link);
  }

  private get(link: string): Live {
    const l = this.live.get(link);
    if (!l) throw new KryptonError('NOT_FOUND', `Service not found: ${link}/subscriptions (not a running continuous query task)`);
    return l;
  }

  private changed(c: Change): void {
    if (c.type !== 'update') return;
    for (const l of this.live.values()) {
      // The feed is called on the write path: a task's failure ends that task, never the write.
      try {
        this.consider(l, c.doc);
      } catch (e) {
        this.d.logger.warn({ err: e, task: l.task.documentSelfLink }, 'continuous query task stopped: its filter failed');
        this.stop(l.task.documentSelfLink);
      }
    }
  }

  private consider(l: Live, doc: ServiceDocument): void {
    const link = doc.documentSelfLink;
    const last = l.delivered.get(link);
    if (last !== undefined && doc.documentVersion <= last) return;
    if (l.mayRead && !l.mayRead(link)) return;
    const was = l.matched.has(link);
    const deleted = isTombstone(doc);
    const now = l.matches(doc) && (!deleted || l.plan.includeDeleted || was);
    let shown = doc;
    if (now && !deleted) {
      if (was) l.counts.documentCountUpdated++;
      else l.counts.documentCountAdded++;
      l.matched.add(link);
    } else if (deleted && (now || was)) {
      l.counts.documentCountDeleted++;
      l.matched.delete(link);
    } else if (was && l.plan.stopMatch) {
      // It matched and no longer does: Xenon tells it as a deletion of the match.
      shown = { ...doc, documentUpdateAction: 'DELETE' };
      l.counts.documentCountDeleted++;
      l.matched.delete(link);
    } else {
      if (was) l.matched.delete(link);
      return;
    }
    l.delivered.set(link, doc.documentVersion);
    this.publish(l, shown);
  }

  private publish(l: Live, doc: ServiceDocument): void {
    const link = l.plan.includeAllVersions ? `${doc.documentSelfLink}?documentVersion=${doc.documentVersion}` : doc.documentSelfLink;
    const results: JsonObject = { documentLinks: [link], documentCount: 1, queryTimeMicros: 0, documentOwner: this.d.hostId };
    if (l.plan.expandContent) results.documents = { [link]: doc };
    results.continuousResults = { ...l.counts };
    const { results: _, ...task } = l.task;
    const notice: Notice = { seq: ++l.seq, text: JSON.stringify({ ...task, results }) };
    l.notices.push(notice);
    if (l.notices.length > limits.continuousQueryEventsKept) l.notices.shift();
    for (const s of l.streams) s.write(notice);
    for (const sub of l.subscribers.values()) this.enqueue(l, sub, notice);
  }

  // ---- Callback subscribers ----

  subscribe(link: string, body: unknown): JsonObject {
    const l = this.get(link);
    const b = body as { reference?: unknown } | null;
    if (!b || typeof b.reference !== 'string') throw new KryptonError('INVALID_BODY', 'reference is required');
    let url: URL;
    try {
      url = new URL(b.reference);
    } catch {
      throw new KryptonError('INVALID_BODY', `reference is not a URL: ${b.reference}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new KryptonError('INVALID_BODY', 'reference must be an http(s) URL');
    if (!l.subscribers.has(b.reference) && l.subscribers.size >= limits.continuousQuerySubscribersMax) {
      throw new KryptonError('LIMIT_EXCEEDED', `more than ${limits.continuousQuerySubscribersMax} subscribers on ${link}`);
    }
    if (!l.subscribers.has(b.reference)) l.subscribers.set(b.reference, { url: b.reference, queue: [], running: false });
    return { reference: b.reference, documentSelfLink: `${link}/subscriptions` };
  }

  unsubscribe(link: string, body: unknown): void {
    const l = this.get(link);
    const ref = (body as { reference?: unknown } | null)?.reference;
    if (typeof ref !== 'string') throw new KryptonError('INVALID_BODY', 'reference is required');
    l.subscribers.delete(ref);
  }

  subscriptions(link: string): JsonObject {
    const l = this.get(link);
    const subscribers: Record<string, JsonObject> = {};
    for (const s of l.subscribers.values()) subscribers[s.url] = { reference: s.url, queued: s.queue.length };
    return { subscribers, documentSelfLink: `${link}/subscriptions` };
  }

  private enqueue(l: Live, sub: Subscriber, n: Notice): void {
    if (sub.queue.length >= limits.continuousQueryQueueMax) {
      this.d.logger.warn(
        { task: l.task.documentSelfLink, reference: sub.url },
        'continuous query subscriber dropped: too many notifications queued',
      );
      l.subscribers.delete(sub.url);
      return;
    }
    sub.queue.push(n);
    if (!sub.running) void this.drain(l, sub);
  }

  /** One subscriber's notifications, one at a time and in order; a reference that keeps failing is dropped. */
  private async drain(l: Live, sub: Subscriber): Promise<void> {
    sub.running = true;
    try {
      while (sub.queue.length && l.subscribers.get(sub.url) === sub) {
        const n = sub.queue[0]!;
        let ok = false;
        for (let tries = 0; !ok && tries < limits.continuousQueryDeliveryTriesMax; tries++) {
          try {
            const r = await this.d.peers.request(sub.url, {
              method: 'PATCH',
              body: n.text,
              timeoutMs: msFromMicros(limits.continuousQueryDeliveryTimeoutMicros),
              external: true,
            });
            ok = r.status < 300;
          } catch {
            ok = false;
          }
        }
        if (!ok) {
          this.d.logger.warn(
            { task: l.task.documentSelfLink, reference: sub.url },
            'continuous query subscriber dropped: notifications failed',
          );
          l.subscribers.delete(sub.url);
          return;
        }
        sub.queue.shift();
      }
    } finally {
      sub.running = false;
    }
  }

  // ---- Event streams ----

  /**
   * `GET <task>/subscriptions/stream`: every notice after `since` that is still kept (a `gap`
   * event first when some were dropped), then each new one, until the client leaves or the task ends.
   */
  stream(link: string, since: number | undefined, req: http.IncomingMessage, res: http.ServerResponse): void {
    const l = this.get(link);
    let ping: NodeJS.Timeout | undefined;
    const s: Stream = {
      write: (n) => {
        if (!res.destroyed && !res.writableEnded) res.write(`id: ${n.seq}\nevent: update\ndata: ${n.text}\n\n`);
      },
      close: (why) => {
        if (ping) clearInterval(ping);
        l.streams.delete(s);
        if (why && !res.writableEnded && !res.destroyed) res.write(`event: error\ndata: ${JSON.stringify({ message: why })}\n\n`);
        res.end();
      },
    };
    if (l.streams.size >= limits.continuousQuerySubscribersMax) {
      throw new KryptonError('LIMIT_EXCEEDED', `more than ${limits.continuousQuerySubscribersMax} streams on ${link}`);
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`: watching ${link}\n\n`);
    const from = since ?? l.seq;
    const oldest = l.notices[0]?.seq ?? l.seq + 1;
    if (from + 1 < oldest) res.write(`event: gap\ndata: ${JSON.stringify({ fromSeq: from + 1, toSeq: oldest - 1 })}\n\n`);
    for (const n of l.notices) if (n.seq > from) s.write(n);
    l.streams.add(s);
    req.once('close', () => s.close());
    ping = setInterval(() => !res.destroyed && !res.writableEnded && res.write(': ping\n\n'), limits.watchStreamPingMs);
    ping.unref();
  }

  stopAll(): void {
    for (const link of [...this.live.keys()]) this.stop(link);
  }
}
