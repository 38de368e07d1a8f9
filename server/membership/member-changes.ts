/**
 * What changed in a group's member list between two steps of its machine (a member joined,
 * changed status, or left the list), so the host logs each change once, with the input that
 * caused it, and counts it for GET /metrics. Gossip that changes nothing is not a change.
 */

import type { Logger } from 'pino';
import type { NodeId } from '../../lib/ids.js';
import type { NodeState } from '../../lib/group/types.js';

export interface MemberChange {
  id: NodeId;
  /** Status before; absent for a member new to the list. */
  from?: string;
  /** Status after; absent for a member gone from the list. */
  to?: string;
}

export function memberChanges(before: Readonly<Record<NodeId, NodeState>>, after: Readonly<Record<NodeId, NodeState>>): MemberChange[] {
  if (before === after) return [];
  const out: MemberChange[] = [];
  for (const [id, n] of Object.entries(after)) {
    const old = before[id];
    if (old === undefined) out.push({ id, to: n.status });
    else if (old.status !== n.status) out.push({ id, from: old.status, to: n.status });
  }
  for (const id of Object.keys(before)) if (after[id] === undefined) out.push({ id, from: before[id]!.status });
  return out;
}

/** One info line per change: who, from what to what, and the input (`cause`) that made it. */
export function logMemberChanges(logger: Logger, group: string, changes: readonly MemberChange[], cause: string): void {
  for (const c of changes) {
    const what = c.from === undefined ? `joined as ${c.to}` : c.to === undefined ? `left (was ${c.from})` : `${c.from} -> ${c.to}`;
    logger.info({ group, member: c.id, from: c.from, to: c.to, cause }, `membership: ${c.id} ${what}`);
  }
}

/** Logs each change once and tells the counter how many there were. */
export function noteMemberChanges(
  d: { logger: Logger; onMemberChanges?: (count: number) => void },
  group: string,
  changes: readonly MemberChange[],
  cause: string,
): void {
  if (changes.length === 0) return;
  logMemberChanges(d.logger, group, changes, cause);
  d.onMemberChanges?.(changes.length);
}
