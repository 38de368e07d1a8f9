/**
 * Quorum accounting for one replicated update (lib/replication/quorum.ts): the success threshold
 * for every way a quorum can be asked for (x-xenon-rpl-quorum 'all' or a number, the selector's
 * replicationQuorum, which DELETE ignores, the membership quorum bounded by the replica set), the
 * failure threshold that makes an update fail as soon as the quorum is out of reach, and Xenon's
 * failure message byte for byte; the replica set a record goes to (lib/replication/replica-set.ts)
 * and the tracker of one record shipped to it. The replica rule and the simulated write path live in
 * scenarios.test.ts next to this file.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { selectNodes } from '../../../lib/hash.js';
import { QuorumTracker, replicaSetTracker, shortQuorum, successThreshold, type QuorumOutcome } from '../../../lib/replication/quorum.js';
import { chooseReplicas, type MemberView } from '../../../lib/replication/replica-set.js';

test('requested all: every member of the replica set, the owner included', () => {
  assert.is(successThreshold({ eligible: 3, membershipQuorum: 2, requested: 'all', action: 'PUT' }), 3);
  assert.is(successThreshold({ eligible: 5, membershipQuorum: 3, requested: 'all', replicationQuorum: 1, action: 'DELETE' }), 5);
});

test('requested number: taken as is (at least 1), above the member count refused', () => {
  assert.is(successThreshold({ eligible: 3, membershipQuorum: 2, requested: 3, action: 'PATCH' }), 3);
  assert.is(successThreshold({ eligible: 3, membershipQuorum: 2, requested: 1, action: 'PATCH' }), 1);
  // 0 cannot mean "answer before the owner's own append".
  assert.is(successThreshold({ eligible: 3, membershipQuorum: 2, requested: 0, action: 'PATCH' }), 1);
  // The header wins over the selector's replicationQuorum, DELETE or not.
  assert.is(successThreshold({ eligible: 5, membershipQuorum: 3, requested: 2, replicationQuorum: 4, action: 'PUT' }), 2);
  assert.throws(
    () => successThreshold({ eligible: 3, membershipQuorum: 2, requested: 4, action: 'PUT' }),
    (e: unknown) => e instanceof RangeError && e.message === 'Requested quorum 4 is larger than member count 3',
  );
});

test('replicationQuorum: bounded by the replica set, not applied to DELETE', () => {
  assert.is(successThreshold({ eligible: 5, membershipQuorum: 3, replicationQuorum: 2, action: 'PUT' }), 2);
  assert.is(successThreshold({ eligible: 5, membershipQuorum: 3, replicationQuorum: 4, action: 'POST' }), 4);
  assert.is(successThreshold({ eligible: 3, membershipQuorum: 2, replicationQuorum: 5, action: 'PATCH' }), 3);
  // Xenon sends DELETE to the membership quorum whatever replicationQuorum says.
  assert.is(successThreshold({ eligible: 5, membershipQuorum: 3, replicationQuorum: 5, action: 'DELETE' }), 3);
  assert.is(successThreshold({ eligible: 5, membershipQuorum: 3, replicationQuorum: 1, action: 'DELETE' }), 3);
});

test('default: the membership quorum, bounded by the replica set and at least 1', () => {
  assert.is(successThreshold({ eligible: 3, membershipQuorum: 2, action: 'PUT' }), 2);
  assert.is(successThreshold({ eligible: 5, membershipQuorum: 3, action: 'DELETE' }), 3);
  // A replication factor of 2 in a group of 5: the quorum of 3 cannot exceed the 2 replicas.
  assert.is(successThreshold({ eligible: 2, membershipQuorum: 3, action: 'PUT' }), 2);
  assert.is(successThreshold({ eligible: 1, membershipQuorum: 1, action: 'PUT' }), 1);
  assert.is(successThreshold({ eligible: 3, membershipQuorum: 0, action: 'PUT' }), 1);
});

test('failure threshold: the failures that leave the quorum out of reach', () => {
  assert.is(new QuorumTracker(3, 2).failureThreshold, 2);
  assert.is(new QuorumTracker(3, 3).failureThreshold, 1);
  assert.is(new QuorumTracker(3, 1).failureThreshold, 3);
  assert.is(new QuorumTracker(5, 3).failureThreshold, 3);
  assert.is(new QuorumTracker(1, 1).failureThreshold, 1);
});

test('tracker: pending until the threshold, then settled; the last failure status is kept', () => {
  const t = new QuorumTracker(3, 2);
  assert.is(t.outcome, 'pending');
  assert.is(t.status, 500);
  assert.is(t.failure(409), 'pending');
  assert.is(t.status, 409);
  assert.is(t.success(), 'pending'); // the owner's own append
  assert.is(t.success(), 'succeeded');
  // A late refusal does not undo an answered quorum.
  assert.is(t.failure(503), 'succeeded');

  const f = new QuorumTracker(3, 2);
  f.success();
  assert.is(f.failure(503), 'pending');
  assert.is(f.failure(409), 'failed');
  assert.is(f.status, 409);
  assert.is(f.failure(), 'failed');
  assert.is(f.status, 500);
});

test("failure message is Xenon's, two spaces before Fail included", () => {
  const t = new QuorumTracker(3, 2);
  t.success();
  t.failure(503);
  t.failure(503);
  assert.is(t.message('PATCH', '/l', 'X'), '(Original id: X) PATCH to /l failed. Success: 1,  Fail: 2, quorum: 2, failure threshold: 2');
  const all = new QuorumTracker(5, 5);
  all.success();
  all.failure(400);
  assert.is(
    all.message('DELETE', '/core/examples/a', 'h1-7'),
    '(Original id: h1-7) DELETE to /core/examples/a failed. Success: 1,  Fail: 1, quorum: 5, failure threshold: 1',
  );
});

test('property: every reply order settles exactly once, by the time every member answered', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 7 }).chain((eligible) =>
        fc.record(
          {
            eligible: fc.constant(eligible),
            threshold: fc.integer({ min: 1, max: eligible }),
            replies: fc.array(fc.boolean(), { minLength: eligible, maxLength: eligible }),
          },
          { noNullPrototype: true },
        ),
      ),
      ({ eligible, threshold, replies }) => {
        const t = new QuorumTracker(eligible, threshold);
        let s = 0;
        let f = 0;
        let settled: QuorumOutcome | undefined;
        for (const ok of replies) {
          const o = ok ? t.success() : t.failure(409);
          if (ok) s++;
          else f++;
          // Both thresholds can never be met together: s + f <= eligible.
          const expected: QuorumOutcome = s >= threshold ? 'succeeded' : f >= eligible - threshold + 1 ? 'failed' : 'pending';
          if (settled) assert.is(o, settled, 'an outcome never changes once settled');
          else assert.is(o, expected);
          if (o !== 'pending') settled ??= o;
        }
        assert.ok(settled, 'settled once all members answered');
      },
    ),
    { numRuns: 200 },
  );
});

test('property: with the default threshold any two successful quorums of one group share a member', () => {
  // This is what lets synchronization find every acknowledged write among a majority of hosts.
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 9 }), (n) => {
      const membershipQuorum = Math.floor(n / 2) + 1;
      const t = successThreshold({ eligible: n, membershipQuorum, action: 'PUT' });
      assert.ok(t + t > n);
      assert.ok(t + membershipQuorum > n, 'an acknowledged write meets every available majority');
    }),
    { numRuns: 20 },
  );
});

interface M {
  id: string;
  up: boolean;
}
const VIEW: MemberView<M> = { id: (m) => m.id, ownerEligible: (m) => m.up, reachable: (m) => m.up };
const members = (down: string[] = []): M[] => ['a', 'b', 'c', 'd', 'e'].map((id) => ({ id, up: !down.includes(id) }));

test('replica set: every member without a factor, the unreachable ones immediate failures', () => {
  const set = chooseReplicas('/l/x', 'a', members(['d']), VIEW);
  assert.equal(
    set.members.map((m) => m.id),
    ['a', 'b', 'c', 'd', 'e'],
  );
  assert.equal(
    set.targets.map((m) => m.id),
    ['b', 'c', 'e'],
  );
  assert.equal([set.unreachable, set.eligible], [1, 5]);
});

test('replica set: with a factor, the closest members eligible to own, self counted when chosen', () => {
  const all = members(['d']);
  const closest = selectNodes(
    '/l/x',
    all.map((m) => ({ id: m.id, eligible: m.up })),
    3,
  );
  const set = chooseReplicas('/l/x', closest[0]!, all, VIEW, 3);
  assert.equal(
    set.members.map((m) => m.id),
    closest,
  );
  assert.equal([set.targets.length, set.unreachable, set.eligible], [2, 0, 3]);
  assert.not.ok(closest.includes('d'), 'a member that may not own is not chosen');
  const outsider = ['a', 'b', 'c', 'e'].find((id) => !closest.includes(id))!;
  const from = chooseReplicas('/l/x', outsider, all, VIEW, 3);
  assert.equal([from.targets.length, from.eligible], [3, 4], 'a host outside the set ships to all of it and counts itself');
});

test('the tracker of a record shipped to a replica set: unreachable members fail at once; before commit the owner is not counted', () => {
  const t = replicaSetTracker({ eligible: 5, unreachable: 2 }, 3);
  assert.equal([t.eligible, t.threshold, t.outcome], [5, 3, 'pending']);
  assert.is(t.failure(503), 'failed', 'a third failure leaves at most 2 successes of 3 needed');
  const b = replicaSetTracker({ eligible: 3, unreachable: 0 }, 2, true);
  assert.equal([b.eligible, b.threshold], [2, 1]);
  assert.is(b.success(), 'succeeded', 'one replica with the owner is the quorum of 2');
  assert.is(replicaSetTracker({ eligible: 3, unreachable: 0 }, 1, true).outcome, 'succeeded', 'the owner alone is enough');
});

test('shortQuorum: a replica that did not answer is retried while it may still make the quorum; the write fails only when it cannot', () => {
  const base = { successes: 2, pending: 0, retryable: 0, threshold: 3, groupHasQuorum: true, deadlinePassed: false };
  assert.is(shortQuorum({ ...base, successes: 3 }), 'succeed');
  assert.is(shortQuorum({ ...base, retryable: 1 }), 'retry', 'quorum 3, the third replica died before membership noticed: send again');
  assert.is(shortQuorum({ ...base, retryable: 1, pending: 1 }), 'wait', 'an answer is still outstanding');
  assert.is(shortQuorum(base), 'fail', 'the view wrote it off and the group still has its quorum: it cannot be met');
  assert.is(shortQuorum({ ...base, groupHasQuorum: false }), 'wait', 'without the group quorum: wait, as a parked request would');
  assert.is(shortQuorum({ ...base, groupHasQuorum: false, threshold: 2 }), 'succeed', 'the quorum lowered to 2 meanwhile');
  assert.is(shortQuorum({ ...base, retryable: 1, deadlinePassed: true }), 'fail', 'the operation deadline');
  assert.is(shortQuorum({ ...base, successes: 3, deadlinePassed: true }), 'succeed');
});

test.run();
