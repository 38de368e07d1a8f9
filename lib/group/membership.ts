/**
 * The membership state machine of one host in one node group: `step(state, input, ctx)` returns
 * the next state and the effects the runtime must carry out (send a request, answer the request
 * that caused the input, persist a snapshot, tell subscribers). It reads no clock and no random
 * source of its own: `ctx` brings both. The rules it applies (ordering, merge, quorum, stability)
 * are in rules.ts; the wire shapes in types.ts.
 *
 * Persistence (Krypton keeps membership across restarts; Xenon does not). A `persist` effect
 * carries a snapshot whenever an entry or the config changed. On restart the host feeds the last
 * snapshot back as `restored`:
 *  - every peer it believed AVAILABLE or SYNCHRONIZING becomes UNKNOWN at the same version: not
 *    counted for quorum, not an owner, and (UNKNOWN ranking lowest) replaced by the first copy a
 *    live host reports, so the local belief never overrides anyone else's;
 *  - UNAVAILABLE and REPLACED peers keep their status with a fresh removal deadline;
 *  - its own entry is raised one version (SYNCHRONIZING until the next tick makes it AVAILABLE),
 *    and if peers marked it UNAVAILABLE above that, the self rule raises it again on first contact:
 *    the host wins its entry back within a gossip round or two;
 *  - the membership clock is kept, so it never goes backwards;
 *  - an explicit `--membershipQuorum` on the restart overrides the snapshot's quorum.
 *
 * Failure detection. A probe (the gossip PATCH of a tick) has a deadline of its own
 * (`limits.membershipProbeTimeoutMicros`), far shorter than other peer requests, because a host
 * that is paused, partitioned or stuck on its disk accepts connections and never answers: only a
 * deadline tells it from a busy one. A refused or failed probe marks the peer UNAVAILABLE at once
 * (nothing listens there); a probe that times out is a miss, and the peer is probed again at once.
 * `limits.membershipProbeMissesMax` misses in a row, each of a probe sent after the previous miss,
 * mark it. A pause shorter than the misses together (a garbage collection) therefore never marks a
 * peer, and a prober that was itself stalled, which sees every probe in flight time out together,
 * counts them as one miss. Any proof of life (a reply, a gossip from the peer) clears the misses. A hint that a peer may be
 * gone (`suspected`: the runtime saw a kept-alive connection to it close, as a killed process's
 * do at once) probes it at once rather than at the next tick, at most once per probe deadline per
 * peer: a refused probe then marks it within milliseconds of the kill. A peer's mark of a host
 * this host heard from within the time its own probes take (a healed host's marks from while it
 * was cut off) is not adopted but checked the same way, by a probe at once.
 *
 * Leaving. A host that stops gracefully feeds `leave`: it writes its own entry UNAVAILABLE (its
 * own version, so the word is final until it comes back) and sends that to every peer, with a
 * short deadline (`limits.membershipLeaveTimeoutMicros`) so a dead peer cannot hold the stop up.
 * Peers merge it like any gossip and see it gone without waiting for a probe. From then on the
 * machine no longer ticks itself AVAILABLE nor gossips.
 */

import { KINDS } from '../document.js';
import type { Link, Micros, NodeId } from '../ids.js';
import { limits } from '../limits.js';
import {
  emptyOutcome,
  expireEntries,
  isGroupAvailable,
  isGroupSettled,
  groupHasQuorum,
  markPeer,
  mergeEntry,
  mergeGroup,
  mergeSelf,
  type MergeContext,
  type MergeOutcome,
} from './rules.js';
import {
  DEFAULT_GROUP_LINK,
  GROUP_DEFAULTS,
  defaultGroupConfig,
  defaultMembershipQuorum,
  normalizeGroupReference,
  type JoinPeerRequest,
  type NodeGroupChange,
  type NodeGroupConfig,
  type NodeGroupState,
  type NodeOption,
  type NodeState,
  type UpdateQuorumRequest,
} from './types.js';
import { snapshotOf, type MembershipSnapshot } from './snapshot.js';

export { parseMembershipSnapshot, snapshotOf, type MembershipSnapshot } from './snapshot.js';

export interface MembershipOptions {
  selfId: NodeId;
  /** Public URI of this host's group service. */
  groupReference: string;
  groupLink?: Link;
  /** Explicit quorum (`--membershipQuorum`); wins over the default and over a restored snapshot. */
  membershipQuorum?: number;
  /** Entries of `--peerNodes` other than self, for the default quorum. */
  peerNodeCount?: number;
  locationQuorum?: number;
  options?: NodeOption[];
  customProperties?: Record<string, string>;
  config?: Partial<NodeGroupConfig>;
  maintenanceIntervalMicros?: Micros;
  joinRetryWindowMicros?: Micros;
}

export interface StepContext {
  nowMicros: Micros;
  /** Uniform in [0, 1); drives the gossip shuffle. */
  random: () => number;
}

/** Probes of one peer that timed out since it last showed it is alive. */
interface ProbeMisses {
  count: number;
  /** Requests up to this id were in flight when the last miss was counted: their timeouts add nothing. */
  countedUpTo: number;
}

interface PendingJoin {
  memberGroupReference: string;
  /** The GET in flight; null while waiting for the next tick to retry. */
  requestId: number | null;
  deadlineMicros: Micros;
}

export interface MembershipState {
  /** What GET on the group returns. */
  readonly group: NodeGroupState;
  readonly selfId: NodeId;
  readonly selfReference: string;
  readonly maintenanceIntervalMicros: Micros;
  readonly joinRetryWindowMicros: Micros;
  readonly explicitQuorum: number | undefined;
  readonly nextRequestId: number;
  /** Per peer, the newest request id known to be superseded by proof of life. */
  readonly heardFrom: Readonly<Record<NodeId, number>>;
  /** Per peer, when this host last heard from it (a gossip from it, or its reply). */
  readonly heardAt: Readonly<Record<NodeId, Micros>>;
  readonly probeMisses: Readonly<Record<NodeId, Readonly<ProbeMisses>>>;
  /** Per peer, when a `suspected` hint last probed it. */
  readonly suspectedAt: Readonly<Record<NodeId, Micros>>;
  /** Set by `leave`: this host is stopping and has told its peers. */
  readonly leaving: boolean;
  readonly joins: readonly Readonly<PendingJoin>[];
  /** Last availability reported through an `availability` effect. */
  readonly available: boolean;
  readonly joinRetryCount: number;
}

export type MembershipInput =
  | { type: 'tick' }
  | { type: 'gossipReceived'; body: NodeGroupState }
  | { type: 'gossipReplied'; peerId: NodeId; requestId: number; body: NodeGroupState }
  /** `timedOut`: the probe's deadline passed without an answer (else it was refused or failed). */
  | { type: 'gossipFailed'; peerId: NodeId; requestId: number; timedOut?: boolean }
  | { type: 'join'; request: JoinPeerRequest }
  | { type: 'joinFetched'; requestId: number; body: NodeGroupState }
  | { type: 'joinFailed'; requestId: number }
  | { type: 'nodeStateReceived'; node: NodeState }
  | { type: 'updateQuorum'; request: UpdateQuorumRequest }
  | { type: 'configPatched'; config: Partial<NodeGroupConfig> }
  | { type: 'restored'; snapshot: MembershipSnapshot }
  | { type: 'leave' }
  /** A hint that `peerId` may be gone (a connection to it closed): probe it now. */
  | { type: 'suspected'; peerId: NodeId };

/** Requests to other hosts. The answer (or failure) of gossip and joinFetch comes back as an input. */
export type SendEffect =
  | {
      type: 'send';
      purpose: 'gossip' | 'leave';
      requestId: number;
      peerId: NodeId;
      to: string;
      method: 'PATCH';
      body: NodeGroupState;
      /** The request's deadline: a probe's or a leave notice's, not the long peer request timeout. */
      timeoutMicros: Micros;
    }
  | { type: 'send'; purpose: 'joinFetch'; requestId: number; to: string; method: 'GET' }
  | { type: 'send'; purpose: 'joinInsert'; requestId: number; to: string; method: 'POST'; body: NodeState }
  | { type: 'send'; purpose: 'quorumUpdate'; requestId: number; peerId: NodeId; to: string; method: 'PATCH'; body: UpdateQuorumRequest };

export type MembershipEffect =
  | SendEffect
  /** The answer to the HTTP request that produced this input (every request input gets one). */
  | { type: 'reply'; body: NodeGroupState }
  | { type: 'persist'; snapshot: MembershipSnapshot }
  /** `overruled`: a peer's copy of this host's own entry beat it (rules.ts MergeOutcome). */
  | { type: 'changed'; changes: NodeGroupChange[]; overruled: boolean }
  | { type: 'availability'; available: boolean }
  | { type: 'log'; message: string };

export interface StepResult {
  state: MembershipState;
  effects: MembershipEffect[];
}

export function createMembership(opts: MembershipOptions, nowMicros: Micros): MembershipState {
  const groupLink = opts.groupLink ?? DEFAULT_GROUP_LINK;
  const quorum = opts.membershipQuorum ?? defaultMembershipQuorum(opts.peerNodeCount ?? 0);
  const self: NodeState = {
    id: opts.selfId,
    groupReference: opts.groupReference,
    status: 'SYNCHRONIZING',
    options: [...(opts.options ?? ['PEER'])],
    membershipQuorum: Math.max(1, quorum),
    locationQuorum: Math.max(1, opts.locationQuorum ?? 1),
    documentVersion: 0,
    documentKind: KINDS.nodeState,
    documentSelfLink: `${groupLink}/${opts.selfId}`,
    documentUpdateTimeMicros: nowMicros,
    documentExpirationTimeMicros: 0,
  };
  if (opts.customProperties) self.customProperties = { ...opts.customProperties };
  return {
    group: {
      config: { ...defaultGroupConfig(), ...opts.config },
      nodes: { [opts.selfId]: self },
      membershipUpdateTimeMicros: 0,
      localMembershipUpdateTimeMicros: nowMicros,
      documentVersion: 0,
      documentKind: KINDS.nodeGroupState,
      documentSelfLink: groupLink,
      documentOwner: opts.selfId,
      documentUpdateTimeMicros: nowMicros,
      documentExpirationTimeMicros: 0,
    },
    selfId: opts.selfId,
    selfReference: normalizeGroupReference(opts.groupReference),
    maintenanceIntervalMicros: opts.maintenanceIntervalMicros ?? GROUP_DEFAULTS.maintenanceIntervalMicros,
    joinRetryWindowMicros: opts.joinRetryWindowMicros ?? GROUP_DEFAULTS.joinRetryWindowMicros,
    explicitQuorum: opts.membershipQuorum,
    nextRequestId: 1,
    heardFrom: {},
    heardAt: {},
    probeMisses: {},
    suspectedAt: {},
    leaving: false,
    joins: [],
    available: false,
    joinRetryCount: 0,
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Draft = Mutable<Omit<MembershipState, 'joins' | 'heardFrom' | 'heardAt' | 'probeMisses' | 'suspectedAt'>> & {
  joins: PendingJoin[];
  heardFrom: Record<NodeId, number>;
  heardAt: Record<NodeId, Micros>;
  probeMisses: Record<NodeId, ProbeMisses>;
  suspectedAt: Record<NodeId, Micros>;
};

/** One step's working copy and what it has decided so far. */
class Run {
  readonly s: Draft;
  readonly effects: MembershipEffect[] = [];
  readonly out: MergeOutcome = emptyOutcome();
  originated = false;
  configChanged = false;
  gossip = false;
  /** Peers to probe again at once, after a miss. */
  reprobe: NodeId[] = [];
  reply = false;
  inserts: string[] = [];

  constructor(
    state: MembershipState,
    readonly ctx: StepContext,
  ) {
    this.s = structuredClone(state) as Draft;
  }

  get nodes(): Record<NodeId, NodeState> {
    return this.s.group.nodes;
  }

  get self(): NodeState {
    return this.nodes[this.s.selfId]!;
  }

  mctx(): MergeContext {
    const s = this.s;
    return {
      selfId: s.selfId,
      selfReference: s.selfReference,
      groupLink: s.group.documentSelfLink,
      nowMicros: this.ctx.nowMicros,
      config: s.group.config,
    };
  }

  requestId(): number {
    return this.s.nextRequestId++;
  }

  /** A write to our own entry: one version up, SELF_CHANGE, originated here. */
  writeSelf(change: Partial<Pick<NodeState, 'status' | 'membershipQuorum' | 'locationQuorum' | 'options'>>): void {
    const self = this.self;
    if (change.membershipQuorum !== undefined && change.membershipQuorum !== self.membershipQuorum) this.out.changes.add('QUORUM_CHANGED');
    if (change.locationQuorum !== undefined && change.locationQuorum !== self.locationQuorum) this.out.changes.add('QUORUM_CHANGED');
    Object.assign(self, change);
    self.documentVersion += 1;
    self.documentUpdateTimeMicros = this.ctx.nowMicros;
    this.out.changes.add('SELF_CHANGE');
    this.out.contentChanged = this.out.touched = true;
    this.originated = true;
  }

  merge(body: NodeGroupState): void {
    const stale = this.staleMarks(body);
    const o = mergeGroup(this.nodes, stale.size === 0 ? body : withoutEntries(body, stale), this.mctx());
    for (const id of stale) if (!this.reprobe.includes(id)) this.reprobe.push(id);
    this.absorb(o);
    if (body.membershipUpdateTimeMicros > this.s.group.membershipUpdateTimeMicros) {
      this.s.group.membershipUpdateTimeMicros = body.membershipUpdateTimeMicros;
    }
  }

  absorb(o: MergeOutcome): void {
    for (const c of o.changes) this.out.changes.add(c);
    this.out.contentChanged ||= o.contentChanged;
    this.out.touched ||= o.touched;
    if (o.selfBumped) this.originated = true;
    this.out.overruled ||= o.overruled;
  }

  /** Local writes to peers' entries (marks, expiry) originate a membership change. */
  local(fn: (o: MergeOutcome) => void): void {
    const o = emptyOutcome();
    fn(o);
    if (o.touched) this.originated = true;
    this.absorb(o);
  }

  finish(): StepResult {
    const s = this.s;
    const g = s.group;
    const now = this.ctx.nowMicros;
    if (this.originated) g.membershipUpdateTimeMicros += 1;
    if (this.out.touched || this.configChanged) {
      g.documentVersion += 1;
      g.documentUpdateTimeMicros = now;
      g.documentUpdateAction = 'PATCH';
    }
    if (this.out.contentChanged) g.localMembershipUpdateTimeMicros = now;
    if (this.out.changes.size > 0) {
      g.lastChanges = [...this.out.changes];
      this.effects.push({ type: 'changed', changes: [...this.out.changes], overruled: this.out.overruled });
    }
    if (this.out.touched || this.configChanged) this.effects.push({ type: 'persist', snapshot: snapshotOf(g, s.selfId) });
    for (const to of this.inserts) {
      this.effects.push({
        type: 'send',
        purpose: 'joinInsert',
        requestId: this.requestId(),
        to,
        method: 'POST',
        body: structuredClone(this.self),
      });
    }
    if (this.gossip) this.sendGossip();
    for (const id of this.reprobe) {
      const p = this.nodes[id];
      if (p) this.probe(p, 'gossip');
    }
    if (this.reply) this.effects.push({ type: 'reply', body: structuredClone(g) });
    const available = isGroupAvailable(g, now, s.maintenanceIntervalMicros);
    if (available !== s.available) {
      s.available = available;
      this.effects.push({ type: 'availability', available });
    }
    return { state: s, effects: this.effects };
  }

  sendGossip(): void {
    const peers = Object.values(this.nodes).filter((n) => n.id !== this.s.selfId && n.status !== 'REPLACED');
    if (peers.length === 0) return;
    // Fisher-Yates with the injected random source, so a seed replays the same rounds.
    for (let i = peers.length - 1; i > 0; i--) {
      const j = Math.min(i, Math.floor(this.ctx.random() * (i + 1)));
      [peers[i], peers[j]] = [peers[j]!, peers[i]!];
    }
    const n = peers.length + 1;
    const fanOut = Math.min(n - 1, Math.max(Math.floor(Math.log10(n - 1)), GROUP_DEFAULTS.gossipPeersMax));
    for (const p of peers.slice(0, fanOut)) {
      if (!this.reprobe.includes(p.id)) this.probe(p, 'gossip');
    }
  }

  probe(p: NodeState, purpose: 'gossip' | 'leave'): void {
    this.effects.push({
      type: 'send',
      purpose,
      requestId: this.requestId(),
      peerId: p.id,
      to: p.groupReference,
      method: 'PATCH',
      body: structuredClone(this.s.group),
      timeoutMicros: purpose === 'gossip' ? limits.membershipProbeTimeoutMicros : limits.membershipLeaveTimeoutMicros,
    });
  }

  /** Proof that `id` is alive: earlier requests to it can no longer count against it. */
  /**
   * A peer's word that another host X is UNAVAILABLE while this host heard from X itself within
   * the time its own probes take to write a host off: a host healed from a partition brings the
   * marks it made while cut off, one version above ours. Not adopted at once, lest two live hosts
   * write each other off and move their links to the healed one for a round; X is probed at once
   * instead, and a probe that fails marks it here as any would. Judged on this host's clock
   * only, so clock skew between hosts changes nothing.
   */
  private staleMarks(body: NodeGroupState): Set<NodeId> {
    const stale = new Set<NodeId>();
    const since = this.ctx.nowMicros - limits.membershipProbeTimeoutMicros * limits.membershipProbeMissesMax;
    for (const r of Object.values(body.nodes)) {
      if (r.id === this.s.selfId || r.id === body.documentOwner || r.status !== 'UNAVAILABLE') continue;
      const heard = this.s.heardAt[r.id];
      if (this.nodes[r.id]?.status === 'AVAILABLE' && heard !== undefined && heard > since) stale.add(r.id);
    }
    return stale;
  }

  heard(id: NodeId, upTo: number): void {
    this.s.heardFrom[id] = Math.max(this.s.heardFrom[id] ?? 0, upTo);
    this.s.heardAt[id] = this.ctx.nowMicros;
    delete this.s.probeMisses[id];
  }
}

/** `body` without the entries of `ids`. */
function withoutEntries(body: NodeGroupState, ids: ReadonlySet<NodeId>): NodeGroupState {
  const nodes: Record<NodeId, NodeState> = {};
  for (const [id, n] of Object.entries(body.nodes)) if (!ids.has(id)) nodes[id] = n;
  return { ...body, nodes };
}

export function step(state: MembershipState, input: MembershipInput, ctx: StepContext): StepResult {
  const run = new Run(state, ctx);
  switch (input.type) {
    case 'tick':
      onTick(run);
      break;
    case 'gossipReceived': {
      const owner = input.body.documentOwner;
      // A peer that talks to us is alive now: failures of requests already sent to it are stale.
      if (owner !== state.selfId) run.heard(owner, run.s.nextRequestId - 1);
      run.merge(input.body);
      run.reply = true;
      break;
    }
    case 'gossipReplied':
      run.heard(input.peerId, input.requestId);
      if (input.body.documentOwner !== input.peerId) {
        run.local((o) => markPeer(run.nodes, input.peerId, 'REPLACED', run.mctx(), o));
        run.effects.push({ type: 'log', message: `peer ${input.peerId} replaced by ${input.body.documentOwner} at its address` });
      }
      run.merge(input.body);
      break;
    case 'gossipFailed':
      // A later request (or an incoming gossip) already proved the peer alive: a stale timeout.
      if (input.requestId <= (run.s.heardFrom[input.peerId] ?? 0)) break;
      if (input.timedOut && !onProbeMissed(run, input.peerId, input.requestId)) break;
      run.local((o) => {
        markPeer(run.nodes, input.peerId, 'UNAVAILABLE', run.mctx(), o);
        // Told to the others at once, not at the next tick: their links move a round sooner.
        if (o.touched) run.gossip = true;
      });
      break;
    case 'join':
      onJoin(run, input.request);
      break;
    case 'joinFetched': {
      const i = run.s.joins.findIndex((j) => j.requestId === input.requestId);
      run.merge(input.body);
      if (i >= 0) {
        const [j] = run.s.joins.splice(i, 1);
        run.inserts.push(j!.memberGroupReference);
        run.effects.push({ type: 'log', message: `Joined peer ${j!.memberGroupReference}` });
      }
      break;
    }
    case 'joinFailed': {
      const j = run.s.joins.find((x) => x.requestId === input.requestId);
      if (j) j.requestId = null;
      break;
    }
    case 'nodeStateReceived': {
      const o = emptyOutcome();
      if (input.node.id === state.selfId) mergeSelf(run.nodes, input.node, run.mctx(), o);
      else mergeEntry(run.nodes, input.node, run.mctx(), o, true);
      run.absorb(o);
      run.reply = true;
      break;
    }
    case 'updateQuorum':
      onUpdateQuorum(run, input.request);
      break;
    case 'configPatched':
      Object.assign(run.s.group.config, input.config);
      run.configChanged = true;
      run.reply = true;
      break;
    case 'restored':
      onRestored(run, input.snapshot);
      break;
    case 'leave':
      onLeave(run);
      break;
    case 'suspected': {
      const p = run.nodes[input.peerId];
      const last = run.s.suspectedAt[input.peerId];
      if (run.s.leaving || !p || p.id === state.selfId || p.status === 'UNAVAILABLE' || p.status === 'REPLACED') break;
      if (last !== undefined && ctx.nowMicros < last + limits.membershipProbeTimeoutMicros) break;
      run.s.suspectedAt[input.peerId] = ctx.nowMicros;
      run.reprobe.push(input.peerId);
      break;
    }
  }
  return run.finish();
}

/**
 * A probe of `peerId` timed out. Whether that marks the peer: only the last of
 * `membershipProbeMissesMax` misses in a row does; the others probe it again at once.
 */
function onProbeMissed(run: Run, peerId: NodeId, requestId: number): boolean {
  const peer = run.nodes[peerId];
  if (!peer || peer.status === 'UNAVAILABLE' || peer.status === 'REPLACED') return false;
  const m = run.s.probeMisses[peerId] ?? { count: 0, countedUpTo: 0 };
  if (requestId <= m.countedUpTo) return false;
  if (m.count + 1 >= limits.membershipProbeMissesMax) {
    delete run.s.probeMisses[peerId];
    return true;
  }
  run.s.probeMisses[peerId] = { count: m.count + 1, countedUpTo: run.s.nextRequestId - 1 };
  run.reprobe.push(peerId);
  return false;
}

function onLeave(run: Run): void {
  if (run.s.leaving) return;
  run.s.leaving = true;
  run.writeSelf({ status: 'UNAVAILABLE' });
  for (const n of Object.values(run.nodes)) {
    if (n.id === run.s.selfId || n.status === 'UNAVAILABLE' || n.status === 'REPLACED') continue;
    run.probe(n, 'leave');
  }
}

function onTick(run: Run): void {
  const now = run.ctx.nowMicros;
  // A stopping host must not tick itself back to AVAILABLE after saying it left.
  if (run.s.leaving) return;
  run.local((o) => {
    const gone = expireEntries(run.nodes, run.mctx(), o);
    for (const id of gone) {
      delete run.s.heardFrom[id];
      delete run.s.heardAt[id];
      delete run.s.probeMisses[id];
    }
  });
  if (run.self.status !== 'AVAILABLE') run.writeSelf({ status: 'AVAILABLE' });
  for (const n of Object.values(run.nodes)) {
    if (n.id !== run.s.selfId && normalizeGroupReference(n.groupReference) === run.s.selfReference) {
      run.local((o) => markPeer(run.nodes, n.id, 'REPLACED', run.mctx(), o));
    }
  }
  for (const j of [...run.s.joins]) {
    if (j.requestId !== null) continue;
    if (now >= j.deadlineMicros) {
      run.s.joins.splice(run.s.joins.indexOf(j), 1);
      run.effects.push({ type: 'log', message: `join of ${j.memberGroupReference} gave up after its retry window` });
      continue;
    }
    j.requestId = run.requestId();
    run.s.joinRetryCount += 1;
    run.effects.push({ type: 'send', purpose: 'joinFetch', requestId: j.requestId, to: j.memberGroupReference, method: 'GET' });
  }
  run.gossip = true;
}

function onJoin(run: Run, req: JoinPeerRequest): void {
  run.reply = true;
  const ref = normalizeGroupReference(req.memberGroupReference);
  if (ref === run.s.selfReference) {
    run.effects.push({ type: 'log', message: 'Skipping self join' });
    return;
  }
  const self = run.self;
  const change: Parameters<Run['writeSelf']>[0] = {};
  // Seed 000: a joining node keeps the larger of its own quorum and the one it is asked to use.
  if (req.membershipQuorum !== undefined) change.membershipQuorum = Math.max(self.membershipQuorum, req.membershipQuorum);
  if (req.locationQuorum !== undefined) change.locationQuorum = Math.max(self.locationQuorum, req.locationQuorum);
  if (req.localNodeOptions) change.options = [...req.localNodeOptions];
  run.writeSelf(change);
  const existing = run.s.joins.findIndex((j) => j.memberGroupReference === req.memberGroupReference);
  if (existing >= 0) run.s.joins.splice(existing, 1);
  const requestId = run.requestId();
  run.s.joins.push({
    memberGroupReference: req.memberGroupReference,
    requestId,
    deadlineMicros: run.ctx.nowMicros + run.s.joinRetryWindowMicros,
  });
  run.effects.push({ type: 'send', purpose: 'joinFetch', requestId, to: req.memberGroupReference, method: 'GET' });
}

function onUpdateQuorum(run: Run, req: UpdateQuorumRequest): void {
  run.reply = true;
  const change: Parameters<Run['writeSelf']>[0] = {};
  if (req.membershipQuorum !== undefined) change.membershipQuorum = Math.max(1, req.membershipQuorum);
  if (req.locationQuorum !== undefined) change.locationQuorum = Math.max(1, req.locationQuorum);
  run.writeSelf(change);
  if (!req.isGroupUpdate) return;
  const body: UpdateQuorumRequest = { ...req, isGroupUpdate: false };
  for (const n of Object.values(run.nodes)) {
    if (n.id === run.s.selfId || n.status !== 'AVAILABLE') continue;
    run.effects.push({
      type: 'send',
      purpose: 'quorumUpdate',
      requestId: run.requestId(),
      peerId: n.id,
      to: n.groupReference,
      method: 'PATCH',
      body: { ...body },
    });
  }
}

function onRestored(run: Run, snap: MembershipSnapshot): void {
  const s = run.s;
  const now = run.ctx.nowMicros;
  const ctx = run.mctx();
  const fresh = run.self;
  const nodes: Record<NodeId, NodeState> = { [s.selfId]: fresh };
  for (const n of Object.values(structuredClone(snap.nodes))) {
    if (n.id === s.selfId) continue;
    if (n.status === 'AVAILABLE' || n.status === 'SYNCHRONIZING') {
      nodes[n.id] = { ...n, status: 'UNKNOWN', documentExpirationTimeMicros: 0 };
    } else if (n.status === 'UNAVAILABLE' || n.status === 'REPLACED') {
      nodes[n.id] = { ...n, documentExpirationTimeMicros: now + s.group.config.nodeRemovalDelayMicros };
    } else {
      nodes[n.id] = { ...n };
    }
    nodes[n.id]!.documentSelfLink = `${ctx.groupLink}/${n.id}`;
  }
  const old = snap.nodes[s.selfId];
  if (old) {
    fresh.documentVersion = Math.max(fresh.documentVersion, old.documentVersion);
    if (s.explicitQuorum === undefined) fresh.membershipQuorum = old.membershipQuorum;
    fresh.locationQuorum = Math.max(fresh.locationQuorum, old.locationQuorum);
    // Options set by a JoinPeerRequest (OBSERVER) are membership state too.
    fresh.options = [...old.options];
  }
  s.group.nodes = nodes;
  s.group.config = { ...snap.config };
  s.group.documentVersion = Math.max(s.group.documentVersion, snap.documentVersion);
  s.group.membershipUpdateTimeMicros = Math.max(s.group.membershipUpdateTimeMicros, snap.membershipUpdateTimeMicros);
  s.heardFrom = {};
  s.heardAt = {};
  s.probeMisses = {};
  run.writeSelf({ status: 'SYNCHRONIZING' });
  run.effects.push({ type: 'log', message: `restored ${Object.keys(nodes).length - 1} peer entries from the sandbox` });
}

// ---- queries ----

export function selfEntry(state: MembershipState): NodeState {
  return state.group.nodes[state.selfId]!;
}

export function isSettled(state: MembershipState, nowMicros: Micros): boolean {
  return isGroupSettled(state.group, nowMicros, state.maintenanceIntervalMicros);
}

export function hasQuorum(state: MembershipState): boolean {
  return groupHasQuorum(state.group);
}

export function isAvailable(state: MembershipState, nowMicros: Micros): boolean {
  return isGroupAvailable(state.group, nowMicros, state.maintenanceIntervalMicros);
}

/** AVAILABLE members other than self (observers included). */
export function availablePeers(state: MembershipState): NodeState[] {
  return Object.values(state.group.nodes).filter((n) => n.id !== state.selfId && n.status === 'AVAILABLE');
}

export function membershipUpdateTimeMicros(state: MembershipState): number {
  return state.group.membershipUpdateTimeMicros;
}

/**
 * Whether an `isGroupUpdate` quorum change failed: Xenon answers 500 "Majority of nodes failed
 * request" only when more than (n - 1) / 2 of the n - 1 peers it was sent to failed.
 */
export function quorumFanOutFailed(peersSent: number, failures: number): boolean {
  return failures > Math.floor(peersSent / 2);
}
