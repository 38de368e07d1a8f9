/**
 * Synchronization over the simulated network (ReplicationSim with synch 'network'), shaped like
 * server/synch/links.ts and server/synch/takeover.ts and deciding with their pure rules: discovery
 * reads of heads and fences that a fault can lose, then lib/synch/takeover.ts decideLink says
 * whether to wait for more heads, adopt with fire-and-forget pushes, or take the link over: a
 * prepare round (TakeoverRound; the replicas answer with decidePromise) whose promise requests and
 * replies are packets (dropped, delayed, duplicated, reordered like any other), then planTakeover,
 * and a write shipped to the replicas and committed by the new owner only at quorum
 * (replicaSetTracker) while its promise stands (promiseStands). Callers wait on a link's
 * synchronization under way (ensure); when passes run and retry is the schedule's
 * (sim-schedule.ts). With promises 'off' it is the server before the prepare phase.
 */

import type { Link, NodeId } from '../../lib/ids.js';
import { replicaSetTracker, successThreshold } from '../../lib/replication/quorum.js';
import { planLink, type Head, type SynchPlan } from '../../lib/synch/plan.js';
import { decidePromise, headFields, promiseStands, type PromiseAnswer, type PromiseAsk } from '../../lib/synch/promise.js';
import {
  decideLink,
  headsQuorum,
  planTakeover,
  TakeoverRound,
  type TakeoverEffect,
  type TakeoverTarget,
} from '../../lib/synch/takeover.js';
import { headOfState, type DocState, type ReplHost, type ReplicationSim } from './sim-replication.js';

type Done = (ok: boolean) => void;

export class NetworkSynch {
  constructor(private readonly sim: ReplicationSim) {}

  /**
   * Synchronizes `link` on `ownerId` when it needs it (Synchronizer.ensure), or always with
   * `force` (a pass); a caller arriving while one is under way waits for it. Success goes to the
   * schedule: the link is done for the generation it started in, and, on demand, rechecked.
   */
  ensure(ownerId: NodeId, link: Link, cb: Done, force = false): void {
    const o = this.sim.host(ownerId);
    const waiting = o.inFlight.get(link);
    if (waiting) {
      waiting.push(cb);
      return;
    }
    if (!force && !this.sim.needsSynch(o, link)) {
      cb(true);
      return;
    }
    const list = [cb];
    o.inFlight.set(link, list);
    const inc = o.incarnation;
    const generation = o.schedule.state.generation;
    this.synch(o, link, (ok) => {
      if (o.incarnation !== inc) return;
      if (o.inFlight.get(link) === list) o.inFlight.delete(link);
      if (ok) this.sim.synchronized(ownerId, link, generation, !force);
      for (const f of list) f(ok);
    });
  }

  private synch(o: ReplHost, link: Link, done: Done): void {
    const sim = this.sim;
    const withPromises = sim.promises !== 'off';
    // Discovery: the heads (and fences) of the peers in view that a read reaches.
    const heads = new Map<NodeId, Head | undefined>();
    const fences: number[] = [];
    for (const p of sim.ids) {
      if (p === o.id || !o.view.has(p) || !sim.synchReaches('heads', o.id, p)) continue;
      const ph = sim.host(p);
      heads.set(p, headOfState(ph.index.get(link)));
      const f = withPromises ? sim.promisedAt(ph, link) : undefined;
      if (f) fences.push(f.epoch);
    }
    heads.set(o.id, headOfState(o.index.get(link)));
    const own = withPromises ? sim.promisedAt(o, link) : undefined;
    if (own) fences.push(own.epoch);
    const set = sim.replicaSetAt(o, link);
    const needed = successThreshold({ eligible: set.eligible, membershipQuorum: sim.quorum, action: 'PUT' });
    const record = (plan: SynchPlan | null, hs: Map<NodeId, Head | undefined>) =>
      sim.synchs.push({ atMs: sim.nowMs, host: o.id, link, heads: hs, plan });

    if (!withPromises) {
      // The server before the prepare phase: every plan made from a quorum of discovery heads.
      if (!headsQuorum(heads, set.targets, needed)) {
        this.defer(o, link, `heads short of quorum ${needed}`, done);
        return;
      }
      const plan = planLink(o.id, heads);
      record(plan, heads);
      if (!plan) {
        done(true);
        return;
      }
      if (plan.rewrite) this.takeoverWrite(o, link, plan, done);
      else this.adopt(o, link, plan, done);
      return;
    }
    const next = decideLink(o.id, link, heads, fences, { targets: set.targets, needed });
    if (next.type === 'short') {
      this.defer(o, link, `heads from ${next.heard}, quorum ${next.needed}`, done);
      return;
    }
    if (next.type === 'plan') {
      record(next.plan, heads);
      if (next.plan) this.adopt(o, link, next.plan, done);
      else done(true);
      return;
    }
    const { target, versionFloor } = next;
    this.prepare(o, [target], (effects) => {
      const e = effects[0]!;
      if (e.type !== 'ready') return this.defer(o, link, e.type === 'deferred' ? e.reason : 'no decision', done);
      // The promisers' heads, read after their promises, over what discovery read from the rest.
      const merged = new Map(heads);
      for (const [n, h] of e.heads) merged.set(n, h);
      const plan = planTakeover(o.id, merged, e.epoch, versionFloor);
      record(plan, merged);
      if (!plan) return done(true);
      this.takeoverWrite(o, link, plan, done);
    });
  }

  private defer(o: ReplHost, link: Link, why: string, done: Done): void {
    this.sim.stats.takeoversDeferred++;
    this.sim.log(`synch ${o.id} ${link} deferred: ${why}`);
    done(false);
  }

  /** The best copy: our own, or read from its holder (a read a fault can lose). */
  private base(o: ReplHost, link: Link, plan: SynchPlan): DocState | undefined {
    if (plan.source === o.id) return o.index.get(link);
    return this.sim.synchReaches('fetch', o.id, plan.source) ? this.sim.host(plan.source).index.get(link) : undefined;
  }

  /** No new epoch: adopt the best copy if it is elsewhere, push it to the replicas that differ (fire and forget). */
  private adopt(o: ReplHost, link: Link, plan: SynchPlan, done: Done): void {
    const sim = this.sim;
    const base = this.base(o, link, plan);
    if (!base) {
      this.defer(o, link, `best copy on ${plan.source} unreachable`, done);
      return;
    }
    if (plan.source !== o.id) {
      sim.stats.synchAdopts++;
      sim.append(o, link, { ...base }, 'adopt');
    }
    const targets = new Set(sim.replicaSetAt(o, link).targets);
    for (const p of plan.pushTo) {
      if (!targets.has(p)) continue;
      sim.stats.synchPushes++;
      sim.ship(o.id, p, { link, state: { ...base }, synch: true }, () => undefined);
    }
    sim.log(`synch ${o.id} ${link} adopt (${base.epoch},${base.version}) from ${plan.source}, push ${plan.pushTo.join(',')}`);
    done(true);
  }

  /** Our own promise for the rewrite's epoch still stands (LinkSynch.applyPlan). */
  private stillOurs(o: ReplHost, link: Link, epoch: number): boolean {
    return this.sim.promises === 'off' || promiseStands(this.sim.promisedAt(o, link), o.id, epoch);
  }

  /** The new epoch goes to the replicas first (Replicator.shipBeforeCommit); committed here at quorum. */
  private takeoverWrite(o: ReplHost, link: Link, plan: SynchPlan, done: Done): void {
    const sim = this.sim;
    const rw = plan.rewrite!;
    const base = this.base(o, link, plan);
    if (!base) {
      this.defer(o, link, `best copy on ${plan.source} unreachable`, done);
      return;
    }
    if (!this.stillOurs(o, link, rw.epoch)) {
      this.defer(o, link, `promise for epoch ${rw.epoch} overtaken`, done);
      return;
    }
    const state: DocState = { ...base, epoch: rw.epoch, version: rw.version, owner: o.id };
    const set = sim.replicaSetAt(o, link);
    const threshold = successThreshold({ eligible: set.eligible, membershipQuorum: sim.quorum, action: 'PUT' });
    // This host is the one success not counted by the tracker (Replicator.shipBeforeCommit).
    const tracker = replicaSetTracker(set, threshold, true);
    const inc = o.incarnation;
    let settled = false;
    const check = () => {
      if (settled || tracker.outcome === 'pending' || o.incarnation !== inc) return;
      settled = true;
      if (tracker.outcome === 'failed') return this.defer(o, link, `takeover write (${rw.epoch},${rw.version}) missed its quorum`, done);
      // The server keeps promise requests for the link queued behind this write; here a promise
      // made meanwhile to a later epoch stops the commit instead.
      if (!this.stillOurs(o, link, rw.epoch)) return this.defer(o, link, `promise for epoch ${rw.epoch} overtaken before commit`, done);
      sim.stats.synchRewrites++;
      sim.append(o, link, state, 'rewrite');
      sim.log(
        `synch ${o.id} ${link} took over from ${plan.source} (${plan.best.epoch},${plan.best.version}) -> (${rw.epoch},${rw.version})`,
      );
      done(true);
    };
    for (const t of set.targets) {
      sim.ship(o.id, t, { link, state: { ...state }, synch: true }, (r) => {
        if (o.incarnation !== inc) return;
        if (r.ok) tracker.success();
        else tracker.failure(r.status);
        check();
      });
    }
    check();
  }

  /** A prepare round (Takeovers.prepare): asks as packets, this host's own answer one event later. */
  private prepare(o: ReplHost, targets: TakeoverTarget[], onDone: (effects: TakeoverEffect[]) => void): void {
    const sim = this.sim;
    const round = new TakeoverRound(o.id, targets);
    const results: TakeoverEffect[] = [];
    const inc = o.incarnation;
    let finished = false;
    const run = (effects: TakeoverEffect[]): void => {
      if (o.incarnation !== inc || finished) return;
      for (const e of effects) {
        if (e.type !== 'ask') {
          results.push(e);
          continue;
        }
        const { to, asks } = e;
        if (to === o.id) {
          sim.at(0, () => {
            if (o.incarnation === inc) run(round.answered(o.id, this.answer(o, o.id, asks)));
          });
        } else {
          this.promiseRpc(o.id, to, asks, (answers) => run(answers ? round.answered(to, answers) : round.failed(to, asks)));
        }
      }
      if (round.done && !finished) {
        finished = true;
        onDone(results);
      }
    };
    run(round.start());
  }

  /** The replica's side (Takeovers.answer): decided and read in one step; durable at once. */
  answer(h: ReplHost, by: NodeId, asks: readonly PromiseAsk[]): PromiseAnswer[] {
    const sim = this.sim;
    return asks.map(([link, epoch]): PromiseAnswer => {
      const held = h.index.get(link);
      const head = held ? headFields(headOfState(held)!) : null;
      const d = decidePromise(held?.epoch, sim.promisedAt(h, link), { epoch, by });
      sim.log(`${h.id} promise ${link} epoch ${epoch} to ${by}: ${d.granted ? 'granted' : `refused, fence ${d.fence}`}`);
      if (!d.granted) {
        sim.stats.promisesRefused++;
        return [link, epoch, 0, d.fence, head];
      }
      if (d.record) {
        h.promised.set(link, { epoch, by });
        sim.stats.promisesGranted++;
      }
      return [link, epoch, 1, epoch, head];
    });
  }

  /** One promise request and its reply; undefined after the timeout. */
  private promiseRpc(from: NodeId, to: NodeId, asks: PromiseAsk[], cb: (answers: PromiseAnswer[] | undefined) => void): void {
    const sim = this.sim;
    const sender = sim.host(from);
    const inc = sender.incarnation;
    let settled = false;
    const finish = (answers: PromiseAnswer[] | undefined) => {
      if (settled || sender.incarnation !== inc) return;
      settled = true;
      cb(answers);
    };
    sim.send({ kind: 'promise', from, to }, () => {
      const answers = this.answer(sim.host(to), from, asks);
      sim.send({ kind: 'promised', from: to, to: from }, () => finish(answers));
    });
    sim.at(sim.timeoutMs, () => finish(undefined));
  }
}
