/**
 * Synchronizing links this host owns, for a pass or on demand: per link, from what discovery read,
 * lib/synch/takeover.ts decideLink says whether to adopt and push a copy or to take the link over
 * (a prepare round, server/synch/takeover.ts, then the best copy the promisers returned is written
 * at the new epoch to the replicas before this host commits it); links whose heads or promises
 * fall short are left for later. Links go in slices of limits.synchConcurrencyMax; an on-demand
 * caller of a link in a slice waits for that slice rather than start its own.
 */

import type { NewLogRecord, ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { NodeState } from '../../lib/group/types.js';
import type { Link, NodeId } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import type { RegisteredService } from '../../lib/service.js';
import type { Head, SynchPlan } from '../../lib/synch/plan.js';
import { promiseStands } from '../../lib/synch/promise.js';
import { decideLink, planTakeover, type TakeoverTarget } from '../../lib/synch/takeover.js';
import { encodeRecordBody } from '../../wal/record.js';
import type { SynchDeps, SynchStats } from './deps.js';
import type { Discovered, Discovery } from './discovery.js';
import type { HistorySynch } from './history.js';
import type { Takeovers } from './takeover.js';

/** A link's write quorum, and how many replicas other than this host hold a plan's copy already. */
export interface PlanQuorum {
  needed: number;
  holders: number;
}

/** The replicas (not this host) whose head is the plan's copy and that need no push. */
function holdersOf(plan: SynchPlan, heads: ReadonlyMap<NodeId, Head | undefined>, targets: readonly NodeId[]): number {
  let n = 0;
  for (const id of targets) {
    const h = heads.get(id);
    if (h && !plan.pushTo.includes(id) && h.epoch === plan.best.epoch && h.version === plan.best.version) n++;
  }
  return n;
}

/** A best copy fetched from its holder, with the request id of the write that made it. */
export interface FetchedCopy {
  state: ServiceDocument;
  requestId: string | undefined;
}

/** The peers of one synchronization: by id, and their `/synch` URLs for the factory. */
interface Peers {
  byId: Map<NodeId, NodeState>;
  urls: Map<NodeId, string>;
  /** Peers whose heads count: a replica among them that reported nothing holds nothing. */
  heardFrom: ReadonlySet<NodeId>;
}

/** One slice's plans, and the replica set of each link planned. */
interface SlicePlans {
  plans: Map<Link, SynchPlan | null>;
  replicas: Map<Link, Set<NodeId>>;
  quorums: Map<Link, PlanQuorum>;
  deferred: string[];
}

export class LinkSynch {
  /** Synchronizations under way per link, on demand or a pass's slice. */
  private readonly inFlight = new Map<Link, Promise<void>>();

  constructor(
    private readonly d: SynchDeps,
    private readonly discovery: Discovery,
    private readonly takeovers: Takeovers,
    private readonly history: HistorySynch,
    readonly stats: SynchStats,
    /** Links synchronized by work that started in `generation` (schedule.ts linksDone). */
    private readonly done: (generation: number, link: Link) => void,
  ) {}

  /** The synchronization of `link` under way, if any (a pass's slice never rejects). */
  running(link: Link): Promise<void> | undefined {
    return this.inFlight.get(link);
  }

  /**
   * Synchronizes one link on demand, sharing one synchronization with concurrent callers; throws
   * QUORUM_UNAVAILABLE when the link is left for later, else calls `settled`. `generation` is the
   * schedule's now.
   */
  onDemand(svc: RegisteredService, link: Link, generation: number, settled: () => void): Promise<void> {
    let p = this.inFlight.get(link);
    if (p) return p;
    p = (async () => {
      const { discovered, answered } = await this.discovery.linkHeads(svc, link);
      this.d.logger.debug(
        {
          link,
          owned: this.discovery.owns(svc, link),
          asked: this.discovery.peers().map((n) => n.id),
          answered: [...answered],
          heads: Object.fromEntries([...(discovered.heads.get(link) ?? [])].map(([id, h]) => [id, h ? `${h.epoch}:${h.version}` : null])),
        },
        'on-demand synchronization',
      );
      const deferred = await this.synchLinks(svc, discovered, generation, answered);
      if (deferred.length) throw new KryptonError('QUORUM_UNAVAILABLE', `cannot synchronize ${link}: ${deferred[0]}`);
      settled();
    })().finally(() => {
      if (this.inFlight.get(link) === p) this.inFlight.delete(link);
    });
    this.inFlight.set(link, p);
    return p;
  }

  /**
   * Applies the plan of every link in `discovered` that this host owns (peer heads only; ours are
   * read here). `answered`, for an on-demand synchronization, names the peers that answered (a peer
   * missing from it is unreachable, not empty); a pass has heard from every peer or failed.
   * Returns why each link left for later could not be settled now.
   */
  async synchLinks(svc: RegisteredService, discovered: Discovered, generation: number, answered?: ReadonlySet<NodeId>): Promise<string[]> {
    const links = [...discovered.heads.keys()].filter((l) => this.discovery.owns(svc, l));
    const byId = new Map(this.discovery.peers().map((n) => [n.id, n]));
    const urls = new Map([...byId].map(([id, n]) => [id, this.discovery.synchUrl(n, svc)]));
    const peers: Peers = { byId, urls, heardFrom: answered ?? new Set(byId.keys()) };
    const deferred: string[] = [];
    for (let i = 0; i < links.length; i += limits.synchConcurrencyMax) {
      const slice = links.slice(i, i + limits.synchConcurrencyMax);
      let settle!: () => void;
      const sliceDone = new Promise<void>((resolve) => {
        settle = resolve;
      });
      // On-demand callers of these links wait for this slice rather than start their own.
      for (const l of slice) if (!this.inFlight.has(l)) this.inFlight.set(l, sliceDone);
      try {
        deferred.push(...(await this.synchSlice(svc, slice, discovered, peers, generation)));
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
    discovered: Discovered,
    peers: Peers,
    generation: number,
  ): Promise<string[]> {
    const planned = await this.planSlice(svc, slice, discovered, peers);
    const fetched = await this.fetchBest(svc, planned.plans, peers);
    const { deferred } = planned;
    const settled: Link[] = [];
    await Promise.all(
      [...planned.plans].map(async ([l, plan]) => {
        try {
          if (await this.applyPlan(svc, l, plan, fetched.get(l), peers.byId, planned.replicas.get(l)!, planned.quorums.get(l))) {
            settled.push(l);
          } else deferred.push(`the takeover of ${l} was overtaken by a later epoch`);
        } catch (e) {
          // The takeover's write missed its quorum: nothing was committed here; try again later.
          if (!plan?.rewrite) throw e;
          this.stats.takeoversDeferred++;
          deferred.push((e as Error).message);
        }
      }),
    );
    // The latest states are settled; the versions before them follow before the links count as
    // done, so a retry of a write this host just received the record of is recognized.
    await this.catchUp(svc, settled, discovered.heads, planned.replicas, peers.urls);
    for (const l of settled) this.done(generation, l);
    return deferred;
  }

  /** History catch-up of settled links (server/synch/history.ts); a failure waits for a later synchronization. */
  async catchUp(
    svc: RegisteredService,
    links: Link[],
    heads: Discovered['heads'],
    replicas: ReadonlyMap<Link, ReadonlySet<NodeId>>,
    urls: ReadonlyMap<NodeId, string>,
  ): Promise<void> {
    await this.history
      .catchUp(svc.def.factoryLink, { links, heads, replicas, urls })
      .catch((e: unknown) => this.d.logger.warn({ err: (e as Error).message }, 'history catch-up failed'));
  }

  /** Each link's plan: decided from discovery, or, for a takeover, from the heads its prepare round returned. */
  private async planSlice(svc: RegisteredService, slice: Link[], discovered: Discovered, peers: Peers): Promise<SlicePlans> {
    const out: SlicePlans = { plans: new Map(), replicas: new Map(), quorums: new Map(), deferred: [] };
    const takeovers: TakeoverTarget[] = [];
    const waiting = new Map<Link, { heads: Map<NodeId, Head | undefined>; versionFloor: number }>();
    for (const l of slice) {
      const a = this.discovery.assemble(svc, l, discovered, peers.heardFrom);
      out.replicas.set(l, new Set(a.targets));
      const next = decideLink(this.d.hostId, l, a.heads, a.fences, a);
      if (next.type === 'takeover') {
        takeovers.push(next.target);
        waiting.set(l, { heads: a.heads, versionFloor: next.versionFloor });
      } else if (next.type === 'short') {
        this.stats.skippedNoQuorum++;
        out.deferred.push(`heads from ${next.heard} of ${a.set.eligible} replicas, quorum ${next.needed}`);
      } else {
        out.plans.set(l, next.plan);
        if (next.plan) out.quorums.set(l, { needed: a.needed, holders: holdersOf(next.plan, a.heads, a.targets) });
      }
    }
    if (takeovers.length === 0) return out;
    const round = await this.takeovers.prepare(svc, takeovers, peers.urls);
    for (const d of round.deferred) {
      this.stats.takeoversDeferred++;
      out.deferred.push(d.reason);
      this.d.logger.debug({ link: d.link, reason: d.reason }, 'takeover deferred');
    }
    for (const r of round.ready) {
      // The promisers' heads, read after their promises, over what discovery read from the rest.
      const w = waiting.get(r.link)!;
      const heads = new Map(w.heads);
      for (const [n, h] of r.heads) heads.set(n, h);
      out.plans.set(r.link, planTakeover(this.d.hostId, heads, r.epoch, w.versionFloor));
    }
    return out;
  }

  /** The best copies held elsewhere, fetched per source. */
  private async fetchBest(svc: RegisteredService, plans: Map<Link, SynchPlan | null>, peers: Peers): Promise<Map<Link, FetchedCopy>> {
    const wanted = new Map<NodeId, Link[]>();
    for (const [l, plan] of plans) {
      if (!plan || plan.source === this.d.hostId) continue;
      const list = wanted.get(plan.source) ?? [];
      list.push(l);
      wanted.set(plan.source, list);
    }
    const fetched = new Map<Link, FetchedCopy>();
    await Promise.all(
      [...wanted].map(async ([id, ls]) => {
        const n = peers.byId.get(id);
        if (!n) return;
        const { states, requestIds } = await this.discovery.fetchStates(n, svc, ls);
        for (const [l, state] of Object.entries(states)) fetched.set(l, { state, requestId: requestIds[l] });
      }),
    );
    return fetched;
  }

  /** Adopts, takes over or pushes one link; false when a takeover found its promise gone. */
  async applyPlan(
    svc: RegisteredService,
    link: Link,
    plan: SynchPlan | null,
    remote: FetchedCopy | undefined,
    peersById: Map<NodeId, NodeState>,
    replicas: Set<NodeId>,
    /** The link's write quorum and how many other replicas already hold the plan's copy (a settled pass's plans). */
    quorum?: PlanQuorum,
  ): Promise<boolean> {
    this.stats.linksChecked++;
    if (!plan) return true;
    let overtaken = false;
    const record = await this.d.store.serialized(link, async (): Promise<NewLogRecord | undefined> => {
      const base = plan.source === this.d.hostId ? this.d.index.latest(link) : remote?.state;
      if (!base) return undefined;
      if (!plan.rewrite) return this.adopt(link, plan, base, remote?.requestId);
      // Our own promise must still stand: a later epoch promised meanwhile means another host
      // is taking the link over, and this write would be refused or would undo its work.
      if (!promiseStands(this.d.promises.get(link), this.d.hostId, plan.rewrite.epoch)) {
        overtaken = true;
        return undefined;
      }
      return this.rewrite(svc, link, plan, base, remote?.requestId);
    });
    if (overtaken) return false;
    if (!record) return true;
    if (plan.rewrite) {
      // A takeover went to a quorum of replicas before it was committed here: reads may answer it.
      this.d.store.settled(link);
      return true;
    }
    let acked = 0;
    await Promise.all(
      // Only the link's replica set receives it (all members, or the N closest for a factor N).
      plan.pushTo.map(async (id) => {
        const n = peersById.get(id);
        if (!n || !replicas.has(id)) return;
        const r = await this.d.replicator.push(n, svc.def.nodeSelector, record);
        if (r.ok) {
          this.stats.pushed++;
          acked++;
        } else this.stats.pushFailures++;
      }),
    );
    // The copy is committed once a quorum holds it (this host, the replicas that did, the pushes that took):
    // a write of it that missed its quorum is then no longer in doubt.
    if (quorum && 1 + quorum.holders + acked >= quorum.needed) this.d.store.settled(link);
    return true;
  }

  /** The best copy as it is, appended here when it came from elsewhere; the record to push. */
  private async adopt(link: Link, plan: SynchPlan, base: ServiceDocument, remoteRequestId: string | undefined): Promise<NewLogRecord> {
    const rec = recordOf(link, base, plan.source === this.d.hostId ? this.d.index.requestId(link, base.documentVersion) : remoteRequestId);
    if (plan.source !== this.d.hostId) {
      await this.d.store.appendLocal(rec);
      this.stats.adopted++;
    }
    return rec;
  }

  /**
   * The takeover's write: the best copy at the new epoch and version, owned here. The replicas
   * take the new epoch (and from then on refuse the old owner's records) before this host serves
   * it; if they cannot, nothing changes here and the link is retried.
   */
  private async rewrite(
    svc: RegisteredService,
    link: Link,
    plan: SynchPlan,
    base: ServiceDocument,
    remoteRequestId: string | undefined,
  ): Promise<NewLogRecord> {
    const rw = plan.rewrite!;
    // The best copy from elsewhere joins this host's history under the rewrite, with the id of the
    // write that made it: the takeover chose it from a quorum's heads, so it is the one version
    // ending the old epoch that history shipping cannot vouch for (lib/synch/history.ts), and a
    // client's retry of that write must be recognized here.
    const own = this.d.index.latest(link);
    if (plan.source !== this.d.hostId && (!own || own.documentVersion < base.documentVersion)) {
      await this.d.store.appendLocal(recordOf(link, base, remoteRequestId));
    }
    const now = this.d.clock.nowMicros();
    const state = {
      ...base,
      documentEpoch: rw.epoch,
      documentVersion: rw.version,
      documentOwner: this.d.hostId,
      documentUpdateTimeMicros: now,
    };
    const rec: NewLogRecord = { link, action: state.documentUpdateAction, version: rw.version, epoch: rw.epoch, timeMicros: now, state };
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
}

/** A copy as a log record, as it is, with the request id of the write that made it when known. */
export function recordOf(link: Link, doc: ServiceDocument, requestId?: string): NewLogRecord {
  const rec: NewLogRecord = {
    link,
    action: doc.documentUpdateAction,
    version: doc.documentVersion,
    epoch: doc.documentEpoch ?? 0,
    timeMicros: doc.documentUpdateTimeMicros,
    state: doc,
  };
  // The id of the write that made the copy goes with it, so its new holders recognize a retry.
  if (requestId !== undefined) rec.requestId = requestId;
  return rec;
}
