import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hasQuorum, isAvailable, selfEntry } from '../../../lib/group/membership.js';
import { selectOwner } from '../../../lib/group/selector.js';
import { SimNetwork, type SimHostSpec } from '../../support/sim-network.js';

// Scripted node-group scenarios on the simulated network: 1 s maintenance interval, 2 ms latency,
// Xenon's defaults otherwise (5 min removal delay, 5-interval stability window, 20 s peer timeout),
// and Krypton's probe deadline (500 ms, two misses in a row mark a peer).

interface GroupOpts {
  seed?: number;
  quorum?: number;
  offsets?: number[];
  dropRate?: number;
  removalDelayMs?: number;
  /** When a dropped message fails at its sender; default: the request's own deadline. */
  timeoutMs?: number;
}

function group(n: number, opts: GroupOpts = {}): SimNetwork {
  const sim = new SimNetwork({
    seed: opts.seed ?? 1,
    dropRate: opts.dropRate ?? 0,
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  });
  const names = Array.from({ length: n }, (_, i) => `h${i}`);
  names.forEach((name, i) => {
    const spec: SimHostSpec = { name, peerNodes: names, clockOffsetMs: opts.offsets?.[i] ?? 0 };
    if (opts.quorum !== undefined) spec.membershipQuorum = opts.quorum;
    if (opts.removalDelayMs !== undefined) spec.config = { nodeRemovalDelayMicros: opts.removalDelayMs * 1000 };
    sim.addHost(spec);
  });
  return sim;
}

const availableOn = (sim: SimNetwork, name: string): boolean => isAvailable(sim.host(name).state, sim.nowMicros(sim.host(name)));
const allAvailable = (sim: SimNetwork): boolean => sim.running().every((h) => availableOn(sim, h.name));

for (const n of [3, 5, 7]) {
  test(`${n} hosts with the same peerNodes converge and become available`, () => {
    const sim = group(n, { seed: n });
    const t = sim.runUntil(() => sim.healthy(), 10_000);
    assert.ok(t >= 0 && t <= 3_000, `converged after ${t} ms`);
    const quorum = Math.floor(n / 2) + 1; // floor((peers other than self + 1) / 2) + 1
    for (const h of sim.running()) {
      assert.is(Object.keys(h.state.group.nodes).length, n);
      for (const e of Object.values(h.state.group.nodes)) assert.is(e.membershipQuorum, quorum);
    }
    // Not available before the stability window, available right after it.
    assert.not.ok(allAvailable(sim));
    const ta = sim.runUntil(() => allAvailable(sim), 10_000);
    assert.ok(ta >= 0 && t + ta <= 9_000, `available after ${t + ta} ms`);
  });
}

test('a stopped host is UNAVAILABLE on every other host within 3 s, and back within 5 s of a restart', () => {
  const sim = group(3);
  sim.runUntil(() => allAvailable(sim), 15_000);
  sim.runFor(345); // stop mid-interval, not in step with any tick
  sim.stop('h2');
  const down = sim.runUntil(() => sim.everyoneSees('h2', 'UNAVAILABLE'), 3_000);
  assert.ok(down >= 0, 'UNAVAILABLE within 3 s');
  assert.ok(down <= 1_100, `a failed probe marks at once (${down} ms)`);
  // Quorum 2 of 3: the two survivors are available again once the change has settled (5 s).
  const settled = sim.runUntil(() => availableOn(sim, 'h0') && availableOn(sim, 'h1'), 7_000);
  assert.ok(settled >= 4_000, `settled after ${settled} ms`);
  sim.runFor(20_000);
  const up = (() => {
    sim.restart('h2');
    return sim.runUntil(() => sim.healthy(), 5_000);
  })();
  assert.ok(up >= 0, 'AVAILABLE everywhere within 5 s of the restart');
  assert.ok(sim.host('h2').logs.some((l) => l.startsWith('restored 2 peer entries')));
  // The survivors' mark was above the restored version; the host won its entry back.
  assert.ok(selfEntry(sim.host('h2').state).documentVersion > 4);
});

const marksOf = (sim: SimNetwork, sinceMs: number): number =>
  sim.hosts().reduce((n, h) => n + h.changes.filter((c) => c.atMs >= sinceMs && c.changes.includes('PEER_UNAVAILABLE')).length, 0);

test('a paused host is UNAVAILABLE on the others within 2 s and AVAILABLE again on resume; short pauses mark nobody', () => {
  const sim = group(3);
  sim.runUntil(() => allAvailable(sim), 15_000);
  // Pauses a garbage collection may cause, at phases out of step with the ticks: never a mark.
  for (const [at, ms] of [
    [345, 300],
    [610, 300],
    [123, 800],
    [905, 900],
  ] as const) {
    sim.runFor(at);
    const since = sim.nowMs;
    sim.pause('h2');
    sim.runFor(ms);
    sim.resume('h2');
    sim.runFor(3_000);
    assert.is(marksOf(sim, since), 0, `a ${ms} ms pause marks nobody`);
    assert.ok(sim.healthy());
  }
  sim.runFor(345);
  sim.pause('h2');
  const down = sim.runUntil(() => sim.everyoneSees('h2', 'UNAVAILABLE'), 6_000);
  assert.ok(down >= 0 && down <= 2_000, `a silent host is marked within 2 s (${down} ms)`);
  sim.runFor(20_000);
  const since = sim.nowMs;
  sim.resume('h2');
  assert.ok(sim.runUntil(() => sim.healthy(), 3_000) >= 0, 'AVAILABLE everywhere again after the resume');
  sim.runFor(10_000);
  // Its own probes all timed out while it was stopped; that counts as one miss, never a mark.
  assert.is(
    sim.host('h2').changes.filter((c) => c.atMs >= since && c.changes.includes('PEER_UNAVAILABLE')).length,
    0,
    'the resumed host marks nobody',
  );
  assert.ok(sim.healthy());
});

test('a host that leaves is UNAVAILABLE on every other host at once, and comes back on restart', () => {
  const sim = group(3);
  sim.runUntil(() => allAvailable(sim), 15_000);
  sim.runFor(345);
  sim.input('h2', { type: 'leave' });
  const down = sim.runUntil(() => sim.everyoneSees('h2', 'UNAVAILABLE'), 3_000);
  assert.ok(down >= 0 && down <= 10, `told, not probed (${down} ms)`);
  sim.stop('h2');
  sim.runFor(5_000);
  sim.restart('h2');
  assert.ok(sim.runUntil(() => sim.healthy(), 5_000) >= 0, 'AVAILABLE everywhere within 5 s of the restart');
});

test('a restarted host does not count peers it has not heard from', () => {
  const sim = group(3);
  sim.runUntil(() => allAvailable(sim), 15_000);
  sim.stop('h0');
  sim.stop('h1');
  sim.stop('h2');
  sim.runFor(5_000);
  sim.restart('h2');
  const g = sim.host('h2').state.group;
  assert.is(g.nodes.h0!.status, 'UNKNOWN');
  assert.is(g.nodes.h1!.status, 'UNKNOWN');
  assert.not.ok(hasQuorum(sim.host('h2').state));
  // Unconfirmed peers are not owners: the restored host alone is eligible (its requests park anyway).
  const r = selectOwner(g, '/core/examples/x');
  assert.is(r.ownerNodeId, 'h2');
  assert.is(r.availableNodeCount, 1);
  sim.runFor(2_000);
  assert.is(sim.statusOf('h2', 'h0'), 'UNAVAILABLE', 'probes to a stopped peer fail');
  sim.restart('h0');
  sim.restart('h1');
  assert.ok(sim.runUntil(() => sim.healthy(), 5_000) >= 0);
  assert.ok(sim.runUntil(() => allAvailable(sim), 8_000) >= 0);
});

test('UNAVAILABLE entries expire after nodeRemovalDelay and do not come back', () => {
  const sim = group(3);
  sim.runUntil(() => allAvailable(sim), 15_000);
  sim.stop('h2');
  sim.runUntil(() => sim.everyoneSees('h2', 'UNAVAILABLE'), 3_000);
  sim.runFor(299_000);
  assert.ok(sim.host('h0').state.group.nodes.h2, 'kept before the delay');
  sim.runFor(3_000);
  for (const h of sim.running()) assert.is(h.state.group.nodes.h2, undefined);
  assert.ok(sim.host('h0').changes.some((c) => c.changes.includes('PEER_EXPIRED')));
  sim.runFor(30_000);
  assert.ok(sim.converged());
  assert.is(Object.keys(sim.host('h1').state.group.nodes).length, 2);
});

test('seed 000: quorum 3, a host stopped, UpdateQuorumRequest to 2 with isGroupUpdate', () => {
  const sim = group(3, { quorum: 3 });
  assert.ok(sim.runUntil(() => allAvailable(sim), 15_000) >= 0);
  sim.stop('h2');
  sim.runUntil(() => sim.everyoneSees('h2', 'UNAVAILABLE'), 3_000);
  assert.not.ok(availableOn(sim, 'h0'), 'quorum 3 with 2 alive: not available');
  sim.runFor(10_000);
  assert.not.ok(availableOn(sim, 'h0') || availableOn(sim, 'h1'));
  sim.updateQuorum('h0', { isGroupUpdate: true, membershipQuorum: 2 });
  assert.equal(sim.quorumUpdates, [], 'sent only to AVAILABLE peers, not yet delivered');
  const t = sim.runUntil(() => availableOn(sim, 'h0') && availableOn(sim, 'h1'), 10_000);
  assert.ok(t >= 5_000 && t <= 7_000, `available again after the stability window (${t} ms)`);
  assert.equal(sim.quorumUpdates, [{ from: 'h0', to: 'http://h1/core/node-groups/default', ok: true }]);
  sim.runFor(2_000);
  const nodes = sim.host('h1').state.group.nodes;
  assert.is(nodes.h0!.membershipQuorum, 2);
  assert.is(nodes.h1!.membershipQuorum, 2);
  assert.is(nodes.h2!.membershipQuorum, 3, 'the stopped host keeps its own quorum (seed 000 step 6)');
  // Step 8: restart with --membershipQuorum=2 (explicit wins over the snapshot).
  sim.restart('h2', { membershipQuorum: 2 });
  assert.ok(sim.runUntil(() => sim.healthy(), 5_000) >= 0);
  assert.is(selfEntry(sim.host('h2').state).membershipQuorum, 2);
});

test('partition: the majority side stays available, the minority does not; healing converges', () => {
  const sim = group(5);
  sim.runUntil(() => allAvailable(sim), 15_000);
  sim.runFor(345);
  sim.partition(['h0', 'h1', 'h2'], ['h3', 'h4']);
  // The minority is cut off: it stops acting as owner (not available) within the probe bound.
  const cutOff = sim.runUntil(() => !availableOn(sim, 'h3') && !availableOn(sim, 'h4'), 5_000);
  assert.ok(cutOff >= 0 && cutOff <= 2_000, `the minority side is unavailable after ${cutOff} ms`);
  sim.runFor(10_000);
  for (const n of ['h0', 'h1', 'h2']) {
    assert.is(sim.statusOf(n, 'h3'), 'UNAVAILABLE');
    assert.ok(availableOn(sim, n), `${n} on the majority side is available`);
  }
  for (const n of ['h3', 'h4']) {
    assert.is(sim.statusOf(n, 'h0'), 'UNAVAILABLE');
    assert.not.ok(availableOn(sim, n), `${n} on the minority side is not`);
  }
  sim.heal();
  assert.ok(sim.runUntil(() => sim.healthy(), 5_000) >= 0, 'healing converges');
  assert.ok(sim.runUntil(() => allAvailable(sim), 10_000) >= 0);
});

test('message drops: the group still converges, and stale timeouts do not flap members', () => {
  // Each drop here stands for a message TCP delivers late: its sender gives up on it only 20 s on.
  const sim = group(5, { seed: 9, dropRate: 0.2, timeoutMs: 20_000 });
  assert.ok(sim.runUntil(() => sim.healthy(), 20_000) >= 0, 'converges under 20% drops');
  sim.runFor(60_000);
  // A dropped PATCH times out 20 s later; by then later probes have answered, so it is ignored.
  let marks = 0;
  for (const h of sim.hosts()) marks += h.changes.filter((c) => c.changes.includes('PEER_UNAVAILABLE')).length;
  assert.is(marks, 0);
  assert.ok(sim.healthy());
  sim.dropRate = 1;
  // Two misses in a row, the second of a probe sent after the first timed out: 40 s here.
  sim.runFor(45_000);
  assert.ok(sim.running().every((h) => Object.values(h.state.group.nodes).every((n) => n.id === h.id || n.status === 'UNAVAILABLE')));
  sim.dropRate = 0;
  assert.ok(sim.runUntil(() => sim.healthy(), 5_000) >= 0, 'recovers once messages flow');
});

/** The outcome of one scripted run: every view and every availability flip, in sim time. */
function scripted(offsets: number[]): string {
  const sim = group(3, { seed: 5, offsets, removalDelayMs: 40_000 });
  const trace: unknown[] = [];
  const mark = (what: string, ok: boolean): void => {
    assert.ok(ok, `${what} (offsets ${offsets.join(', ')})`);
    trace.push(
      what,
      sim.nowMs,
      sim.hosts().map((h) => sim.view(h.name)),
    );
  };
  mark('available', sim.runUntil(() => allAvailable(sim), 15_000) >= 0);
  sim.stop('h1');
  mark('detected', sim.runUntil(() => sim.everyoneSees('h1', 'UNAVAILABLE'), 3_000) >= 0);
  // h1 comes back on h2's side of a partition: h0 and h1 each see the other as gone.
  sim.partition(['h0'], ['h1', 'h2']);
  sim.restart('h1');
  sim.runFor(25_000);
  mark(
    'partitioned',
    sim.statusOf('h0', 'h1') === 'UNAVAILABLE' && sim.statusOf('h1', 'h0') === 'UNAVAILABLE' && sim.statusOf('h2', 'h1') === 'AVAILABLE',
  );
  sim.heal();
  mark('healed', sim.runUntil(() => sim.healthy(), 5_000) >= 0);
  sim.stop('h0');
  sim.runFor(45_000);
  mark('expired', sim.running().every((h) => h.state.group.nodes.h0 === undefined) && sim.converged());
  trace.push(sim.hosts().map((h) => h.availability.map((a) => [a.atMs, a.available])));
  return JSON.stringify(trace);
}

test('clock skew of minutes does not change any outcome', () => {
  const base = scripted([0, 0, 0]);
  assert.is(scripted([5 * 60_000, -3 * 60_000, 47_000]), base);
  assert.is(scripted([-7 * 60_000, 0, 11 * 60_000]), base);
});

test('observers join a custom group, count for quorum and never own anything', () => {
  const sim = new SimNetwork({ seed: 2, groupLink: '/core/node-groups/hello-node-group' });
  sim.addHost({ name: 'p8000', id: 'hostAtPort8000', membershipQuorum: 2 });
  sim.addHost({ name: 'o8001', id: 'hostAtPort8001', membershipQuorum: 2 });
  sim.runFor(1_500);
  sim.join('o8001', 'p8000', { membershipQuorum: 1, localNodeOptions: ['OBSERVER'] });
  assert.ok(sim.runUntil(() => sim.healthy(), 3_000) >= 0);
  const g = sim.host('p8000').state.group;
  assert.equal(g.nodes.hostAtPort8001!.options, ['OBSERVER']);
  assert.is(g.nodes.hostAtPort8001!.membershipQuorum, 2, 'max(own 2, join 1)');
  assert.ok(hasQuorum(sim.host('p8000').state), 'the observer counts toward quorum 2');
  assert.ok(sim.runUntil(() => allAvailable(sim), 8_000) >= 0);
  for (let i = 0; i < 200; i++) {
    for (const h of sim.hosts()) {
      const r = selectOwner(h.state.group, `/core/examples/${i}`, 3);
      assert.is(r.ownerNodeId, 'hostAtPort8000');
      assert.equal(
        r.selectedNodes.map((n) => n.id),
        ['hostAtPort8000'],
      );
      assert.is(r.isLocalHostOwner, h.id === 'hostAtPort8000');
    }
  }
  // The observer's options survive its restart (membership state is persisted).
  sim.stop('o8001');
  sim.runFor(2_000);
  sim.restart('o8001');
  assert.ok(sim.runUntil(() => sim.healthy(), 5_000) >= 0);
  assert.equal(sim.host('p8000').state.group.nodes.hostAtPort8001!.options, ['OBSERVER']);
});

test('a host restarted at the same address with a new id replaces the old entry', () => {
  const sim = group(3);
  sim.runUntil(() => allAvailable(sim), 15_000);
  sim.stop('h2');
  sim.restart('h2', { fresh: true, newId: 'h2-new' });
  const t = sim.runUntil(
    () =>
      ['h0', 'h1'].every(
        (n) => sim.host(n).state.group.nodes.h2?.status === 'REPLACED' && sim.host(n).state.group.nodes['h2-new']?.status === 'AVAILABLE',
      ),
    5_000,
  );
  assert.ok(t >= 0, 'REPLACED old id, AVAILABLE new id');
  assert.is(sim.host('h2').state.group.nodes.h2, undefined, 'the new host never learns its old id');
  const owners = new Set(Array.from({ length: 50 }, (_, i) => selectOwner(sim.host('h0').state.group, `/k/${i}`).ownerNodeId));
  assert.not.ok(owners.has('h2'));
});

test('a join that cannot reach its peer retries within the window, then gives up', () => {
  const sim = new SimNetwork({ seed: 4 });
  sim.addHost({ name: 'a', peerNodes: ['a', 'b'] });
  sim.addHost({ name: 'b' });
  sim.stop('b');
  sim.runFor(10_000);
  const a = sim.host('a');
  assert.ok(a.state.joinRetryCount >= 4 && a.state.joinRetryCount <= 6, `retries: ${a.state.joinRetryCount}`);
  assert.equal(a.state.joins, []);
  assert.ok(a.logs.some((l) => l.includes('gave up')));
  // b comes up and joins a: the group forms from its side.
  sim.restart('b', { fresh: true });
  sim.join('b', 'a');
  assert.ok(sim.runUntil(() => sim.healthy(), 3_000) >= 0);
});

test.run();
