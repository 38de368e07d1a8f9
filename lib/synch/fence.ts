/**
 * The owner's side of fencing (the replica's side is promise.ts decideRecord): when an owner must
 * synchronize a link before it acts on it, the epoch a creation of a link nobody holds takes, and
 * which of its own writes it refuses before logging them. An owner writes only in an epoch it won:
 * while it is bound by a promise to a later epoch than the one it holds, or its latest copy was
 * stamped by another owner, it takes the link over first (a write in that other owner's epoch
 * could carry the same version as one that owner writes, with other content). Pure: the server
 * (server/synch/fencing.ts) and the simulations (test/support/sim-replication.ts) feed it.
 */

import type { Epoch, NodeId } from '../ids.js';
import type { Promised } from './promise.js';

/** What an owner knows of one link when it decides. */
export interface OwnerLink {
  selfId: NodeId;
  /** This host's latest copy of the link (its epoch and documentOwner), undefined when it holds none. */
  held: { epoch: Epoch; owner: NodeId | undefined } | undefined;
  /** The unspent promise this host holds for the link as a replica (lib/synch/promise.ts). */
  promised: Promised | undefined;
  /** Other replicas to synchronize with (server: synchronization enabled and a peer to ask). */
  peers: boolean;
}

/** A promise outstanding, unless it is this host's own for a link nobody holds (a creation spends it). */
export function promisePending(l: OwnerLink): boolean {
  return l.promised !== undefined && (l.promised.by !== l.selfId || l.held !== undefined);
}

/** The epoch this host prepared for a link nobody holds (its own promise): a creation is stamped with it. */
export function preparedEpoch(l: OwnerLink): Epoch | undefined {
  return l.promised?.by === l.selfId && l.held === undefined ? l.promised.epoch : undefined;
}

/** The latest copy was stamped by another owner: this host never won its epoch. */
export function stampedElsewhere(l: OwnerLink): boolean {
  return l.held !== undefined && l.held.owner !== l.selfId;
}

/**
 * Whether the owner synchronizes the link before acting on it: `scheduled` when the schedule says
 * so (not covered since the membership changed, or a write of it refused for its epoch:
 * schedule.ts linkPending), or a promise outstanding, or a copy stamped elsewhere; never without a
 * peer to synchronize with.
 */
export function mustSynch(l: OwnerLink, scheduled: boolean): boolean {
  return (scheduled || promisePending(l) || stampedElsewhere(l)) && l.peers;
}

export type OwnerWriteRefusal =
  /** This host promised `fence` for the link, above the write's epoch: a takeover would overwrite it. */
  | { reason: 'promised'; fence: Epoch }
  /** The write would extend `epoch`, which `owner` won: another host may write the same version in it. */
  | { reason: 'foreign'; epoch: Epoch; owner: NodeId | undefined };

/**
 * Whether the owner refuses its own write at `epoch`, planned on `l.held`, before logging it. The
 * caller answers 409 and synchronizes the link again before the next write (schedule.ts staleEpoch).
 */
export function refuseOwnerWrite(l: OwnerLink, epoch: Epoch): OwnerWriteRefusal | undefined {
  if (l.promised && epoch < l.promised.epoch) return { reason: 'promised', fence: l.promised.epoch };
  if (l.held && stampedElsewhere(l) && l.peers && epoch === l.held.epoch) return { reason: 'foreign', epoch, owner: l.held.owner };
  return undefined;
}
