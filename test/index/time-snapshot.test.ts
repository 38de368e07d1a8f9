/**
 * TIME_SNAPSHOT at the index: histories with known states at known times, queried as of times
 * before, between and after their updates, through postings (a term) and through a scan (a
 * range), with deletes, expiry, INCLUDE_ALL_VERSIONS, and a time older than the versions kept.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseQuerySpec } from '../../lib/query/spec.js';
import { DocumentIndex } from '../../index/views.js';
import { links, put, term } from './support.js';

function history(retention = 100): DocumentIndex {
  const idx = new DocumentIndex({ retentionFor: () => retention });
  put(idx, '/e/a', 0, { name: 'one', counter: 1 }, { time: 100 });
  put(idx, '/e/a', 1, { name: 'two', counter: 2 }, { time: 200 });
  put(idx, '/e/a', 2, { name: 'two', counter: 2 }, { time: 300, action: 'DELETE' });
  put(idx, '/e/b', 0, { name: 'two', counter: 5 }, { time: 250 });
  put(idx, '/e/c', 0, { name: 'one', counter: 7 }, { time: 150, expiration: 260 });
  return idx;
}

const asOf = (idx: DocumentIndex, spec: Record<string, unknown>, at: number, options: string[] = []) =>
  idx.query(parseQuerySpec({ ...spec, options: ['TIME_SNAPSHOT', ...options], timeSnapshotBoundaryMicros: at }), 10_000);

const named = (v: string) => ({ query: term('name', v) });
const counted = { query: { term: { propertyName: 'counter', range: { type: 'LONG', min: 0, max: 100 } } } };

test('each link in its newest version at or before the time', () => {
  const idx = history();
  assert.equal(links(asOf(idx, named('one'), 50)), []);
  assert.equal(links(asOf(idx, named('one'), 100)), ['/e/a']);
  assert.equal(links(asOf(idx, named('one'), 199)).sort(), ['/e/a', '/e/c']);
  assert.equal(links(asOf(idx, named('one'), 200)), ['/e/c']);
  assert.equal(links(asOf(idx, named('two'), 200)), ['/e/a']);
  assert.equal(links(asOf(idx, named('two'), 260)).sort(), ['/e/a', '/e/b']);
  // The state shown is the one of that time.
  const [hit] = asOf(idx, { query: term('documentSelfLink', '/e/a') }, 150);
  assert.is(hit!.doc.name, 'one');
  assert.is(hit!.version, 0);
});

test('a scan (no posting drives a range) sees the same states', () => {
  const idx = history();
  assert.equal(links(asOf(idx, counted, 120)), ['/e/a']);
  assert.equal(links(asOf(idx, counted, 210)).sort(), ['/e/a', '/e/c']);
  assert.equal(links(asOf(idx, counted, 400)), ['/e/b']);
});

test('deleted and expired as of the time, not as of now', () => {
  const idx = history();
  assert.equal(links(asOf(idx, named('two'), 300)), ['/e/b']);
  assert.equal(links(asOf(idx, named('two'), 300, ['INCLUDE_DELETED'])).sort(), ['/e/a', '/e/b']);
  // c expires at 260: there at 259, gone from 260 on.
  assert.equal(links(asOf(idx, named('one'), 259)), ['/e/c']);
  assert.equal(links(asOf(idx, named('one'), 260)), []);
});

test('INCLUDE_ALL_VERSIONS lists the versions that existed by then', () => {
  const idx = history();
  const hits = asOf(idx, { query: term('documentSelfLink', '/e/a') }, 250, ['INCLUDE_ALL_VERSIONS']);
  assert.equal(links(hits, true), ['/e/a?documentVersion=1', '/e/a?documentVersion=0']);
});

test('a time older than the versions kept is refused, a later one answers', () => {
  const idx = history(2);
  put(idx, '/e/d', 0, { name: 'd' }, { time: 10 });
  put(idx, '/e/d', 1, { name: 'd' }, { time: 20 });
  put(idx, '/e/d', 2, { name: 'd' }, { time: 30 });
  // /e/d lost v0 (retention 2): before its oldest kept version (time 20) its state is unknown.
  assert.throws(() => asOf(idx, named('nothing'), 15), /no longer keeps the state of \/e\/[ad] as of 15/);
  // /e/a lost v0 too, so 120 is as unknown; from 200 on every link's state is kept.
  assert.throws(() => asOf(idx, named('one'), 120), /\/e\/a/);
  assert.equal(links(asOf(idx, named('d'), 200)), ['/e/d']);
  assert.equal(links(asOf(idx, named('two'), 200)), ['/e/a']);
});

test('a query as of now gives the answer without TIME_SNAPSHOT', () => {
  const idx = history();
  for (const spec of [named('one'), named('two'), counted]) {
    const now = idx.query(parseQuerySpec(spec), 10_000);
    assert.equal(links(idx.query(parseQuerySpec(spec), 10_000, 10_000)), links(now));
  }
});

test.run();
