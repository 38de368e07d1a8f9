/**
 * The persisted form of one host's membership in one group: what a `persist` effect carries, what
 * the runtime writes to the sandbox, and the validation of what it reads back. How a snapshot is
 * brought back to life (peers unconfirmed, own entry raised) is the `restored` input in
 * membership.ts.
 */

import { KryptonError } from '../errors.js';
import type { Link, NodeId } from '../ids.js';
import { parseNodeGroupState, type NodeGroupConfig, type NodeGroupState, type NodeState } from './types.js';

export interface MembershipSnapshot {
  format: 1;
  selfId: NodeId;
  groupLink: Link;
  config: NodeGroupConfig;
  nodes: Record<NodeId, NodeState>;
  membershipUpdateTimeMicros: number;
  documentVersion: number;
}

export function snapshotOf(group: NodeGroupState, selfId: NodeId): MembershipSnapshot {
  return {
    format: 1,
    selfId,
    groupLink: group.documentSelfLink,
    config: { ...group.config },
    nodes: structuredClone(group.nodes),
    membershipUpdateTimeMicros: group.membershipUpdateTimeMicros,
    documentVersion: group.documentVersion,
  };
}

/**
 * A snapshot read back from the sandbox. The file is ours but may be damaged or from an older
 * build; anything malformed is INVALID_BODY and the host should start without it.
 */
export function parseMembershipSnapshot(raw: unknown): MembershipSnapshot {
  const o = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  if (o.format !== 1) throw new KryptonError('INVALID_BODY', 'membership snapshot: unknown format');
  if (typeof o.selfId !== 'string' || typeof o.groupLink !== 'string')
    throw new KryptonError('INVALID_BODY', 'membership snapshot: selfId and groupLink are required');
  const g = parseNodeGroupState(
    {
      documentOwner: o.selfId,
      nodes: o.nodes,
      config: o.config,
      membershipUpdateTimeMicros: o.membershipUpdateTimeMicros,
      documentVersion: o.documentVersion,
    },
    o.groupLink,
  );
  return {
    format: 1,
    selfId: o.selfId,
    groupLink: o.groupLink,
    config: g.config,
    nodes: g.nodes,
    membershipUpdateTimeMicros: g.membershipUpdateTimeMicros,
    documentVersion: g.documentVersion,
  };
}
