/**
 * Quorum accounting for one replicated update (docs/xenon-compatibility.md, Replication and quorum): how many successes the owner needs
 * before it answers the client, and when enough failures make that impossible. The owner's own
 * durable append counts as one success. Pure: the server feeds it replies.
 */

import type { Link } from '../ids.js';

export interface ThresholdInput {
  /** Replica set size, the owner included (unavailable members not yet removed count too). */
  eligible: number;
  /** The owner's membership quorum. */
  membershipQuorum: number;
  /** `x-xenon-rpl-quorum`: a number or 'all'. */
  requested?: number | 'all';
  /** The selector's replicationQuorum, if configured (not applied to DELETE, as in Xenon). */
  replicationQuorum?: number;
  action: string;
}

/** Successes needed; throws a message for a requested quorum above the member count. */
export function successThreshold(i: ThresholdInput): number {
  if (i.requested === 'all') return i.eligible;
  if (typeof i.requested === 'number') {
    if (i.requested > i.eligible) throw new RangeError(`Requested quorum ${i.requested} is larger than member count ${i.eligible}`);
    return Math.max(1, i.requested);
  }
  if (i.replicationQuorum !== undefined && i.action !== 'DELETE') return Math.min(i.eligible, i.replicationQuorum);
  return Math.max(1, Math.min(i.eligible, i.membershipQuorum));
}

export type QuorumOutcome = 'pending' | 'succeeded' | 'failed';

export class QuorumTracker {
  private successes = 0;
  private failures = 0;
  private lastFailureStatus = 500;
  readonly failureThreshold: number;

  constructor(
    readonly eligible: number,
    readonly threshold: number,
  ) {
    this.failureThreshold = eligible - threshold + 1;
  }

  success(): QuorumOutcome {
    this.successes++;
    return this.outcome;
  }

  failure(status = 500): QuorumOutcome {
    this.failures++;
    this.lastFailureStatus = status;
    return this.outcome;
  }

  get outcome(): QuorumOutcome {
    if (this.successes >= this.threshold) return 'succeeded';
    if (this.failures >= this.failureThreshold) return 'failed';
    return 'pending';
  }

  get status(): number {
    return this.lastFailureStatus;
  }

  /** Xenon's failure message, spacing included. */
  message(action: string, link: Link, opId: string): string {
    return `(Original id: ${opId}) ${action} to ${link} failed. Success: ${this.successes},  Fail: ${this.failures}, quorum: ${this.threshold}, failure threshold: ${this.failureThreshold}`;
  }
}

/** Where one client write stands once its failures would otherwise fail it (Replicator.start). */
export interface ShortInput {
  /** Successes, the owner's own durable append included once it is done. */
  successes: number;
  /** Answers still outstanding (the owner's own append among them until it is done). */
  pending: number;
  /** Replicas that did not answer (a network failure) and that the view still counts as reachable. */
  retryable: number;
  /** Successes needed now: the membership quorum may have changed since the write started. */
  threshold: number;
  /** The group has its quorum of AVAILABLE members. */
  groupHasQuorum: boolean;
  deadlinePassed: boolean;
}

export type ShortDecision =
  | 'succeed'
  /** Answers may still make the quorum: wait for them. */
  | 'wait'
  /** Send the record again to the replicas that did not answer (a copy they hold is acknowledged again). */
  | 'retry'
  | 'fail';

/**
 * A replica that fails mid-write because it died or hung, before membership noticed, does not fail
 * a write that can still reach its quorum: the owner sends it the record again until it answers
 * or the view writes it off, and then counts what is left. Without the group's quorum (fewer
 * AVAILABLE members than the membership quorum) the write waits, as a new request would be parked,
 * for members to come back or the quorum to be lowered; it fails with Xenon's message only once
 * the quorum truly cannot be met with the members left, or at the operation deadline. Refusals
 * (a later epoch promised, a bad record) are never retried: they count as failures for good.
 */
export function shortQuorum(i: ShortInput): ShortDecision {
  if (i.successes >= i.threshold) return 'succeed';
  if (i.deadlinePassed) return 'fail';
  if (i.successes + i.pending + i.retryable >= i.threshold) return i.retryable > 0 && i.pending === 0 ? 'retry' : 'wait';
  return i.groupHasQuorum ? 'fail' : 'wait';
}

/**
 * The tracker of one record shipped to a replica set: its unreachable members count as failures at
 * once. With `beforeCommit` (a takeover, which the owner appends only once a quorum holds it) the
 * owner's own success is not counted here: the tracker needs one success fewer, from one replica fewer.
 */
export function replicaSetTracker(set: { eligible: number; unreachable: number }, threshold: number, beforeCommit = false): QuorumTracker {
  const own = beforeCommit ? 1 : 0;
  const tracker = new QuorumTracker(set.eligible - own, threshold - own);
  for (let i = 0; i < set.unreachable; i++) tracker.failure(400);
  return tracker;
}
