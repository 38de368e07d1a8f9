/**
 * The rules every host applies to a node group, independent of who runs them: the total order
 * that decides which copy of an entry wins a merge, the merge of a peer's entries into ours, and
 * the queries over a NodeGroupState (quorum, stability, availability, eligible owners).
 *
 * Krypton's merge rule (Xenon's, minus the wall clocks). Every entry is a register ordered by
 *   (documentVersion, status rank, canonical content)
 * and a merge keeps the greater copy. That order is total and never looks at a time, so merging
 * is commutative, associative and idempotent: hosts that have seen the same copies hold the same
 * entry whatever their clocks say or the order the copies arrived in. Who may write what:
 *  - only the host an entry describes raises its version for AVAILABLE, SYNCHRONIZING, quorum or
 *    option changes (it alone writes its own entry);
 *  - any host may raise a peer's version by one to mark it UNAVAILABLE (a failed probe) or
 *    REPLACED (another id answers at its address);
 *  - when a copy of our own entry would beat ours (a peer marked us UNAVAILABLE, or we restarted
 *    from an older snapshot), we take its version + 1 and keep our content (SELF_CHANGE), so the
 *    next gossip round carries our word above any observer's.
 * Status rank breaks ties between equal versions: UNKNOWN < AVAILABLE < SYNCHRONIZING <
 * UNAVAILABLE < REPLACED. A stale "alive" can therefore never hide a "dead" written at the same
 * version, and UNKNOWN (what a restored host believes of peers it has not heard from yet) loses to
 * anything a live host reports. The owner of an entry always recovers it by the SELF_CHANGE bump.
 *
 * `membershipUpdateTimeMicros` is a logical membership clock: max-merged on every gossip and
 * raised by one in a step that originates a change (a local write: own entry, failed probe,
 * replacement, expiry). Adopting a peer's change only max-merges it. Once gossip has spread every
 * change, every host holds the same value, which is what convergence checks compare; it never
 * decreases, so "newer membership" comparisons still work. It is never a wall-clock time.
 */

import { KINDS } from '../document.js';
import type { Link, Micros, NodeId } from '../ids.js';
import {
  GROUP_DEFAULTS,
  normalizeGroupReference,
  type NodeGroupChange,
  type NodeGroupConfig,
  type NodeGroupState,
  type NodeState,
  type NodeStatus,
} from './types.js';

export const STATUS_RANK: Readonly<Record<NodeStatus, number>> = {
  UNKNOWN: 0,
  AVAILABLE: 1,
  SYNCHRONIZING: 2,
  UNAVAILABLE: 3,
  REPLACED: 4,
};

/** The fields a merge is about; times and selfLink are bookkeeping and never decide anything. */
export function entryContentKey(n: NodeState): string {
  const props = n.customProperties ? Object.entries(n.customProperties).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : [];
  return JSON.stringify([
    n.status,
    [...n.options].sort(),
    n.membershipQuorum,
    n.locationQuorum,
    normalizeGroupReference(n.groupReference),
    props,
  ]);
}

export function sameContent(a: NodeState, b: NodeState): boolean {
  return entryContentKey(a) === entryContentKey(b);
}

/** > 0 when `a` wins over `b`, 0 when they are the same copy. */
export function compareEntries(a: NodeState, b: NodeState): number {
  if (a.documentVersion !== b.documentVersion) return a.documentVersion - b.documentVersion;
  const r = STATUS_RANK[a.status] - STATUS_RANK[b.status];
  if (r !== 0) return r;
  const ka = entryContentKey(a);
  const kb = entryContentKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export function isPeer(n: NodeState): boolean {
  return !n.options.includes('OBSERVER');
}

/** May own documents and receive replicas: a PEER that is not known to be gone or unconfirmed. */
export function isEligibleOwner(n: NodeState): boolean {
  return isPeer(n) && n.status !== 'UNAVAILABLE' && n.status !== 'REPLACED' && n.status !== 'UNKNOWN';
}

/** The ids of the members that may own links now. */
export function eligibleOwners(group: NodeGroupState): NodeId[] {
  return Object.values(group.nodes)
    .filter(isEligibleOwner)
    .map((n) => n.id);
}

/** What one merge did: the Xenon change names, and whether the stored map changed at all. */
export interface MergeOutcome {
  changes: Set<NodeGroupChange>;
  /** Something a stability window cares about changed (status, quorum, options, added, removed). */
  contentChanged: boolean;
  /** Any stored byte changed, version-only adoptions included (worth persisting). */
  touched: boolean;
  /** Our own entry was raised (a local write that must be gossiped). */
  selfBumped: boolean;
  /**
   * A peer's copy of our own entry beat ours with other content: someone wrote us off (marked us
   * UNAVAILABLE), or we restarted from an older snapshot. Others may have taken our links over.
   */
  overruled: boolean;
}

export function emptyOutcome(): MergeOutcome {
  return { changes: new Set(), contentChanged: false, touched: false, selfBumped: false, overruled: false };
}

export interface MergeContext {
  selfId: NodeId;
  /** Our own group reference, normalized. */
  selfReference: string;
  groupLink: Link;
  nowMicros: Micros;
  config: NodeGroupConfig;
}

function expirationFor(status: NodeStatus, previous: NodeState | undefined, ctx: MergeContext): Micros {
  if (status !== 'UNAVAILABLE' && status !== 'REPLACED') return 0;
  // The deadline is counted on our own clock from when we first saw the entry gone.
  if (previous && previous.status === status && previous.documentExpirationTimeMicros > 0) return previous.documentExpirationTimeMicros;
  return ctx.nowMicros + ctx.config.nodeRemovalDelayMicros;
}

/** A stored copy of a remote entry: our link and kind, our expiration clock. */
export function localCopy(r: NodeState, previous: NodeState | undefined, ctx: MergeContext): NodeState {
  const n: NodeState = {
    ...r,
    options: [...r.options],
    documentKind: KINDS.nodeState,
    documentSelfLink: `${ctx.groupLink}/${r.id}`,
    documentExpirationTimeMicros: expirationFor(r.status, previous, ctx),
  };
  if (r.customProperties) n.customProperties = { ...r.customProperties };
  return n;
}

/** Apply the self rule for a remote copy of our own entry. Mutates `nodes`. */
export function mergeSelf(nodes: Record<NodeId, NodeState>, remote: NodeState, ctx: MergeContext, out: MergeOutcome): void {
  const own = nodes[ctx.selfId];
  if (!own || compareEntries(remote, own) <= 0) return;
  if (sameContent(remote, own)) {
    own.documentVersion = remote.documentVersion;
  } else {
    own.documentVersion = remote.documentVersion + 1;
    own.documentUpdateTimeMicros = ctx.nowMicros;
    out.changes.add('SELF_CHANGE');
    out.selfBumped = true;
    out.overruled = true;
    out.contentChanged = true;
  }
  out.touched = true;
}

/**
 * Merge one remote entry into `nodes` (mutated). `insert` is the NodeState POST path, which adds an
 * unknown entry whatever its status; gossip only adds entries that claim to be alive.
 */
export function mergeEntry(nodes: Record<NodeId, NodeState>, r: NodeState, ctx: MergeContext, out: MergeOutcome, insert = false): void {
  if (r.id === ctx.selfId) {
    mergeSelf(nodes, r, ctx, out);
    return;
  }
  const l = nodes[r.id];
  if (!l) {
    const gone = r.status === 'UNAVAILABLE' || r.status === 'REPLACED' || r.status === 'UNKNOWN';
    if ((gone && !insert) || r.status === 'REPLACED') return;
    // Another id at our own address is an older incarnation of us; never re-learn it.
    if (normalizeGroupReference(r.groupReference) === ctx.selfReference) return;
    if (Object.keys(nodes).length >= GROUP_DEFAULTS.groupNodesMax) return;
    nodes[r.id] = localCopy(r, undefined, ctx);
    out.changes.add('PEER_ADDED');
    out.contentChanged = out.touched = true;
    return;
  }
  if (compareEntries(r, l) <= 0) return;
  const statusChanged = r.status !== l.status;
  const quorumChanged = r.membershipQuorum !== l.membershipQuorum || r.locationQuorum !== l.locationQuorum;
  const content = !sameContent(r, l);
  nodes[r.id] = localCopy(r, l, ctx);
  out.touched = true;
  if (!content) return;
  out.contentChanged = true;
  if (statusChanged) {
    out.changes.add('PEER_STATUS_CHANGE');
    if (r.status === 'UNAVAILABLE') out.changes.add('PEER_UNAVAILABLE');
  }
  if (quorumChanged) out.changes.add('QUORUM_CHANGED');
  if (!statusChanged && !quorumChanged) out.changes.add('PEER_STATUS_CHANGE');
}

/** Merge every entry of a peer's group into `nodes` (mutated). Absent entries say nothing. */
export function mergeGroup(nodes: Record<NodeId, NodeState>, remote: NodeGroupState, ctx: MergeContext): MergeOutcome {
  const out = emptyOutcome();
  for (const r of Object.values(remote.nodes)) mergeEntry(nodes, r, ctx, out);
  return out;
}

/**
 * A peer written off by this host: UNAVAILABLE (a failed probe) or REPLACED (someone else answers
 * at its address). Only on the transition, one version above what we hold.
 */
export function markPeer(
  nodes: Record<NodeId, NodeState>,
  id: NodeId,
  status: 'UNAVAILABLE' | 'REPLACED',
  ctx: MergeContext,
  out: MergeOutcome,
): void {
  const n = nodes[id];
  if (!n || id === ctx.selfId || n.status === status || n.status === 'REPLACED') return;
  nodes[id] = {
    ...n,
    status,
    documentVersion: n.documentVersion + 1,
    documentUpdateTimeMicros: ctx.nowMicros,
    documentExpirationTimeMicros: ctx.nowMicros + ctx.config.nodeRemovalDelayMicros,
  };
  out.changes.add('PEER_STATUS_CHANGE');
  if (status === 'UNAVAILABLE') out.changes.add('PEER_UNAVAILABLE');
  out.contentChanged = out.touched = true;
}

/** Drop entries whose removal deadline (our clock) has passed. */
export function expireEntries(nodes: Record<NodeId, NodeState>, ctx: MergeContext, out: MergeOutcome): NodeId[] {
  const removed: NodeId[] = [];
  for (const n of Object.values(nodes)) {
    if (n.id === ctx.selfId) continue;
    if (
      (n.status === 'UNAVAILABLE' || n.status === 'REPLACED') &&
      n.documentExpirationTimeMicros > 0 &&
      n.documentExpirationTimeMicros <= ctx.nowMicros
    ) {
      delete nodes[n.id];
      removed.push(n.id);
    }
  }
  if (removed.length > 0) {
    out.changes.add('PEER_EXPIRED');
    out.contentChanged = out.touched = true;
  }
  return removed;
}

// ---- queries over a NodeGroupState (documentOwner is the local host) ----

export function localEntry(group: NodeGroupState): NodeState | undefined {
  return group.nodes[group.documentOwner];
}

/** AVAILABLE entries, self and observers included, as Xenon counts them; a one-entry map counts as one. */
export function availableCount(group: NodeGroupState): number {
  const all = Object.values(group.nodes);
  if (all.length === 1) return 1;
  return all.filter((n) => n.status === 'AVAILABLE').length;
}

export function groupHasQuorum(group: NodeGroupState): boolean {
  const self = localEntry(group);
  return availableCount(group) >= (self?.membershipQuorum ?? 1);
}

/**
 * The stability window: settled once `stableGroupMaintenanceIntervalCount` maintenance intervals
 * have passed (local clock) since the last local change. A lone node with quorum 1 is settled.
 */
export function isGroupSettled(group: NodeGroupState, nowMicros: Micros, maintenanceIntervalMicros: Micros): boolean {
  const self = localEntry(group);
  if (Object.keys(group.nodes).length === 1 && (self?.membershipQuorum ?? 1) <= 1) return true;
  const window = group.config.stableGroupMaintenanceIntervalCount * maintenanceIntervalMicros;
  return nowMicros >= group.localMembershipUpdateTimeMicros + window;
}

/** Settled and with quorum: whether owner-selected requests may run (else they are parked). */
export function isGroupAvailable(group: NodeGroupState, nowMicros: Micros, maintenanceIntervalMicros: Micros): boolean {
  return isGroupSettled(group, nowMicros, maintenanceIntervalMicros) && groupHasQuorum(group);
}
