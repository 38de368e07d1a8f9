/**
 * The synchronization decision for one link (Krypton's rules, not Xenon's): given the heads
 * (epoch, version) every reachable replica holds, which state is best, whether the new owner must
 * take over (a new epoch), and which replicas must receive the result. Pure.
 *
 * Best = highest epoch, then highest version, then (equal both) the copy most replicas hold, then
 * the owner's own copy. The owner
 * writes a new version when ownership moved (the best copy names another owner) or when the
 * replicas diverge (some copy has a version at least as high as the best's but is not the best,
 * or has the best's epoch and version but another owner):
 * the new state takes epoch max+1 (on an ownership move) and version max+1, so it sorts after
 * every copy anywhere and no replica's index can keep a stale "latest".
 */

import type { ServiceDocument } from '../document.js';
import type { Epoch, Link, NodeId, Version } from '../ids.js';

export interface Head {
  epoch: Epoch;
  version: Version;
  /** documentOwner of that copy. */
  owner: NodeId | undefined;
  deleted: boolean;
  /** The digest of that replica's retained history (lib/synch/history.ts), when it sent one. */
  history?: number;
}

/**
 * A head on the wire; `fence`, when present (not null), is an epoch the replica promised above the
 * copy it holds (lib/synch/promise.ts): records below it are refused there. `history` is the digest
 * of its retained versions (lib/synch/history.ts).
 */
export type HeadTuple = [link: Link, epoch: Epoch, version: Version, deleted: 0 | 1, owner: NodeId, fence?: Epoch | null, history?: number];

export function headOf(t: HeadTuple): Head {
  const h: Head = { epoch: t[1], version: t[2], deleted: t[3] === 1, owner: t[4] || undefined };
  if (typeof t[6] === 'number') h.history = t[6];
  return h;
}

/** The head of a stored copy. */
export function headOfDoc(doc: ServiceDocument): Head {
  return {
    epoch: doc.documentEpoch ?? 0,
    version: doc.documentVersion,
    deleted: doc.documentUpdateAction === 'DELETE',
    owner: doc.documentOwner,
  };
}

export function compareHeads(a: Head, b: Head): number {
  return a.epoch !== b.epoch ? a.epoch - b.epoch : a.version - b.version;
}

export interface SynchPlan {
  /** Replica holding the best copy (self when it is ours). */
  source: NodeId;
  best: Head;
  /** Set when the owner must write a new version: the epoch and version to stamp. */
  rewrite?: { epoch: Epoch; version: Version };
  /** Replicas (never self) whose copy differs from the result. */
  pushTo: NodeId[];
}

/**
 * `heads` maps every replica that answered (self included) to its head, or undefined when it holds
 * nothing. Returns null when nobody holds the link.
 */
export function planLink(selfId: NodeId, heads: ReadonlyMap<NodeId, Head | undefined>): SynchPlan | null {
  // How many replicas hold each distinct copy: an acknowledged write sits on a quorum, so of two
  // copies with the same (epoch, version) but different owners the more widely held one wins.
  const holders = new Map<string, number>();
  const key = (h: Head) => `${h.epoch}:${h.version}:${h.owner ?? ''}`;
  for (const h of heads.values()) if (h) holders.set(key(h), (holders.get(key(h)) ?? 0) + 1);
  let source: NodeId | undefined;
  let best: Head | undefined;
  for (const [node, h] of heads) {
    if (!h) continue;
    let c = best ? compareHeads(h, best) : 1;
    if (c === 0 && best) c = holders.get(key(h))! - holders.get(key(best))!;
    if (c > 0 || (c === 0 && node === selfId)) {
      best = h;
      source = node;
    }
  }
  if (!best || source === undefined) return null;
  let maxEpoch = best.epoch;
  let maxVersion = best.version;
  let diverged = false;
  for (const h of heads.values()) {
    if (!h) continue;
    maxEpoch = Math.max(maxEpoch, h.epoch);
    maxVersion = Math.max(maxVersion, h.version);
    // A copy at or past the best version that is not the best copy, or the same (epoch, version)
    // stamped by another owner (two owners wrote it, e.g. across a crash), may hold other content.
    if (h.version >= best.version && (compareHeads(h, best) !== 0 || h.owner !== best.owner)) diverged = true;
  }
  const moved = best.owner !== selfId;
  const rewrite = moved || diverged ? { epoch: moved ? maxEpoch + 1 : maxEpoch, version: maxVersion + 1 } : undefined;
  const result = rewrite ?? { epoch: best.epoch, version: best.version };
  const pushTo: NodeId[] = [];
  for (const [node, h] of heads) {
    if (node === selfId) continue;
    if (!h || h.epoch !== result.epoch || h.version !== result.version) pushTo.push(node);
  }
  return rewrite ? { source, best, rewrite, pushTo } : { source, best, pushTo };
}
