/**
 * A deterministic simulation of Krypton's replication and synchronization that decides with the
 * server's own pure rules, so that scenario and property tests check the acceptance properties of
 * the code that runs, without sockets or disks: acknowledged writes survive, replicas converge, no
 * replica goes back to an older epoch. The rules it imports: the replica set and the quorum
 * accounting of a write (lib/replication/replica-set.ts, quorum.ts, as Replicator uses them), the
 * replica's fate of a record (lib/synch/promise.ts decideRecord, as DocumentStore.applyReplicated),
 * the owner's fence on its own writes and when it synchronizes first (lib/synch/fence.ts, as
 * server/synch/fencing.ts), when passes run (lib/synch/schedule.ts, driven by sim-schedule.ts as
 * server/synch/passes.ts drives it), and what a synchronization does with a link (lib/synch/plan.ts,
 * takeover.ts, promise.ts, in sim-synch.ts as server/synch/links.ts and takeover.ts use them). What
 * is the simulation's own is the plumbing: hosts, views, packets, logs, the clock.
 *
 * Each host keeps, per link, its latest state (the index) and the log of every state it appended
 * (durable: a crash keeps both). Owners come from selectNodes over the hosts a host believes alive
 * (its view). A client write enters an owner, which stamps version+1 at the epoch it holds, appends
 * it, counts itself as one success and ships the record to the rest of the replica set; the write
 * is acknowledged when its QuorumTracker succeeds. Records travel either over ordered channels
 * (the server's: one per peer, one batch in flight, FIFO) or over a raw network (one packet per
 * record, so random latency reorders them). Both can drop, delay and duplicate packets; a sender
 * that hears nothing before its timeout counts a failure (503). One manual clock, one seeded PRNG:
 * a scenario replays exactly.
 *
 * Two modes stand for two levels of faithfulness to the server, and tests say which they use:
 * - views 'consistent': every topology change (crash, restart, partition, heal) refreshes every
 *   running host's view to the hosts it can reach; 'manual': only refreshViews() does (stale
 *   owners exist, as they do while membership catches up).
 * - synch 'atomic': a synchronization step reads the heads of the hosts it can reach, fetches the
 *   best copy and pushes the result in one step, without message faults; 'network': as the server
 *   does it, over the faulty network and asynchronously (test/support/sim-synch.ts): discovery
 *   reads that a fault loses leave that peer out, a takeover's prepare round (promise requests and
 *   replies) and its write (shipped to a quorum before the new owner commits it) travel the
 *   network, pushes are fire-and-forget, a client write waits for its link's synchronization, and
 *   deferred takeovers are retried.
 * And `promises` says what the prepare phase is: 'durable' (the server: replicas promise the new
 * epoch before the heads are read, keep the promise across restarts and refuse older records and
 * owner writes from then on), 'volatile' (promises forgotten by a restart) or 'off' (the server
 * before the prepare phase: heads read without promises, takeover at planLink's epoch), so a
 * scenario can show what the phase prevents.
 */

import { selectNodes } from '../../lib/hash.js';
import type { Epoch, Link, NodeId, Version } from '../../lib/ids.js';
import { replicaSetTracker, successThreshold, type QuorumTracker } from '../../lib/replication/quorum.js';
import { chooseReplicas, type ChosenReplicas } from '../../lib/replication/replica-set.js';
import { mustSynch, preparedEpoch, refuseOwnerWrite, type OwnerLink } from '../../lib/synch/fence.js';
import { compareHeads, planLink, type Head, type SynchPlan } from '../../lib/synch/plan.js';
import { decideRecord, promiseSpent, type Promised } from '../../lib/synch/promise.js';
import { linkPending } from '../../lib/synch/schedule.js';
import { decideSynch, planTakeover } from '../../lib/synch/takeover.js';
import { HostSchedule, SimSchedules } from './sim-schedule.js';
import { NetworkSynch } from './sim-synch.js';

/** The same seeded generator as the membership simulation, so a seed means one thing everywhere. */
import { mulberry32 as prng } from './sim-network.js';
export { prng };

/** One host's latest state of one link (the parts of a ServiceDocument replication looks at). */
export interface DocState {
  epoch: Epoch;
  version: Version;
  /** documentOwner: the host that stamped this (epoch, version). */
  owner: NodeId;
  value: string | null;
  deleted: boolean;
  /** The client write whose content this is; synchronization rewrites keep it. */
  writeId: number;
  /**
   * The state the owner planned this write on (absent for a seeded state); synchronization copies
   * keep it. Following it lists every write this content includes.
   */
  parent?: DocState;
}

/** Whether write `writeId` is part of `s`'s content: `s` is it, or was planned on a state that includes it. */
export function includesWrite(s: DocState | undefined, writeId: number): boolean {
  for (let at = s; at; at = at.parent) if (at.writeId === writeId) return true;
  return false;
}

/** A replication record: the full new state of a link, as the server ships it. */
export interface Rec {
  link: Link;
  state: DocState;
  /** Sent by synchronization rather than by a client write. */
  synch?: boolean;
}

export interface ReplicaResult {
  ok: boolean;
  status?: number;
}

export type ReplicaDecision = 'apply' | 'duplicate' | 'refuse';

/**
 * The replica's rule, as DocumentStore.applyReplicated has it (lib/synch/promise.ts decideRecord):
 * an older epoch than held or promised is refused (409, fencing a stale owner); the same epoch at a
 * version already reached is acknowledged as a duplicate without appending; anything else is appended.
 */
export function replicaDecision(
  held: Pick<DocState, 'epoch' | 'version'> | undefined,
  rec: Pick<DocState, 'epoch' | 'version'>,
  promised?: Promised,
): ReplicaDecision {
  return decideRecord(held, promised, rec);
}

export function headOfState(s: DocState | undefined): Head | undefined {
  return s ? { epoch: s.epoch, version: s.version, owner: s.owner, deleted: s.deleted } : undefined;
}

export type AppendCause = 'write' | 'replica' | 'adopt' | 'rewrite';

export interface LogEntry {
  link: Link;
  state: DocState;
  atMs: number;
  cause: AppendCause;
}

export class ReplHost {
  running = true;
  /** Bumped by every crash: callbacks of an earlier life are ignored. */
  incarnation = 0;
  view: Set<NodeId>;
  /** The server's synchronization schedule (lib/synch/schedule.ts): generations, links done, recheck, retries, views. */
  schedule: HostSchedule;
  /**
   * Another host's view left this one out since its own view last changed: in the server a peer
   * marked it UNAVAILABLE, and its next change carries that mark (its own entry overruled).
   */
  writtenOff = false;
  readonly index = new Map<Link, DocState>();
  readonly log: LogEntry[] = [];
  /** Partition side. */
  side = 0;
  /** Promises made as a replica (durable or not, as SimOptions.promises says). */
  readonly promised = new Map<Link, Promised>();
  /** Network synchronizations under way, per link, with who waits for each. */
  readonly inFlight = new Map<Link, ((ok: boolean) => void)[]>();

  constructor(
    readonly id: NodeId,
    all: readonly NodeId[],
  ) {
    this.view = new Set(all);
    this.schedule = new HostSchedule(id, all);
  }
}

/** 'waiting': held by its owner until the link is synchronized (network synch), nothing appended yet. */
export type Outcome = 'rejected' | 'noop' | 'waiting' | 'pending' | 'acked' | 'failed';

export interface ClientWrite {
  /** Issue order; also the write's identity in DocState.writeId. */
  id: number;
  link: Link;
  op: 'put' | 'delete';
  value: string | null;
  entry: NodeId;
  owner?: NodeId;
  action?: 'POST' | 'PUT' | 'DELETE';
  /** What the owner appended. */
  state?: DocState;
  /** 'pending' and 'failed' writes were appended by their owner: their fate is in doubt. */
  outcome: Outcome;
  reason?: string;
  status?: number;
  /** Xenon's failure message from the tracker, for failed writes. */
  message?: string;
  tracker?: QuorumTracker;
  issuedAtMs: number;
  settledAtMs?: number;
}

export interface Faults {
  dropRate: number;
  duplicateRate: number;
  minLatencyMs: number;
  maxLatencyMs: number;
  /** Share of packets held back by longDelayMs more (raw network only: it would break FIFO). */
  longDelayRate: number;
  longDelayMs: number;
}

export type PacketKind = 'rpl' | 'ack' | 'heads' | 'fetch' | 'promise' | 'promised';

export interface PacketInfo {
  kind: PacketKind;
  from: NodeId;
  to: NodeId;
  recs?: readonly Rec[];
}

/** A scripted decision for one packet; undefined leaves it to the random faults. */
export type FilterDecision = 'drop' | 'pass' | { delayMs: number; duplicate?: boolean } | undefined;

export interface SimOptions {
  hosts: number | readonly NodeId[];
  seed?: number;
  network?: 'ordered' | 'raw';
  faults?: Partial<Faults>;
  /** A sender that hears nothing back within this counts a failure. */
  timeoutMs?: number;
  /** Replica set = the N closest eligible hosts (server: selector replicationFactor); default all. */
  replicationFactor?: number;
  /** Default: a majority of all hosts. */
  membershipQuorum?: number;
  views?: 'consistent' | 'manual';
  synch?: 'atomic' | 'network';
  /** Run a synchronization pass on every available host whose view changed (server: on membership change). */
  autoSynch?: boolean;
  /**
   * The epoch a forced re-create over a tombstone gets: 'zero' is lib/verbs.ts planCreate's
   * (epoch 0 always), 'held' keeps the tombstone's epoch as updates do.
   */
  recreateEpoch?: 'zero' | 'held';
  /** The prepare phase: see the top of this file. Default 'durable'. */
  promises?: 'durable' | 'volatile' | 'off';
  /**
   * With the prepare phase, an owner writes only in an epoch it won: one whose latest state
   * another owner stamped is taken over first (lib/synch/fence.ts stampedElsewhere). false turns that off, to
   * show what it prevents. Default true; 'off' promises imply false.
   */
  ownEpochOnly?: boolean;
  /**
   * Retries of a pass that left links deferred, with the schedule's backoff, before a host gives up
   * until its view changes again (the server goes on retrying; a run must drain). Default 3.
   */
  synchRetries?: number;
  /** Keep a trace of what happened (for failure messages). */
  trace?: boolean;
}

interface TimedEvent {
  at: number;
  seq: number;
  run: () => void;
}

interface Queued {
  rec: Rec;
  done: (r: ReplicaResult) => void;
}

class Channel {
  queue: Queued[] = [];
  inFlight = false;
}

export interface SynchRecord {
  atMs: number;
  host: NodeId;
  link: Link;
  heads: Map<NodeId, Head | undefined>;
  plan: SynchPlan | null;
}

export interface SimStats {
  packets: number;
  dropped: number;
  duplicated: number;
  lost: number;
  refused: number;
  duplicatesAcked: number;
  applied: number;
  synchRewrites: number;
  synchAdopts: number;
  synchPushes: number;
  promisesGranted: number;
  promisesRefused: number;
  /** Takeovers that did not happen for want of promises or of their write's quorum. */
  takeoversDeferred: number;
  /** Owner writes refused before logging because the owner itself promised a later epoch. */
  ownWritesFenced: number;
  /**
   * Writes an owner served with no synchronization while its generation was not complete and the
   * link not done in it: the link owned throughout since it was last synchronized (lib/group/availability.ts).
   */
  servedAcrossChange: number;
}

const DEFAULT_FAULTS: Faults = { dropRate: 0, duplicateRate: 0, minLatencyMs: 1, maxLatencyMs: 5, longDelayRate: 0, longDelayMs: 0 };

export class ReplicationSim {
  nowMs = 0;
  readonly ids: NodeId[];
  readonly hosts = new Map<NodeId, ReplHost>();
  readonly writes: ClientWrite[] = [];
  readonly synchs: SynchRecord[] = [];
  /** Breaches of the log invariant seen when they happened (property 3). */
  readonly violations: string[] = [];
  readonly trace: string[] = [];
  readonly stats: SimStats = {
    packets: 0,
    dropped: 0,
    duplicated: 0,
    lost: 0,
    refused: 0,
    duplicatesAcked: 0,
    applied: 0,
    synchRewrites: 0,
    synchAdopts: 0,
    synchPushes: 0,
    promisesGranted: 0,
    promisesRefused: 0,
    takeoversDeferred: 0,
    ownWritesFenced: 0,
    servedAcrossChange: 0,
  };
  faults: Faults;
  filter: ((p: PacketInfo) => FilterDecision) | undefined;
  readonly network: 'ordered' | 'raw';
  readonly views: 'consistent' | 'manual';
  readonly synchMode: 'atomic' | 'network';
  readonly autoSynch: boolean;
  readonly timeoutMs: number;
  readonly quorum: number;
  readonly factor: number | undefined;
  readonly recreateEpoch: 'zero' | 'held';
  readonly promises: 'durable' | 'volatile' | 'off';
  readonly synchRetries: number;
  readonly ownEpochOnly: boolean;
  private readonly net: NetworkSynch;
  /** Every host's synchronization schedule (sim-schedule.ts). */
  readonly schedules: SimSchedules;
  private readonly rng: () => number;
  private events: TimedEvent[] = [];
  private seq = 0;
  private readonly channels = new Map<string, Channel>();
  /** Bumped whenever a pair of hosts loses its connection: packets sent before are lost. */
  private readonly connGen = new Map<string, number>();
  private connectedBefore = new Map<string, boolean>();

  constructor(readonly opts: SimOptions) {
    this.ids = typeof opts.hosts === 'number' ? Array.from({ length: opts.hosts }, (_, i) => `h${i + 1}`) : [...opts.hosts];
    for (const id of this.ids) this.hosts.set(id, new ReplHost(id, this.ids));
    this.rng = prng(opts.seed ?? 1);
    this.network = opts.network ?? 'ordered';
    this.views = opts.views ?? 'consistent';
    this.synchMode = opts.synch ?? 'atomic';
    this.autoSynch = opts.autoSynch ?? true;
    this.timeoutMs = opts.timeoutMs ?? 50;
    this.quorum = opts.membershipQuorum ?? Math.floor(this.ids.length / 2) + 1;
    this.factor = opts.replicationFactor;
    this.recreateEpoch = opts.recreateEpoch ?? 'held';
    this.promises = opts.promises ?? 'durable';
    this.synchRetries = opts.synchRetries ?? 3;
    this.ownEpochOnly = this.promises !== 'off' && (opts.ownEpochOnly ?? true);
    this.net = new NetworkSynch(this);
    this.schedules = new SimSchedules(this);
    this.faults = { ...DEFAULT_FAULTS, ...opts.faults };
    this.snapshotConnections();
  }

  host(id: NodeId): ReplHost {
    const h = this.hosts.get(id);
    if (!h) throw new Error(`no simulated host ${id}`);
    return h;
  }

  log(line: string): void {
    if (this.opts.trace) this.trace.push(`${this.nowMs}ms ${line}`);
  }

  // ---- clock and events ----

  /** Runs `run` `delayMs` from now (for sim-synch.ts too). */
  at(delayMs: number, run: () => void): void {
    const e: TimedEvent = { at: this.nowMs + delayMs, seq: this.seq++, run };
    // Binary insertion keeps (at, seq) order; queues stay small.
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = this.events[mid]!;
      if (m.at < e.at || (m.at === e.at && m.seq < e.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.events.splice(lo, 0, e);
  }

  get pending(): number {
    return this.events.length;
  }

  runFor(ms: number): void {
    const end = this.nowMs + ms;
    while (this.events.length && this.events[0]!.at <= end) {
      const e = this.events.shift()!;
      this.nowMs = e.at;
      e.run();
    }
    this.nowMs = end;
  }

  /** Runs every queued event (deliveries, replies, timeouts). */
  drain(maxEvents = 100_000): void {
    for (let n = 0; this.events.length; n++) {
      if (n >= maxEvents) throw new Error('simulation does not drain');
      const e = this.events.shift()!;
      this.nowMs = Math.max(this.nowMs, e.at);
      e.run();
    }
  }

  // ---- topology ----

  private pairKey(a: NodeId, b: NodeId): string {
    return a < b ? `${a}|${b}` : `${b}|${a}`;
  }

  connected(a: NodeId, b: NodeId): boolean {
    const ha = this.host(a);
    const hb = this.host(b);
    return ha.running && hb.running && ha.side === hb.side;
  }

  /** After a topology change: pairs that lost their connection lose their packets in flight. */
  private snapshotConnections(): void {
    const now = new Map<string, boolean>();
    for (const a of this.ids) {
      for (const b of this.ids) {
        if (a >= b) continue;
        const k = this.pairKey(a, b);
        const c = this.connected(a, b);
        if (this.connectedBefore.get(k) && !c) this.connGen.set(k, (this.connGen.get(k) ?? 0) + 1);
        now.set(k, c);
      }
    }
    this.connectedBefore = now;
  }

  private topologyChanged(): void {
    this.snapshotConnections();
    if (this.views === 'consistent') this.refreshViews();
  }

  crash(id: NodeId): void {
    const h = this.host(id);
    if (!h.running) return;
    h.running = false;
    h.incarnation++;
    h.inFlight.clear();
    // The owner's queued records die with it (its clients never hear back: in doubt).
    for (const k of [...this.channels.keys()]) if (k.startsWith(`${id}>`)) this.channels.delete(k);
    this.log(`crash ${id}`);
    this.topologyChanged();
  }

  restart(id: NodeId): void {
    const h = this.host(id);
    if (h.running) return;
    h.running = true;
    // A restarted host knows only itself until membership tells it more.
    h.view = new Set([id]);
    // A new Synchronizer, and a membership change: every link needs synchronizing.
    this.schedules.reset(id);
    this.viewChanged(id);
    if (this.promises === 'volatile') h.promised.clear();
    this.log(`restart ${id}`);
    this.topologyChanged();
  }

  /** Splits the hosts into sides; hosts not listed each get a side of their own. */
  partition(...sides: readonly (readonly NodeId[])[]): void {
    let next = 1;
    const sideOf = new Map<NodeId, number>();
    for (const s of sides) {
      for (const id of s) sideOf.set(id, next);
      next++;
    }
    for (const h of this.hosts.values()) h.side = sideOf.get(h.id) ?? next++;
    this.log(`partition ${sides.map((s) => s.join(',')).join(' | ')}`);
    this.topologyChanged();
  }

  heal(): void {
    for (const h of this.hosts.values()) h.side = 0;
    this.log('heal');
    this.topologyChanged();
  }

  /**
   * Membership catches up: each listed running host now believes alive exactly the hosts it can
   * reach. A host whose view changed sees a membership change (its schedule starts a generation,
   * and a pass if it is available and autoSynch is on), hosts in a random order.
   */
  refreshViews(ids: readonly NodeId[] = this.ids): NodeId[] {
    const changed: NodeId[] = [];
    for (const id of ids) {
      const h = this.host(id);
      if (!h.running) continue;
      const view = new Set(this.ids.filter((o) => o === id || this.connected(id, o)));
      if (view.size === h.view.size && [...view].every((o) => h.view.has(o))) continue;
      h.view = view;
      this.writeOff(h);
      changed.push(id);
      this.log(`view ${id} = ${[...view].join(',')}`);
    }
    for (const id of this.autoSynch ? this.shuffled(changed) : changed) this.viewChanged(id);
    return changed;
  }

  /** The hosts `h` now sees as gone are written off (GroupRuntime: a probe marks them UNAVAILABLE). */
  private writeOff(h: ReplHost): void {
    for (const o of this.ids) if (!h.view.has(o)) this.host(o).writtenOff = true;
  }

  /** A membership change on `id`, as server/synch/passes.ts feeds it: the eligible members, and whether it was written off. */
  private viewChanged(id: NodeId): void {
    const h = this.host(id);
    const disowned = h.writtenOff;
    h.writtenOff = false;
    this.schedules.feed(id, { type: 'membershipChanged', eligible: [...h.view], disowned });
  }

  /**
   * Membership tells `id` that exactly `view` is alive, whatever the network says (failure
   * detection is neither instant nor symmetric). Always a membership change.
   */
  setView(id: NodeId, view: readonly NodeId[]): void {
    const h = this.host(id);
    h.view = new Set([id, ...view]);
    this.writeOff(h);
    this.log(`view ${id} := ${[...h.view].join(',')}`);
    this.viewChanged(id);
  }

  private shuffled<T>(xs: readonly T[]): T[] {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng() * (i + 1));
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }

  available(h: ReplHost): boolean {
    return h.running && h.view.size >= this.quorum;
  }

  /** The owner of `link` as `h` sees it. */
  ownerAt(h: ReplHost, link: Link): NodeId {
    return selectNodes(
      link,
      this.ids.map((id) => ({ id, eligible: h.view.has(id) })),
    )[0]!;
  }

  /**
   * The replica set as Replicator.replicaSet chooses it (lib/replication/replica-set.ts): every
   * member, or the factor closest eligible ones; members outside the view count as immediate failures.
   */
  replicaSetAt(h: ReplHost, link: Link): ChosenReplicas<NodeId> {
    const inView = (id: NodeId) => h.view.has(id);
    return chooseReplicas(link, h.id, this.ids, { id: (id) => id, ownerEligible: inView, reachable: inView }, this.factor);
  }

  /** Replicas of `link` once every host is up and sees every other. */
  finalReplicas(link: Link): NodeId[] {
    return this.factor
      ? selectNodes(
          link,
          this.ids.map((id) => ({ id, eligible: true })),
          this.factor,
        )
      : [...this.ids];
  }

  // ---- packets ----

  /** One packet: dropped, delayed, duplicated by the faults and the filter (for sim-synch.ts too). */
  send(info: PacketInfo, deliver: () => void): void {
    this.stats.packets++;
    const k = this.pairKey(info.from, info.to);
    const gen = this.connGen.get(k) ?? 0;
    const arrive = () => {
      if ((this.connGen.get(k) ?? 0) !== gen || !this.connected(info.from, info.to)) {
        this.stats.lost++;
        return;
      }
      deliver();
    };
    const decision = this.filter?.(info);
    if (decision === 'drop') {
      this.stats.dropped++;
      return;
    }
    if (decision !== undefined && decision !== 'pass') {
      this.at(decision.delayMs, arrive);
      if (decision.duplicate) {
        this.stats.duplicated++;
        this.at(decision.delayMs, arrive);
      }
      return;
    }
    const f = this.faults;
    if (decision !== 'pass' && this.rng() < f.dropRate) {
      this.stats.dropped++;
      return;
    }
    const latency = () => {
      let ms = f.minLatencyMs + Math.floor(this.rng() * (f.maxLatencyMs - f.minLatencyMs + 1));
      if (this.network === 'raw' && this.rng() < f.longDelayRate) ms += f.longDelayMs;
      return ms;
    };
    const first = latency();
    this.at(first, arrive);
    if (decision !== 'pass' && this.rng() < f.duplicateRate) {
      this.stats.duplicated++;
      // On an ordered channel a duplicate (a retried request) lands right behind the original;
      // on the raw network it is just another packet with its own latency.
      this.at(this.network === 'ordered' ? first : latency(), arrive);
    }
  }

  /** One request carrying `recs` and its reply; `cb` gets the results or, on timeout, 503s. */
  private rpc(from: NodeId, to: NodeId, recs: Rec[], cb: (results: ReplicaResult[]) => void): void {
    const inc = this.host(from).incarnation;
    let settled = false;
    const finish = (results: ReplicaResult[]) => {
      if (settled || this.host(from).incarnation !== inc) return;
      settled = true;
      cb(results);
    };
    this.send({ kind: 'rpl', from, to, recs }, () => {
      const results = recs.map((r) => this.applyReplicated(this.host(to), r, from));
      this.send({ kind: 'ack', from: to, to: from }, () => finish(results));
    });
    this.at(this.timeoutMs, () => finish(recs.map(() => ({ ok: false, status: 503 }))));
  }

  /** Sends one record to one peer over the configured network; `done` is called once. */
  ship(from: NodeId, to: NodeId, rec: Rec, done: (r: ReplicaResult) => void): void {
    let called = false;
    const once = (r: ReplicaResult) => {
      if (!called) {
        called = true;
        done(r);
      }
    };
    if (this.network === 'raw') {
      this.rpc(from, to, [rec], (rs) => once(rs[0]!));
      return;
    }
    const key = `${from}>${to}`;
    let ch = this.channels.get(key);
    if (!ch) {
      ch = new Channel();
      this.channels.set(key, ch);
    }
    ch.queue.push({ rec, done: once });
    this.pump(key, ch);
  }

  private pump(key: string, ch: Channel): void {
    if (ch.inFlight || !ch.queue.length) return;
    // Everything queued meanwhile goes in one batch, as PeerChannel packs it.
    const batch = ch.queue.splice(0);
    ch.inFlight = true;
    const [from, to] = key.split('>') as [NodeId, NodeId];
    this.rpc(
      from,
      to,
      batch.map((q) => q.rec),
      (results) => {
        for (const [i, q] of batch.entries()) q.done(results[i]!);
        if (this.channels.get(key) !== ch) return; // the sender crashed meanwhile
        ch.inFlight = false;
        this.pump(key, ch);
      },
    );
  }

  // ---- storage ----

  /**
   * Appends a state to a host's log and index. Every path goes through here, so this is where
   * property 3 is watched: a host's states of one link only ever move forward in (epoch, version).
   */
  append(h: ReplHost, link: Link, state: DocState, cause: AppendCause): void {
    const held = h.index.get(link);
    if (held && (state.epoch < held.epoch || (state.epoch === held.epoch && state.version <= held.version))) {
      this.violations.push(`${h.id} ${cause} ${link} went from (${held.epoch},${held.version}) to (${state.epoch},${state.version})`);
    }
    h.index.set(link, state);
    h.log.push({ link, state, atMs: this.nowMs, cause });
  }

  /** The promise `h` holds for `link`, if not spent (PromiseStore.get). */
  promisedAt(h: ReplHost, link: Link): Promised | undefined {
    const p = h.promised.get(link);
    if (p && promiseSpent(h.index.get(link)?.epoch, p)) {
      h.promised.delete(link);
      return undefined;
    }
    return p;
  }

  /** The replica side of a record (DocumentStore.applyReplicated). */
  applyReplicated(h: ReplHost, rec: Rec, from: NodeId): ReplicaResult {
    const held = h.index.get(rec.link);
    const d = replicaDecision(held, rec.state, this.promisedAt(h, rec.link));
    this.log(`${h.id} <- ${from} ${rec.link} (${rec.state.epoch},${rec.state.version}) ${d}`);
    if (d === 'refuse') {
      this.stats.refused++;
      return { ok: false, status: 409 };
    }
    if (d === 'duplicate') {
      this.stats.duplicatesAcked++;
      return { ok: true };
    }
    this.stats.applied++;
    this.append(h, rec.link, { ...rec.state }, 'replica');
    return { ok: true };
  }

  /** Seeds a link on every listed host at once, as if created and fully replicated earlier. */
  seed(link: Link, value: string, on: readonly NodeId[] = this.ids): ClientWrite {
    const owner = this.ownerAt(this.host(on[0]!), link);
    const w: ClientWrite = {
      id: this.writes.length + 1,
      link,
      op: 'put',
      value,
      entry: owner,
      owner,
      action: 'POST',
      outcome: 'acked',
      issuedAtMs: this.nowMs,
      settledAtMs: this.nowMs,
    };
    w.state = { epoch: 0, version: 0, owner, value, deleted: false, writeId: w.id };
    this.writes.push(w);
    for (const id of on) this.append(this.host(id), link, { ...w.state }, 'write');
    return w;
  }

  // ---- client writes ----

  /**
   * A client's create/update ('put') or delete of `link`, entering at `entry`, which hands it to
   * the owner it believes in (if that host agrees it owns the link). The owner synchronizes the
   * link first when its view changed since (Synchronizer.ensure), plans version+1 at the epoch it
   * holds, ships, appends, and counts.
   */
  write(entry: NodeId, link: Link, op: 'put' | 'delete', opts: { value?: string; quorum?: number | 'all' } = {}): ClientWrite {
    const id = this.writes.length + 1;
    const value = op === 'put' ? (opts.value ?? `w${id}`) : null;
    const w: ClientWrite = { id, link, op, value, entry, outcome: 'rejected', issuedAtMs: this.nowMs };
    this.writes.push(w);
    const reject = (reason: string) => {
      w.reason = reason;
      this.log(`write #${id} ${op} ${link} at ${entry} rejected: ${reason}`);
      return w;
    };
    const eh = this.host(entry);
    if (!eh.running) return reject('entry host down');
    if (!this.available(eh)) return reject('group unavailable');
    const ownerId = this.ownerAt(eh, link);
    if (ownerId !== entry && !this.connected(entry, ownerId)) return reject('owner unreachable');
    const oh = this.host(ownerId);
    if (!this.available(oh) || this.ownerAt(oh, link) !== ownerId) return reject('owner disagrees');
    w.owner = ownerId;
    const needs = this.needsSynch(oh, link);
    const sch = oh.schedule.state;
    if (!needs && sch.completedGeneration < sch.generation && !sch.done.has(link)) this.stats.servedAcrossChange++;
    if (this.synchMode === 'network') {
      if (!needs) return this.commitWrite(w, oh, opts);
      // The server's ensure(): the request waits on its owner for the link's synchronization.
      w.outcome = 'waiting';
      const inc = oh.incarnation;
      this.net.ensure(ownerId, link, (ok) => {
        w.outcome = 'rejected';
        if (oh.incarnation !== inc) reject('owner crashed');
        else if (!ok) reject('synchronization failed');
        else this.commitWrite(w, oh, opts);
      });
      return w;
    }
    if (needs && !this.synchLink(ownerId, link)) return reject('synchronization failed');
    return this.commitWrite(w, oh, opts);
  }

  /**
   * What `h` knows of `link` as its owner, for lib/synch/fence.ts (server/synch/fencing.ts builds
   * the same): its copy, its promise, whether it has peers. The simulation's ablations: with
   * promises 'off' there are none, and with ownEpochOnly off every copy counts as its own, so the
   * rule that takes over an epoch another owner won never fires.
   */
  ownerLink(h: ReplHost, link: Link, held: DocState | undefined = h.index.get(link)): OwnerLink {
    return {
      selfId: h.id,
      held: held ? { epoch: held.epoch, owner: this.ownEpochOnly ? held.owner : h.id } : undefined,
      promised: this.promises === 'off' ? undefined : this.promisedAt(h, link),
      peers: h.view.size > 1,
    };
  }

  /**
   * Whether an owner synchronizes `link` before acting on it (Synchronizer.ensure: fence.ts
   * mustSynch over schedule.ts linkPending): not done since its view changed, a write refused for
   * its epoch, or (with the prepare phase) a promise outstanding or a latest state another owner
   * stamped, whose epoch this host never won.
   */
  needsSynch(h: ReplHost, link: Link): boolean {
    return mustSynch(this.ownerLink(h, link), linkPending(h.schedule.state, link, this.factor));
  }

  /** The epoch `h` prepared for a link nobody holds, which a creation takes (Synchronizer.preparedEpoch). */
  preparedEpoch(h: ReplHost, link: Link): Epoch | undefined {
    return preparedEpoch(this.ownerLink(h, link));
  }

  /**
   * The action, epoch and version an owner stamps a write with (lib/verbs.ts planCreate and
   * planUpdate); undefined for a delete of nothing.
   */
  private stamp(w: ClientWrite, oh: ReplHost, cur: DocState | undefined): { epoch: Epoch; version: Version } | undefined {
    if (w.op === 'delete') {
      if (!cur || cur.deleted) return undefined;
      w.action = 'DELETE';
      return { epoch: cur.epoch, version: cur.version + 1 };
    }
    if (cur && !cur.deleted) {
      w.action = 'PUT';
      return { epoch: cur.epoch, version: cur.version + 1 };
    }
    w.action = 'POST';
    // A forced re-create over a tombstone (pragma xn-force-index-update): version goes on.
    if (cur) return { epoch: this.recreateEpoch === 'zero' ? 0 : cur.epoch, version: cur.version + 1 };
    return { epoch: this.preparedEpoch(oh, w.link) ?? 0, version: 0 };
  }

  /** The owner's part of a write once its link is synchronized: plan, fence check, ship, append, count. */
  private commitWrite(w: ClientWrite, oh: ReplHost, opts: { quorum?: number | 'all' }): ClientWrite {
    const { id, link, op, value } = w;
    const ownerId = oh.id;
    const reject = (reason: string) => {
      w.outcome = 'rejected';
      w.reason = reason;
      this.log(`write #${id} ${op} ${link} at ${ownerId} rejected: ${reason}`);
      return w;
    };
    const cur = oh.index.get(link);
    const stamp = this.stamp(w, oh, cur);
    if (!stamp) {
      w.outcome = 'noop';
      return w;
    }
    const { epoch, version } = stamp;
    // Synchronizer.checkEpoch: an owner bound to a later epoch than it holds does not log the write,
    // nor one that would extend an epoch another owner won.
    const refusal = refuseOwnerWrite(this.ownerLink(oh, link, cur), epoch);
    if (refusal) {
      this.schedules.feed(ownerId, { type: 'staleEpoch', link });
      this.stats.ownWritesFenced++;
      w.status = 409;
      return reject(
        refusal.reason === 'promised' ? `Expected epoch: ${refusal.fence}, in update: ${epoch}` : `epoch ${epoch} is ${refusal.owner}'s`,
      );
    }
    const state: DocState = { epoch, version, owner: ownerId, value, deleted: op === 'delete', writeId: id };
    if (cur) state.parent = cur;
    w.state = state;
    w.outcome = 'pending';

    const set = this.replicaSetAt(oh, link);
    const opId = `${ownerId}-${id}`;
    if (set.eligible === 1) {
      this.append(oh, link, { ...state }, 'write');
      w.outcome = 'acked';
      w.settledAtMs = this.nowMs;
      return w;
    }
    let threshold: number;
    try {
      const input = { eligible: set.eligible, membershipQuorum: this.quorum, action: w.action! };
      threshold = successThreshold(opts.quorum === undefined ? input : { ...input, requested: opts.quorum });
    } catch (e) {
      w.outcome = 'rejected';
      delete w.state;
      return reject((e as Error).message);
    }
    const tracker = replicaSetTracker(set, threshold);
    w.tracker = tracker;
    const check = () => {
      if (w.outcome !== 'pending' || tracker.outcome === 'pending') return;
      w.settledAtMs = this.nowMs;
      if (tracker.outcome === 'succeeded') {
        w.outcome = 'acked';
      } else {
        w.outcome = 'failed';
        w.status = tracker.status;
        w.message = tracker.message(w.action!, link, opId);
      }
      this.log(`write #${id} ${w.action} ${link} (${epoch},${version}) ${w.outcome}`);
    };
    const inc = oh.incarnation;
    for (const t of set.targets) {
      this.ship(ownerId, t, { link, state: { ...state } }, (r) => {
        if (oh.incarnation !== inc) return;
        if (r.ok) tracker.success();
        else {
          tracker.failure(r.status);
          // Replicator told of STALE_EPOCH: the owner synchronizes the link again before its next write.
          if (r.status === 409 && this.promises !== 'off') this.schedules.feed(ownerId, { type: 'staleEpoch', link });
        }
        check();
      });
    }
    this.append(oh, link, { ...state }, 'write');
    tracker.success();
    check();
    this.log(`write #${id} ${w.action} ${link} at ${ownerId} (${epoch},${version}) shipped to ${set.targets.join(',')}`);
    return w;
  }

  /** A client GET through the owner: only its side effect matters here (Synchronizer.ensure). */
  read(entry: NodeId, link: Link): DocState | undefined {
    const eh = this.host(entry);
    if (!this.available(eh)) return undefined;
    const ownerId = this.ownerAt(eh, link);
    if (ownerId !== entry && !this.connected(entry, ownerId)) return undefined;
    const oh = this.host(ownerId);
    if (this.synchMode === 'network') {
      // Only the side effect: the synchronization runs on, over the network.
      if (this.needsSynch(oh, link)) this.net.ensure(ownerId, link, () => undefined);
      return oh.index.get(link);
    }
    if (this.needsSynch(oh, link) && !this.synchLink(ownerId, link)) return undefined;
    return oh.index.get(link);
  }

  // ---- synchronization ----

  /** Does a synchronization read (discovery heads, a best copy) from `a` to `b` get through? (for sim-synch.ts too) */
  synchReaches(kind: 'heads' | 'fetch', a: NodeId, b: NodeId): boolean {
    if (!this.connected(a, b)) return false;
    if (this.synchMode === 'atomic') return true;
    const d = this.filter?.({ kind, from: a, to: b });
    if (d === 'drop') return false;
    if (d !== undefined) return true;
    return !(this.rng() < this.faults.dropRate);
  }

  /**
   * One link on its owner in one atomic step (synch 'atomic'; the network mode is sim-synch.ts):
   * heads from the peers in view (self included), the decision (decideSynch, or planLink with
   * promises 'off'), fetch the best copy, adopt it or take the link over, push to the replicas
   * the plan lists. A takeover needs no prepare round here, as nothing can happen between the
   * reads and the writes; it still takes the epoch and version the server's would. False when the
   * best copy could not be fetched. `onDemand` false: for a pass, which leaves the recheck set alone.
   */
  synchLink(ownerId: NodeId, link: Link, onDemand = true): boolean {
    if (this.synchMode === 'network') throw new Error('synchLink is the atomic mode; the network mode synchronizes through ensure()');
    const o = this.host(ownerId);
    const heads = new Map<NodeId, Head | undefined>();
    for (const p of this.ids) {
      if (p === ownerId || !o.view.has(p)) continue;
      if (this.synchReaches('heads', ownerId, p)) heads.set(p, headOfState(this.host(p).index.get(link)));
    }
    // Replicas in view that did not answer count as holding nothing, so they get the result.
    for (const p of this.replicaSetAt(o, link).targets) if (!heads.has(p)) heads.set(p, undefined);
    heads.set(ownerId, headOfState(o.index.get(link)));
    let plan: SynchPlan | null;
    if (this.promises === 'off') plan = planLink(ownerId, heads);
    else {
      const d = decideSynch(ownerId, heads);
      plan = d.takeoverEpoch === undefined ? d.plan : planTakeover(ownerId, heads, d.takeoverEpoch, d.versionFloor);
    }
    this.synchs.push({ atMs: this.nowMs, host: ownerId, link, heads, plan });
    if (!plan) {
      this.synchronized(ownerId, link, o.schedule.state.generation, onDemand);
      return true;
    }
    let base: DocState | undefined;
    if (plan.source === ownerId) base = o.index.get(link);
    else if (this.synchReaches('fetch', ownerId, plan.source)) base = this.host(plan.source).index.get(link);
    if (!base) return false;
    if (plan.rewrite) {
      this.stats.synchRewrites++;
      this.append(o, link, { ...base, epoch: plan.rewrite.epoch, version: plan.rewrite.version, owner: ownerId }, 'rewrite');
    } else if (plan.source !== ownerId) {
      this.stats.synchAdopts++;
      this.append(o, link, { ...base }, 'adopt');
    }
    const result = o.index.get(link)!;
    this.log(
      `synch ${ownerId} ${link} best ${plan.source} (${plan.best.epoch},${plan.best.version}) -> (${result.epoch},${result.version}) push ${plan.pushTo.join(',')}`,
    );
    // Only the link's replica set receives it, as applyPlan filters.
    const targets = new Set(this.replicaSetAt(o, link).targets);
    for (const p of plan.pushTo) {
      if (!targets.has(p)) continue;
      this.stats.synchPushes++;
      if (this.connected(ownerId, p)) this.applyReplicated(this.host(p), { link, state: { ...result }, synch: true }, ownerId);
    }
    this.synchronized(ownerId, link, o.schedule.state.generation, onDemand);
    return true;
  }

  /**
   * A synchronization of `link` that started in `generation` succeeded: done for the generation
   * (schedule.ts linksDone) and, on demand, no longer to recheck (Synchronizer.ensure).
   */
  synchronized(id: NodeId, link: Link, generation: number, onDemand: boolean): void {
    this.schedules.feed(id, { type: 'linksDone', generation, links: [link] });
    if (onDemand) this.schedules.feed(id, { type: 'rechecked', link });
  }

  /**
   * The links of a pass the schedule started (sim-schedule.ts), synchronized at once; `end` hears
   * whether all of them were.
   */
  runPass(id: NodeId, links: readonly Link[], end: (complete: boolean) => void): void {
    if (this.synchMode === 'atomic') {
      let complete = true;
      for (const l of links) complete = this.synchLink(id, l, false) && complete;
      end(complete);
      return;
    }
    let left = links.length;
    let complete = true;
    if (left === 0) end(true);
    for (const l of links) {
      this.net.ensure(
        id,
        l,
        (ok) => {
          complete &&= ok;
          if (--left === 0) end(complete);
        },
        true,
      );
    }
  }

  /** Every link known to `id` or to a host it reaches. */
  knownLinks(id: NodeId): Link[] {
    const links = new Set<Link>();
    for (const p of this.ids) {
      if (p === id || this.connected(id, p)) for (const l of this.host(p).index.keys()) links.add(l);
    }
    return [...links].sort();
  }

  /**
   * An extra pass on one host, outside its schedule (the server runs passes only when its
   * schedule says so; a test uses this for a pass at any moment): every link it owns now.
   */
  synchPass(id: NodeId): void {
    const h = this.host(id);
    if (!this.available(h)) return;
    for (const l of this.knownLinks(id)) {
      if (this.ownerAt(h, l) !== id) continue;
      if (this.synchMode === 'network') this.net.ensure(id, l, () => undefined, true);
      else this.synchLink(id, l, false);
    }
  }

  /**
   * The end of a run: faults off, everything restarted and healed, views refreshed, then passes
   * on every host until a round appends nothing. Returns the rounds it took.
   */
  settle(maxRounds = 10): number {
    this.faults = { ...this.faults, dropRate: 0, duplicateRate: 0, longDelayRate: 0 };
    this.filter = undefined;
    this.drain();
    for (const id of this.ids) this.restart(id);
    this.heal();
    this.refreshViews();
    this.drain();
    for (let round = 1; round <= maxRounds; round++) {
      const before = this.totalAppends();
      for (const id of this.ids) {
        const h = this.host(id);
        for (const l of this.knownLinks(id)) {
          if (this.ownerAt(h, l) !== id) continue;
          if (this.synchMode === 'network') this.net.ensure(id, l, () => undefined, true);
          else this.synchLink(id, l);
        }
      }
      this.drain();
      if (this.totalAppends() === before) return round;
    }
    throw new Error(`no quiet after ${maxRounds} synchronization rounds`);
  }

  private totalAppends(): number {
    let n = 0;
    for (const h of this.hosts.values()) n += h.log.length;
    return n;
  }

  // ---- checks ----

  links(): Link[] {
    return [...new Set(this.writes.map((w) => w.link))].sort();
  }

  /** Property 2: every replica of every link holds the same epoch, version, owner and content. */
  checkConverged(): string[] {
    const problems: string[] = [];
    for (const link of this.links()) {
      const reps = this.finalReplicas(link);
      const states = reps.map((id) => this.host(id).index.get(link));
      const first = states[0];
      states.forEach((s, i) => {
        const same =
          s &&
          first &&
          s.epoch === first.epoch &&
          s.version === first.version &&
          s.value === first.value &&
          s.deleted === first.deleted &&
          s.owner === first.owner &&
          s.writeId === first.writeId;
        if (!same && !(s === undefined && first === undefined))
          problems.push(`${link}: ${reps[0]} holds ${fmt(first)} but ${reps[i]} holds ${fmt(s)}`);
      });
    }
    return problems;
  }

  /**
   * Property 1: on every replica of its link, an acknowledged write is part of the state held (it
   * is that state, or the state was planned, directly or through later writes, on one that
   * included it; a write issued earlier but planned later, after waiting for its link's
   * synchronization, can supersede it), and the replica's (epoch, version) is not below the
   * acknowledged one.
   */
  checkAcknowledged(): string[] {
    const problems: string[] = [];
    for (const w of this.writes) {
      if (w.outcome !== 'acked' || !w.state) continue;
      for (const id of this.finalReplicas(w.link)) {
        const s = this.host(id).index.get(w.link);
        if (!s) {
          problems.push(`acknowledged #${w.id} ${w.action} ${w.link} missing on ${id}`);
          continue;
        }
        if (compareHeads(headOfState(s)!, headOfState(w.state)!) < 0)
          problems.push(`${id} rolled ${w.link} back below acknowledged #${w.id} ${fmt(w.state)}: ${fmt(s)}`);
        if (!includesWrite(s, w.id))
          problems.push(`${id} lost acknowledged #${w.id} ${w.action} ${w.link} ${fmt(w.state)}: holds ${fmt(s)}, built without it`);
      }
    }
    return problems;
  }

  /** Property 3 over the logs: per host and link, (epoch, version) strictly increasing. */
  checkLogs(): string[] {
    const problems = [...this.violations];
    for (const h of this.hosts.values()) {
      const last = new Map<Link, DocState>();
      for (const e of h.log) {
        const prev = last.get(e.link);
        if (prev && (e.state.epoch < prev.epoch || (e.state.epoch === prev.epoch && e.state.version <= prev.version))) {
          problems.push(`${h.id} log of ${e.link}: ${fmt(prev)} then ${fmt(e.state)} (${e.cause})`);
        }
        last.set(e.link, e.state);
      }
    }
    return [...new Set(problems)];
  }

  checkAll(): string[] {
    return [...this.checkLogs(), ...this.checkConverged(), ...this.checkAcknowledged()];
  }
}

export function fmt(s: DocState | undefined): string {
  return s ? `(${s.epoch},${s.version} ${s.deleted ? 'deleted' : s.value} by ${s.owner} #${s.writeId})` : '(nothing)';
}
