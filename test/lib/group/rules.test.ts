import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { KINDS } from '../../../lib/document.js';
import {
  availableCount,
  compareEntries,
  emptyOutcome,
  expireEntries,
  groupHasQuorum,
  isGroupSettled,
  markPeer,
  mergeEntry,
  mergeSelf,
  type MergeContext,
} from '../../../lib/group/rules.js';
import { defaultGroupConfig, type NodeGroupState, type NodeState, type NodeStatus } from '../../../lib/group/types.js';

const LINK = '/core/node-groups/default';
const ref = (id: string): string => `http://${id}${LINK}`;

function entry(id: string, version: number, status: NodeStatus, extra: Partial<NodeState> = {}): NodeState {
  return {
    id,
    groupReference: ref(id),
    status,
    options: ['PEER'],
    membershipQuorum: 2,
    locationQuorum: 1,
    documentVersion: version,
    documentKind: KINDS.nodeState,
    documentSelfLink: `${LINK}/${id}`,
    documentUpdateTimeMicros: 0,
    documentExpirationTimeMicros: 0,
    ...extra,
  };
}

function ctx(now = 1_000_000): MergeContext {
  return { selfId: 'me', selfReference: ref('me'), groupLink: LINK, nowMicros: now, config: defaultGroupConfig() };
}

test('versions decide; equal versions never look at update times', () => {
  assert.ok(compareEntries(entry('a', 3, 'AVAILABLE'), entry('a', 2, 'UNAVAILABLE')) > 0);
  // The AVAILABLE copy carries the later wall time; the UNAVAILABLE copy still wins the tie.
  const alive = entry('a', 4, 'AVAILABLE', { documentUpdateTimeMicros: 9e15 });
  const dead = entry('a', 4, 'UNAVAILABLE', { documentUpdateTimeMicros: 1 });
  assert.ok(compareEntries(dead, alive) > 0);
  assert.ok(compareEntries({ ...dead, documentUpdateTimeMicros: 9e15 }, { ...alive, documentUpdateTimeMicros: 1 }) > 0);
  const ranked: NodeStatus[] = ['UNKNOWN', 'AVAILABLE', 'SYNCHRONIZING', 'UNAVAILABLE', 'REPLACED'];
  for (let i = 1; i < ranked.length; i++) assert.ok(compareEntries(entry('a', 1, ranked[i]!), entry('a', 1, ranked[i - 1]!)) > 0);
  // Other content differences still give one answer, in either order.
  const q2 = entry('a', 4, 'AVAILABLE');
  const q3 = entry('a', 4, 'AVAILABLE', { membershipQuorum: 3 });
  assert.is(Math.sign(compareEntries(q2, q3)), -Math.sign(compareEntries(q3, q2)));
  assert.is.not(compareEntries(q2, q3), 0);
  assert.is(compareEntries(q2, { ...q2, documentUpdateTimeMicros: 5, documentExpirationTimeMicros: 6 }), 0);
});

test('merging copies of a known entry is order-independent (a semilattice)', () => {
  const arbEntry = fc
    .record({
      v: fc.integer({ min: 0, max: 4 }),
      s: fc.constantFrom<NodeStatus>('UNKNOWN', 'AVAILABLE', 'SYNCHRONIZING', 'UNAVAILABLE', 'REPLACED'),
      q: fc.integer({ min: 1, max: 3 }),
      t: fc.integer({ min: 0, max: 1e12 }),
    })
    .map(({ v, s, q, t }) => entry('a', v, s, { membershipQuorum: q, documentUpdateTimeMicros: t }));
  const semantic = (n: NodeState): string => JSON.stringify([n.documentVersion, n.status, n.membershipQuorum]);
  fc.assert(
    fc.property(arbEntry, fc.array(arbEntry, { minLength: 1, maxLength: 6 }), fc.integer(), (start, copies, seed) => {
      const order = [...copies].sort((x, y) => ((x.documentUpdateTimeMicros ^ seed) % 7) - ((y.documentUpdateTimeMicros ^ seed) % 7));
      const results = [copies, order, [...copies].reverse(), [...copies, ...copies]].map((seq) => {
        const nodes = { a: structuredClone(start) };
        for (const c of seq) mergeEntry(nodes, structuredClone(c), ctx(), emptyOutcome());
        return semantic(nodes.a);
      });
      const best = [start, ...copies].reduce((m, c) => (compareEntries(c, m) > 0 ? c : m));
      return results.every((r) => r === semantic(best));
    }),
    { numRuns: 300, seed: 42 },
  );
});

test('self rule: a copy of our entry that would win makes us bump above it', () => {
  const nodes = { me: entry('me', 5, 'AVAILABLE') };
  let out = emptyOutcome();
  mergeSelf(nodes, entry('me', 5, 'UNKNOWN'), ctx(), out);
  assert.is(nodes.me.documentVersion, 5, 'UNKNOWN at our version loses: nothing to win back');
  assert.not.ok(out.touched);
  out = emptyOutcome();
  mergeSelf(nodes, entry('me', 5, 'UNAVAILABLE'), ctx(), out);
  assert.is(nodes.me.documentVersion, 6);
  assert.is(nodes.me.status, 'AVAILABLE');
  assert.ok(out.changes.has('SELF_CHANGE') && out.selfBumped);
  mergeSelf(nodes, entry('me', 9, 'UNAVAILABLE'), ctx(), emptyOutcome());
  assert.is(nodes.me.documentVersion, 10);
  out = emptyOutcome();
  mergeSelf(nodes, entry('me', 12, 'AVAILABLE'), ctx(), out);
  assert.is(nodes.me.documentVersion, 12, 'same content at a higher version: adopt the version only');
  assert.not.ok(out.changes.has('SELF_CHANGE'));
  assert.ok(out.touched);
  mergeEntry(nodes, entry('me', 20, 'UNAVAILABLE'), ctx(), emptyOutcome());
  assert.is(nodes.me.status, 'AVAILABLE', 'mergeEntry routes our own id through the self rule');
});

test('unknown entries: only live ones are learnt by gossip; never our address', () => {
  const nodes: Record<string, NodeState> = { me: entry('me', 1, 'AVAILABLE') };
  const out = emptyOutcome();
  for (const s of ['UNAVAILABLE', 'REPLACED', 'UNKNOWN'] as const) mergeEntry(nodes, entry('x', 3, s), ctx(), out);
  assert.equal(Object.keys(nodes), ['me']);
  mergeEntry(nodes, entry('old-me', 3, 'AVAILABLE', { groupReference: ref('me') }), ctx(), out);
  assert.equal(Object.keys(nodes), ['me']);
  mergeEntry(nodes, entry('x', 3, 'UNKNOWN'), ctx(), out, true);
  assert.is(nodes.x!.status, 'UNKNOWN', 'a NodeState POST inserts whatever it says');
  mergeEntry(nodes, entry('y', 0, 'SYNCHRONIZING', { documentSelfLink: '/elsewhere/y' }), ctx(), out);
  assert.is(nodes.y!.documentSelfLink, `${LINK}/y`);
  assert.ok(out.changes.has('PEER_ADDED'));
});

test('marks happen on the transition only, with a local removal deadline', () => {
  const nodes: Record<string, NodeState> = { me: entry('me', 1, 'AVAILABLE'), a: entry('a', 4, 'AVAILABLE') };
  let out = emptyOutcome();
  markPeer(nodes, 'a', 'UNAVAILABLE', ctx(1_000), out);
  assert.equal([nodes.a!.status, nodes.a!.documentVersion, nodes.a!.documentExpirationTimeMicros], ['UNAVAILABLE', 5, 1_000 + 300_000_000]);
  assert.ok(out.changes.has('PEER_UNAVAILABLE'));
  out = emptyOutcome();
  markPeer(nodes, 'a', 'UNAVAILABLE', ctx(2_000), out);
  assert.is(nodes.a!.documentVersion, 5);
  assert.not.ok(out.touched);
  markPeer(nodes, 'me', 'UNAVAILABLE', ctx(), out);
  assert.is(nodes.me!.status, 'AVAILABLE', 'never ourselves');
  // Adopting a peer's UNAVAILABLE copy keeps our own deadline rather than the sender's.
  mergeEntry(nodes, entry('a', 6, 'UNAVAILABLE', { documentExpirationTimeMicros: 42 }), ctx(9_000), emptyOutcome());
  assert.is(nodes.a!.documentExpirationTimeMicros, 1_000 + 300_000_000);
  assert.equal(expireEntries(nodes, ctx(300_000_999), emptyOutcome()), []);
  out = emptyOutcome();
  assert.equal(expireEntries(nodes, ctx(300_001_000), out), ['a']);
  assert.ok(out.changes.has('PEER_EXPIRED'));
});

function groupOf(nodes: NodeState[], quorum: number, localChangeMicros = 0): NodeGroupState {
  const map: Record<string, NodeState> = {};
  for (const n of nodes) map[n.id] = { ...n, membershipQuorum: n.id === 'me' ? quorum : n.membershipQuorum };
  return {
    config: defaultGroupConfig(),
    nodes: map,
    membershipUpdateTimeMicros: 0,
    localMembershipUpdateTimeMicros: localChangeMicros,
    documentVersion: 0,
    documentKind: KINDS.nodeGroupState,
    documentSelfLink: LINK,
    documentOwner: 'me',
    documentUpdateTimeMicros: 0,
    documentExpirationTimeMicros: 0,
  };
}

test('quorum counts AVAILABLE entries (observers too); stability is 5 intervals after the last change', () => {
  const g = groupOf(
    [
      entry('me', 1, 'AVAILABLE'),
      entry('a', 1, 'AVAILABLE', { options: ['OBSERVER'] }),
      entry('b', 1, 'UNAVAILABLE'),
      entry('c', 1, 'UNKNOWN'),
    ],
    2,
    10_000_000,
  );
  assert.is(availableCount(g), 2);
  assert.ok(groupHasQuorum(g));
  assert.not.ok(groupHasQuorum({ ...g, nodes: { ...g.nodes, me: { ...g.nodes.me!, membershipQuorum: 3 } } }));
  assert.not.ok(isGroupSettled(g, 14_999_999, 1_000_000));
  assert.ok(isGroupSettled(g, 15_000_000, 1_000_000));
  const lone = groupOf([entry('me', 0, 'SYNCHRONIZING')], 1, 10_000_000);
  assert.ok(isGroupSettled(lone, 10_000_000, 1_000_000), 'a lone node with quorum 1 is settled at once');
  assert.is(availableCount(lone), 1, 'a one-entry map counts as one');
  assert.not.ok(isGroupSettled(groupOf([entry('me', 0, 'AVAILABLE')], 2, 10_000_000), 10_000_000, 1_000_000));
});

test.run();
