/**
 * The set and watch checkers on hand-made inputs: a lost acknowledged add, an element nobody added
 * or whose add was refused, and a duplicate are each reported, unknown adds may go either way; a
 * stream that skips a version without a gap, repeats one, goes back, or disagrees with another
 * stream about a version's value is reported, and gaps, re-created documents and complete streams
 * are judged as the server promises.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkSet, type SetAdd } from '../../tools/check/set.js';
import { checkWatches, type StreamEvent, type WatchStream } from '../../tools/check/watch.js';

const adds = (outcome: SetAdd['outcome'], ...elements: string[]): SetAdd[] => elements.map((element) => ({ element, outcome }));

test('set: every acknowledged add read back, unknown ones either way, passes', () => {
  const v = checkSet({ adds: [...adds('ok', 'a', 'b'), ...adds('unknown', 'c', 'd'), ...adds('fail', 'e')], finalRead: ['b', 'c', 'a'] });
  assert.is(v.result, 'ok');
  assert.is(v.unknownPresent, 1);
  assert.is(v.unknownAbsent, 1);
  assert.is(v.explanation, undefined);
});

test('set: a lost acknowledged add is a violation, named with its add', () => {
  const v = checkSet({ adds: [{ element: 'a', outcome: 'ok', process: 3, call: 1, ret: 2 }, ...adds('ok', 'b')], finalRead: ['b'] });
  assert.is(v.result, 'violation');
  assert.equal(v.lost, ['a']);
  assert.match(v.explanation!, /lost \(acknowledged, not read\): 1\n {4}"a" \(add ok p3 \[1\.0, 2\.0\]\)/);
});

test('set: an element never added, or added and refused, must not appear; nor any twice', () => {
  const v = checkSet({ adds: [...adds('ok', 'a'), ...adds('fail', 'r')], finalRead: ['a', 'r', 'ghost', 'a'] });
  assert.is(v.result, 'violation');
  assert.equal(v.unexpected, ['ghost', 'r']);
  assert.equal(v.duplicated, ['a']);
  assert.match(v.explanation!, /"ghost" \(never added\)/);
  assert.match(v.explanation!, /"r" \(add fail\)/);
});

test('set: an add retried after an unknown outcome and then acknowledged must be there', () => {
  const v = checkSet({ adds: [...adds('unknown', 'a'), ...adds('ok', 'a')], finalRead: [] });
  assert.equal(v.lost, ['a']);
  assert.is(v.unknownAbsent, 0);
});

const up = (link: string, version: number, value?: string, action?: string): StreamEvent => ({
  type: 'update',
  link,
  version,
  value,
  action,
});
const gap = (link: string, fromVersion: number, toVersion: number): StreamEvent => ({ type: 'gap', link, fromVersion, toVersion });
const stream = (id: string, events: StreamEvent[], complete?: boolean): WatchStream => ({ id, events, complete });

test('watch: in-order streams that start at different versions and agree pass', () => {
  const v = checkWatches([
    stream('s1', [up('/a', 0, 'x0'), up('/b', 0), up('/a', 1, 'x1'), up('/a', 2, 'x2'), up('/b', 1)], true),
    stream('s2', [up('/a', 1, 'x1'), up('/b', 1), up('/a', 2, 'x2')], true),
  ]);
  assert.is(v.result, 'ok', v.explanation);
});

test('watch: a skipped version without a gap, a repeat, and a step back are each reported', () => {
  const v = checkWatches([stream('s1', [up('/a', 0), up('/a', 2), up('/a', 2), up('/a', 1)])]);
  assert.is(v.result, 'violation');
  assert.equal(
    v.problems.map((p) => [p.index, p.message]),
    [
      [1, 'v2 after v0: v1..v1 skipped without a gap event'],
      [2, 'v2 delivered twice'],
      [3, 'v1 after v2: went back'],
    ],
  );
  assert.match(v.explanation!, /^watches: 3 problem\(s\)\n {2}stream s1 \/a event #1: v2 after v0/);
});

test('watch: gaps may cover skipped versions, but must start where the stream was', () => {
  assert.is(checkWatches([stream('s1', [up('/a', 0), gap('/a', 1, 1), gap('/a', 2, 3), up('/a', 4)])]).result, 'ok');
  const v = checkWatches([stream('s1', [up('/a', 0), gap('/a', 2, 2), up('/a', 3)])]);
  assert.equal(
    v.problems.map((p) => p.message),
    ['gap from v2 where v1 was due'],
  );
  const short = checkWatches([stream('s1', [up('/a', 0), gap('/a', 1, 1), up('/a', 3)])]);
  assert.equal(
    short.problems.map((p) => p.message),
    ['v3 after v1: v2..v2 skipped without a gap event'],
  );
});

test('watch: streams that disagree on a version’s value are reported', () => {
  const v = checkWatches([stream('s1', [up('/a', 0, 'x'), up('/a', 1, 'y')]), stream('s2', [up('/a', 1, 'z')])]);
  assert.equal(
    v.problems.map((p) => [p.stream, p.message]),
    [['s2', 'value "z" at v1, but stream s1 saw "y"']],
  );
});

test('watch: a re-created document starts a new life; otherwise going back is not allowed', () => {
  const recreated = [up('/a', 0, 'x'), up('/a', 1, 'y'), up('/a', 0, 'new', 'POST'), up('/a', 1, 'newer')];
  assert.is(checkWatches([stream('s1', recreated), stream('s2', [up('/a', 1, 'y')])]).result, 'ok');
  const expired = [up('/a', 0), up('/a', 1), { type: 'expired', link: '/a' } as StreamEvent, up('/a', 0)];
  assert.is(checkWatches([stream('s1', expired)]).result, 'ok');
  assert.is(checkWatches([stream('s1', [up('/a', 0), up('/a', 1), up('/a', 0, 'x', 'PUT')])]).result, 'violation');
});

test('watch: a complete stream must end at the latest version seen, or the final one given', () => {
  const behind = checkWatches([stream('s1', [up('/a', 0), up('/a', 1)]), stream('s2', [up('/a', 0)], true)]);
  assert.equal(
    behind.problems.map((p) => [p.stream, p.index, p.message]),
    [['s2', -1, 'ended at v0, the final version is v1']],
  );
  const final = checkWatches([stream('s1', [up('/a', 0), up('/a', 1)], true)], { finalVersions: { '/a': 2, '/b': 0 } });
  assert.equal(
    final.problems.map((p) => p.message),
    ['ended at v1, the final version is v2', 'ended at nothing, the final version is v0'],
  );
  // An incomplete stream may stop anywhere.
  assert.is(checkWatches([stream('s1', [up('/a', 0)])], { finalVersions: { '/a': 5 } }).result, 'ok');
});

test.run();
