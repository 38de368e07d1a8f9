/**
 * One client write's quorum on its owner (Replicator.start): the record goes to every reachable
 * replica, each answer is counted, and lib/replication/quorum.ts shortQuorum decides when the
 * failures would fail it. A replica that did not answer (it died or hung before membership
 * noticed) is sent the record again every limits.replicationRetryDelayMicros while the view still
 * counts it; once the view writes it off, what is left is counted, under the membership quorum of
 * the moment (an UpdateQuorumRequest may have lowered it). The write fails with Xenon's
 * "Success/Fail" message only when its quorum truly cannot be met, or at the operation deadline;
 * with SHUTTING_DOWN at once when this host stops (its peer client closed) before a quorum answered.
 */

import type { Logger } from 'pino';
import type { NewLogRecord } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { NodeState } from '../../lib/group/types.js';
import type { NodeId } from '../../lib/ids.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import { QuorumTracker, shortQuorum, successThreshold } from '../../lib/replication/quorum.js';
import type { ReplicaResult } from '../documents/ports.js';
import type { ReplicaSet } from './replicator.js';

export interface QuorumWriteDeps {
  /** The replica set when the write started, and the successes it needs then. */
  set: ReplicaSet;
  threshold: number;
  requested: number | 'all' | undefined;
  rec: NewLogRecord;
  opId: string;
  /** performance.now() past which the write fails. */
  deadlineMs: number;
  send(n: NodeState): Promise<ReplicaResult>;
  /** The link's replica set in the view now. */
  now(): ReplicaSet;
  groupHasQuorum(): boolean;
  staleEpoch(link: string): void;
  logger: Logger;
}

/** Ships the record; the function returned, called once the owner's own append is durable, resolves at quorum or throws REPLICATION_FAILED. */
export function quorumWrite(d: QuorumWriteDeps): () => Promise<void> {
  const { set, rec } = d;
  // The owner's own append is the one answer outstanding until the caller reports it.
  const w = { successes: 0, pending: 1, refused: 0, unanswered: new Map<NodeId, NodeState>(), stopping: false };
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  let settle!: () => void;
  let fail!: (e: KryptonError) => void;
  const done = new Promise<void>((res, rej) => {
    settle = res;
    fail = rej;
  });
  // The quorum may fail before the caller awaits it (while the owner's own append runs); the
  // caller still sees the rejection, but it must not count as unhandled meanwhile.
  done.catch(() => undefined);

  const ship = (n: NodeState) => {
    w.pending++;
    void d.send(n).then((r) => {
      w.pending--;
      if (r.ok) w.successes++;
      else {
        if (r.code === 'SHUTTING_DOWN') w.stopping = true;
        else if ((r.code ?? 'PEER_UNAVAILABLE') === 'PEER_UNAVAILABLE') w.unanswered.set(n.id, n);
        else w.refused++;
        if (r.code === 'STALE_EPOCH') d.staleEpoch(rec.link);
        d.logger.warn({ peer: n.id, link: rec.link, code: r.code, message: r.message }, 'replica refused or unreachable');
      }
      check();
    });
  };

  const check = () => {
    if (settled) return;
    clearTimeout(timer);
    // This host is stopping (its peer client is closed): no answer can come any more, and a wait
    // for the deadline would keep the stopped process alive. The outcome is unknown to the client.
    if (w.stopping && w.successes < d.threshold) {
      settled = true;
      fail(new KryptonError('SHUTTING_DOWN', `host is stopping: ${rec.action} ${rec.link} (${d.opId}) was not confirmed by a quorum`));
      return;
    }
    // The view now: a replica it writes off counts as failed; the quorum may have been lowered.
    const now = d.now();
    const reachable = new Set(now.targets.map((n) => n.id));
    const retry = [...w.unanswered.values()].filter((n) => reachable.has(n.id));
    const needed = thresholdNow(d, now);
    const decision = shortQuorum({
      successes: w.successes,
      pending: w.pending,
      retryable: retry.length,
      threshold: needed,
      groupHasQuorum: d.groupHasQuorum(),
      deadlinePassed: performance.now() >= d.deadlineMs,
    });
    if (decision === 'succeed') {
      settled = true;
      settle();
      return;
    }
    if (decision === 'fail') {
      settled = true;
      const tracker = new QuorumTracker(set.eligible, needed);
      for (let i = 0; i < w.successes; i++) tracker.success();
      for (let i = 0; i < set.unreachable + w.refused + w.unanswered.size; i++) tracker.failure();
      fail(new KryptonError('REPLICATION_FAILED', tracker.message(rec.action, rec.link, d.opId)));
      return;
    }
    if (decision === 'wait' && w.pending > 0) return;
    // Again after a short while: the replicas that did not answer, or the members and the quorum.
    timer = setTimeout(
      () => {
        for (const n of retry) {
          w.unanswered.delete(n.id);
          ship(n);
        }
        check();
      },
      Math.max(0, Math.min(msFromMicros(limits.replicationRetryDelayMicros), d.deadlineMs - performance.now())),
    );
  };

  for (const n of set.targets) ship(n);
  return () => {
    w.pending--;
    w.successes++;
    check();
    return done;
  };
}

/** The successes the write needs under the membership quorum of the moment. */
function thresholdNow(d: QuorumWriteDeps, now: ReplicaSet): number {
  try {
    return successThreshold({
      eligible: d.set.eligible,
      membershipQuorum: now.membershipQuorum,
      requested: d.requested,
      action: d.rec.action,
    });
  } catch {
    // A requested quorum above the members now keeps the one checked at the start.
    return d.threshold;
  }
}
