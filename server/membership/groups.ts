/**
 * Runs node groups: each group is the pure membership machine of lib/group fed with ticks (every
 * maintenance interval), HTTP requests and peer replies, whose effects this module carries out:
 * gossip and join requests through the peer client, snapshots written to the sandbox (snapshot-file.ts, so
 * membership and quorum survive a restart), and availability changes announced to listeners
 * (the selectors' parked requests: they run once the group has its quorum, settled or not, see
 * lib/group/availability.ts). Effects run in the order the machine emitted them. A probe
 * runs with the deadline the machine gave it; whether it timed out or failed otherwise is the
 * machine's to weigh. `leave` tells every peer this host is going, before it stops. Requests in
 * flight to a peer the group writes off are failed at once.
 */

import path from 'node:path';
import type { Logger } from 'pino';
import { KINDS } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Micros, NodeId } from '../../lib/ids.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import {
  createMembership,
  isAvailable,
  quorumFanOutFailed,
  step,
  type MembershipEffect,
  type MembershipInput,
  type MembershipState,
} from '../../lib/group/membership.js';
import type { MembershipChange } from '../../lib/group/availability.js';
import { eligibleOwners, groupHasQuorum } from '../../lib/group/rules.js';
import { groupServiceMismatch, refuseServiceMismatch } from '../../lib/service-fingerprint.js';
import {
  classifyGroupPatch,
  classifyGroupPost,
  DEFAULT_GROUP_LINK,
  groupReferenceOf,
  NODE_GROUPS_FACTORY_LINK,
  parseNodeGroupState,
  type NodeGroupState,
  type NodeOption,
  type NodeState,
  type NodeGroupConfig,
} from '../../lib/group/types.js';
import type { Clock } from '../base/clock.js';
import { isPeerTimeout, type PeerClient } from '../net/peers.js';
import { SnapshotFile } from './snapshot-file.js';
import { memberChanges, noteMemberChanges } from './member-changes.js';

export interface GroupDeps {
  selfId: NodeId;
  publicUri: string;
  dir: string;
  peers: PeerClient;
  clock: Clock;
  logger: Logger;
  /** Fingerprints of this host's user services (lib/service-fingerprint.ts): members must share them. */
  services?: Record<string, string>;
  /** Told how many member changes each step made (the host's metrics). */
  onMemberChanges?: (count: number) => void;
}

export class GroupRuntime {
  private state: MembershipState;
  private readonly listeners: ((available: boolean) => void)[] = [];
  private readonly servingListeners: ((serving: boolean) => void)[] = [];
  private readonly changeListeners: ((change: MembershipChange) => void)[] = [];
  private announcedServing = false;
  /**
   * Availability as last announced to listeners. Compared after every step rather than recomputed
   * before it, because availability also changes with time alone (the stability window running
   * out between two ticks), and that change must be announced too.
   */
  private announcedAvailable = false;
  private readonly snapshots: SnapshotFile;
  private stopped = false;
  private readonly joinFailures = new Map<string, string>();

  constructor(
    readonly link: string,
    private readonly d: GroupDeps,
    opts: { membershipQuorum?: number; peerNodeCount?: number; options?: NodeOption[]; config?: Partial<NodeGroupConfig> },
  ) {
    this.state = createMembership(
      {
        selfId: d.selfId,
        groupReference: groupReferenceOf(d.publicUri, link),
        groupLink: link,
        membershipQuorum: opts.membershipQuorum,
        peerNodeCount: opts.peerNodeCount,
        options: opts.options,
        config: opts.config,
        customProperties: link === DEFAULT_GROUP_LINK && d.services && Object.keys(d.services).length > 0 ? d.services : undefined,
        maintenanceIntervalMicros: limits.maintenanceIntervalMicros,
      },
      d.clock.nowMicros(),
    );
    const file = path.join(d.dir, 'node-groups', `${link.slice(NODE_GROUPS_FACTORY_LINK.length + 1)}.json`);
    this.snapshots = new SnapshotFile(file, d.logger, link);
    // A connection to a peer closed (a killed process's all do at once): probe it now, not next tick.
    d.peers.onDisconnect((origin) => {
      const n = Object.values(this.group.nodes).find((x) => x.id !== d.selfId && originOf(x.groupReference) === origin);
      if (n && !this.stopped) void this.feed({ type: 'suspected', peerId: n.id });
    });
  }

  get group(): NodeGroupState {
    return this.state.group;
  }

  isAvailable(now: Micros = this.d.clock.nowMicros()): boolean {
    return isAvailable(this.state, now);
  }

  /** Enough members AVAILABLE for the quorum, settled or not. */
  hasQuorum(): boolean {
    return groupHasQuorum(this.group);
  }

  onAvailability(cb: (available: boolean) => void): void {
    this.listeners.push(cb);
  }

  /** Called when hasQuorum() changes: owner-selected requests are served (per link) or parked. */
  onServing(cb: (serving: boolean) => void): void {
    this.servingListeners.push(cb);
  }

  /** Called after any membership change (join, status change, quorum, expiry). */
  onChanged(cb: (change: MembershipChange) => void): void {
    this.changeListeners.push(cb);
  }

  /** Loads the snapshot this group left in the sandbox, if any; a damaged one is logged and ignored. */
  async restore(): Promise<void> {
    try {
      const snapshot = await this.snapshots.read();
      if (!snapshot) return;
      await this.feed({ type: 'restored', snapshot });
      this.d.logger.info({ group: this.link, nodes: Object.keys(this.group.nodes).length }, 'membership restored from the sandbox');
    } catch (e) {
      this.d.logger.warn({ group: this.link, err: e }, 'membership snapshot unreadable; starting alone');
    }
  }

  tick(): Promise<unknown> {
    return this.feed({ type: 'tick' });
  }

  join(memberGroupReference: string, membershipQuorum?: number): Promise<unknown> {
    return this.feed({
      type: 'join',
      request: { kind: KINDS.joinPeerRequest, memberGroupReference, ...(membershipQuorum ? { membershipQuorum } : {}) },
    });
  }

  /**
   * Why this host cannot share the default group with `nodes` (their user services differ), or
   * undefined. Only a host's own entry speaks for its services: its copies of others may be from
   * before they restarted with other modules (a whole group upgraded at once would refuse itself).
   */
  private mismatch(nodes: readonly NodeState[]): string | undefined {
    return this.link === DEFAULT_GROUP_LINK ? groupServiceMismatch(this.d.services, this.d.selfId, nodes) : undefined;
  }

  async handlePost(raw: unknown): Promise<NodeGroupState> {
    const post = classifyGroupPost(raw, this.link);
    refuseServiceMismatch(post.type === 'join' ? undefined : this.mismatch([post.node]));
    return this.replyOf(
      await this.feed(post.type === 'join' ? { type: 'join', request: post.request } : { type: 'nodeStateReceived', node: post.node }),
    );
  }

  async handlePatch(raw: unknown): Promise<NodeGroupState> {
    const patch = classifyGroupPatch(raw, this.link);
    refuseServiceMismatch(patch.type === 'gossip' ? this.mismatch(ownEntry(patch.state)) : undefined);
    if (patch.type === 'gossip') return this.replyOf(await this.feed({ type: 'gossipReceived', body: patch.state }));
    if (patch.type === 'config') return this.replyOf(await this.feed({ type: 'configPatched', config: patch.config }));
    const effects = await this.feed({ type: 'updateQuorum', request: patch.request }, 'quorumUpdate');
    const failures = effects.filter((e) => e.type === 'quorumFailure').length;
    const sent = effects.filter((e) => e.type === 'send' && e.purpose === 'quorumUpdate').length;
    if (quorumFanOutFailed(sent, failures)) throw new KryptonError('QUORUM_UNAVAILABLE', 'Majority of nodes failed request');
    return this.replyOf(effects);
  }

  /**
   * Tells every peer this host is leaving (its entry UNAVAILABLE), waiting for their answers up to
   * the leave deadline, so they stop routing to it before it closes.
   */
  async leave(): Promise<void> {
    if (this.stopped) return;
    await this.feed({ type: 'leave' }, 'leave');
  }

  stop(): Promise<void> | undefined {
    this.stopped = true;
    return this.snapshots.flushed();
  }

  private replyOf(effects: RunEffect[]): NodeGroupState {
    const reply = effects.find((e) => e.type === 'reply');
    return reply && reply.type === 'reply' ? reply.body : this.group;
  }

  /**
   * Steps the machine and carries out its effects. Replies to gossip and joins come back as
   * further inputs; the sends of purpose `awaited` are waited for: quorum PATCHes so the caller
   * can count failures (Xenon answers 500 when a majority failed), leave notices so the host
   * closes only once its peers know.
   */
  private async feed(input: MembershipInput, awaited?: 'quorumUpdate' | 'leave'): Promise<RunEffect[]> {
    const before = this.state.group.nodes;
    const { state, effects } = step(this.state, input, { nowMicros: this.d.clock.nowMicros(), random: Math.random });
    this.state = state;
    noteMemberChanges(this.d, this.link, memberChanges(before, state.group.nodes), input.type);
    this.abandonWrittenOff(before);
    const out: RunEffect[] = [...effects];
    const waits: Promise<void>[] = [];
    for (const e of effects) {
      const w = this.run(e, out);
      if (w && e.type === 'send' && e.purpose === awaited) waits.push(w);
    }
    await Promise.all(waits);
    const nowAvailable = this.isAvailable();
    if (nowAvailable !== this.announcedAvailable) {
      this.announcedAvailable = nowAvailable;
      for (const l of this.listeners) l(nowAvailable);
    }
    const nowServing = this.hasQuorum();
    if (nowServing !== this.announcedServing) {
      this.announcedServing = nowServing;
      for (const l of this.servingListeners) l(nowServing);
    }
    return out;
  }

  private run(e: MembershipEffect, out: RunEffect[]): Promise<void> | undefined {
    const timeoutMs = Math.max(limits.groupRequestTimeoutMinMs, msFromMicros(this.group.config.peerRequestTimeoutMicros));
    switch (e.type) {
      case 'send':
        if (this.stopped) return undefined;
        switch (e.purpose) {
          case 'gossip':
            return this.d.peers.json(e.to, { method: 'PATCH', body: e.body, timeoutMs: msFromMicros(e.timeoutMicros) }).then(
              (r) =>
                this.answer(r, (body) => ({ type: 'gossipReplied', peerId: e.peerId, requestId: e.requestId, body }), {
                  type: 'gossipFailed',
                  peerId: e.peerId,
                  requestId: e.requestId,
                }),
              (err) =>
                void this.feed({
                  type: 'gossipFailed',
                  peerId: e.peerId,
                  requestId: e.requestId,
                  timedOut: isPeerTimeout(err),
                }),
            );
          case 'leave':
            // Whatever the peer answers, or if it does not, the host goes on stopping.
            return this.d.peers.json(e.to, { method: 'PATCH', body: e.body, timeoutMs: msFromMicros(e.timeoutMicros) }).then(
              () => undefined,
              (err) => this.d.logger.info({ group: this.link, to: e.to, err: String(err) }, 'peer not told of the leave'),
            );
          case 'joinFetch':
            return this.d.peers.json(e.to, { method: 'GET', timeoutMs }).then(
              (r) => this.answer(r, (body) => this.joinFetched(e.to, e.requestId, body), { type: 'joinFailed', requestId: e.requestId }),
              (err) => {
                this.warnJoinFailure(e.to, String(err));
                void this.feed({ type: 'joinFailed', requestId: e.requestId });
              },
            );
          case 'joinInsert':
            return this.d.peers.json(e.to, { method: 'POST', body: e.body, timeoutMs }).then(
              () => undefined,
              (err) => this.d.logger.warn({ group: this.link, to: e.to, err: String(err) }, 'could not insert self into peer group'),
            );
          case 'quorumUpdate':
            return this.d.peers.json(e.to, { method: 'PATCH', body: e.body, timeoutMs }).then(
              (r) => void (r.status >= 400 && out.push({ type: 'quorumFailure' })),
              () => void out.push({ type: 'quorumFailure' }),
            );
        }
        return undefined;
      case 'persist':
        this.snapshots.write(e.snapshot);
        return undefined;
      case 'log':
        this.d.logger.info({ group: this.link }, e.message);
        return undefined;
      case 'changed':
        this.d.logger.info({ group: this.link, changes: e.changes }, 'node group changed');
        // A host's own leave is no change its parts should act on: a synchronization pass it
        // started would take links over (and log new epochs) on a host that is going away.
        if (!this.state.leaving)
          for (const l of this.changeListeners)
            l({ eligible: eligibleOwners(this.group), overruled: e.overruled, quorate: this.hasQuorum() });
        return undefined;
      case 'availability':
        this.d.logger.info({ group: this.link, available: e.available }, e.available ? 'node group available' : 'node group unavailable');
        return undefined;
      case 'reply':
        return undefined;
    }
  }

  /**
   * Requests in flight to a peer just marked UNAVAILABLE (a hung host's replication batch, a
   * synchronization fetch, a forward) fail now rather than at their own deadlines, up to 20 s
   * away: the writes and synchronizations waiting on them go on with the members that are left.
   */
  private abandonWrittenOff(before: Readonly<Record<NodeId, NodeState>>): void {
    for (const n of Object.values(this.state.group.nodes)) {
      if (n.id === this.d.selfId || n.status !== 'UNAVAILABLE' || before[n.id]?.status === 'UNAVAILABLE') continue;
      const origin = originOf(n.groupReference);
      if (origin) this.d.peers.abandon(origin);
    }
  }

  /**
   * Joins are retried every maintenance round; the reason they fail (an untrusted certificate, a
   * refused connection) is logged when it first appears or changes, not every second.
   */
  /** A joined group's state, unless its members' services differ from this host's: then the join fails, and says why. */
  private joinFetched(to: string, requestId: number, body: NodeGroupState): MembershipInput {
    const why = this.mismatch(ownEntry(body));
    if (!why) return { type: 'joinFetched', requestId, body };
    this.warnJoinFailure(to, `the group's services differ from this host's: ${why}`, 'error');
    return { type: 'joinFailed', requestId };
  }

  private warnJoinFailure(to: string, reason: string, level: 'warn' | 'error' = 'warn'): void {
    if (this.joinFailures.get(to) === reason) return;
    this.joinFailures.set(to, reason);
    this.d.logger[level]({ group: this.link, to, reason }, `cannot join through ${to}: ${reason}`);
  }

  private answer(r: { status: number; body: unknown }, ok: (body: NodeGroupState) => MembershipInput, failed: MembershipInput): void {
    let input = failed;
    if (r.status < 300) {
      try {
        input = ok(parseNodeGroupState(r.body, this.link));
      } catch {
        input = failed;
      }
    }
    void this.feed(input);
  }
}

type RunEffect = MembershipEffect | { type: 'quorumFailure' };

/** The entry a group state's sender holds for itself. */
function ownEntry(g: NodeGroupState): NodeState[] {
  const n = g.nodes[g.documentOwner];
  return n ? [n] : [];
}

/** A group reference's origin; undefined when it is no URL (it has no connections either). */
const originOf = (ref: string) => (URL.canParse(ref) ? new URL(ref).origin : undefined);
