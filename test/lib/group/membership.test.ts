import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../../lib/document.js';
import {
  availablePeers,
  createMembership,
  hasQuorum,
  isAvailable,
  isSettled,
  membershipUpdateTimeMicros,
  parseMembershipSnapshot,
  quorumFanOutFailed,
  selfEntry,
  step,
  type MembershipEffect,
  type MembershipOptions,
  type MembershipSnapshot,
  type MembershipState,
  type StepContext,
} from '../../../lib/group/membership.js';
import { parseNodeGroupState, type NodeGroupState, type NodeState } from '../../../lib/group/types.js';
import { limits } from '../../../lib/limits.js';
import { mulberry32 } from '../../support/sim-network.js';

const LINK = '/core/node-groups/default';
const ref = (id: string): string => `http://${id}${LINK}`;
const T0 = 1_700_000_000_000_000;

function ctx(ms = 0, seed = 1): StepContext {
  return { nowMicros: T0 + ms * 1000, random: mulberry32(seed) };
}

function make(opts: Partial<MembershipOptions> = {}): MembershipState {
  return createMembership({ selfId: 'me', groupReference: ref('me'), ...opts }, T0);
}

function of<T extends MembershipEffect['type']>(effects: MembershipEffect[], type: T): Extract<MembershipEffect, { type: T }>[] {
  return effects.filter((e): e is Extract<MembershipEffect, { type: T }> => e.type === type);
}

function peerEntry(id: string, version: number, status: NodeState['status'] = 'AVAILABLE', quorum = 2): NodeState {
  return {
    id,
    groupReference: ref(id),
    status,
    options: ['PEER'],
    membershipQuorum: quorum,
    locationQuorum: 1,
    documentVersion: version,
    documentKind: KINDS.nodeState,
    documentSelfLink: `${LINK}/${id}`,
    documentUpdateTimeMicros: 0,
    documentExpirationTimeMicros: 0,
  };
}

function remote(owner: string, entries: NodeState[], clock = 0): NodeGroupState {
  const nodes: Record<string, NodeState> = {};
  for (const e of entries) nodes[e.id] = e;
  return parseNodeGroupState({ documentOwner: owner, nodes, membershipUpdateTimeMicros: clock }, LINK);
}

/** A host that knows peers a and b, all AVAILABLE, settled at 10 s. */
function threeHosts(): MembershipState {
  let s = make({ peerNodeCount: 2 });
  s = step(s, { type: 'tick' }, ctx(1000)).state;
  s = step(s, { type: 'gossipReceived', body: remote('a', [peerEntry('a', 2), peerEntry('b', 2)], 3) }, ctx(1100)).state;
  return s;
}

test('a new host: SYNCHRONIZING at version 0 with the default or explicit quorum', () => {
  const s = make({ peerNodeCount: 2 });
  assert.equal([selfEntry(s).status, selfEntry(s).documentVersion, selfEntry(s).membershipQuorum], ['SYNCHRONIZING', 0, 2]);
  assert.is(selfEntry(s).documentSelfLink, `${LINK}/me`);
  assert.is(s.group.documentOwner, 'me');
  assert.is(selfEntry(make({ peerNodeCount: 2, membershipQuorum: 3 })).membershipQuorum, 3);
  assert.is(selfEntry(make()).membershipQuorum, 1);
});

test('a lone node becomes AVAILABLE on its first tick, is settled and available, and gossips to nobody', () => {
  const s0 = make();
  const frozen = JSON.stringify(s0);
  const r = step(s0, { type: 'tick' }, ctx(1000));
  assert.is(JSON.stringify(s0), frozen, 'step does not touch its input');
  assert.is(selfEntry(r.state).status, 'AVAILABLE');
  assert.is(selfEntry(r.state).documentVersion, 1);
  assert.equal(of(r.effects, 'send'), []);
  assert.equal(of(r.effects, 'availability'), [{ type: 'availability', available: true }]);
  assert.equal(of(r.effects, 'changed'), [{ type: 'changed', changes: ['SELF_CHANGE'], overruled: false }]);
  assert.is(of(r.effects, 'persist').length, 1);
  assert.ok(isSettled(r.state, T0) && hasQuorum(r.state) && isAvailable(r.state, T0));
  const again = step(r.state, { type: 'tick' }, ctx(2000));
  assert.equal(again.effects, [], 'nothing changes, nothing to say');
});

test('self join is skipped without a change', () => {
  const s = make();
  const r = step(
    s,
    { type: 'join', request: { kind: KINDS.joinPeerRequest, memberGroupReference: 'http://ME/core/node-groups/default/' } },
    ctx(),
  );
  assert.equal(of(r.effects, 'log'), [{ type: 'log', message: 'Skipping self join' }]);
  assert.equal(of(r.effects, 'send'), []);
  assert.is(of(r.effects, 'reply').length, 1);
  assert.is(selfEntry(r.state).documentVersion, 0);
});

test('join: own entry updated, GET the peer, merge, then POST our entry to it', () => {
  const s = make({ peerNodeCount: 1 });
  const r = step(
    s,
    {
      type: 'join',
      request: { kind: KINDS.joinPeerRequest, memberGroupReference: ref('a'), membershipQuorum: 3, localNodeOptions: ['OBSERVER'] },
    },
    ctx(),
  );
  const self = selfEntry(r.state);
  assert.equal([self.documentVersion, self.membershipQuorum, self.options], [1, 3, ['OBSERVER']]);
  const [get] = of(r.effects, 'send');
  assert.equal(get, { type: 'send', purpose: 'joinFetch', requestId: 1, to: ref('a'), method: 'GET' });
  assert.ok(of(r.effects, 'changed')[0]!.changes.includes('QUORUM_CHANGED'));
  // A lower quorum in the join does not lower ours (seed 000).
  const lower = step(
    s,
    { type: 'join', request: { kind: KINDS.joinPeerRequest, memberGroupReference: ref('a'), membershipQuorum: 1 } },
    ctx(),
  );
  assert.is(selfEntry(lower.state).membershipQuorum, 2);

  const f = step(r.state, { type: 'joinFetched', requestId: 1, body: remote('a', [peerEntry('a', 3), peerEntry('b', 1)]) }, ctx(5));
  assert.equal(Object.keys(f.state.group.nodes).sort(), ['a', 'b', 'me']);
  const post = of(f.effects, 'send')[0]!;
  assert.is(post.purpose, 'joinInsert');
  assert.is(post.to, ref('a'));
  assert.is(post.method, 'POST');
  assert.equal(post.purpose === 'joinInsert' && post.body.id, 'me');
  assert.ok(of(f.effects, 'changed')[0]!.changes.includes('PEER_ADDED'));
  assert.equal(f.state.joins, []);
});

test('join retries its GET every tick until the 6 s window closes', () => {
  let s = step(make(), { type: 'join', request: { kind: KINDS.joinPeerRequest, memberGroupReference: ref('a') } }, ctx()).state;
  let gets = 0;
  for (let ms = 0; ms <= 8000; ms += 1000) {
    const id = s.joins[0]?.requestId;
    if (id != null) s = step(s, { type: 'joinFailed', requestId: id }, ctx(ms + 10)).state;
    const r = step(s, { type: 'tick' }, ctx(ms + 1000));
    gets += of(r.effects, 'send').filter((e) => e.purpose === 'joinFetch').length;
    s = r.state;
  }
  assert.is(gets, 5);
  assert.is(s.joinRetryCount, 5);
  assert.equal(s.joins, []);
});

test('gossip: every tick PATCHes up to 10 peers chosen by the injected random source', () => {
  let s = make();
  const peers = Array.from({ length: 15 }, (_, i) => peerEntry(`p${i}`, 1));
  s = step(s, { type: 'gossipReceived', body: remote('p0', peers) }, ctx()).state;
  const targets = (seed: number): string[] =>
    of(step(s, { type: 'tick' }, ctx(1000, seed)).effects, 'send').map((e) => (e.purpose === 'gossip' ? e.peerId : ''));
  assert.is(targets(1).length, 10);
  assert.equal(targets(1), targets(1));
  assert.is.not(targets(1).join(), targets(2).join());
  const sends = of(step(s, { type: 'tick' }, ctx(1000)).effects, 'send');
  assert.ok(
    sends.every(
      (e) => e.purpose === 'gossip' && e.method === 'PATCH' && e.body.documentOwner === 'me' && e.body.nodes.me!.status === 'AVAILABLE',
    ),
  );
});

test('gossipReceived merges and answers with the merged state; the clock is max-merged', () => {
  const s = make({ peerNodeCount: 2 });
  const r = step(s, { type: 'gossipReceived', body: remote('a', [peerEntry('a', 2), peerEntry('b', 2)], 41) }, ctx());
  const [reply] = of(r.effects, 'reply');
  assert.equal(Object.keys(reply!.body.nodes).sort(), ['a', 'b', 'me']);
  assert.is(membershipUpdateTimeMicros(r.state), 41, 'adopting only max-merges the membership clock');
  const t = step(r.state, { type: 'tick' }, ctx(1000));
  assert.is(membershipUpdateTimeMicros(t.state), 42, 'a local write raises it by one');
  assert.equal(
    availablePeers(t.state)
      .map((n) => n.id)
      .sort(),
    ['a', 'b'],
  );
});

test('a failed probe marks the peer UNAVAILABLE once; stale failures are ignored', () => {
  const s = threeHosts();
  const tick = step(s, { type: 'tick' }, ctx(2000));
  const sends = of(tick.effects, 'send');
  const toA = sends.find((e) => e.purpose === 'gossip' && e.peerId === 'a')!;
  const toB = sends.find((e) => e.purpose === 'gossip' && e.peerId === 'b')!;
  let r = step(tick.state, { type: 'gossipFailed', peerId: 'a', requestId: toA.requestId }, ctx(2010));
  assert.equal([r.state.group.nodes.a!.status, r.state.group.nodes.a!.documentVersion], ['UNAVAILABLE', 3]);
  assert.ok(
    of(r.effects, 'send').some((e) => e.purpose === 'gossip' && e.peerId === 'b' && e.body.nodes.a?.status === 'UNAVAILABLE'),
    'the mark goes to the others at once',
  );
  assert.ok(of(r.effects, 'changed')[0]!.changes.includes('PEER_UNAVAILABLE'));
  r = step(r.state, { type: 'gossipFailed', peerId: 'a', requestId: toA.requestId }, ctx(2020));
  assert.is(r.state.group.nodes.a!.documentVersion, 3, 'only on the transition');
  assert.equal(of(r.effects, 'changed'), []);
  // b answered a later request before an earlier one timed out: the timeout is stale.
  const next = step(tick.state, { type: 'tick' }, ctx(3000));
  const toB2 = of(next.effects, 'send').find((e) => e.purpose === 'gossip' && e.peerId === 'b')!;
  let q = step(
    next.state,
    { type: 'gossipReplied', peerId: 'b', requestId: toB2.requestId, body: remote('b', [peerEntry('b', 2)]) },
    ctx(3005),
  );
  q = step(q.state, { type: 'gossipFailed', peerId: 'b', requestId: toB.requestId }, ctx(22_000));
  assert.is(q.state.group.nodes.b!.status, 'AVAILABLE');
  // Incoming gossip from a peer also supersedes requests already sent to it.
  const heard = step(tick.state, { type: 'gossipReceived', body: remote('a', [peerEntry('a', 2)]) }, ctx(2005));
  assert.is(
    step(heard.state, { type: 'gossipFailed', peerId: 'a', requestId: toA.requestId }, ctx(2010)).state.group.nodes.a!.status,
    'AVAILABLE',
  );
});

/** The gossip probe of `peer` among `effects`. */
function probeOf(effects: MembershipEffect[], peer: string) {
  const p = of(effects, 'send').find((e) => e.purpose === 'gossip' && e.peerId === peer);
  if (p?.purpose !== 'gossip') throw new Error(`no probe of ${peer}`);
  return p;
}

test('a probe that times out is a miss and is sent again at once; the second miss in a row marks the peer', () => {
  const tick = step(threeHosts(), { type: 'tick' }, ctx(2000));
  const first = probeOf(tick.effects, 'a');
  assert.is(first.timeoutMicros, limits.membershipProbeTimeoutMicros);
  let r = step(tick.state, { type: 'gossipFailed', peerId: 'a', requestId: first.requestId, timedOut: true }, ctx(2500));
  assert.is(r.state.group.nodes.a!.status, 'AVAILABLE', 'one miss does not mark');
  assert.equal(of(r.effects, 'changed'), []);
  const again = probeOf(r.effects, 'a');
  assert.ok(again.requestId > first.requestId);
  r = step(r.state, { type: 'gossipFailed', peerId: 'a', requestId: again.requestId, timedOut: true }, ctx(3000));
  assert.equal([r.state.group.nodes.a!.status, r.state.group.nodes.a!.documentVersion], ['UNAVAILABLE', 3]);
  assert.ok(of(r.effects, 'changed')[0]!.changes.includes('PEER_UNAVAILABLE'));
  // A refused probe is not a miss: nothing listens there, the peer is marked at once.
  const refused = step(tick.state, { type: 'gossipFailed', peerId: 'b', requestId: probeOf(tick.effects, 'b').requestId }, ctx(2010));
  assert.is(refused.state.group.nodes.b!.status, 'UNAVAILABLE');
});

test('probes in flight when a miss was counted, and misses before a proof of life, do not add up', () => {
  // Two rounds sent, then this host stalls: on waking, both time out together. One miss.
  const t1 = step(threeHosts(), { type: 'tick' }, ctx(2000));
  const t2 = step(t1.state, { type: 'tick' }, ctx(3000));
  const miss = step(
    t2.state,
    { type: 'gossipFailed', peerId: 'a', requestId: probeOf(t1.effects, 'a').requestId, timedOut: true },
    ctx(4200),
  );
  let r = step(miss.state, { type: 'gossipFailed', peerId: 'a', requestId: probeOf(t2.effects, 'a').requestId, timedOut: true }, ctx(4200));
  assert.is(r.state.group.nodes.a!.status, 'AVAILABLE');
  assert.equal(of(r.effects, 'send'), [], 'the second timeout is not a miss of its own');
  // The probe sent again after the miss is answered late but answered: the misses start over.
  const again = probeOf(miss.effects, 'a');
  r = step(r.state, { type: 'gossipReplied', peerId: 'a', requestId: again.requestId, body: remote('a', [peerEntry('a', 2)]) }, ctx(4500));
  assert.equal(r.state.probeMisses, {});
  const t3 = step(r.state, { type: 'tick' }, ctx(5000));
  r = step(t3.state, { type: 'gossipFailed', peerId: 'a', requestId: probeOf(t3.effects, 'a').requestId, timedOut: true }, ctx(5500));
  assert.is(r.state.group.nodes.a!.status, 'AVAILABLE', 'a miss after a proof of life is a first miss');
});

test('leave: own entry UNAVAILABLE, one notice per live peer with the leave deadline, then no tick revives it', () => {
  let s = threeHosts();
  s = step(s, { type: 'gossipFailed', peerId: 'b', requestId: 99 }, ctx(1500)).state;
  const r = step(s, { type: 'leave' }, ctx(2000));
  const self = selfEntry(r.state);
  assert.equal([self.status, self.documentVersion], ['UNAVAILABLE', selfEntry(s).documentVersion + 1]);
  const sends = of(r.effects, 'send');
  assert.equal(
    sends.map((e) => [e.purpose, 'peerId' in e ? e.peerId : '', 'timeoutMicros' in e ? e.timeoutMicros : 0]),
    [['leave', 'a', limits.membershipLeaveTimeoutMicros]],
    'b is already UNAVAILABLE',
  );
  const notice = sends[0]!;
  if (notice.purpose !== 'leave') throw new Error('a leave notice expected');
  assert.is(notice.body.nodes.me!.status, 'UNAVAILABLE');
  assert.is(of(r.effects, 'persist').length, 1);
  assert.equal(step(r.state, { type: 'leave' }, ctx(2100)).effects, [], 'said once');
  const later = step(r.state, { type: 'tick' }, ctx(3000));
  assert.is(selfEntry(later.state).status, 'UNAVAILABLE');
  assert.equal(of(later.effects, 'send'), []);
  // The peer merges the notice like any gossip: the leaver is gone at once, above its last copy.
  let peer = createMembership({ selfId: 'a', groupReference: ref('a') }, T0);
  peer = step(peer, { type: 'gossipReceived', body: remote('me', [{ ...selfEntry(s), groupReference: ref('me') }]) }, ctx(1000)).state;
  assert.is(peer.group.nodes.me!.status, 'AVAILABLE');
  const told = step(peer, { type: 'gossipReceived', body: parseNodeGroupState(JSON.parse(JSON.stringify(notice.body)), LINK) }, ctx(2001));
  assert.is(told.state.group.nodes.me!.status, 'UNAVAILABLE');
  assert.ok(of(told.effects, 'changed')[0]!.changes.includes('PEER_UNAVAILABLE'));
});

test('a reply from another id at a peer address marks the peer REPLACED', () => {
  const s = threeHosts();
  const r = step(
    s,
    { type: 'gossipReplied', peerId: 'a', requestId: 1, body: remote('a2', [{ ...peerEntry('a2', 1), groupReference: ref('a') }]) },
    ctx(2000),
  );
  assert.equal([r.state.group.nodes.a!.status, r.state.group.nodes.a!.documentVersion], ['REPLACED', 3]);
  assert.is(r.state.group.nodes.a2!.status, 'AVAILABLE');
  assert.ok(
    of(step(r.state, { type: 'tick' }, ctx(3000)).effects, 'send').every((e) => e.purpose !== 'gossip' || e.peerId !== 'a'),
    'REPLACED peers are not probed',
  );
});

test('NodeState POST inserts an entry; our own id goes through the self rule', () => {
  const s = make();
  let r = step(s, { type: 'nodeStateReceived', node: peerEntry('x', 0, 'UNKNOWN') }, ctx());
  assert.is(r.state.group.nodes.x!.status, 'UNKNOWN');
  assert.is(of(r.effects, 'reply').length, 1);
  r = step(r.state, { type: 'nodeStateReceived', node: { ...peerEntry('me', 7, 'UNAVAILABLE'), groupReference: ref('me') } }, ctx());
  assert.equal([selfEntry(r.state).status, selfEntry(r.state).documentVersion], ['SYNCHRONIZING', 8]);
});

test('UpdateQuorumRequest: max(1, value), version + 1, fan-out to AVAILABLE peers only', () => {
  let s = threeHosts();
  s = step(s, { type: 'gossipFailed', peerId: 'b', requestId: 99 }, ctx(1500)).state;
  const v = selfEntry(s).documentVersion;
  const r = step(
    s,
    { type: 'updateQuorum', request: { kind: KINDS.updateQuorumRequest, isGroupUpdate: true, membershipQuorum: 1 } },
    ctx(2000),
  );
  assert.equal([selfEntry(r.state).membershipQuorum, selfEntry(r.state).documentVersion], [1, v + 1]);
  const sends = of(r.effects, 'send');
  assert.equal(sends, [
    {
      type: 'send',
      // Ids 1 and 2 went to the gossip that told the others of b's mark at once.
      purpose: 'quorumUpdate',
      requestId: 3,
      peerId: 'a',
      to: ref('a'),
      method: 'PATCH',
      body: { kind: KINDS.updateQuorumRequest, isGroupUpdate: false, membershipQuorum: 1 },
    },
  ]);
  assert.ok(of(r.effects, 'changed')[0]!.changes.includes('QUORUM_CHANGED'));
  assert.is(of(r.effects, 'persist').length, 1);
  assert.is(r.state.group.localMembershipUpdateTimeMicros, T0 + 2_000_000, 'restarts the stability window');
  const clamp = step(
    s,
    { type: 'updateQuorum', request: { kind: KINDS.updateQuorumRequest, isGroupUpdate: false, membershipQuorum: -4, locationQuorum: 0 } },
    ctx(),
  );
  assert.equal([selfEntry(clamp.state).membershipQuorum, selfEntry(clamp.state).locationQuorum], [1, 1]);
  assert.equal(of(clamp.effects, 'send'), []);
  assert.equal(
    [quorumFanOutFailed(2, 1), quorumFanOutFailed(2, 2), quorumFanOutFailed(4, 2), quorumFanOutFailed(4, 3)],
    [false, true, false, true],
  );
});

test('config PATCH replaces the given fields and is persisted', () => {
  const r = step(make(), { type: 'configPatched', config: { nodeRemovalDelayMicros: 1000 } }, ctx());
  assert.is(r.state.group.config.nodeRemovalDelayMicros, 1000);
  assert.is(r.state.group.config.stableGroupMaintenanceIntervalCount, 5);
  assert.is(of(r.effects, 'persist')[0]!.snapshot.config.nodeRemovalDelayMicros, 1000);
});

test('persist / restore round trip', () => {
  let s = threeHosts();
  s = step(s, { type: 'gossipFailed', peerId: 'b', requestId: 99 }, ctx(1500)).state;
  const r = step(
    s,
    { type: 'updateQuorum', request: { kind: KINDS.updateQuorumRequest, isGroupUpdate: false, membershipQuorum: 3 } },
    ctx(2000),
  );
  const snap = JSON.parse(JSON.stringify(of(r.effects, 'persist').at(-1)!.snapshot)) as MembershipSnapshot;
  assert.equal([snap.format, snap.selfId, snap.groupLink], [1, 'me', LINK]);
  assert.equal(snap.nodes, r.state.group.nodes);
  assert.equal(parseMembershipSnapshot(snap), snap, 'what was persisted reads back as it was');
  assert.throws(() => parseMembershipSnapshot({ ...snap, format: 2 }), /unknown format/);
  assert.throws(() => parseMembershipSnapshot({ ...snap, nodes: { a: { id: 'b' } } }), /groupReference|does not match/);
  assert.throws(() => parseMembershipSnapshot('garbage'), /unknown format/);

  const restored = step(make({ peerNodeCount: 2 }), { type: 'restored', snapshot: snap }, ctx(60_000));
  const g = restored.state.group;
  assert.equal([g.nodes.a!.status, g.nodes.a!.documentVersion], ['UNKNOWN', 2], 'unconfirmed, same version');
  assert.equal([g.nodes.b!.status, g.nodes.b!.documentExpirationTimeMicros], ['UNAVAILABLE', T0 + 60_000_000 + 300_000_000]);
  const self = selfEntry(restored.state);
  assert.equal([self.status, self.documentVersion, self.membershipQuorum], ['SYNCHRONIZING', snap.nodes.me!.documentVersion + 1, 3]);
  assert.ok(membershipUpdateTimeMicros(restored.state) > snap.membershipUpdateTimeMicros);
  assert.not.ok(hasQuorum(restored.state), 'peers count only once someone confirms them');
  // A live peer's word replaces the UNKNOWN at once.
  const heard = step(restored.state, { type: 'gossipReceived', body: remote('a', [peerEntry('a', 2)]) }, ctx(60_100));
  assert.is(heard.state.group.nodes.a!.status, 'AVAILABLE');
  // An explicit quorum on the restart wins over the snapshot's.
  assert.is(selfEntry(step(make({ membershipQuorum: 2 }), { type: 'restored', snapshot: snap }, ctx()).state).membershipQuorum, 2);
  // Restored under another id: the old entry is an older incarnation at our address.
  const renamed = step(createMembership({ selfId: 'me2', groupReference: ref('me') }, T0), { type: 'restored', snapshot: snap }, ctx());
  const t = step(renamed.state, { type: 'tick' }, ctx(1000));
  assert.is(t.state.group.nodes.me!.status, 'REPLACED');
});

test('availability is reported when it flips, including by the passage of time', () => {
  let s = threeHosts();
  let flips: boolean[] = [];
  for (let ms = 2000; ms <= 8000; ms += 1000) {
    const r = step(s, { type: 'tick' }, ctx(ms));
    flips = flips.concat(of(r.effects, 'availability').map((e) => e.available));
    s = r.state;
    if (ms === 5000) assert.not.ok(isAvailable(s, T0 + ms * 1000));
  }
  assert.equal(flips, [true]);
  assert.ok(isAvailable(s, T0 + 8_000_000));
  const down = step(s, { type: 'gossipFailed', peerId: 'a', requestId: 1 }, ctx(8100));
  assert.equal(of(down.effects, 'availability'), [{ type: 'availability', available: false }], 'a change restarts the window');
});

test('a closed connection (suspected) probes the peer at once, once per probe deadline; refused, it is marked', () => {
  const s = threeHosts();
  const r = step(s, { type: 'suspected', peerId: 'a' }, ctx(2000));
  const probe = probeOf(r.effects, 'a');
  assert.is(of(r.effects, 'send').length, 1, 'only the suspected peer, not a whole gossip round');
  assert.equal(of(step(r.state, { type: 'suspected', peerId: 'a' }, ctx(2100)).effects, 'send'), [], 'not again within the deadline');
  assert.ok(probeOf(step(r.state, { type: 'suspected', peerId: 'a' }, ctx(2600)).effects, 'a'), 'again after it');
  const refused = step(r.state, { type: 'gossipFailed', peerId: 'a', requestId: probe.requestId }, ctx(2003));
  assert.is(refused.state.group.nodes.a!.status, 'UNAVAILABLE');
  assert.equal(of(step(refused.state, { type: 'suspected', peerId: 'a' }, ctx(3000)).effects, 'send'), [], 'a peer already marked');
  assert.equal(of(step(s, { type: 'suspected', peerId: 'me' }, ctx(2000)).effects, 'send'), [], 'never itself');
  assert.equal(of(step(s, { type: 'suspected', peerId: 'zz' }, ctx(2000)).effects, 'send'), [], 'nor a stranger');
});

test("a peer's UNAVAILABLE mark of a host we heard from within a probe round is not adopted: that host is probed at once", () => {
  // me last heard from a at 1.1 s (its gossip). b, healed from a partition, marked a while cut off.
  const s = threeHosts();
  const mark = { ...peerEntry('a', 3, 'UNAVAILABLE'), documentUpdateTimeMicros: T0 + 900_000 };
  const healed = step(s, { type: 'gossipReceived', body: remote('b', [peerEntry('b', 2), mark], 4) }, ctx(1800));
  assert.is(healed.state.group.nodes.a!.status, 'AVAILABLE', 'a stale mark does not write a live host off');
  assert.ok(probeOf(healed.effects, 'a'), 'a is probed at once instead');
  const refused = step(healed.state, { type: 'gossipFailed', peerId: 'a', requestId: probeOf(healed.effects, 'a').requestId }, ctx(1803));
  assert.is(refused.state.group.nodes.a!.status, 'UNAVAILABLE', 'and marked here if the probe fails');
  // Past the time our own probes take to write a host off, the mark is adopted at once, as before.
  const later = step(s, { type: 'gossipReceived', body: remote('b', [peerEntry('b', 2), mark], 4) }, ctx(2200));
  assert.is(later.state.group.nodes.a!.status, 'UNAVAILABLE');
  // A host's own word that it left always counts.
  const left = step(s, { type: 'gossipReceived', body: remote('a', [mark], 4) }, ctx(1800));
  assert.is(left.state.group.nodes.a!.status, 'UNAVAILABLE');
});

test.run();
