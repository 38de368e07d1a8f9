/**
 * Availability per link, not per group: which links an owner may serve at once after a membership
 * change, and which must wait for their takeover. Pure: the synchronization schedule
 * (lib/synch/schedule.ts linkPending) keeps the history this module reads, the server feeds it the
 * views of its group (server/synch/passes.ts) and the simulations theirs (test/support/).
 *
 * The rule. A host's trust in its copy of a link dates from a generation (a membership view) in
 * which it synchronized the link as its owner: a pass or an on-demand synchronization covered it,
 * or a settled pass covered every link it owned. From then on, as long as every view it has held
 * since names it the link's owner, with the same replica set (a selector with a replication
 * factor), it serves the link with no added wait, however the rest of the group changes: no other
 * host can have taken the link over without some host marking this one UNAVAILABLE, and that mark
 * reaches this host as a `disowned` view (its own entry overruled), which breaks its trust in
 * every link. A view in which this host did not see its group's quorum breaks it too: a host cut
 * off by a partition names itself the owner of everything while the majority takes its links
 * over, and it may hear the healed view before the mark that it was written off (failed before:
 * the torture run's partitioned host answered 404 for a document the majority created meanwhile).
 * Every other link (its owner moved here, its replica set changed, this host restarted,
 * or was written off by a peer) waits for its synchronization: the promise/prepare round of a
 * takeover when another owner may have written it, a plain reconciliation otherwise. Requests for
 * links that never moved therefore see no freeze when a host dies, stops, pauses or restarts;
 * only the links that moved wait, and only until their takeover completes.
 *
 * Why this keeps every guarantee: serving without a synchronization is only ever a question of
 * freshness, never of safety. An owner's write is acknowledged only by a quorum of its replicas,
 * and a replica refuses records below an epoch it promised to a new owner, so a write that a
 * takeover could overwrite never reaches its quorum (lib/synch/promise.ts), and no epoch is
 * granted twice. What the rule adds is that an owner that never lost its link, as far as any view
 * it held says, does not re-read its replicas before serving it.
 *
 * The history is bounded (limits.availabilityViewsMax): a host that sees more views than that
 * without completing a pass forgets the oldest, and links trusted since then wait again.
 */

import { selectNodes } from '../hash.js';
import type { Link, NodeId } from '../ids.js';
import { limits } from '../limits.js';

/** What a membership change tells the parts that act on it (the synchronization schedule). */
export interface MembershipChange {
  /** Members that may own links now (rules.ts isEligibleOwner). */
  eligible: NodeId[];
  /** A peer's copy of this host's own entry beat it (rules.ts MergeOutcome): it was written off meanwhile. */
  overruled: boolean;
  /**
   * This host sees its group's membership quorum AVAILABLE in this view. A view without it breaks
   * every link's trust: the others may have a quorum of their own and take links over while this
   * host, cut off or paused, has not yet heard that it was written off.
   */
  quorate: boolean;
}

/** One view a host held: from `generation` on, `eligible` may own links; undefined breaks every link's trust. */
export interface OwnerView {
  readonly generation: number;
  readonly eligible: readonly NodeId[] | undefined;
}

/** The views since the oldest generation a link's trust may date from, oldest first. */
export interface OwnershipHistory {
  readonly views: readonly OwnerView[];
}

export function emptyHistory(): OwnershipHistory {
  return { views: [] };
}

/** The history with `view` added, keeping at most `max` views. */
export function withView(h: OwnershipHistory, view: OwnerView, max: number = limits.availabilityViewsMax): OwnershipHistory {
  const views = [...h.views, view];
  return { views: views.length > max ? views.slice(views.length - max) : views };
}

/** The history without the views before `generation` (no link's trust dates from earlier any more). */
export function since(h: OwnershipHistory, generation: number): OwnershipHistory {
  const i = h.views.findIndex((v) => v.generation >= generation);
  return { views: i < 0 ? [] : h.views.slice(i) };
}

/** The members holding `link` in a view: the owner first, `factor` of them, or just the owner without one. */
export function holders(link: Link, eligible: readonly NodeId[], factor: number | undefined): NodeId[] {
  return selectNodes(
    link,
    eligible.map((id) => ({ id, eligible: true })),
    factor && factor > 0 ? factor : 1,
  );
}

/**
 * Whether `selfId` has owned `link` in every view since `from` (the generation its trust dates
 * from), with the same replica set under a replication `factor`. False when the view of `from` is
 * not in the history (never recorded, or forgotten) or a view since broke trust.
 */
export function ownedThroughout(h: OwnershipHistory, selfId: NodeId, link: Link, from: number, factor?: number): boolean {
  const start = h.views.findIndex((v) => v.generation === from);
  if (start < 0) return false;
  let first: string | undefined;
  for (let i = start; i < h.views.length; i++) {
    const v = h.views[i]!;
    if (v.eligible === undefined || v.eligible.length === 0) return false;
    const set = holders(link, v.eligible, factor);
    if (set[0] !== selfId) return false;
    if (factor) {
      const key = [...set].sort().join(',');
      if (first === undefined) first = key;
      else if (key !== first) return false;
    }
  }
  return true;
}
