/**
 * Synchronization (reference §8, Krypton's rules in lib/synch/plan.ts). After the membership
 * changes and the group is available again, every host runs a pass: for each replicated factory
 * it collects every peer's heads (link, epoch, version) in pages, and for each link it now owns
 * it picks the best copy, adopts it (taking over with a new epoch when ownership moved) and
 * pushes the result to every replica that lacks it, tombstones included. A host restarted after
 * missing updates is caught up by these pushes. Until the pass has covered a link, an owner that
 * is asked for it synchronizes that one link first (on demand), so no request is answered from a
 * stale copy.
 */

import type { Logger } from 'pino';
import type { NewLogRecord, ServiceDocument } from '../lib/document.js';
import { KryptonError } from '../lib/errors.js';
import type { NodeState } from '../lib/group/types.js';
import type { Link, NodeId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { RegisteredService, ServiceRegistry } from '../lib/service.js';
import { successThreshold } from '../lib/replication/quorum.js';
import { headOf, headOfDoc, planLink, type Head, type HeadTuple } from '../lib/synch/plan.js';
import type { DocumentIndex } from '../index/views.js';
import { encodeRecordBody } from '../wal/record.js';
import type { Clock } from './clock.js';
import type { DocumentStore } from './documents.js';
import type { GroupRuntime } from './groups.js';
import type { PeerClient } from './peers.js';
import type { Replicator } from './replicator.js';
import { originOf } from './routing.js';
import type { Selectors } from './selectors.js';

export interface SynchRequest {
  kind: 'heads' | 'fetch';
  factoryLink?: string;
  after?: string;
  limit?: number;
  links?: string[];
}

export interface SynchStats {
  passes: number;
  linksChecked: number;
  adopted: number;
  takenOver: number;
  pushed: number;
  pushFailures: number;
  /** Links left for a later pass because fewer than a quorum of their replicas answered. */
  skippedNoQuorum: number;
  lastPassMs: number;
  running: boolean;
}

export class Synchronizer {
  private generation = 0;
  private completedGeneration = 0;
  private doneThisGeneration = new Set<Link>();
  private readonly inFlight = new Map<Link, Promise<void>>();
  private passRunning: Promise<void> | undefined;
  private readonly sortedCache = new Map<string, { version: number; links: Link[] }>();
  private rerun = false;
  private stopped = false;
  readonly stats: SynchStats = { passes: 0, linksChecked: 0, adopted: 0, takenOver: 0, pushed: 0, pushFailures: 0, skippedNoQuorum: 0, lastPassMs: 0, running: false };

  constructor(
    private readonly d: {
      hostId: NodeId;
      registry: ServiceRegistry;
      index: DocumentIndex;
      store: DocumentStore;
      group: GroupRuntime;
      selectors: Selectors;
      replicator: Replicator;
      peers: PeerClient;
      clock: Clock;
      logger: Logger;
      operationTimeoutMicros: number;
      enabled: boolean;
      hooks?: { started(svc: RegisteredService, link: Link): void };
    },
  ) {
    d.group.onChanged(() => this.membershipChanged());
    d.group.onAvailability((available) => available && this.schedule());
  }

  private get timeoutMs(): number {
    return Math.floor(this.d.operationTimeoutMicros / 3000);
  }

  /** Peers to ask: every member that may hold copies and can answer. */
  private peers(): NodeState[] {
    return Object.values(this.d.group.group.nodes).filter(
      (n) => n.id !== this.d.hostId && !n.options.includes('OBSERVER') && n.status !== 'UNAVAILABLE' && n.status !== 'REPLACED',
    );
  }

  private membershipChanged(): void {
    this.generation++;
    this.doneThisGeneration = new Set();
    this.schedule();
  }

  private schedule(): void {
    if (!this.d.enabled || this.stopped || !this.d.group.isAvailable()) return;
    if (this.completedGeneration >= this.generation) return;
    if (this.passRunning) {
      this.rerun = true;
      return;
    }
    this.passRunning = this.runPass().finally(() => {
      this.passRunning = undefined;
      if (this.rerun) {
        this.rerun = false;
        this.schedule();
      }
    });
  }

  /** Serves a peer's synchronization request: heads of a factory in pages, or full latest states. */
  serve(raw: unknown): { heads: HeadTuple[]; next?: string } | { states: Record<string, ServiceDocument> } {
    const req = raw as SynchRequest | undefined;
    if (!req || typeof req !== 'object') throw new KryptonError('INVALID_BODY', 'SynchronizePeersRequest body is required');
    if (req.kind === 'heads') {
      if (typeof req.factoryLink !== 'string' || !this.d.registry.factory(req.factoryLink)) throw new KryptonError('INVALID_BODY', 'factoryLink must name a factory');
      const limit = Math.min(limits.synchHeadsPageLinksMax, typeof req.limit === 'number' && req.limit > 0 ? req.limit : limits.synchHeadsPageLinksMax);
      const links = this.sortedLinks(req.factoryLink);
      const start = typeof req.after === 'string' ? upperBound(links, req.after) : 0;
      const page = links.slice(start, start + limit);
      const heads: HeadTuple[] = [];
      for (const l of page) {
        const doc = this.d.index.latest(l);
        if (doc) heads.push([l, doc.documentEpoch ?? 0, doc.documentVersion, doc.documentUpdateAction === 'DELETE' ? 1 : 0, doc.documentOwner ?? '']);
      }
      return start + limit < links.length ? { heads, next: page[page.length - 1]! } : { heads };
    }
    if (req.kind === 'fetch') {
      if (!Array.isArray(req.links) || req.links.length > limits.synchPageLinksMax) throw new KryptonError('INVALID_BODY', `links must be an array of at most ${limits.synchPageLinksMax}`);
      const states: Record<string, ServiceDocument> = {};
      for (const l of req.links) {
        const doc = typeof l === 'string' ? this.d.index.latest(l) : undefined;
        if (doc) states[l] = doc;
      }
      return { states };
    }
    throw new KryptonError('INVALID_BODY', 'unknown request');
  }

  /**
   * The links under a factory in sorted order, sorted again only when the index's set of links
   * changed: a peer pages through every head of a large factory, and sorting it for each page
   * made serving a pass quadratic.
   */
  private sortedLinks(factoryLink: string): Link[] {
    const version = this.d.index.linkSetVersion();
    let c = this.sortedCache.get(factoryLink);
    if (c?.version !== version) {
      c = { version, links: this.d.index.linksUnder(factoryLink).sort() };
      this.sortedCache.set(factoryLink, c);
    }
    return c.links;
  }

  private synchUrl(n: NodeState, svc: RegisteredService): string {
    return `${originOf(n.groupReference)}${svc.def.nodeSelector}/synch`;
  }

  private async fetchHeads(n: NodeState, svc: RegisteredService, out: Map<Link, Map<NodeId, Head | undefined>>): Promise<void> {
    let after: string | undefined;
    for (;;) {
      const r = await this.d.peers.json(this.synchUrl(n, svc), { method: 'POST', body: { kind: 'heads', factoryLink: svc.def.factoryLink, after }, timeoutMs: this.timeoutMs });
      if (r.status !== 200) throw new Error(`heads from ${n.id}: status ${r.status}`);
      const page = r.body as { heads: HeadTuple[]; next?: string };
      for (const t of page.heads) {
        let m = out.get(t[0]);
        if (!m) out.set(t[0], (m = new Map()));
        m.set(n.id, headOf(t));
      }
      if (!page.next) return;
      after = page.next;
    }
  }

  /** Full latest states of `links` from one peer, its pages fetched at once. */
  private async fetchStates(n: NodeState, svc: RegisteredService, links: Link[]): Promise<Record<string, ServiceDocument>> {
    const pages: Link[][] = [];
    for (let i = 0; i < links.length; i += limits.synchPageLinksMax) pages.push(links.slice(i, i + limits.synchPageLinksMax));
    const answers = await Promise.all(
      pages.map(async (page) => {
        const r = await this.d.peers.json(this.synchUrl(n, svc), { method: 'POST', body: { kind: 'fetch', links: page }, timeoutMs: this.timeoutMs });
        if (r.status !== 200) throw new Error(`fetch from ${n.id}: status ${r.status}`);
        return (r.body as { states: Record<string, ServiceDocument> }).states;
      }),
    );
    return Object.assign({}, ...answers) as Record<string, ServiceDocument>;
  }

  private localHead(link: Link): Head | undefined {
    const doc = this.d.index.latest(link);
    return doc ? headOfDoc(doc) : undefined;
  }

  private owns(svc: RegisteredService, link: Link): boolean {
    return this.d.selectors.ownedHere(svc.def.nodeSelector, link);
  }

  /**
   * Brings one link up to date before its owner acts on it, while a pass has not covered it since
   * the last membership change. Concurrent callers share one synchronization.
   */
  ensure(svc: RegisteredService, link: Link): Promise<void> {
    if (!this.d.enabled || !svc.has('REPLICATION') || this.completedGeneration >= this.generation) return Promise.resolve();
    if (this.doneThisGeneration.has(link) || this.peers().length === 0) return Promise.resolve();
    let p = this.inFlight.get(link);
    if (!p) {
      const generation = this.generation;
      p = (async () => {
        const m = new Map<NodeId, Head | undefined>();
        const answered = new Set<NodeId>();
        await Promise.all(
          this.peers().map(async (n) => {
            const r = await this.d.peers.json(this.synchUrl(n, svc), { method: 'POST', body: { kind: 'fetch', links: [link] }, timeoutMs: this.timeoutMs }).catch(() => undefined);
            if (r?.status !== 200) return; // unreachable: neither a source nor a target this time
            answered.add(n.id);
            const doc = (r.body as { states?: Record<string, ServiceDocument> }).states?.[link];
            m.set(n.id, doc ? headOfDoc(doc) : undefined);
          }),
        );
        await this.synchLinks(svc, new Map([[link, m]]), answered);
        if (this.generation === generation) this.doneThisGeneration.add(link);
      })().finally(() => this.inFlight.delete(link));
      this.inFlight.set(link, p);
    }
    return p;
  }

  private async runPass(): Promise<void> {
    const generation = this.generation;
    const started = performance.now();
    this.stats.running = true;
    try {
      for (const link of this.d.registry.factoryLinks()) {
        const svc = this.d.registry.factory(link)!;
        if (!svc.has('REPLICATION')) continue;
        const heads = new Map<Link, Map<NodeId, Head | undefined>>();
        await Promise.all(this.peers().map((n) => this.fetchHeads(n, svc, heads)));
        for (const l of this.d.index.linksUnder(svc.def.factoryLink)) if (!heads.has(l)) heads.set(l, new Map());
        await this.synchLinks(svc, heads);
      }
      if (this.generation === generation) this.completedGeneration = generation;
      this.stats.passes++;
      this.stats.lastPassMs = Math.round(performance.now() - started);
      this.d.logger.info({ generation, ms: this.stats.lastPassMs, checked: this.stats.linksChecked, pushed: this.stats.pushed }, 'synchronization pass finished');
    } catch (e) {
      // A peer left mid-pass: the membership change that follows schedules another pass.
      this.d.logger.warn({ err: String(e) }, 'synchronization pass failed; it runs again after the next membership change');
      this.rerun = true;
    } finally {
      this.stats.running = false;
    }
  }

  /** Applies the plan of every link in `heads` that this host owns (peer heads only; ours are read here). */
  /**
   * `answered`, for an on-demand synchronization, names the peers that answered (a peer missing
   * from it is unreachable, not empty); a pass has heard from every peer or failed.
   */
  private async synchLinks(svc: RegisteredService, heads: Map<Link, Map<NodeId, Head | undefined>>, answered?: ReadonlySet<NodeId>): Promise<void> {
    const links = [...heads.keys()].filter((l) => this.owns(svc, l));
    const peersById = new Map(this.peers().map((n) => [n.id, n]));
    for (let i = 0; i < links.length; i += limits.synchConcurrencyMax) {
      const slice = links.slice(i, i + limits.synchConcurrencyMax);
      // Fetch the best copies held elsewhere, grouped per source.
      const plans = new Map<Link, ReturnType<typeof planLink>>();
      const replicas = new Map<Link, Set<NodeId>>();
      const wanted = new Map<NodeId, Link[]>();
      for (const l of slice) {
        const m = new Map<NodeId, Head | undefined>(heads.get(l));
        const set = this.d.replicator.replicaSet(svc.def.nodeSelector, l);
        replicas.set(l, new Set(set.targets.map((n) => n.id)));
        // Replicas that answered but hold nothing must receive the link (on demand, only those
        // that answered; in a pass, every peer answered or the pass failed).
        const heardFrom: ReadonlySet<NodeId> = answered ?? new Set(peersById.keys());
        for (const n of set.targets) {
          if (!m.has(n.id) && heardFrom.has(n.id)) m.set(n.id, undefined);
        }
        m.set(this.d.hostId, this.localHead(l));
        // Plan only with the heads of a quorum of the replica set: a write acknowledged by a quorum
        // is then among them. With fewer, acting could discard it.
        const heard = 1 + set.targets.filter((n) => m.has(n.id)).length;
        const needed = successThreshold({ eligible: set.eligible, membershipQuorum: set.membershipQuorum, action: 'PUT' });
        if (heard < needed) {
          this.stats.skippedNoQuorum++;
          if (answered) throw new KryptonError('QUORUM_UNAVAILABLE', `cannot synchronize ${l}: heads from ${heard} of ${set.eligible} replicas, quorum ${needed}`);
          this.rerun = true;
          continue;
        }
        const plan = planLink(this.d.hostId, m);
        plans.set(l, plan);
        if (plan && plan.source !== this.d.hostId) {
          const list = wanted.get(plan.source) ?? [];
          list.push(l);
          wanted.set(plan.source, list);
        }
      }
      const fetched = new Map<Link, ServiceDocument>();
      await Promise.all(
        [...wanted].map(async ([id, ls]) => {
          const n = peersById.get(id);
          if (!n) return;
          const states = await this.fetchStates(n, svc, ls);
          for (const [l, doc] of Object.entries(states)) fetched.set(l, doc);
        }),
      );
      await Promise.all(slice.map((l) => this.applyPlan(svc, l, plans.get(l) ?? null, fetched.get(l), peersById, replicas.get(l)!)));
    }
  }

  private async applyPlan(
    svc: RegisteredService,
    link: Link,
    plan: ReturnType<typeof planLink>,
    remote: ServiceDocument | undefined,
    peersById: Map<NodeId, NodeState>,
    replicas: Set<NodeId>,
  ): Promise<void> {
    this.stats.linksChecked++;
    if (!plan) return;
    const record = await this.d.store.serialized(link, async (): Promise<NewLogRecord | undefined> => {
      const base = plan.source === this.d.hostId ? this.d.index.latest(link) : remote;
      if (!base) return undefined;
      if (plan.rewrite) {
        const now = this.d.clock.nowMicros();
        const state = { ...base, documentEpoch: plan.rewrite.epoch, documentVersion: plan.rewrite.version, documentOwner: this.d.hostId, documentUpdateTimeMicros: now };
        const rec: NewLogRecord = { link, action: state.documentUpdateAction, version: state.documentVersion, epoch: state.documentEpoch, timeMicros: now, state };
        // The replicas take the new epoch (and from then on refuse the old owner's records) before
        // this host serves it; if they cannot, nothing changes here and the next pass retries.
        const body = encodeRecordBody(rec);
        await this.d.replicator.shipBeforeCommit(svc, rec, body);
        await this.d.store.appendLocal(rec, body);
        if (plan.best.owner !== this.d.hostId) {
          this.stats.takenOver++;
          // The new owner runs the service's start handler, as Xenon restarts a service on its new owner.
          if (state.documentUpdateAction !== 'DELETE') this.d.hooks?.started(svc, link);
        }
        return rec;
      }
      const rec: NewLogRecord = { link, action: base.documentUpdateAction, version: base.documentVersion, epoch: base.documentEpoch ?? 0, timeMicros: base.documentUpdateTimeMicros, state: base };
      if (plan.source !== this.d.hostId) {
        await this.d.store.appendLocal(rec);
        this.stats.adopted++;
      }
      return rec;
    });
    // A takeover already went to every replica before it was committed here.
    if (!record || plan.rewrite) return;
    await Promise.all(
      // Only the link's replica set receives it (all members, or the N closest for a factor N).
      plan.pushTo.map(async (id) => {
        const n = peersById.get(id);
        if (!n || !replicas.has(id)) return;
        const r = await this.d.replicator.push(n, svc.def.nodeSelector, record);
        if (r.ok) this.stats.pushed++;
        else this.stats.pushFailures++;
      }),
    );
  }

  stop(): Promise<void> | undefined {
    this.stopped = true;
    return this.passRunning;
  }
}

/** The index of the first element of sorted `links` greater than `after`. */
function upperBound(links: readonly string[], after: string): number {
  let lo = 0;
  let hi = links.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (links[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
