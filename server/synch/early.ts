/**
 * The early pass: the part of a pass that needs no settled group, run during the stability window
 * (lib/synch/schedule.ts says when), while client writes are parked anyway, so a restarted host
 * receives most of what it missed while the group is still settling. For each link this host owns
 * now and holds the best copy of at an epoch no replica is fenced above, its copy goes to the
 * replicas that lack it (lib/synch/takeover.ts earlyPushPlan); an old owner hands its copy of each
 * link that moved to the new owner when every copy agrees (earlyHandoffTarget), so the new owner's
 * takeover need not fetch it. Such a push cannot do harm under a view that later changes: a
 * replica appends a record only above what it holds and refuses one below its fence, so a push
 * never replaces a newer copy nor undoes a takeover. Everything else (takeovers, adopting a better
 * copy, links a peer could not be asked about) waits for the settled pass, which skips the links
 * done here unless the membership changed again. Any failure just leaves the work to that pass.
 */

import type { NodeState } from '../../lib/group/types.js';
import type { Link, NodeId } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import type { RegisteredService } from '../../lib/service.js';
import type { SynchPlan } from '../../lib/synch/plan.js';
import { earlyHandoffTarget, earlyPushPlan, headsQuorum } from '../../lib/synch/takeover.js';
import type { SynchDeps, SynchStats } from './deps.js';
import type { Discovered, Discovery } from './discovery.js';
import { recordOf, type LinkSynch } from './links.js';

/** What the early pass asks of the schedule (server/synch/passes.ts). */
export interface EarlySchedule {
  /** The membership changed since `generation`, or the host stops. */
  stale(generation: number): boolean;
  isDone(link: Link): boolean;
  done(generation: number, link: Link): void;
}

interface EarlyWork {
  /** Links to push this host's copy of: the plan and the link's replica set. */
  ready: [Link, SynchPlan, Set<NodeId>][];
  /** Links that moved, and the new owner to hand this host's copy to. */
  handoffs: [Link, NodeState][];
}

export class EarlyPass {
  constructor(
    private readonly d: SynchDeps,
    private readonly discovery: Discovery,
    private readonly links: LinkSynch,
    private readonly stats: SynchStats,
    private readonly schedule: EarlySchedule,
  ) {}

  async run(generation: number): Promise<void> {
    const started = performance.now();
    let pushed = 0;
    try {
      for (const link of this.d.registry.factoryLinks()) {
        const svc = this.d.registry.factory(link)!;
        if (!svc.has('REPLICATION')) continue;
        const peersById = new Map(this.discovery.peers().map((n) => [n.id, n]));
        if (peersById.size === 0) return;
        const found = await this.discovery.factoryHeads(svc, [...peersById.values()]);
        const work = this.plan(svc, found, peersById, generation);
        if (!work) return;
        const n = await this.push(svc, work.ready, peersById, generation, found);
        if (n === undefined) return;
        pushed += n;
        if (!(await this.handOver(svc, work.handoffs, generation))) return;
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

  /** The links of one factory to push or hand over; undefined once the pass is stale. */
  private plan(svc: RegisteredService, found: Discovered, peersById: Map<NodeId, NodeState>, generation: number): EarlyWork | undefined {
    const work: EarlyWork = { ready: [], handoffs: [] };
    const heardFrom = new Set(peersById.keys());
    for (const l of found.heads.keys()) {
      if (this.schedule.stale(generation)) return undefined;
      if (this.schedule.isDone(l)) continue;
      if (!this.discovery.owns(svc, l)) {
        const owner = this.discovery.ownerOf(svc, l);
        if (owner === undefined || !peersById.has(owner)) continue;
        const { heads, fences } = this.discovery.assemble(svc, l, found, heardFrom);
        const to = earlyHandoffTarget(this.d.hostId, owner, heads, fences);
        if (to !== undefined) work.handoffs.push([l, peersById.get(to)!]);
        continue;
      }
      const { heads, targets, fences, needed } = this.discovery.assemble(svc, l, found, heardFrom);
      const plan = earlyPushPlan(this.d.hostId, heads, fences);
      if (plan && headsQuorum(heads, targets, needed)) work.ready.push([l, plan, new Set(targets)]);
    }
    return work;
  }

  /** Pushes this host's copies; the copies pushed, or undefined once the pass is stale. */
  private async push(
    svc: RegisteredService,
    ready: EarlyWork['ready'],
    peersById: Map<NodeId, NodeState>,
    generation: number,
    found: Discovered,
  ): Promise<number | undefined> {
    let pushed = 0;
    const urls = new Map([...peersById].map(([id, n]) => [id, this.discovery.synchUrl(n, svc)]));
    for (let i = 0; i < ready.length; i += limits.synchConcurrencyMax) {
      if (this.schedule.stale(generation)) return undefined;
      const settled: Link[] = [];
      const replicaSets = new Map<Link, Set<NodeId>>();
      await Promise.all(
        ready.slice(i, i + limits.synchConcurrencyMax).map(async ([l, plan, replicas]) => {
          const before = this.stats.pushFailures;
          await this.links.applyPlan(svc, l, plan, undefined, peersById, replicas);
          pushed += plan.pushTo.length;
          this.stats.earlyPushed += plan.pushTo.length;
          replicaSets.set(l, replicas);
          if (this.stats.pushFailures === before) settled.push(l);
        }),
      );
      // The versions before the pushed copies follow, as in a settled pass, before the links count as done.
      await this.links.catchUp(svc, settled, found.heads, replicaSets, urls);
      for (const l of settled) this.schedule.done(generation, l);
    }
    return pushed;
  }

  /** Copies handed to their new owners; its own (settled) pass still takes each link over. False once the pass is stale. */
  private async handOver(svc: RegisteredService, handoffs: EarlyWork['handoffs'], generation: number): Promise<boolean> {
    for (let i = 0; i < handoffs.length; i += limits.synchConcurrencyMax) {
      if (this.schedule.stale(generation)) return false;
      await Promise.all(
        handoffs.slice(i, i + limits.synchConcurrencyMax).map(async ([l, n]) => {
          const doc = this.d.index.latest(l);
          if (!doc) return;
          const r = await this.d.replicator.push(n, svc.def.nodeSelector, recordOf(l, doc, this.d.index.requestId(l, doc.documentVersion)));
          if (r.ok) this.stats.earlyHandedOver++;
        }),
      );
    }
    return true;
  }
}
