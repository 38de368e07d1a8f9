/**
 * The owner's side of fencing (lib/synch/fence.ts): when an owner synchronizes a link before acting
 * on it, the epoch a creation takes, and which of its own writes it refuses before logging them.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mustSynch, preparedEpoch, promisePending, refuseOwnerWrite, type OwnerLink } from '../../../lib/synch/fence.js';

const link = (o: Partial<OwnerLink> = {}): OwnerLink => ({
  selfId: 'me',
  held: { epoch: 2, owner: 'me' },
  promised: undefined,
  peers: true,
  ...o,
});

test('an own copy with nothing promised: synchronized only when the schedule says so', () => {
  assert.not.ok(mustSynch(link(), false));
  assert.ok(mustSynch(link(), true));
  assert.not.ok(mustSynch(link({ peers: false }), true), 'nobody to synchronize with');
});

test("a promise outstanding needs a synchronization, unless it is this host's own for a link nobody holds", () => {
  assert.ok(promisePending(link({ promised: { epoch: 3, by: 'other' } })));
  assert.ok(promisePending(link({ promised: { epoch: 3, by: 'me' } })), 'its own takeover under way');
  assert.ok(mustSynch(link({ promised: { epoch: 3, by: 'me' } }), false));
  const nobody = link({ held: undefined, promised: { epoch: 3, by: 'me' } });
  assert.not.ok(promisePending(nobody));
  assert.not.ok(mustSynch(nobody, false));
  assert.ok(promisePending(link({ held: undefined, promised: { epoch: 3, by: 'other' } })));
});

test('a creation of a link nobody holds takes the epoch this host prepared', () => {
  assert.is(preparedEpoch(link({ held: undefined, promised: { epoch: 4, by: 'me' } })), 4);
  assert.is(preparedEpoch(link({ held: undefined, promised: { epoch: 4, by: 'other' } })), undefined);
  assert.is(preparedEpoch(link({ promised: { epoch: 4, by: 'me' } })), undefined, 'someone holds it');
  assert.is(preparedEpoch(link({ held: undefined })), undefined);
});

test('a copy another owner stamped is taken over before this host writes on', () => {
  const foreign = link({ held: { epoch: 2, owner: 'other' } });
  assert.ok(mustSynch(foreign, false));
  assert.equal(refuseOwnerWrite(foreign, 2), { reason: 'foreign', epoch: 2, owner: 'other' });
  assert.is(refuseOwnerWrite(foreign, 3), undefined, 'a write in a later epoch (after the takeover) goes on');
  assert.is(refuseOwnerWrite(link({ held: { epoch: 2, owner: 'other' }, peers: false }), 2), undefined, 'alone: nobody else writes');
});

test('an owner write below an epoch this host promised is refused', () => {
  const bound = link({ promised: { epoch: 5, by: 'other' } });
  assert.equal(refuseOwnerWrite(bound, 2), { reason: 'promised', fence: 5 });
  assert.is(refuseOwnerWrite(bound, 5), undefined);
  assert.equal(refuseOwnerWrite(link({ promised: { epoch: 5, by: 'other' }, peers: false }), 2), { reason: 'promised', fence: 5 });
  assert.is(refuseOwnerWrite(link(), 2), undefined);
});

test.run();
