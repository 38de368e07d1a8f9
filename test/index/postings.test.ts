/**
 * Postings keep a value held by a single version as that version's id, a Posting once a second
 * version holds it; both read the same through get/valuesOf, removal and renumbering.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Posting, Postings, postingOf } from '../../index/postings.js';

function ids(p: Posting | undefined, alive: (vid: number) => boolean): number[] {
  const out: number[] = [];
  p?.forEachLive(alive, (v) => out.push(v));
  return out;
}

test('one version, then two, then one again; removal and renumbering', () => {
  const live = new Set<number>();
  const alive = (vid: number) => live.has(vid);
  const ps = new Postings(alive);
  const post = (vid: number, doc: Record<string, string | string[]>) => {
    live.add(vid);
    ps.add(vid, doc);
  };
  const kill = (vid: number, doc: Record<string, string | string[]>) => {
    live.delete(vid);
    ps.remove(doc);
  };
  const a = { name: 'x', tags: ['t', 't'] };
  const b = { name: 'x', other: 'y' };
  post(3, a);
  assert.equal(ids(ps.get('name', 'x'), alive), [3]);
  assert.equal(ids(ps.get('tags.item', 't'), alive), [3], 'a value posted twice by one version counts once');
  assert.equal(ps.stats(), { postings: 2, entries: 2, fields: 2 });
  assert.ok(typeof ps.valuesOf('name')!.get('x') === 'number', 'one holder: kept as its id');
  post(7, b);
  assert.equal(ids(ps.get('name', 'x'), alive), [3, 7]);
  assert.ok(ps.valuesOf('name')!.get('x') instanceof Posting, 'two holders: a Posting');
  kill(3, a);
  assert.equal(ids(ps.get('name', 'x'), alive), [7]);
  assert.is(ps.get('tags.item', 't'), undefined, 'a value nobody holds is gone');
  assert.is(ps.valuesOf('tags.item'), undefined, 'and so is a field nobody holds');
  // Renumbering maps single ids and postings alike.
  const map = new Int32Array(8).fill(-1);
  map[7] = 0;
  ps.renumber(map, alive);
  live.clear();
  live.add(0);
  assert.equal(ids(ps.get('name', 'x'), alive), [0]);
  assert.equal(ids(postingOf(ps.valuesOf('other')!.get('y')!), alive), [0]);
  kill(0, b);
  assert.equal(ps.stats(), { postings: 0, entries: 0, fields: 0 });
});

test.run();
