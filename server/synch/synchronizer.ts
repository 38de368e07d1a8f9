/**
 * Synchronization (Krypton's rules in lib/synch/, not Xenon's). After the membership changes
 * and the group is available again, every host runs a pass: for each replicated factory it
 * collects every peer's heads (link, epoch, version, and any epoch promised above them) in pages,
 * and for each link it now owns it picks the best copy, adopts it and pushes it to every replica
 * that lacks it, tombstones included. When ownership moved (or copies diverged, or a replica is
 * bound to a higher epoch) it takes the link over: a prepare round (server/synch/takeover.ts) makes a
 * quorum of the replicas promise a new epoch and return their heads, read after the promise; the
 * best of those is written at that epoch to the replicas before this host commits it. A link
 * whose promises fall short is retried later, with backoff. A host restarted after missing
 * updates is caught up by these pushes. The plain pushes (links this host owns and holds the best
 * copy of) do not wait for the group to settle: they run during the stability window, when client
 * writes are parked anyway, so a restarted host receives most of what it missed while the group
 * is still settling (earlyPass); an old owner also hands its copy of each link that moved to the
 * new owner then, when every copy agrees, so the new owner's takeover need not fetch it. Until a pass has covered a link, an owner that is asked
 * for it synchronizes that one link first (on demand), so no request is answered from a stale
 * copy; so does an owner that finds its own writes of the link refused for their epoch.
 */

import type { Logger } from 'pino';
import type { NewLogRecord, ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { NodeState } from '../../lib/group/types.js';
import type { Link, NodeId } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import type { RegisteredService, ServiceRegistry } from '../../lib/service.js';
import { successThreshold } from '../../lib/replication/quorum.js';
import { headOf, headOfDoc, type Head, type HeadTuple, type SynchPlan } from '../../lib/synch/plan.js';
import {
  decideSynch,
  earlyHandoffTarget,
  earlyPushPlan,
  planTakeover,
  RetrySchedule,
  type TakeoverTarget,
} from '../../lib/synch/takeover.js';
import type { DocumentIndex } from '../../index/views.js';
import { encodeRecordBody } from '../../wal/record.js';
import type { Clock } from '../base/clock.js';
import type { DocumentStore } from '../documents/documents.js';
import type { GroupRuntime } from '../membership/groups.js';
import type { PeerClient } from '../net/peers.js';
import type { PromiseStore } from './promises.js';
import type { Replicator } from '../replication/replicator.js';
import { originOf } from '../routing/routing.js';
import type { Selectors } from '../membership/selectors.js';
import { Takeovers } from './takeover.js';

export interface SynchRequest {
  kind: 'heads' | 'fetch' | 'promise';
  factoryLink?: string;
  after?: string;
  limit?: number;
  links?: string[];
  /** kind 'promise': the asking host and its [link, epoch] pairs (server/synch/takeover.ts). */
  from?: string;
  asks?: [string, number][];
}

/** Peer heads of one factory's links, and the highest epoch any peer promised above its copy. */
interface Discovery {
  heads: Map<Link, Map<NodeId, Head | undefined>>;
  fences: Map<Link, number>;
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
  /** Takeovers left for a retry: too few promises, or the takeover's write missed its quorum. */
  takeoversDeferred: number;
  /** Promises this host granted as a replica, and those it still holds. */
  promisesGranted: number;
  promisesHeld: number;
  lastPassMs: number;
  running: boolean;
  /** Copies pushed by early passes, while the group was settling. */
  earlyPushed: number;
  /** Copies of links that moved, handed by their old owner to the new one during early passes. */
  earlyHandedOver: number;
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
  private earlyRunning: Promise<void> | undefined;
  private earlyRerun = false;
  private earlyGeneration = -1;
  /** Links whose owner saw its writes refused for their epoch: synchronized again before the next one. */
  private readonly recheck = new Set<Link>();
  private readonly retry = new RetrySchedule();
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly takeovers: Takeovers;
  readonly stats: SynchStats;

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
      promises: PromiseStore;
      clock: Clock;
      logger: Logger;
      operationTimeoutMicros: number;
      enabled: boolean;
      hooks?: { started(svc: RegisteredService, link: Link): void };
    },
  ) {
    d.group.onChanged(() => this.membershipChanged());
    d.group.onAvailability((available) => available && this.schedule());
    this.takeovers = new Takeovers({ ...d, timeoutMs: this.timeoutMs });
    const promises = d.promises;
    this.stats = {
      passes: 0,
      linksChecked: 0,
      adopted: 0,
      takenOver: 0,
      pushed: 0,
      pushFailures: 0,
      skippedNoQuorum: 0,
      takeoversDeferred: 0,
      lastPassMs: 0,
      running: false,
      earlyPushed: 0,
      earlyHandedOver: 0,
      get promisesGranted() {
        return promises.stats.granted;
      },
      get promisesHeld() {
        return promises.size;
      },
    };
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
    this.retry.succeeded();
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.schedule();
    this.scheduleEarly();
  }

  private schedule(): void {
    if (!this.d.enabled || this.stopped || !this.d.group.isAvailable()) return;
    if (this.completedGeneration >= this.generation) return;
    // The settled pass starts once the early one ends: it then skips what that one pushed.
    if (this.passRunning || this.earlyRunning) {
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

  /** Starts an early pass for this generation while the group settles, once per generation. */
  private scheduleEarly(): void {
    if (!this.d.enabled || this.stopped || this.d.group.isAvailable() || this.earlyGeneration >= this.generation) return;
    if (!this.d.group.hasQuorum()) return;
    if (this.earlyRunning || this.passRunning) {
      this.earlyRerun = true;
      return;
    }
    this.earlyGeneration = this.generation;
    this.earlyRunning = this.earlyPass(this.generation).finally(() => {
      this.earlyRunning = undefined;
      if (this.earlyRerun) {
        this.earlyRerun = false;
        this.scheduleEarly();
      }
      this.schedule();
    });
  }

  /**
   * The part of a pass that needs no settled group: for each link this host owns now and holds
   * the best copy of at an epoch no replica is fenced above, its copy goes to the replicas that
   * lack it. Such a push cannot do harm under a view that later changes: a replica appends a
   * record only above what it holds and refuses one below its fence, so a push never replaces a
   * newer copy nor undoes a takeover. Everything else (takeovers, adopting a better copy, links a
   * peer could not be asked about) waits for the settled pass, which skips the links done here
   * unless the membership changed again. Any failure just leaves the work to that pass.
   */
  private async earlyPass(generation: number): Promise<void> {
    const started = performance.now();
    let pushed = 0;
    try {
      for (const link of this.d.registry.factoryLinks()) {
        const svc = this.d.registry.factory(link)!;
        if (!svc.has('REPLICATION')) continue;
        const peersById = new Map(this.peers().map((n) => [n.id, n]));
        if (peersById.size === 0) return;
        const discovery: Discovery = { heads: new Map(), fences: new Map() };
        await Promise.all([...peersById.values()].map((n) => this.fetchHeads(n, svc, discovery)));
        for (const l of this.d.index.linksUnder(svc.def.factoryLink)) if (!discovery.heads.has(l)) discovery.heads.set(l, new Map());
        const ready: [Link, SynchPlan, Set<NodeId>][] = [];
        const handoffs: [Link, NodeState][] = [];
        const heardFrom = new Set(peersById.keys());
        for (const l of discovery.heads.keys()) {
          if (this.generation !== generation || this.stopped) return;
          if (this.doneThisGeneration.has(l)) continue;
          if (!this.owns(svc, l)) {
            const owner = this.ownerOf(svc, l);
            if (owner === undefined || !peersById.has(owner)) continue;
            const { heads, fences } = this.assemble(svc, l, discovery, heardFrom);
            const to = earlyHandoffTarget(this.d.hostId, owner, heads, fences);
            if (to !== undefined) handoffs.push([l, peersById.get(to)!]);
            continue;
          }
          const { heads, set, fences, needed } = this.assemble(svc, l, discovery, heardFrom);
          const plan = earlyPushPlan(this.d.hostId, heads, fences);
          if (!plan) continue;
          if (1 + set.targets.filter((n) => heads.has(n.id)).length < needed) continue;
          ready.push([l, plan, new Set(set.targets.map((n) => n.id))]);
        }
        for (let i = 0; i < ready.length; i += limits.synchConcurrencyMax) {
          if (this.generation !== generation || this.stopped) return;
          await Promise.all(
            ready.slice(i, i + limits.synchConcurrencyMax).map(async ([l, plan, replicas]) => {
              const before = this.stats.pushFailures;
              await this.applyPlan(svc, l, plan, undefined, peersById, replicas);
              pushed += plan.pushTo.length;
              this.stats.earlyPushed += plan.pushTo.length;
              if (this.stats.pushFailures === before && this.generation === generation) this.doneThisGeneration.add(l);
            }),
          );
        }
        // Copies handed to their new owners; its own (settled) pass still takes each link over.
        for (let i = 0; i < handoffs.length; i += limits.synchConcurrencyMax) {
          if (this.generation !== generation || this.stopped) return;
          await Promise.all(
            handoffs.slice(i, i + limits.synchConcurrencyMax).map(async ([l, n]) => {
              const doc = this.d.index.latest(l);
              if (!doc) return;
              const rec: NewLogRecord = {
                link: l,
                action: doc.documentUpdateAction,
                version: doc.documentVersion,
                epoch: doc.documentEpoch ?? 0,
                timeMicros: doc.documentUpdateTimeMicros,
                state: doc,
              };
              const r = await this.d.replicator.push(n, svc.def.nodeSelector, rec);
              if (r.ok) this.stats.earlyHandedOver++;
            }),
          );
        }
      }
    } catch (e) {
      this.d.logger.debug({ err: String(e) }, 'early synchronization pass stopped; the settled pass does its work');
    } finally {
      if (pushed)
        this.d.logger.info(
          { generation, ms: Math.round(performance.now() - started), pushed },
          'early synchronization pass pushed copies while the group settles',
        );
    }
  }

  /**
   * One link's heads as a pass plans with them: the peers' heads, an empty head for each replica
   * that answered without the link, and ours; the fences known for it; its replica set and quorum.
   */
  private assemble(svc: RegisteredService, l: Link, discovery: Discovery, heardFrom: ReadonlySet<NodeId>) {
    const heads = new Map<NodeId, Head | undefined>(discovery.heads.get(l));
    const set = this.d.replicator.replicaSet(svc.def.nodeSelector, l);
    for (const n of set.targets) if (!heads.has(n.id) && heardFrom.has(n.id)) heads.set(n.id, undefined);
    heads.set(this.d.hostId, this.localHead(l));
    const fences: number[] = [];
    const peerFence = discovery.fences.get(l);
    if (peerFence !== undefined) fences.push(peerFence);
    const own = this.d.promises.get(l);
    if (own) fences.push(own.epoch);
    const needed = successThreshold({ eligible: set.eligible, membershipQuorum: set.membershipQuorum, action: 'PUT' });
    return { heads, set, fences, needed };
  }

  /** Links deferred by a pass are tried again by another pass after a backoff (lib RetrySchedule). */
  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const now = this.d.clock.nowMicros();
    const due = this.retry.failed(now);
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.schedule();
      },
      Math.ceil((due - now) / 1000),
    );
    this.retryTimer.unref();
  }

  /** Serves a peer's synchronization request: heads of a factory in pages, full latest states, or promises. */
  async serve(
    raw: unknown,
  ): Promise<
    | { heads: HeadTuple[]; next?: string }
    | { states: Record<string, ServiceDocument>; fences?: Record<string, number> }
    | { promises: unknown[] }
  > {
    const req = raw as SynchRequest | undefined;
    if (!req || typeof req !== 'object' || Array.isArray(req))
      throw new KryptonError('INVALID_BODY', 'SynchronizePeersRequest body is required');
    if (req.kind === 'heads') {
      if (typeof req.factoryLink !== 'string' || !this.d.registry.factory(req.factoryLink))
        throw new KryptonError('INVALID_BODY', 'factoryLink must name a factory');
      const limit = Math.min(
        limits.synchHeadsPageLinksMax,
        typeof req.limit === 'number' && req.limit > 0 ? req.limit : limits.synchHeadsPageLinksMax,
      );
      const links = this.sortedLinks(req.factoryLink);
      const start = typeof req.after === 'string' ? upperBound(links, req.after) : 0;
      const page = links.slice(start, start + limit);
      const heads: HeadTuple[] = [];
      for (const l of page) {
        const doc = this.d.index.latest(l);
        if (!doc) continue;
        const t: HeadTuple = [
          l,
          doc.documentEpoch ?? 0,
          doc.documentVersion,
          doc.documentUpdateAction === 'DELETE' ? 1 : 0,
          doc.documentOwner ?? '',
        ];
        const promised = this.d.promises.get(l);
        if (promised) t.push(promised.epoch);
        heads.push(t);
      }
      return start + limit < links.length ? { heads, next: page[page.length - 1]! } : { heads };
    }
    if (req.kind === 'fetch') {
      if (!Array.isArray(req.links) || req.links.length > limits.synchPageLinksMax)
        throw new KryptonError('INVALID_BODY', `links must be an array of at most ${limits.synchPageLinksMax}`);
      const states: Record<string, ServiceDocument> = {};
      const fences: Record<string, number> = {};
      for (const l of req.links) {
        if (typeof l !== 'string') continue;
        const doc = this.d.index.latest(l);
        if (doc) states[l] = doc;
        const promised = this.d.promises.get(l);
        if (promised) fences[l] = promised.epoch;
      }
      return Object.keys(fences).length ? { states, fences } : { states };
    }
    if (req.kind === 'promise') return this.takeovers.serve(req as unknown as Record<string, unknown>);
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

  private async fetchHeads(n: NodeState, svc: RegisteredService, out: Discovery): Promise<void> {
    let after: string | undefined;
    for (;;) {
      const r = await this.d.peers.json(this.synchUrl(n, svc), {
        method: 'POST',
        body: { kind: 'heads', factoryLink: svc.def.factoryLink, after },
        timeoutMs: this.timeoutMs,
      });
      if (r.status !== 200) throw new Error(`heads from ${n.id}: status ${r.status}`);
      const page = r.body as { heads: HeadTuple[]; next?: string };
      for (const t of page.heads) {
        let m = out.heads.get(t[0]);
        if (!m) out.heads.set(t[0], (m = new Map()));
        m.set(n.id, headOf(t));
        if (typeof t[5] === 'number') out.fences.set(t[0], Math.max(t[5], out.fences.get(t[0]) ?? 0));
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
        const r = await this.d.peers.json(this.synchUrl(n, svc), {
          method: 'POST',
          body: { kind: 'fetch', links: page },
          timeoutMs: this.timeoutMs,
        });
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

  private ownerOf(svc: RegisteredService, link: Link): NodeId | undefined {
    try {
      return this.d.selectors.owner(svc.def.nodeSelector, link).id;
    } catch {
      return undefined;
    }
  }

  /**
   * Called when a replica refused this host's record of `link` for its epoch (it promised a higher
   * one to another host): the next write of the link synchronizes it first, taking it over again
   * if this host still owns it.
   */
  staleEpoch(link: Link): void {
    if (this.recheck.size >= limits.synchRecheckLinksMax) this.recheck.delete(this.recheck.values().next().value!);
    this.recheck.add(link);
  }

  /**
   * The owner's own fence, checked after a write is planned on `base` and before it is logged.
   * Once this host promised a later epoch for the link (to another host, or to its own takeover
   * in progress), a write at an older epoch would be overwritten by that takeover; and an epoch
   * another owner won (base stamped by it) is not this host's to write in: another host may write
   * the same version in it. Either way the write is refused (409) and the link is synchronized
   * again before the next one. (ensure() normally takes the link over first; this catches a
   * record or promise that arrived in between.)
   */
  checkEpoch(svc: RegisteredService, link: Link, epoch: number, base: ServiceDocument | undefined): void {
    if (!svc.has('REPLICATION')) return;
    const promised = this.d.promises.get(link);
    if (promised && epoch < promised.epoch) {
      this.staleEpoch(link);
      throw new KryptonError('STALE_EPOCH', `Expected epoch: ${promised.epoch}, in update: ${epoch}`);
    }
    if (base && this.foreignEpoch(base) && epoch === (base.documentEpoch ?? 0)) {
      this.staleEpoch(link);
      throw new KryptonError('STALE_EPOCH', `epoch ${epoch} of ${link} was taken by ${base.documentOwner ?? 'another host'}; try again`);
    }
  }

  private stampedElsewhere(doc: ServiceDocument | undefined): boolean {
    return doc !== undefined && doc.documentOwner !== this.d.hostId;
  }

  /** The latest state was stamped by another owner: writing on in its epoch needs a takeover first. */
  private foreignEpoch(doc: ServiceDocument): boolean {
    return this.stampedElsewhere(doc) && this.d.enabled && this.peers().length > 0;
  }

  /**
   * The epoch this host prepared for a link nobody holds (its own promise, nothing taken over):
   * a creation of the link is stamped with it (CreateOptions.epochFloor).
   */
  preparedEpoch(link: Link): number | undefined {
    const promised = this.d.promises.get(link);
    return promised?.by === this.d.hostId && !this.d.index.latest(link) ? promised.epoch : undefined;
  }

  /** A promise outstanding here, unless it is this host's own for a link nobody holds (a creation spends it). */
  private promisePending(link: Link): boolean {
    const promised = this.d.promises.get(link);
    return promised !== undefined && (promised.by !== this.d.hostId || this.d.index.latest(link) !== undefined);
  }

  /** Cheap checks first: this runs before every owner write. */
  private needsSynch(svc: RegisteredService, link: Link): boolean {
    if (!this.d.enabled || !svc.has('REPLICATION')) return false;
    const pending =
      this.recheck.has(link) ||
      this.promisePending(link) ||
      (this.completedGeneration < this.generation && !this.doneThisGeneration.has(link)) ||
      this.stampedElsewhere(this.d.index.latest(link));
    return pending && this.peers().length > 0;
  }

  /**
   * Brings one link up to date before its owner acts on it: while a pass has not covered it since
   * the last membership change, while this host is bound to a later epoch for it than the one it
   * holds, or when its latest state was stamped by another owner (this host then takes it over
   * under a new epoch rather than write on in one it never won). Concurrent callers share one
   * synchronization, a pass's included.
   */
  ensure(svc: RegisteredService, link: Link): Promise<void> | undefined {
    // Nearly always nothing to do: answered without a promise, so a write does not wait a tick.
    return this.needsSynch(svc, link) ? this.synchOnDemand(svc, link) : undefined;
  }

  private async synchOnDemand(svc: RegisteredService, link: Link): Promise<void> {
    const running = this.inFlight.get(link);
    if (running) {
      // A pass's slice never rejects; another caller's on-demand failure is shared, as before.
      await running;
      if (!this.needsSynch(svc, link)) return;
    }
    let p = this.inFlight.get(link);
    if (!p) {
      const generation = this.generation;
      p = (async () => {
        const discovery: Discovery = { heads: new Map([[link, new Map<NodeId, Head | undefined>()]]), fences: new Map() };
        const m = discovery.heads.get(link)!;
        const answered = new Set<NodeId>();
        await Promise.all(
          this.peers().map(async (n) => {
            const r = await this.d.peers
              .json(this.synchUrl(n, svc), { method: 'POST', body: { kind: 'fetch', links: [link] }, timeoutMs: this.timeoutMs })
              .catch(() => undefined);
            if (r?.status !== 200) return; // unreachable: neither a source nor a target this time
            answered.add(n.id);
            const body = r.body as { states?: Record<string, ServiceDocument>; fences?: Record<string, unknown> };
            const doc = body.states?.[link];
            m.set(n.id, doc ? headOfDoc(doc) : undefined);
            const fence = body.fences?.[link];
            if (typeof fence === 'number') discovery.fences.set(link, Math.max(fence, discovery.fences.get(link) ?? 0));
          }),
        );
        const deferred = await this.synchLinks(svc, discovery, generation, answered);
        if (deferred.length) throw new KryptonError('QUORUM_UNAVAILABLE', `cannot synchronize ${link}: ${deferred[0]}`);
        this.recheck.delete(link);
      })().finally(() => {
        if (this.inFlight.get(link) === p) this.inFlight.delete(link);
      });
      this.inFlight.set(link, p);
    }
    return p;
  }

  private async runPass(): Promise<void> {
    const generation = this.generation;
    const started = performance.now();
    this.stats.running = true;
    let deferred = 0;
    try {
      for (const link of this.d.registry.factoryLinks()) {
        const svc = this.d.registry.factory(link)!;
        if (!svc.has('REPLICATION')) continue;
        const discovery: Discovery = { heads: new Map(), fences: new Map() };
        await Promise.all(this.peers().map((n) => this.fetchHeads(n, svc, discovery)));
        for (const l of this.d.index.linksUnder(svc.def.factoryLink)) if (!discovery.heads.has(l)) discovery.heads.set(l, new Map());
        // Links already settled since the membership change (on demand, or by an earlier try of this pass) are left alone.
        for (const l of discovery.heads.keys()) if (this.doneThisGeneration.has(l)) discovery.heads.delete(l);
        deferred += (await this.synchLinks(svc, discovery, generation)).length;
      }
      if (this.generation === generation) {
        if (deferred === 0) {
          this.completedGeneration = generation;
          this.retry.succeeded();
        } else {
          this.scheduleRetry();
        }
      }
      this.stats.passes++;
      this.stats.lastPassMs = Math.round(performance.now() - started);
      this.d.logger.info(
        { generation, ms: this.stats.lastPassMs, checked: this.stats.linksChecked, pushed: this.stats.pushed, deferred },
        'synchronization pass finished',
      );
    } catch (e) {
      // A peer left mid-pass (the membership change that follows schedules another pass) or keeps
      // failing: try again after the same backoff as deferred takeovers, not in a tight loop.
      this.d.logger.warn({ err: String(e) }, 'synchronization pass failed; it runs again after a backoff or the next membership change');
      if (this.generation === generation) this.scheduleRetry();
    } finally {
      this.stats.running = false;
    }
  }

  /**
   * Applies the plan of every link in `discovery` that this host owns (peer heads only; ours are
   * read here). `answered`, for an on-demand synchronization, names the peers that answered (a peer
   * missing from it is unreachable, not empty); a pass has heard from every peer or failed.
   * Returns why each link left for later could not be settled now.
   */
  private async synchLinks(
    svc: RegisteredService,
    discovery: Discovery,
    generation: number,
    answered?: ReadonlySet<NodeId>,
  ): Promise<string[]> {
    const links = [...discovery.heads.keys()].filter((l) => this.owns(svc, l));
    const peersById = new Map(this.peers().map((n) => [n.id, n]));
    const urls = new Map([...peersById].map(([id, n]) => [id, this.synchUrl(n, svc)]));
    const deferred: string[] = [];
    for (let i = 0; i < links.length; i += limits.synchConcurrencyMax) {
      const slice = links.slice(i, i + limits.synchConcurrencyMax);
      let settle!: () => void;
      const sliceDone = new Promise<void>((resolve) => (settle = resolve));
      // On-demand callers of these links wait for this slice rather than start their own.
      for (const l of slice) if (!this.inFlight.has(l)) this.inFlight.set(l, sliceDone);
      try {
        deferred.push(...(await this.synchSlice(svc, slice, discovery, peersById, urls, generation, answered)));
      } finally {
        settle();
        for (const l of slice) if (this.inFlight.get(l) === sliceDone) this.inFlight.delete(l);
      }
    }
    return deferred;
  }

  private async synchSlice(
    svc: RegisteredService,
    slice: Link[],
    discovery: Discovery,
    peersById: Map<NodeId, NodeState>,
    urls: Map<NodeId, string>,
    generation: number,
    answered?: ReadonlySet<NodeId>,
  ): Promise<string[]> {
    const deferred: string[] = [];
    const plans = new Map<Link, SynchPlan | null>();
    const replicas = new Map<Link, Set<NodeId>>();
    const takeovers: TakeoverTarget[] = [];
    const discovered = new Map<Link, Map<NodeId, Head | undefined>>();
    const floors = new Map<Link, number>();
    // Replicas that answered but hold nothing must receive the link (on demand, only those
    // that answered; in a pass, every peer answered or the pass failed).
    const heardFrom: ReadonlySet<NodeId> = answered ?? new Set(peersById.keys());
    for (const l of slice) {
      const { heads: m, set, fences, needed } = this.assemble(svc, l, discovery, heardFrom);
      replicas.set(l, new Set(set.targets.map((n) => n.id)));
      const decision = decideSynch(this.d.hostId, m, fences);
      if (decision.takeoverEpoch !== undefined) {
        // The prepare round gathers its own quorum of heads, read after the promises.
        takeovers.push({ link: l, replicas: [this.d.hostId, ...set.targets.map((n) => n.id)], needed, epoch: decision.takeoverEpoch });
        discovered.set(l, m);
        floors.set(l, decision.versionFloor);
        continue;
      }
      // Plan only with the heads of a quorum of the replica set: a write acknowledged by a quorum
      // is then among them. With fewer, acting could discard it.
      const heard = 1 + set.targets.filter((n) => m.has(n.id)).length;
      if (heard < needed) {
        this.stats.skippedNoQuorum++;
        deferred.push(`heads from ${heard} of ${set.eligible} replicas, quorum ${needed}`);
        continue;
      }
      plans.set(l, decision.plan);
    }
    if (takeovers.length) {
      const round = await this.takeovers.prepare(svc, takeovers, urls);
      for (const d of round.deferred) {
        this.stats.takeoversDeferred++;
        deferred.push(d.reason);
        this.d.logger.debug({ link: d.link, reason: d.reason }, 'takeover deferred');
      }
      for (const r of round.ready) {
        // The promisers' heads, read after their promises, over what discovery read from the rest.
        const heads = new Map(discovered.get(r.link));
        for (const [n, h] of r.heads) heads.set(n, h);
        plans.set(r.link, planTakeover(this.d.hostId, heads, r.epoch, floors.get(r.link) ?? -1));
      }
    }
    // Fetch the best copies held elsewhere, grouped per source.
    const wanted = new Map<NodeId, Link[]>();
    for (const [l, plan] of plans) {
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
    await Promise.all(
      [...plans].map(async ([l, plan]) => {
        try {
          if (await this.applyPlan(svc, l, plan, fetched.get(l), peersById, replicas.get(l)!)) {
            if (this.generation === generation) this.doneThisGeneration.add(l);
          } else {
            deferred.push(`the takeover of ${l} was overtaken by a later epoch`);
          }
        } catch (e) {
          // The takeover's write missed its quorum: nothing was committed here; try again later.
          if (!plan?.rewrite) throw e;
          this.stats.takeoversDeferred++;
          deferred.push((e as Error).message);
        }
      }),
    );
    return deferred;
  }

  /** Adopts, takes over or pushes one link; false when a takeover found its promise gone. */
  private async applyPlan(
    svc: RegisteredService,
    link: Link,
    plan: SynchPlan | null,
    remote: ServiceDocument | undefined,
    peersById: Map<NodeId, NodeState>,
    replicas: Set<NodeId>,
  ): Promise<boolean> {
    this.stats.linksChecked++;
    if (!plan) return true;
    let overtaken = false;
    const record = await this.d.store.serialized(link, async (): Promise<NewLogRecord | undefined> => {
      const base = plan.source === this.d.hostId ? this.d.index.latest(link) : remote;
      if (!base) return undefined;
      if (plan.rewrite) {
        // Our own promise must still stand: a later epoch promised meanwhile means another host
        // is taking the link over, and this write would be refused or would undo its work.
        const own = this.d.promises.get(link);
        if (!own || own.epoch !== plan.rewrite.epoch || own.by !== this.d.hostId) {
          overtaken = true;
          return undefined;
        }
        const now = this.d.clock.nowMicros();
        const state = {
          ...base,
          documentEpoch: plan.rewrite.epoch,
          documentVersion: plan.rewrite.version,
          documentOwner: this.d.hostId,
          documentUpdateTimeMicros: now,
        };
        const rec: NewLogRecord = {
          link,
          action: state.documentUpdateAction,
          version: state.documentVersion,
          epoch: state.documentEpoch,
          timeMicros: now,
          state,
        };
        // The replicas take the new epoch (and from then on refuse the old owner's records) before
        // this host serves it; if they cannot, nothing changes here and the link is retried.
        const body = encodeRecordBody(rec);
        await this.d.replicator.shipBeforeCommit(svc, rec, body);
        await this.d.store.appendLocal(rec, body);
        this.d.promises.get(link); // drops our promise, spent now, before an expiry could purge its proof
        if (plan.best.owner !== this.d.hostId) {
          this.stats.takenOver++;
          // The new owner runs the service's start handler, as Xenon restarts a service on its new owner.
          if (state.documentUpdateAction !== 'DELETE') this.d.hooks?.started(svc, link);
        }
        return rec;
      }
      const rec: NewLogRecord = {
        link,
        action: base.documentUpdateAction,
        version: base.documentVersion,
        epoch: base.documentEpoch ?? 0,
        timeMicros: base.documentUpdateTimeMicros,
        state: base,
      };
      if (plan.source !== this.d.hostId) {
        await this.d.store.appendLocal(rec);
        this.stats.adopted++;
      }
      return rec;
    });
    if (overtaken) return false;
    // A takeover already went to every replica before it was committed here.
    if (!record || plan.rewrite) return true;
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
    return true;
  }

  stop(): Promise<void> | undefined {
    this.stopped = true;
    clearTimeout(this.retryTimer);
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
