/**
 * Node selection over a group's view (docs/xenon-compatibility.md, Node selectors): which member owns a key and which members
 * receive its replicas (SelectOwnerResponse), the selector's status, and the
 * NodeSelectorState a selector GET returns. Hashing is lib/hash.ts, bit-for-bit Xenon's.
 * Observers are never owners and never in `selectedNodes`, so they receive no replicas.
 */

import { KINDS, type JsonObject } from '../document.js';
import { KryptonError } from '../errors.js';
import { selectNodes } from '../hash.js';
import type { Link, Micros, NodeId } from '../ids.js';
import { groupHasQuorum, isEligibleOwner, localEntry } from './rules.js';
import type { NodeGroupState, NodeState } from './types.js';

export interface SelectOwnerResponse extends JsonObject {
  key: string;
  ownerNodeId: NodeId;
  ownerNodeGroupReference: string;
  isLocalHostOwner: boolean;
  availableNodeCount: number;
  selectedNodes: NodeState[];
  membershipUpdateTimeMicros: number;
}

/**
 * The owner of `key` alone, without building a SelectOwnerResponse: the per-request path of
 * routing, where cloning node states would cost more than the hashing.
 */
export function ownerOf(group: NodeGroupState, key: string, replicationFactor?: number): { id: NodeId; groupReference: string } {
  const nodes = group.nodes;
  const ids = Object.keys(nodes);
  if (ids.length === 1) return { id: ids[0]!, groupReference: nodes[ids[0]!]!.groupReference };
  const count = replicationFactor === undefined || replicationFactor <= 0 ? 1 : replicationFactor;
  const [id] = selectNodes(
    key,
    ids.map((i) => ({ id: i, eligible: isEligibleOwner(nodes[i]!) })),
    count,
  );
  if (id === undefined) {
    const q = localEntry(group)?.membershipQuorum ?? 1;
    throw new KryptonError('QUORUM_UNAVAILABLE', `Available nodes: 0, quorum: ${q}`);
  }
  return { id, groupReference: nodes[id]!.groupReference };
}

export type SelectorStatus = 'AVAILABLE' | 'UNAVAILABLE' | 'PAUSED';

/**
 * The owner of `key` and the `replicationFactor` closest eligible members (default 1, as Xenon's
 * selector without a factor: replicating to all is the replication layer's choice, not the
 * selector's). `group.documentOwner` is the local host. A one-entry map owns everything, as in
 * Xenon; a larger map with no eligible member is a QUORUM_UNAVAILABLE error.
 */
export function selectOwner(group: NodeGroupState, key: string, replicationFactor?: number): SelectOwnerResponse {
  const all = Object.values(group.nodes);
  const selectable = all.map((n) => ({ id: n.id, eligible: isEligibleOwner(n) }));
  const eligible = selectable.filter((n) => n.eligible).length;
  const count = replicationFactor === undefined || replicationFactor <= 0 ? 1 : replicationFactor;
  const ids = selectNodes(key, selectable, count);
  const ownerId = ids[0];
  if (ownerId === undefined) {
    const q = localEntry(group)?.membershipQuorum ?? 1;
    throw new KryptonError('QUORUM_UNAVAILABLE', `Available nodes: 0, quorum: ${q}`);
  }
  const owner = group.nodes[ownerId]!;
  return {
    key,
    ownerNodeId: ownerId,
    ownerNodeGroupReference: owner.groupReference,
    isLocalHostOwner: ownerId === group.documentOwner,
    availableNodeCount: all.length === 1 ? 1 : eligible,
    selectedNodes: ids.map((id) => structuredClone(group.nodes[id]!)),
    membershipUpdateTimeMicros: group.membershipUpdateTimeMicros,
  };
}

/**
 * AVAILABLE iff the group has its quorum, settled or not: what requests get, since they are parked
 * only without a quorum and otherwise served per link (availability.ts). Xenon also waits for the
 * membership to settle.
 */
export function selectorStatus(group: NodeGroupState): SelectorStatus {
  return groupHasQuorum(group) ? 'AVAILABLE' : 'UNAVAILABLE';
}

export interface NodeSelectorState extends JsonObject {
  nodeGroupLink: Link;
  replicationFactor?: number;
  replicationQuorum?: number;
  membershipQuorum: number;
  membershipUpdateTimeMicros: number;
  status: SelectorStatus;
  documentSelfLink: Link;
  documentKind: string;
  documentOwner: NodeId;
  documentUpdateTimeMicros: Micros;
}

export interface SelectorSpec {
  selectorLink: Link;
  replicationFactor?: number;
  replicationQuorum?: number;
  /**
   * Xenon's quirk: the selector's own membershipQuorum is only filled from
   * UpdateQuorumRequest notifications, 0 until one arrives.
   */
  notifiedMembershipQuorum?: number;
}

export function nodeSelectorState(spec: SelectorSpec, group: NodeGroupState): NodeSelectorState {
  const s: NodeSelectorState = {
    nodeGroupLink: group.documentSelfLink,
    membershipQuorum: spec.notifiedMembershipQuorum ?? 0,
    membershipUpdateTimeMicros: group.membershipUpdateTimeMicros,
    status: selectorStatus(group),
    documentSelfLink: spec.selectorLink,
    documentKind: KINDS.nodeSelectorState,
    documentOwner: group.documentOwner,
    documentUpdateTimeMicros: group.documentUpdateTimeMicros,
  };
  if (spec.replicationFactor !== undefined) s.replicationFactor = spec.replicationFactor;
  if (spec.replicationQuorum !== undefined) s.replicationQuorum = spec.replicationQuorum;
  return s;
}
