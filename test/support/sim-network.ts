/**
 * An in-memory network of simulated hosts running the membership state machine, for deterministic
 * tests of node groups: one manual clock in milliseconds (each host may read it with its own
 * offset), an event queue, delivery of `send` effects as the matching inputs on the target and of
 * the answers back to the sender, and the faults that matter: stopped hosts (refused at once),
 * partitions and dropped messages (the sender sees a timeout at its request's deadline), paused
 * hosts (SIGSTOP: requests wait for the resume or time out), restarts from the last persisted
 * snapshot. Bodies cross the wire as JSON and go through the validators.
 * Every random choice comes from one seeded PRNG, so a scenario replays exactly.
 */

import {
  createMembership,
  step,
  type MembershipEffect,
  type MembershipInput,
  type MembershipOptions,
  type MembershipSnapshot,
  type MembershipState,
  type SendEffect,
} from '../../lib/group/membership.js';
import {
  DEFAULT_GROUP_LINK,
  parseNodeGroupState,
  parseNodeState,
  parseUpdateQuorumRequest,
  type JoinPeerRequest,
  type NodeGroupChange,
  type NodeGroupConfig,
  type NodeOption,
  type NodeStatus,
  type UpdateQuorumRequest,
} from '../../lib/group/types.js';
import { KINDS } from '../../lib/document.js';

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SimHostSpec {
  /** Address: the host's group lives at `http://<name>/<groupLink>`. */
  name: string;
  /** Host id; defaults to the name. */
  id?: string;
  clockOffsetMs?: number;
  membershipQuorum?: number;
  /** Names of hosts to join one interval after start (self may be listed: it is skipped). */
  peerNodes?: string[];
  options?: NodeOption[];
  config?: Partial<NodeGroupConfig>;
}

export interface SimOptions {
  seed?: number;
  /** One-way delivery latency. */
  latencyMs?: number;
  dropRate?: number;
  groupLink?: string;
  maintenanceIntervalMs?: number;
  /** Delay before a dropped or partitioned request fails; default: the sender's peerRequestTimeout. */
  timeoutMs?: number;
  /** Wall time at sim time 0. */
  epochMs?: number;
}

export class SimHost {
  state!: MembershipState;
  running = false;
  paused = false;
  /** Answers to this host's requests that arrived while it was paused. */
  readonly held: { deadline: number; timedOut: () => void; answered: () => void }[] = [];
  /** Requests to this host that arrived while it was paused. */
  readonly inbox: (() => void)[] = [];
  incarnation = 0;
  snapshot: MembershipSnapshot | undefined;
  random: () => number = mulberry32(0);
  readonly logs: string[] = [];
  readonly changes: { atMs: number; changes: NodeGroupChange[] }[] = [];
  readonly availability: { atMs: number; available: boolean }[] = [];
  id: string;

  constructor(
    readonly spec: SimHostSpec,
    readonly index: number,
  ) {
    this.id = spec.id ?? spec.name;
  }

  get name(): string {
    return this.spec.name;
  }
}

interface Event {
  at: number;
  seq: number;
  run: () => void;
}

export class SimNetwork {
  nowMs = 0;
  dropRate: number;
  readonly latencyMs: number;
  readonly groupLink: string;
  readonly intervalMs: number;
  private readonly rng: () => number;
  private readonly hostsByName = new Map<string, SimHost>();
  private queue: Event[] = [];
  private seq = 0;
  private sides: Map<string, number> | undefined;
  /** Outcomes of quorum fan-out PATCHes, for assertions. */
  readonly quorumUpdates: { from: string; to: string; ok: boolean }[] = [];

  constructor(readonly opts: SimOptions = {}) {
    this.rng = mulberry32(opts.seed ?? 1);
    this.dropRate = opts.dropRate ?? 0;
    this.latencyMs = opts.latencyMs ?? 2;
    this.groupLink = opts.groupLink ?? DEFAULT_GROUP_LINK;
    this.intervalMs = opts.maintenanceIntervalMs ?? 1000;
  }

  reference(name: string): string {
    return `http://${name}${this.groupLink}`;
  }

  nowMicros(h: SimHost): number {
    return ((this.opts.epochMs ?? 1_700_000_000_000) + this.nowMs + (h.spec.clockOffsetMs ?? 0)) * 1000;
  }

  addHost(spec: SimHostSpec): SimHost {
    const h = new SimHost(spec, this.hostsByName.size);
    this.hostsByName.set(spec.name, h);
    this.boot(h, undefined);
    return h;
  }

  host(name: string): SimHost {
    const h = this.hostsByName.get(name);
    if (!h) throw new Error(`no simulated host ${name}`);
    return h;
  }

  hosts(): SimHost[] {
    return [...this.hostsByName.values()];
  }

  running(): SimHost[] {
    return this.hosts().filter((h) => h.running);
  }

  stop(name: string): void {
    const h = this.host(name);
    h.running = false;
    h.paused = false;
    h.incarnation += 1;
  }

  /**
   * SIGSTOP: the host neither ticks nor answers; requests to it time out at the sender's deadline.
   * Answers to its own requests wait, and on `resume` its timers fire before it reads them, as in
   * Node: every probe it had in flight times out together.
   */
  pause(name: string): void {
    this.host(name).paused = true;
  }

  resume(name: string): void {
    const h = this.host(name);
    h.paused = false;
    const held = h.held.splice(0);
    for (const a of held) if (a.deadline <= this.nowMs) a.timedOut();
    for (const a of held) if (a.deadline > this.nowMs) a.answered();
    for (const deliver of h.inbox.splice(0)) deliver();
  }

  /** Start a stopped host again: from its last snapshot unless `fresh`, optionally as a new id. */
  restart(name: string, opts: { fresh?: boolean; newId?: string; membershipQuorum?: number } = {}): SimHost {
    const h = this.host(name);
    if (h.running) this.stop(name);
    if (opts.newId !== undefined) h.id = opts.newId;
    if (opts.membershipQuorum !== undefined) h.spec.membershipQuorum = opts.membershipQuorum;
    this.boot(h, opts.fresh ? undefined : h.snapshot);
    return h;
  }

  partition(...sides: string[][]): void {
    this.sides = new Map();
    sides.forEach((names, i) => {
      for (const n of names) this.sides!.set(n, i);
    });
  }

  heal(): void {
    this.sides = undefined;
  }

  /** Feed an input to a running host now (a local client request) and carry out its effects. */
  input(name: string, input: MembershipInput): MembershipEffect[] {
    const h = this.host(name);
    if (!h.running) throw new Error(`${name} is stopped`);
    return this.stepHost(h, input);
  }

  join(name: string, target: string, extra: Partial<JoinPeerRequest> = {}): MembershipEffect[] {
    return this.input(name, {
      type: 'join',
      request: { kind: KINDS.joinPeerRequest, memberGroupReference: this.reference(target), ...extra },
    });
  }

  updateQuorum(name: string, req: { isGroupUpdate: boolean; membershipQuorum?: number; locationQuorum?: number }): MembershipEffect[] {
    const request: UpdateQuorumRequest = { kind: KINDS.updateQuorumRequest, isGroupUpdate: req.isGroupUpdate };
    if (req.membershipQuorum !== undefined) request.membershipQuorum = req.membershipQuorum;
    if (req.locationQuorum !== undefined) request.locationQuorum = req.locationQuorum;
    return this.input(name, { type: 'updateQuorum', request });
  }

  runFor(ms: number): void {
    const end = this.nowMs + ms;
    for (let e = this.next(end); e; e = this.next(end)) e.run();
    this.nowMs = end;
  }

  /** Run until `pred` holds (checked after every event); the elapsed ms, or -1 after `maxMs`. */
  runUntil(pred: () => boolean, maxMs: number): number {
    const start = this.nowMs;
    const end = start + maxMs;
    if (pred()) return 0;
    for (let e = this.next(end); e; e = this.next(end)) {
      e.run();
      if (pred()) return this.nowMs - start;
    }
    this.nowMs = end;
    return -1;
  }

  /** The status `observer` holds for `subject` (by host name). */
  statusOf(observer: string, subject: string): NodeStatus | undefined {
    return this.host(observer).state.group.nodes[this.host(subject).id]?.status;
  }

  /** Every running host other than `subject` sees it with `status`. */
  everyoneSees(subject: string, status: NodeStatus): boolean {
    return this.running().every((h) => h.name === subject || this.statusOf(h.name, subject) === status);
  }

  /** One host's view: entries by id with version, status, quorum and options, plus the membership clock. */
  view(name: string): string {
    const g = this.host(name).state.group;
    const entries = Object.values(g.nodes)
      .map((n) => [n.id, n.documentVersion, n.status, n.membershipQuorum, n.options.join('|')] as const)
      .sort((a, b) => (a[0] < b[0] ? -1 : 1));
    return JSON.stringify({ entries, clock: g.membershipUpdateTimeMicros });
  }

  /** All running hosts hold the same view. */
  converged(): boolean {
    const views = this.running().map((h) => this.view(h.name));
    return views.length > 0 && views.every((v) => v === views[0]);
  }

  /** Converged, and every running host is AVAILABLE and every stopped one is not, in that view. */
  healthy(): boolean {
    if (!this.converged()) return false;
    const g = this.running()[0]!.state.group;
    return this.hosts().every((h) => (g.nodes[h.id]?.status === 'AVAILABLE') === h.running);
  }

  // ---- internals ----

  private boot(h: SimHost, snapshot: MembershipSnapshot | undefined): void {
    h.incarnation += 1;
    h.running = true;
    h.random = mulberry32(((this.opts.seed ?? 1) * 7919 + h.index * 104729 + h.incarnation * 31) >>> 0);
    const peers = (h.spec.peerNodes ?? []).filter((p) => p !== h.name);
    const opts: MembershipOptions = {
      selfId: h.id,
      groupReference: this.reference(h.name),
      groupLink: this.groupLink,
      peerNodeCount: peers.length,
      maintenanceIntervalMicros: this.intervalMs * 1000,
    };
    if (h.spec.membershipQuorum !== undefined) opts.membershipQuorum = h.spec.membershipQuorum;
    if (h.spec.options) opts.options = h.spec.options;
    if (h.spec.config) opts.config = h.spec.config;
    h.state = createMembership(opts, this.nowMicros(h));
    if (snapshot) this.stepHost(h, { type: 'restored', snapshot: JSON.parse(JSON.stringify(snapshot)) as MembershipSnapshot });
    const inc = h.incarnation;
    const phase = (h.index * 37) % this.intervalMs;
    const tick = (): void => {
      if (h.incarnation !== inc) return;
      if (!h.paused) this.stepHost(h, { type: 'tick' });
      this.schedule(this.intervalMs, tick);
    };
    this.schedule(this.intervalMs + phase, tick);
    // `--peerNodes`: one interval after start, a JoinPeerRequest per listed peer (self included).
    this.schedule(this.intervalMs, () => {
      if (h.incarnation !== inc) return;
      for (const p of h.spec.peerNodes ?? []) this.join(h.name, p);
    });
  }

  private stepHost(h: SimHost, input: MembershipInput): MembershipEffect[] {
    const r = step(h.state, input, { nowMicros: this.nowMicros(h), random: h.random });
    h.state = r.state;
    for (const e of r.effects) {
      switch (e.type) {
        case 'send':
          this.send(h, e);
          break;
        case 'persist':
          h.snapshot = JSON.parse(JSON.stringify(e.snapshot)) as MembershipSnapshot;
          break;
        case 'changed':
          h.changes.push({ atMs: this.nowMs, changes: e.changes });
          break;
        case 'availability':
          h.availability.push({ atMs: this.nowMs, available: e.available });
          break;
        case 'log':
          h.logs.push(e.message);
          break;
        case 'reply':
          break;
      }
    }
    return r.effects;
  }

  private schedule(delayMs: number, run: () => void): void {
    const ev: Event = { at: this.nowMs + delayMs, seq: this.seq++, run };
    const q = this.queue;
    q.push(ev);
    for (let i = q.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (before(q[p]!, q[i]!)) break;
      [q[p], q[i]] = [q[i]!, q[p]!];
      i = p;
    }
  }

  private next(end: number): Event | undefined {
    const q = this.queue;
    if (q.length === 0 || q[0]!.at > end) return undefined;
    const top = q[0]!;
    const last = q.pop()!;
    if (q.length > 0) {
      q[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < q.length && before(q[l]!, q[m]!)) m = l;
        if (r < q.length && before(q[r]!, q[m]!)) m = r;
        if (m === i) break;
        [q[m], q[i]] = [q[i]!, q[m]!];
        i = m;
      }
    }
    this.nowMs = top.at;
    return top;
  }

  private byAddress(to: string): SimHost | undefined {
    let host: string;
    try {
      host = new URL(to).host;
    } catch {
      return undefined;
    }
    return this.hostsByName.get(host);
  }

  private partitioned(a: SimHost, b: SimHost): boolean {
    if (!this.sides) return false;
    const sa = this.sides.get(a.name);
    const sb = this.sides.get(b.name);
    return sa !== undefined && sb !== undefined && sa !== sb;
  }

  private send(from: SimHost, e: SendEffect): void {
    const inc = from.incarnation;
    const target = this.byAddress(e.to);
    const fail = (timedOut = false): void => {
      if (from.incarnation !== inc) return;
      if (e.purpose === 'gossip') this.stepHost(from, { type: 'gossipFailed', peerId: e.peerId, requestId: e.requestId, timedOut });
      else if (e.purpose === 'joinFetch') this.stepHost(from, { type: 'joinFailed', requestId: e.requestId });
      else if (e.purpose === 'quorumUpdate') this.quorumUpdates.push({ from: from.name, to: e.to, ok: false });
    };
    if (!target) {
      this.schedule(this.latencyMs, () => fail());
      return;
    }
    // The drop draw is made for every message so that changing partitions does not shift the PRNG.
    const dropped = this.rng() < this.dropRate;
    const timeout =
      this.opts.timeoutMs ?? ('timeoutMicros' in e ? e.timeoutMicros : from.state.group.config.peerRequestTimeoutMicros) / 1000;
    if (dropped || this.partitioned(from, target)) {
      this.schedule(timeout, () => fail(true));
      return;
    }
    const deadline = this.nowMs + timeout;
    // Once the sender's deadline passed it gave up: a late answer finds no one waiting.
    let settled = false;
    this.schedule(this.latencyMs, () => {
      if (!target.running) return this.schedule(this.latencyMs, () => fail());
      const answer = (input: MembershipInput): void => {
        this.schedule(this.latencyMs, () => {
          if (from.incarnation !== inc || settled) return;
          if (from.paused) return from.held.push({ deadline, timedOut: () => fail(true), answered: () => this.stepHost(from, input) });
          settled = true;
          this.stepHost(from, input);
        });
      };
      const deliver = (): void => {
        if (!settled && target.running) this.deliver(from, target, e, answer);
      };
      // A paused host takes the connection and answers only once it runs again.
      if (!target.paused) return deliver();
      target.inbox.push(deliver);
      this.schedule(deadline - this.nowMs, () => {
        if (settled) return;
        settled = true;
        fail(true);
      });
    });
  }

  /** The request `e` arrives at `target`: it steps, and its answer goes back through `answer`. */
  private deliver(from: SimHost, target: SimHost, e: SendEffect, answer: (input: MembershipInput) => void): void {
    const wire = <T>(v: T): unknown => JSON.parse(JSON.stringify(v));
    switch (e.purpose) {
      case 'gossip':
      case 'leave': {
        const effects = this.stepHost(target, { type: 'gossipReceived', body: parseNodeGroupState(wire(e.body), this.groupLink) });
        const reply = effects.find((x) => x.type === 'reply');
        if (reply?.type !== 'reply') throw new Error('gossipReceived gave no reply');
        if (e.purpose === 'leave') break;
        answer({
          type: 'gossipReplied',
          peerId: e.peerId,
          requestId: e.requestId,
          body: parseNodeGroupState(wire(reply.body), this.groupLink),
        });
        break;
      }
      case 'joinFetch':
        answer({ type: 'joinFetched', requestId: e.requestId, body: parseNodeGroupState(wire(target.state.group), this.groupLink) });
        break;
      case 'joinInsert':
        this.stepHost(target, { type: 'nodeStateReceived', node: parseNodeState(wire(e.body), this.groupLink) });
        break;
      case 'quorumUpdate':
        this.stepHost(target, { type: 'updateQuorum', request: parseUpdateQuorumRequest(wire(e.body)) });
        this.quorumUpdates.push({ from: from.name, to: e.to, ok: true });
        break;
    }
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
