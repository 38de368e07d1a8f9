/**
 * The replica's side of the prepare phase (lib/synch/promise.ts): which promises it grants, which
 * records it refuses once it promised, and the wire checks of a promise reply. Then a property:
 * whatever order asks from several hosts arrive in, no two hosts are granted the same epoch, and a
 * record below any granted epoch is refused from then on.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  decidePromise,
  decideRecord,
  fenceOf,
  headFields,
  headOfFields,
  parsePromiseAnswers,
  promiseSpent,
  promiseStands,
  type Promised,
} from '../../../lib/synch/promise.js';

const p = (epoch: number, by: string): Promised => ({ epoch, by });

test('fence: the higher of the held epoch and the promised one', () => {
  assert.is(fenceOf(undefined, undefined), 0);
  assert.is(fenceOf(3, undefined), 3);
  assert.is(fenceOf(3, p(5, 'z')), 5);
  assert.is(fenceOf(7, p(5, 'z')), 7);
  assert.is(promiseSpent(5, p(5, 'z')), true);
  assert.is(promiseSpent(4, p(5, 'z')), false);
  assert.is(promiseSpent(undefined, p(5, 'z')), false);
});

test('a promise is granted only above every held and promised epoch', () => {
  assert.equal(decidePromise(undefined, undefined, p(1, 'z')), { granted: true, record: true });
  assert.equal(decidePromise(0, undefined, p(1, 'z')), { granted: true, record: true });
  assert.equal(decidePromise(1, undefined, p(1, 'z')), { granted: false, fence: 1 });
  assert.equal(decidePromise(0, p(2, 'x'), p(2, 'z')), { granted: false, fence: 2 }, 'the same epoch to another host');
  assert.equal(decidePromise(0, p(2, 'x'), p(1, 'z')), { granted: false, fence: 2 });
  assert.equal(decidePromise(0, p(2, 'x'), p(3, 'z')), { granted: true, record: true });
});

test('asking again for the epoch already promised to the same host is granted again, until spent', () => {
  assert.equal(decidePromise(0, p(2, 'z'), p(2, 'z')), { granted: true, record: false });
  // The takeover at epoch 2 was applied: the promise is spent and the held epoch fences.
  assert.equal(decidePromise(2, p(2, 'z'), p(2, 'z')), { granted: false, fence: 2 });
});

test('records: refused below the fence, duplicates at the held epoch, applied otherwise', () => {
  const held = { epoch: 1, version: 5 };
  assert.is(decideRecord(undefined, undefined, { epoch: 0, version: 0 }), 'apply');
  assert.is(decideRecord(held, undefined, { epoch: 0, version: 9 }), 'refuse');
  assert.is(decideRecord(held, undefined, { epoch: 1, version: 5 }), 'duplicate');
  assert.is(decideRecord(held, undefined, { epoch: 1, version: 6 }), 'apply');
  // Promised epoch 2: the old owner's next write at epoch 1 is refused ...
  assert.is(decideRecord(held, p(2, 'z'), { epoch: 1, version: 6 }), 'refuse');
  // ... and so is a record of a link the replica holds nothing of yet.
  assert.is(decideRecord(undefined, p(2, 'z'), { epoch: 0, version: 0 }), 'refuse');
  // The takeover at the promised epoch goes through, whatever its version.
  assert.is(decideRecord(held, p(2, 'z'), { epoch: 2, version: 3 }), 'apply');
  assert.is(decideRecord(held, p(2, 'z'), { epoch: 3, version: 7 }), 'apply');
});

test('heads on the wire', () => {
  assert.equal(headFields({ epoch: 2, version: 7, deleted: true, owner: 'h1' }), [2, 7, 1, 'h1']);
  assert.equal(headOfFields([2, 7, 0, '']), { epoch: 2, version: 7, deleted: false, owner: undefined });
});

test('a malformed promise reply is undefined, never a crash', () => {
  const good = {
    promises: [
      ['/l/a', 2, 1, 2, [1, 4, 0, 'h1']],
      ['/l/b', 2, 0, 5, null],
    ],
  };
  assert.equal(parsePromiseAnswers(good), good.promises);
  for (const bad of [
    undefined,
    null,
    'x',
    {},
    { promises: 'x' },
    { promises: [1] },
    { promises: [['/l/a', 2, 1, 2]] },
    { promises: [['/l/a', -1, 1, 2, null]] },
    { promises: [['/l/a', 2, 2, 2, null]] },
    { promises: [[5, 2, 1, 2, null]] },
    { promises: [['/l/a', 2, 1, 2, [1, 4, 0]]] },
    { promises: [['/l/a', 2, 1, 2, [1, 4, 0, 7]]] },
    { promises: [['/l/a', 2, 1, 1.5, null]] },
  ]) {
    assert.is(parsePromiseAnswers(bad), undefined, JSON.stringify(bad));
  }
});

test('property: no epoch is granted to two hosts, and nothing below a granted epoch is taken afterwards', () => {
  const step = fc.oneof(
    fc.record({ t: fc.constant('ask' as const), by: fc.constantFrom('x', 'y', 'z'), epoch: fc.integer({ min: 0, max: 6 }) }),
    fc.record({ t: fc.constant('rec' as const), epoch: fc.integer({ min: 0, max: 6 }), version: fc.integer({ min: 0, max: 9 }) }),
  );
  fc.assert(
    fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
      let held: { epoch: number; version: number } | undefined;
      let promised: Promised | undefined;
      const grantedTo = new Map<number, string>();
      let highestGranted = -1;
      for (const s of steps) {
        if (s.t === 'ask') {
          const d = decidePromise(held?.epoch, promised, { epoch: s.epoch, by: s.by });
          if (!d.granted) {
            assert.ok(d.fence >= s.epoch, 'a refusal names a fence at or above the ask');
            continue;
          }
          const before = grantedTo.get(s.epoch);
          assert.ok(before === undefined || before === s.by, `epoch ${s.epoch} granted to ${before} and ${s.by}`);
          grantedTo.set(s.epoch, s.by);
          highestGranted = Math.max(highestGranted, s.epoch);
          if (d.record) promised = { epoch: s.epoch, by: s.by };
        } else {
          const d = decideRecord(held, promised, s);
          if (s.epoch < highestGranted) assert.is(d, 'refuse', `record at ${s.epoch} after a promise of ${highestGranted}`);
          if (d === 'apply') held = { epoch: s.epoch, version: s.version };
          if (promised && promiseSpent(held?.epoch, promised)) promised = undefined;
        }
      }
    }),
    { numRuns: 500, seed: 7 },
  );
});

test("a takeover's own promise stands only at its epoch and by its host", () => {
  assert.ok(promiseStands({ epoch: 3, by: 'me' }, 'me', 3));
  assert.not.ok(promiseStands({ epoch: 4, by: 'me' }, 'me', 3), 'a later one, asked again above a refusal');
  assert.not.ok(promiseStands({ epoch: 4, by: 'other' }, 'me', 3), 'another host is taking the link over');
  assert.not.ok(promiseStands(undefined, 'me', 3), 'spent or never made');
});

test.run();
