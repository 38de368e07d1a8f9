/**
 * Commit visibility (lib/commit.ts): what an owner's read answers while a write is in flight,
 * after it reached its quorum, after it missed it, and once synchronization settled the link.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CommitTracker } from '../../lib/commit.js';
import type { ServiceDocument } from '../../lib/document.js';

const L = '/core/examples/c';
const state = (v: number) => ({ documentSelfLink: L, documentVersion: v }) as ServiceDocument;

test('in flight: the state before the write; acknowledged: the latest again', () => {
  const t = new CommitTracker();
  assert.equal(t.visible(L), { kind: 'latest' });
  t.begin(L, 4, state(3));
  assert.equal(t.visible(L), { kind: 'committed', state: state(3) });
  t.acknowledged(L, 3);
  assert.is(t.visible(L).kind, 'committed', 'an acknowledgement of another version changes nothing');
  t.acknowledged(L, 4);
  assert.equal(t.visible(L), { kind: 'latest' });
  assert.is(t.size(), 0);
});

test('a create in flight has nothing before it', () => {
  const t = new CommitTracker();
  t.begin(L, 0, undefined);
  assert.equal(t.visible(L), { kind: 'committed', state: undefined });
});

test('failed: unsettled until synchronization settles it; a later write acknowledged settles it too', () => {
  const t = new CommitTracker();
  t.begin(L, 4, state(3));
  t.failed(L, 4);
  assert.ok(t.unsettled(L));
  assert.equal(t.visible(L), { kind: 'unsettled', version: 4 });
  t.settled(L);
  assert.equal(t.visible(L), { kind: 'latest' });

  t.begin(L, 5, state(4));
  t.failed(L, 5);
  // A write on the link in doubt (synchronization could not run) stays in doubt with it...
  t.begin(L, 6, state(5));
  assert.equal(t.visible(L), { kind: 'unsettled', version: 6 });
  // ...until it reaches its quorum, which carries the one under it along.
  t.acknowledged(L, 6);
  assert.equal(t.visible(L), { kind: 'latest' });
});

test('links are apart', () => {
  const t = new CommitTracker();
  t.begin(L, 1, state(0));
  t.failed(L, 1);
  assert.equal(t.visible('/core/examples/other'), { kind: 'latest' });
  assert.not.ok(t.unsettled('/core/examples/other'));
});

test.run();
