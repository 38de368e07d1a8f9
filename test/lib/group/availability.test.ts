/**
 * Availability per link (lib/group/availability.ts) and how the synchronization schedule keeps
 * its history (lib/synch/schedule.ts linkPending), step by step with the views a test sets: a link
 * is served at once through a membership change when its owner kept it in every view since it was
 * last synchronized; a link that moved, a replica set that changed under a factor, a host written
 * off by a peer, a restart and a forgotten view all make it wait for its synchronization.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { emptyHistory, ownedThroughout, since, withView } from '../../../lib/group/availability.js';
import { selectNodes } from '../../../lib/hash.js';
import type { NodeId } from '../../../lib/ids.js';
import {
  createSchedule,
  linkPending,
  step,
  takeoverHoldMicros,
  type ScheduleInput,
  type ScheduleState,
} from '../../../lib/synch/schedule.js';
import { limits } from '../../../lib/limits.js';

const ALL = ['h1', 'h2', 'h3'];
const ownerAmong = (link: string, ids: readonly NodeId[], count = 1) =>
  selectNodes(
    link,
    ids.map((id) => ({ id, eligible: true })),
    count,
  );
/** A link `self` owns among `ids`, and, when `also` is given, among `also` too. */
function linkOwnedBy(self: NodeId, ids: readonly NodeId[], also?: readonly NodeId[], moved = false): string {
  for (let i = 0; i < 1000; i++) {
    const l = `/l/${i}`;
    if (ownerAmong(l, ids)[0] !== self) continue;
    if (also && (ownerAmong(l, also)[0] === self) === moved) continue;
    return l;
  }
  throw new Error('no such link');
}

test('owned throughout: every view since the one its trust dates from names this host, none broke trust', () => {
  const l = linkOwnedBy('h1', ALL, ['h1', 'h2']);
  let h = withView(emptyHistory(), { generation: 1, eligible: ALL });
  h = withView(h, { generation: 2, eligible: ['h1', 'h2'] });
  assert.ok(ownedThroughout(h, 'h1', l, 1));
  assert.ok(ownedThroughout(h, 'h1', l, 2));
  assert.not.ok(ownedThroughout(h, 'h2', l, 1), 'not the owner');
  assert.not.ok(ownedThroughout(h, 'h1', l, 0), 'generation 0 was never recorded');
  const gone = withView(h, { generation: 3, eligible: undefined });
  assert.not.ok(ownedThroughout(gone, 'h1', l, 1), 'a view nobody knows breaks trust');
  assert.not.ok(ownedThroughout(since(h, 2), 'h1', l, 1), 'a view forgotten breaks trust');
  assert.ok(ownedThroughout(since(h, 2), 'h1', l, 2));
});

test('a link whose owner moved away and back is not owned throughout', () => {
  const l = linkOwnedBy('h3', ALL);
  let h = withView(emptyHistory(), { generation: 1, eligible: ALL });
  h = withView(h, { generation: 2, eligible: ['h1', 'h2'] });
  h = withView(h, { generation: 3, eligible: ALL });
  assert.not.ok(ownedThroughout(h, 'h3', l, 1));
  assert.ok(ownedThroughout(h, 'h3', l, 3), 'trusted again once synchronized in generation 3');
});

test('under a replication factor the replica set must not change either', () => {
  const five = ['h1', 'h2', 'h3', 'h4', 'h5'];
  // A link h1 owns among five and among four, with h5 among its three closest: its set changes without h5.
  const l = Array.from({ length: 2000 }, (_, i) => `/l/${i}`).find((x) => {
    const all = ownerAmong(x, five, 3);
    return all[0] === 'h1' && all.includes('h5');
  })!;
  let h = withView(emptyHistory(), { generation: 1, eligible: five });
  h = withView(h, { generation: 2, eligible: ['h1', 'h2', 'h3', 'h4'] });
  assert.ok(ownedThroughout(h, 'h1', l, 1), 'without a factor only the owner counts');
  assert.not.ok(ownedThroughout(h, 'h1', l, 1, 3), 'its replica set lost h5');
});

test('withView keeps at most the views it is told to', () => {
  let h = emptyHistory();
  for (let g = 1; g <= 10; g++) h = withView(h, { generation: g, eligible: ALL }, 4);
  assert.equal(
    h.views.map((v) => v.generation),
    [7, 8, 9, 10],
  );
});

/** The schedule of `self` fed membership changes by the test; the group is always available. */
class Host {
  s: ScheduleState;
  constructor(readonly self: NodeId) {
    this.s = createSchedule({ selfId: self });
  }
  feed(input: ScheduleInput): void {
    this.s = step(this.s, input, { nowMicros: 1_000_000, available: true, hasQuorum: true }).state;
  }
  view(eligible: readonly NodeId[], disowned = false): number {
    this.feed({ type: 'membershipChanged', eligible, disowned });
    return this.s.generation;
  }
  pending(link: string): boolean {
    return linkPending(this.s, link);
  }
}

test('the schedule: after a complete pass only links that moved here wait through a change', () => {
  const h = new Host('h1');
  const kept = linkOwnedBy('h1', ALL, ['h1', 'h2']);
  const movedHere = linkOwnedBy('h1', ['h1', 'h2'], ALL, true);
  const g1 = h.view(ALL);
  assert.ok(h.pending(kept), 'nothing is trusted before the first synchronization');
  h.feed({ type: 'passEnded', complete: true });
  assert.is(h.s.completedGeneration, g1);
  h.view(['h1', 'h2']);
  assert.not.ok(h.pending(kept), 'owned throughout since the complete pass: served at once');
  assert.ok(h.pending(movedHere), 'moved here: synchronized (taken over) first');
  h.feed({ type: 'linksDone', generation: h.s.generation, links: [movedHere] });
  assert.not.ok(h.pending(movedHere), 'done in this generation');
  h.view(['h1', 'h2', 'h3']);
  assert.not.ok(h.pending(kept));
  assert.ok(h.pending(movedHere), 'it moves back to h3');
  h.view(['h1', 'h2']);
  assert.ok(h.pending(movedHere), 'owned again, but h3 may have written it meanwhile');
  assert.not.ok(h.pending(kept));
});

test('the schedule: a link done in a generation stays trusted through later changes that keep it here', () => {
  const h = new Host('h1');
  const l = linkOwnedBy('h1', ['h1', 'h2'], ALL);
  const g = h.view(['h1', 'h2']);
  h.feed({ type: 'linksDone', generation: g, links: [l] });
  h.view(ALL);
  assert.not.ok(h.pending(l), 'synchronized in the earlier generation, owned since');
  h.feed({ type: 'linksDone', generation: g, links: ['/l/other'] });
  assert.ok(h.pending('/l/other'), 'work from a stale generation counts for nothing');
});

test('the schedule: a view without the group quorum breaks trust, as a partition leaves the cut-off side', () => {
  const h = new Host('h1');
  const kept = linkOwnedBy('h1', ALL, ['h1', 'h2']);
  h.view(ALL);
  h.feed({ type: 'passEnded', complete: true });
  // Cut off: h1 sees only itself and no quorum; the others may take its links over meanwhile.
  h.feed({ type: 'membershipChanged', eligible: ['h1'], quorate: false });
  h.feed({ type: 'passEnded', complete: false }); // its pass cannot reach a quorum
  // Healed before the mark that it was written off arrives: h1 still owns the link by hash
  // (failed before: served at once, and the torture run read 404 for a document created meanwhile).
  h.view(ALL);
  assert.ok(h.pending(kept), 'synchronized before it is served again');
  h.feed({ type: 'passEnded', complete: true });
  assert.not.ok(h.pending(kept), 'trusted again after a complete pass');
  // A view that keeps the quorum keeps trust, as when one host of three dies.
  h.feed({ type: 'membershipChanged', eligible: ['h1', 'h2'], quorate: true });
  assert.not.ok(h.pending(kept), 'a view with the quorum keeps trust');
});

test('the schedule: written off by a peer, or without a view, this host trusts nothing it held', () => {
  const h = new Host('h1');
  const kept = linkOwnedBy('h1', ALL, ['h1', 'h2']);
  h.view(ALL);
  h.feed({ type: 'passEnded', complete: true });
  h.view(ALL, true);
  assert.ok(h.pending(kept), 'a peer marked this host UNAVAILABLE: any link may have been taken over');
  h.feed({ type: 'passEnded', complete: true });
  assert.not.ok(h.pending(kept));
  h.feed({ type: 'membershipChanged' });
  assert.ok(h.pending(kept), 'a change without its view');
  const plain = createSchedule();
  const s = step(plain, { type: 'membershipChanged', eligible: ALL }, { nowMicros: 0, available: true, hasQuorum: true }).state;
  assert.ok(linkPending(s, kept), 'without selfId every link waits, as before availability per link');
});

test('the schedule: written off by a peer, this host starts no takeover on demand for one gossip round', () => {
  const h = new Host('h1');
  h.view(ALL);
  assert.is(takeoverHoldMicros(h.s, 1_000_000), 0);
  h.view(ALL, true);
  assert.is(takeoverHoldMicros(h.s, 1_000_000), limits.maintenanceIntervalMicros, 'its word has not reached the others yet');
  assert.is(takeoverHoldMicros(h.s, 1_000_000 + limits.maintenanceIntervalMicros), 0);
  h.view(['h1', 'h2']);
  assert.is(takeoverHoldMicros(h.s, 1_000_000 + limits.maintenanceIntervalMicros), 0, 'an ordinary change holds nothing');
});

test.run();
