import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DocumentIndex } from '../../index/views.js';
import { digestOf } from '../../lib/synch/history.js';
import { doc, links, put, rec, run, term } from './support.js';

const EX = '/core/examples';

function examplesIndex(): DocumentIndex {
  return new DocumentIndex({ retentionFor: (link) => (link.startsWith(`${EX}/`) ? 100 : 1000) });
}

test('latest, version, versions; states are kept as given', () => {
  const idx = examplesIndex();
  const v0 = put(idx, `${EX}/a`, 0, { name: 'a' });
  const v1 = put(idx, `${EX}/a`, 1, { name: 'a2' });
  assert.is(idx.latest(`${EX}/a`), v1);
  assert.is(idx.version(`${EX}/a`, 0), v0);
  assert.is(idx.version(`${EX}/a`, 2), undefined);
  assert.is(idx.latest(`${EX}/zz`), undefined);
  assert.equal(idx.versions(`${EX}/a`), [v0, v1]);
  assert.equal(idx.versions(`${EX}/zz`), []);
  const tomb = put(idx, `${EX}/a`, 2, { name: 'a2' }, { action: 'DELETE' });
  assert.is(idx.latest(`${EX}/a`), tomb, 'tombstones are the latest version too');
  assert.equal(idx.stats(), { links: 1, versions: 3 });
});

test('retention: the 101st version drops the oldest, from postings too', () => {
  const idx = examplesIndex();
  for (let v = 0; v <= 100; v++) put(idx, `${EX}/r`, v, { name: `n${v}`, tags: ['t'] });
  assert.equal(idx.stats(), { links: 1, versions: 100 });
  assert.is(idx.version(`${EX}/r`, 0), undefined);
  assert.is(idx.versions(`${EX}/r`)[0]?.documentVersion, 1);
  assert.is(idx.postingSize('name', 'n0'), 0);
  assert.is(idx.postingSize('name', 'n1'), 1);
  assert.is(idx.postingSize('tags.item', 't'), 100);
  assert.equal(run(idx, { query: term('name', 'n0'), options: ['INCLUDE_ALL_VERSIONS'] }), []);
  // Links outside /core/examples keep 1000.
  for (let v = 0; v <= 150; v++) put(idx, '/core/other/x', v);
  assert.is(idx.versions('/core/other/x').length, 151);
});

test('resetHistory drops every earlier version, from postings too', () => {
  const idx = examplesIndex();
  put(idx, `${EX}/a`, 0, { name: 'old' });
  put(idx, `${EX}/a`, 1, { name: 'old' }, { action: 'DELETE' });
  const fresh = doc(`${EX}/a`, 2, { name: 'new' }, { action: 'POST' });
  idx.apply(rec(fresh, { resetHistory: true }));
  assert.equal(idx.versions(`${EX}/a`), [fresh]);
  assert.is(idx.postingSize('name', 'old'), 0);
  assert.equal(links(run(idx, { query: term('name', 'new') })), [`${EX}/a`]);
  assert.equal(idx.stats(), { links: 1, versions: 1 });
});

test('a repeated version replaces the held one; a missing older one slots in by version', () => {
  const idx = examplesIndex();
  put(idx, `${EX}/a`, 0, { name: 'zero' });
  put(idx, `${EX}/a`, 2, { name: 'two' });
  const again = put(idx, `${EX}/a`, 2, { name: 'two-again' });
  assert.is(idx.latest(`${EX}/a`), again);
  assert.is(idx.postingSize('name', 'two'), 0);
  const one = put(idx, `${EX}/a`, 1, { name: 'one' });
  assert.equal(
    idx.versions(`${EX}/a`).map((d) => d.documentVersion),
    [0, 1, 2],
  );
  assert.is(idx.version(`${EX}/a`, 1), one);
  assert.is(idx.latest(`${EX}/a`), again);
  assert.equal(links(run(idx, { query: term('name', 'one') })), [], 'an older version is not the latest');
});

test('an older version beyond retention is not kept', () => {
  const idx = new DocumentIndex({ retentionFor: () => 2 });
  put(idx, '/f/a', 5);
  put(idx, '/f/a', 6);
  put(idx, '/f/a', 1, { name: 'late' });
  assert.equal(
    idx.versions('/f/a').map((d) => d.documentVersion),
    [5, 6],
  );
  assert.is(idx.postingSize('name', 'late'), 0);
});

test('children: direct, not deleted, not expired, per factory', () => {
  const idx = examplesIndex();
  put(idx, `${EX}/a`, 0);
  put(idx, `${EX}/b`, 0);
  put(idx, `${EX}/b`, 1, {}, { action: 'DELETE' });
  put(idx, `${EX}/c`, 0, {}, { expiration: 5000 });
  put(idx, `${EX}/d/e`, 0);
  put(idx, '/core/example-tasks/t', 0);
  put(idx, `${EX}x/y`, 0);
  assert.equal(idx.children(EX, 4999), [`${EX}/a`, `${EX}/c`]);
  assert.equal(idx.children(EX, 5000), [`${EX}/a`], 'expired at its expiration time');
  assert.equal(idx.children(`${EX}/d`, 0), [`${EX}/d/e`]);
  assert.equal(idx.children('/core/example-tasks', 0), ['/core/example-tasks/t']);
  assert.equal(idx.children('/core/nothing', 0), []);
});

test('expiration: hidden at once, purged by expire()', () => {
  const idx = examplesIndex();
  put(idx, `${EX}/a`, 0, { name: 'x' });
  put(idx, `${EX}/b`, 0, { name: 'x' }, { expiration: 5000 });
  put(idx, `${EX}/b`, 1, { name: 'x' }, { expiration: 5000 });
  const spec = { query: term('name', 'x') };
  assert.equal(links(run(idx, spec, 4999)), [`${EX}/b`, `${EX}/a`]);
  assert.equal(links(run(idx, spec, 5000)), [`${EX}/a`]);
  assert.equal(links(run(idx, { ...spec, options: ['INCLUDE_ALL_VERSIONS'] }, 5000)), [`${EX}/a`]);
  assert.equal(idx.expire(5000), [], 'purged only once strictly past');
  assert.equal(idx.expire(5001), [`${EX}/b`]);
  assert.is(idx.latest(`${EX}/b`), undefined);
  assert.equal(idx.versions(`${EX}/b`), []);
  assert.is(idx.postingSize('name', 'x'), 1);
  assert.equal(idx.stats(), { links: 1, versions: 1 });
  assert.equal(idx.expire(1e12), []);
});

test('expiration follows the latest version: extending or clearing it', () => {
  const idx = examplesIndex();
  put(idx, `${EX}/a`, 0, {}, { expiration: 5000 });
  put(idx, `${EX}/a`, 1, {}, { expiration: 9000, time: 4000 });
  assert.equal(idx.expire(6000), []);
  put(idx, `${EX}/a`, 2, {}, { expiration: 0, time: 4100 });
  assert.equal(idx.expire(1e12), []);
  assert.equal(idx.children(EX, 1e12), [`${EX}/a`]);
});

test('a record made after the latest version expired starts a fresh history', () => {
  const idx = examplesIndex();
  put(idx, `${EX}/a`, 0, { name: 'old' }, { expiration: 5000, time: 1000 });
  put(idx, `${EX}/a`, 1, { name: 'old' }, { expiration: 5000, time: 2000 });
  const again = put(idx, `${EX}/a`, 0, { name: 'new' }, { time: 6000 });
  assert.equal(idx.versions(`${EX}/a`), [again]);
  assert.is(idx.postingSize('name', 'old'), 0);
});

test('heavy churn renumbers version ids without losing order or postings', () => {
  const idx = new DocumentIndex({ retentionFor: () => 3 });
  const n = 50;
  for (let v = 0; v < 400; v++) {
    for (let i = 0; i < n; i++) put(idx, `/f/${i}`, v, { name: `d${i}`, parity: v % 2 === 0 ? 'even' : 'odd' });
  }
  assert.equal(idx.stats(), { links: n, versions: 3 * n });
  // Self link, kind, update action, name and parity: five strings per version.
  assert.equal(idx.postingStats().entries, 3 * n * 5);
  const hits = run(idx, { query: term('name', 'd7'), options: ['INCLUDE_ALL_VERSIONS'] });
  assert.equal(links(hits, true), ['/f/7?documentVersion=399', '/f/7?documentVersion=398', '/f/7?documentVersion=397']);
  const latest = run(idx, { query: term('parity', 'odd') });
  assert.equal(latest.length, n);
  assert.equal(links(latest).slice(0, 3), ['/f/0', '/f/1', '/f/2'], 'ties stay in indexing order');
});

test('history marks, digest and request ids follow the retained versions: trimmed, replaced, inserted, renumbered', () => {
  const idx = examplesIndex();
  const l = `${EX}/h`;
  for (let v = 0; v <= 104; v++) if (v !== 50) idx.apply(rec(doc(l, v, { name: `n${v}` }), { requestId: `r${v}` }));
  assert.is(idx.marks(l).length, 100);
  assert.is(idx.digest(l), digestOf(idx.marks(l)), 'after retention trimmed the oldest');
  assert.is(idx.requestId(l, 104), 'r104');
  assert.is(idx.requestId(l, 2), undefined, 'trimmed away');
  const before = idx.digest(l);
  // An older version inserted as history, then one replaced by another copy of it.
  idx.apply(rec(doc(l, 50, { name: 'n50' }), { requestId: 'r50' }));
  assert.is.not(idx.digest(l), before);
  assert.is(idx.requestId(l, 50), 'r50');
  idx.apply(rec(doc(l, 60, { name: 'other' }, { time: 99 }), { epoch: 0 }));
  assert.is(idx.requestId(l, 60), undefined, 'the replacing copy had no id');
  assert.is(idx.digest(l), digestOf(idx.marks(l)));
  // Enough dead versions elsewhere to renumber: the marks and ids stay with their versions.
  for (let i = 0; i < 5000; i++) idx.apply(rec(doc(`${EX}/churn`, i), { requestId: `c${i}` }));
  assert.is(idx.requestId(l, 104), 'r104');
  assert.is(idx.requestId(`${EX}/churn`, 4999), 'c4999');
  assert.is(idx.digest(l), digestOf(idx.marks(l)));
  assert.is(idx.digest(`${EX}/none`), 0);
});

test.run();
