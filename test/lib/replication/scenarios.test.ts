/**
 * Scripted replication scenarios on the simulated hosts (test/support/sim-replication.ts): the
 * replica's rule (apply, acknowledge a duplicate, refuse an older epoch), the owner's quorum
 * accounting on the write path, and the faults a replica must shrug off: duplicated packets,
 * packets reordered by a raw network, and a stale owner writing at an epoch the others left.
 * Each scenario ends with the three acceptance checks (logs only move forward, replicas agree,
 * acknowledged writes survive).
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NodeId } from '../../../lib/ids.js';
import { selectNodes } from '../../../lib/hash.js';
import { ReplicationSim, replicaDecision, type SimOptions } from '../../support/sim-replication.js';

const IDS3 = ['h1', 'h2', 'h3'] as const;

/** For `link` among `ids`: its owner, the owner among the rest, and the others. */
function roles(link: string, ids: readonly NodeId[]): { owner: NodeId; next: NodeId; rest: NodeId[] } {
  const among = (xs: readonly NodeId[]) =>
    selectNodes(
      link,
      xs.map((id) => ({ id, eligible: true })),
    )[0]!;
  const owner = among(ids);
  const next = among(ids.filter((i) => i !== owner));
  return { owner, next, rest: ids.filter((i) => i !== owner && i !== next) };
}

function clean(sim: ReplicationSim): void {
  const problems = sim.checkAll();
  assert.equal(problems, [], problems.join('\n'));
}

test('replica rule: apply newer, acknowledge duplicates, refuse older epochs', () => {
  assert.is(replicaDecision(undefined, { epoch: 0, version: 0 }), 'apply');
  assert.is(replicaDecision(undefined, { epoch: 3, version: 9 }), 'apply');
  assert.is(replicaDecision({ epoch: 1, version: 4 }, { epoch: 1, version: 5 }), 'apply');
  assert.is(replicaDecision({ epoch: 1, version: 4 }, { epoch: 1, version: 9 }), 'apply'); // full states: gaps are fine
  assert.is(replicaDecision({ epoch: 1, version: 4 }, { epoch: 2, version: 0 }), 'apply'); // a new epoch wins at any version
  assert.is(replicaDecision({ epoch: 1, version: 4 }, { epoch: 1, version: 4 }), 'duplicate');
  assert.is(replicaDecision({ epoch: 1, version: 4 }, { epoch: 1, version: 2 }), 'duplicate');
  assert.is(replicaDecision({ epoch: 2, version: 0 }, { epoch: 1, version: 9 }), 'refuse');
});

test('a write is acknowledged at the quorum, the owner counting itself once', () => {
  const sim = new ReplicationSim({ hosts: 3, faults: { minLatencyMs: 2, maxLatencyMs: 2 } });
  const link = '/l/0';
  const { owner, next } = roles(link, IDS3);
  // A record to one replica is held back: the other reply plus the owner make the quorum of 2.
  sim.filter = (p) => (p.kind === 'rpl' && p.to === next ? { delayMs: 30 } : undefined);
  const w = sim.write(owner, link, 'put', { value: 'a' });
  assert.is(w.outcome, 'pending');
  assert.is(w.action, 'POST');
  assert.equal(w.state, { epoch: 0, version: 0, owner, value: 'a', deleted: false, writeId: w.id });
  sim.runFor(4);
  assert.is(w.outcome, 'acked');
  assert.is(sim.host(next).index.get(link), undefined);
  sim.runFor(40);
  assert.is(sim.host(next).index.get(link)?.value, 'a');
  // Update and delete go through the same path, version by version.
  const u = sim.write(next, link, 'put', { value: 'b' }); // entering at a non-owner
  const d = sim.write(owner, link, 'delete');
  sim.drain();
  assert.equal([u.outcome, u.action, u.state?.version], ['acked', 'PUT', 1]);
  assert.equal([d.outcome, d.action, d.state?.version, d.state?.deleted], ['acked', 'DELETE', 2, true]);
  assert.is(sim.write(owner, link, 'delete').outcome, 'noop');
  clean(sim);
});

test('a write fails as soon as the quorum is out of reach, with the tracker message', () => {
  const sim = new ReplicationSim({ hosts: 3 });
  const link = '/l/0';
  const { owner, next, rest } = roles(link, IDS3);
  sim.seed(link, 'v0');
  sim.crash(rest[0]!);
  // 'all' over 3 with one member down: failure threshold 1, failed before any reply.
  const w = sim.write(owner, link, 'put', { quorum: 'all' });
  assert.is(w.outcome, 'failed');
  assert.is(w.status, 400);
  assert.is(w.message, `(Original id: ${owner}-${w.id}) PUT to ${link} failed. Success: 1,  Fail: 1, quorum: 3, failure threshold: 1`);
  // The owner's append stays (in doubt, as in Xenon), and the record still reaches the live replica.
  sim.drain();
  assert.is(sim.host(next).index.get(link)?.writeId, w.id);
  // The default quorum of 2 is met by the owner and the live replica.
  assert.is(sim.write(owner, link, 'put').outcome, 'pending');
  sim.drain();
  assert.is(sim.writes.at(-1)!.outcome, 'acked');
  // A requested quorum above the replica set is refused before anything is appended.
  const big = sim.write(owner, link, 'put', { quorum: 4 });
  assert.is(big.outcome, 'rejected');
  assert.is(big.reason, 'Requested quorum 4 is larger than member count 3');
  assert.is(big.state, undefined);
  sim.settle();
  clean(sim);
});

for (const network of ['ordered', 'raw'] as const) {
  test(`duplicate delivery is harmless (${network} network)`, () => {
    const sim = new ReplicationSim({ hosts: 3, seed: 7, network, faults: { duplicateRate: 1, minLatencyMs: 1, maxLatencyMs: 8 } });
    const links = ['/l/0', '/l/1'];
    for (let i = 0; i < 12; i++) {
      const link = links[i % 2]!;
      sim.write('h1', link, i % 5 === 4 ? 'delete' : 'put');
      sim.runFor(3);
    }
    sim.drain();
    assert.ok(sim.stats.duplicated > 0);
    assert.ok(sim.stats.duplicatesAcked > 0, 'the second copies were acknowledged, not appended');
    for (const w of sim.writes) assert.ok(w.outcome === 'acked' || w.outcome === 'noop', `#${w.id} ${w.outcome}`);
    // Each host appended each version once.
    for (const h of sim.hosts.values()) {
      const seen = h.log.map((e) => `${e.link}@${e.state.epoch}.${e.state.version}`);
      assert.is(new Set(seen).size, seen.length, `${h.id} appended a duplicate`);
    }
    clean(sim);
    assert.is(sim.settle(), 1, 'nothing left to synchronize');
  });
}

test('reordered delivery on a raw network does not regress a replica', () => {
  const sim = new ReplicationSim({ hosts: 3, network: 'raw', timeoutMs: 100, faults: { minLatencyMs: 1, maxLatencyMs: 1 } });
  const link = '/l/0';
  const { owner, rest } = roles(link, IDS3);
  const slow = rest[0]!;
  sim.seed(link, 'v0');
  // Five updates in a burst; the slow replica receives them newest first.
  sim.filter = (p) => (p.kind === 'rpl' && p.to === slow ? { delayMs: 60 - 10 * p.recs![0]!.state.version } : undefined);
  const ws = [1, 2, 3, 4, 5].map((i) => sim.write(owner, link, 'put', { value: `v${i}` }));
  sim.drain();
  const log = sim
    .host(slow)
    .log.filter((e) => e.link === link)
    .map((e) => e.state.version);
  assert.equal(log, [0, 5], 'the newest applied, the older ones acknowledged as duplicates');
  assert.is(sim.stats.duplicatesAcked, 4);
  for (const w of ws) assert.is(w.outcome, 'acked');
  for (const id of IDS3) assert.is(sim.host(id).index.get(link)?.value, 'v5');
  clean(sim);
});

test('reordered delivery across an epoch change: the old-epoch record is refused', () => {
  const sim = new ReplicationSim({ hosts: 3, network: 'raw', timeoutMs: 200, faults: { minLatencyMs: 1, maxLatencyMs: 1 } });
  const link = '/l/0';
  const { owner, next, rest } = roles(link, IDS3);
  const other = rest[0]!;
  sim.seed(link, 'v0');
  // The owner's update to `other` is held back past a takeover.
  sim.filter = (p) => (p.kind === 'rpl' && p.from === owner && p.to === other ? { delayMs: 150 } : undefined);
  const w = sim.write(owner, link, 'put', { value: 'old-owner' });
  sim.runFor(5);
  assert.is(w.outcome, 'acked'); // owner + next
  // Membership on the other two declares the owner gone while its packets still flow.
  sim.setView(next, [next, other]);
  sim.setView(other, [next, other]);
  const taken = sim.host(next).index.get(link)!;
  assert.equal([taken.epoch, taken.version, taken.value, taken.owner], [1, 2, 'old-owner', next]);
  assert.is(sim.host(other).index.get(link)?.epoch, 1);
  sim.drain();
  assert.is(sim.stats.refused, 1, 'the late epoch-0 record was refused');
  const held = sim.host(other).index.get(link)!;
  assert.equal([held.epoch, held.version, held.value], [1, 2, 'old-owner']);
  sim.settle();
  clean(sim);
});

test('a stale owner is fenced: its old-epoch writes fail and lose to the new owner after the heal', () => {
  const opts: SimOptions = { hosts: 3, views: 'manual', faults: { minLatencyMs: 1, maxLatencyMs: 3 } };
  const sim = new ReplicationSim(opts);
  const link = '/l/0';
  const { owner: a, next: b, rest } = roles(link, IDS3);
  const c = rest[0]!;
  sim.write(a, link, 'put', { value: 'first' });
  sim.drain();
  // `a` is cut off, but only `b` and `c` notice: `a` still believes it owns the link.
  sim.partition([a], [b, c]);
  sim.refreshViews([b, c]);
  const t = sim.host(b).index.get(link)!;
  assert.equal([t.epoch, t.owner], [1, b], 'b took over with a new epoch');
  const fresh = sim.write(b, link, 'put', { value: 'fresh' });
  const stale = sim.write(a, link, 'put', { value: 'stale' });
  assert.is(stale.state?.epoch, 0);
  sim.drain();
  assert.is(fresh.outcome, 'acked');
  assert.is(stale.outcome, 'failed');
  assert.is(stale.status, 503);
  assert.is(stale.message, `(Original id: ${a}-${stale.id}) PUT to ${link} failed. Success: 1,  Fail: 2, quorum: 2, failure threshold: 2`);
  // The network heals before membership does: the stale owner reaches the replicas, which
  // refuse its epoch.
  sim.heal();
  const fenced = sim.write(a, link, 'put', { value: 'stale again' });
  sim.drain();
  assert.is(fenced.outcome, 'failed');
  assert.is(fenced.status, 409);
  for (const id of [b, c]) assert.is(sim.host(id).index.get(link)?.value, 'fresh');
  // Membership catches up everywhere (a, too, learns that b and c left and came back); the owner
  // of the whole group synchronizes and the new epoch wins.
  sim.refreshViews();
  sim.setView(a, IDS3);
  sim.drain();
  const end = sim.host(a).index.get(link)!;
  assert.is(end.value, 'fresh');
  assert.ok(end.epoch >= 2);
  const epochs = sim
    .host(a)
    .log.filter((e) => e.link === link)
    .map((e) => e.state.epoch);
  assert.equal(
    epochs,
    [...epochs].sort((x, y) => x - y),
    'a never went back to an older epoch',
  );
  assert.is(sim.settle(), 1);
  clean(sim);
});

test('with a replication factor, records go to the closest hosts only and the quorum is all of them', () => {
  const ids = ['h1', 'h2', 'h3', 'h4', 'h5'];
  const sim = new ReplicationSim({ hosts: ids, replicationFactor: 3 });
  const link = '/l/0';
  const members = sim.replicaSetAt(sim.host('h1'), link).members;
  assert.is(members.length, 3);
  const w = sim.write(members[0]!, link, 'put');
  assert.is(w.owner, members[0]);
  assert.is(w.tracker?.threshold, 3); // min(eligible 3, membership quorum 3)
  sim.drain();
  assert.is(w.outcome, 'acked');
  for (const id of ids) assert.is(sim.host(id).index.has(link), members.includes(id), id);
  // A replica crashes: the set moves to the next closest host, which synchronization fills.
  sim.crash(members[2]!);
  const moved = sim.replicaSetAt(sim.host(members[0]!), link).members;
  const newcomer = moved.find((id) => !members.includes(id))!;
  assert.ok(newcomer);
  sim.drain();
  assert.is(sim.host(newcomer).index.get(link)?.writeId, w.id);
  assert.is(sim.write(members[0]!, link, 'put').outcome, 'pending');
  sim.drain();
  assert.is(sim.writes.at(-1)!.outcome, 'acked');
  sim.settle();
  clean(sim);
});

test.run();
