/**
 * The takeover's prepare phase over the simulated network (test/support/sim-synch.ts runs the
 * server's synchronization there, on the pure decisions of lib/synch/). Each schedule runs with
 * the phase as the server has it (promises 'durable') and without it ('off': heads read with no
 * promise, the server before this phase) or with promises a restart forgets ('volatile'), and
 * shows that only the durable phase keeps every acknowledged write: an old owner's write racing a
 * slow takeover, a replica restarted between its promise and the takeover, two hosts taking the
 * same link over at once on a network that duplicates and reorders, an owner that would write on
 * in an epoch another owner won, and random runs with drops, delays, duplicates, reorders,
 * partitions, crashes, restarts and wrong membership views (RUNS=n SEED=s widen the search).
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { selectNodes } from '../../../lib/hash.js';
import type { NodeId } from '../../../lib/ids.js';
import { ReplicationSim } from '../../support/sim-replication.js';

type Mode = 'durable' | 'volatile' | 'off';

/** Hosts ranked for `link`: the owner among all first. */
const ranked = (link: string, ids: readonly NodeId[]) =>
  selectNodes(
    link,
    ids.map((id) => ({ id, eligible: true })),
    ids.length,
  );

function lostWrites(sim: ReplicationSim): string[] {
  return sim.checkAll().filter((p) => /lost acknowledged|missing|rolled .* back/.test(p));
}

/**
 * C owns the link while B is down and keeps believing so after B is back (membership has not told
 * it yet); B takes the link over, its takeover's write slow on the wire; C writes "y" meanwhile.
 */
function racingOldOwner(promises: Mode) {
  const ids = ['h1', 'h2', 'h3'];
  const link = '/l/0';
  const [B, C, A] = ranked(link, ids) as [NodeId, NodeId, NodeId];
  const sim = new ReplicationSim({ hosts: ids, synch: 'network', views: 'manual', promises, trace: true });
  sim.crash(B);
  sim.refreshViews();
  assert.is(sim.write(C, link, 'put', { value: 'v0' }).owner, C);
  sim.drain();
  sim.restart(B);
  sim.filter = (p) => (p.kind === 'rpl' && p.from === B && p.recs?.some((r) => r.synch) ? { delayMs: 30 } : { delayMs: 2 });
  sim.setView(B, [A, C]); // B's pass: it owns the link again and takes it over
  const y = sim.write(C, link, 'put', { value: 'y' }); // C still owns it in its own view
  sim.drain();
  sim.refreshViews();
  sim.drain();
  sim.settle();
  return { sim, y };
}

test("an old owner's write racing a slow takeover: refused after the promise, never acknowledged and lost", () => {
  const { sim, y } = racingOldOwner('durable');
  assert.is(y.outcome, 'failed', sim.trace.join('\n'));
  assert.is(y.status, 409);
  assert.equal(sim.checkAll(), []);
  const off = racingOldOwner('off');
  assert.is(off.y.outcome, 'acked');
  assert.match(
    lostWrites(off.sim).join('\n'),
    new RegExp(`lost acknowledged #${off.y.id} PUT`),
    'without the phase the takeover overwrites "y"',
  );
});

/**
 * Z takes the link over; X's promise request is lost, Y promises and then restarts. Once Z's round
 * gave up on X (timeout) and Z read the best copy, X, the old owner (membership has not told it
 * yet), writes "w" while Z's takeover is still on the wire.
 */
function restartAfterPromise(promises: Mode) {
  const ids = ['h1', 'h2', 'h3'];
  const link = '/l/0';
  const [Z, X, Y] = ranked(link, ids) as [NodeId, NodeId, NodeId];
  const sim = new ReplicationSim({ hosts: ids, synch: 'network', views: 'manual', promises, trace: true });
  sim.crash(Z);
  sim.refreshViews();
  sim.write(X, link, 'put', { value: 'v0' });
  sim.drain();
  sim.restart(Z);
  sim.filter = (p) => {
    if (p.kind === 'promise' && p.from === Z && p.to === X) return 'drop';
    if (p.kind === 'rpl' && p.from === Z) return { delayMs: 30 };
    return { delayMs: 2 };
  };
  sim.setView(Z, [X, Y]);
  sim.runFor(10);
  assert.equal(sim.promisedAt(sim.host(Y), link), { epoch: 1, by: Z }, 'Y promised Z epoch 1');
  sim.crash(Y);
  sim.restart(Y);
  sim.runFor(45); // past the round's timeout on X (50 ms): Z's takeover write is on its way
  assert.ok(
    sim.synchs.some((r) => r.host === Z && r.plan?.rewrite),
    'Z planned its takeover',
  );
  assert.is(sim.host(Y).index.get(link)?.epoch, 0, 'and it has not reached Y yet');
  const w = sim.write(X, link, 'put', { value: 'w' });
  sim.drain();
  sim.refreshViews();
  sim.drain();
  sim.settle();
  return { sim, w };
}

test('a replica restarted between its promise and the takeover still refuses the old epoch (the promise is durable)', () => {
  const { sim, w } = restartAfterPromise('durable');
  assert.is(w.outcome, 'failed', sim.trace.join('\n'));
  assert.is(w.status, 409);
  assert.equal(sim.checkAll(), []);
  const volatile = restartAfterPromise('volatile');
  assert.is(volatile.w.outcome, 'acked', 'a forgotten promise lets the late write through');
  assert.match(
    lostWrites(volatile.sim).join('\n'),
    new RegExp(`lost acknowledged #${volatile.w.id} PUT`),
    'and the takeover then overwrites it',
  );
});

/**
 * Five hosts; B and C each believe they own the link (each sees a different majority), so both
 * take it over at once, then write, on a raw network that delays, duplicates and reorders.
 */
function twoNewOwners(promises: Mode, seed: number) {
  const ids = ['h1', 'h2', 'h3', 'h4', 'h5'];
  const link = '/l/0';
  const [, B, C, D, E] = ranked(link, ids) as [NodeId, NodeId, NodeId, NodeId, NodeId];
  const sim = new ReplicationSim({
    hosts: ids,
    seed,
    network: 'raw',
    views: 'manual',
    synch: 'network',
    promises,
    trace: true,
    faults: { minLatencyMs: 1, maxLatencyMs: 8, duplicateRate: 0.3, longDelayRate: 0.2, longDelayMs: 20 },
  });
  sim.seed(link, 'v0');
  sim.setView(B, [D, E]);
  sim.setView(C, [D, E]);
  const writes = [sim.write(B, link, 'put', { value: 'b1' }), sim.write(C, link, 'put', { value: 'c1' })];
  sim.runFor(40);
  writes.push(sim.write(B, link, 'put', { value: 'b2' }), sim.write(C, link, 'put', { value: 'c2' }));
  sim.drain();
  sim.refreshViews();
  sim.drain();
  sim.settle();
  return { sim, writes };
}

test('two hosts taking the same link over at once, with duplicated and reordered packets: no epoch is promised twice', () => {
  let acked = 0;
  let offLosses = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const { sim, writes } = twoNewOwners('durable', seed);
    assert.equal(sim.checkAll(), [], `seed ${seed}\n${sim.trace.slice(-80).join('\n')}`);
    acked += writes.filter((w) => w.outcome === 'acked').length;
    if (lostWrites(twoNewOwners('off', seed).sim).length) offLosses++;
  }
  assert.ok(acked >= 40, `writes acknowledged with the phase: ${acked}`);
  assert.ok(offLosses >= 10, `runs that lose an acknowledged write without the phase: ${offLosses} of 40`);
});

test('a link whose only copy vanished after its replicas promised an epoch can still be created, in an epoch not below it', () => {
  // Only X ever held the link (its creation reached nobody else: a failed write). Z takes it over:
  // Y and Z promise, but the copy cannot be read from X, and then X is gone for good. Nobody
  // holds the link, yet Y and Z refuse epoch 0 for it, so a creation at epoch 0 would fail forever.
  const ids = ['h1', 'h2', 'h3'];
  const link = '/l/0';
  const [Z, X, Y] = ranked(link, ids) as [NodeId, NodeId, NodeId];
  const sim = new ReplicationSim({ hosts: ids, synch: 'network', views: 'manual', synchRetries: 0, trace: true });
  sim.crash(Z);
  sim.refreshViews();
  sim.filter = (p) => (p.kind === 'rpl' && p.from === X ? 'drop' : undefined);
  assert.is(sim.write(X, link, 'put', { value: 'x' }).outcome, 'pending');
  sim.drain();
  sim.restart(Z);
  sim.filter = (p) => (p.kind === 'fetch' || (p.kind === 'promise' && p.to === X) ? 'drop' : undefined);
  sim.setView(Z, [X, Y]);
  sim.drain();
  assert.equal(sim.promisedAt(sim.host(Y), link), { epoch: 1, by: Z }, sim.trace.join('\n'));
  assert.is(sim.host(Y).index.get(link), undefined);
  sim.filter = undefined;
  sim.crash(X);
  sim.setView(Z, [Y]);
  sim.setView(Y, [Z]);
  sim.drain();
  const created = sim.write(Z, link, 'put', { value: 'again' });
  sim.drain();
  assert.is(created.outcome, 'acked', sim.trace.slice(-20).join('\n'));
  // Z's own promise of epoch 1 stands for a link nobody holds: the creation takes that epoch
  // (Synchronizer.preparedEpoch), which Y, bound to it by Z, accepts.
  assert.ok(created.state!.epoch >= 1, `created at epoch ${created.state!.epoch}, not below the promise of epoch 1`);
  assert.is(sim.host(Y).index.get(link)?.value, 'again');
  // X comes back with its unacknowledged copy at epoch 0: the created link wins everywhere.
  sim.settle();
  assert.equal(sim.checkAll(), []);
  assert.is(sim.host(X).index.get(link)?.value, 'again');
});

test('an owner does not write on in an epoch another owner took the link over with (found by the property below)', () => {
  // h2 believes it owns /l/b (it sees h3 only) and takes it over at epoch 1 while h3, which sees
  // everyone, believes it owns it too; h3, a replica, takes h2's takeover (1,1) and then, as owner,
  // would stamp its next version in epoch 1: (1,2), the same version h2 writes next, with other
  // content, which every replica then acknowledges as a duplicate. (Shrunk by fast-check from a run
  // of the property's generator; the previous script stopped showing it once the simulation ran the
  // server's schedule.)
  const r: Run = {
    n: 3,
    seed: 1,
    network: 'ordered',
    dropRate: 0,
    duplicateRate: 0,
    events: [
      { t: 'write', link: 0, entry: 0, del: true },
      { t: 'tick', ms: 1 },
      { t: 'view', host: 1, sees: [0] },
      { t: 'write', link: 1, entry: 1, del: true },
      { t: 'view', host: 1, sees: [2] },
      { t: 'write', link: 2, entry: 4, del: true },
      { t: 'tick', ms: 31 },
      { t: 'write', link: 1, entry: 0, del: true },
      { t: 'write', link: 0, entry: 0, del: true },
      { t: 'write', link: 0, entry: 0, del: true },
    ],
  };
  const sim = play(r, 'durable');
  assert.equal(sim.checkAll(), [], sim.trace.join('\n'));
  assert.ok(
    sim.synchs.some((s) => s.host === 'h3' && s.link === '/l/b' && s.plan?.rewrite && s.plan.best.owner === 'h2'),
    'h3 took the link over from h2 rather than write in epoch 1',
  );
  assert.match(lostWrites(play(r, 'durable', false)).join('\n'), /lost acknowledged/, 'promises alone are not enough here');
});

type Event =
  | { t: 'write'; link: number; entry: number; del: boolean }
  | { t: 'tick'; ms: number }
  | { t: 'crash'; host: number }
  | { t: 'restart'; host: number }
  | { t: 'partition'; sides: number[] }
  | { t: 'heal' }
  | { t: 'view'; host: number; sees: number[] };

const rec = <T>(shape: { [K in keyof T]: fc.Arbitrary<T[K]> }) => fc.record(shape, { noNullPrototype: true });

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  {
    weight: 10,
    arbitrary: rec({
      t: fc.constant('write' as const),
      link: fc.nat(2),
      entry: fc.nat(4),
      del: fc.integer({ min: 0, max: 5 }).map((x) => x === 0),
    }),
  },
  { weight: 6, arbitrary: rec({ t: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: rec({ t: fc.constant('crash' as const), host: fc.nat(4) }) },
  { weight: 1, arbitrary: rec({ t: fc.constant('restart' as const), host: fc.nat(4) }) },
  { weight: 1, arbitrary: rec({ t: fc.constant('partition' as const), sides: fc.array(fc.nat(1), { minLength: 5, maxLength: 5 }) }) },
  { weight: 1, arbitrary: rec({ t: fc.constant('heal' as const) }) },
  // Membership tells one host some view, right or wrong (failure detection is neither instant nor symmetric).
  { weight: 4, arbitrary: rec({ t: fc.constant('view' as const), host: fc.nat(4), sees: fc.array(fc.nat(4), { maxLength: 4 }) }) },
);

const runArb = rec({
  n: fc.constantFrom(3, 5),
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  network: fc.constantFrom('ordered' as const, 'raw' as const),
  dropRate: fc.constantFrom(0, 0.05, 0.2),
  duplicateRate: fc.constantFrom(0, 0.1, 0.3),
  events: fc.array(eventArb, { minLength: 5, maxLength: 50 }),
});

type Run = typeof runArb extends fc.Arbitrary<infer R> ? R : never;

function play(r: Run, promises: Mode, ownEpochOnly = true): ReplicationSim {
  const sim = new ReplicationSim({
    hosts: r.n,
    seed: r.seed,
    network: r.network,
    views: 'manual',
    synch: 'network',
    promises,
    ownEpochOnly,
    timeoutMs: 50,
    trace: true,
    faults: {
      dropRate: r.dropRate,
      duplicateRate: r.duplicateRate,
      minLatencyMs: 1,
      maxLatencyMs: 20,
      longDelayRate: r.network === 'raw' ? 0.15 : 0,
      longDelayMs: 60,
    },
  });
  const links = ['/l/a', '/l/b', '/l/c'];
  for (const l of links) sim.seed(l, `${l}-0`);
  const down = () => sim.ids.filter((id) => !sim.host(id).running).length;
  for (const e of r.events) {
    switch (e.t) {
      case 'write':
        sim.write(sim.ids[e.entry % r.n]!, links[e.link]!, e.del ? 'delete' : 'put');
        break;
      case 'tick':
        sim.runFor(e.ms);
        break;
      case 'crash':
        if (down() + 1 <= r.n - sim.quorum) sim.crash(sim.ids[e.host % r.n]!);
        break;
      case 'restart':
        sim.restart(sim.ids[e.host % r.n]!);
        break;
      case 'partition':
        sim.partition(...[0, 1].map((side) => sim.ids.filter((_, i) => e.sides[i] === side)).filter((s) => s.length));
        break;
      case 'heal':
        sim.heal();
        break;
      case 'view': {
        const id = sim.ids[e.host % r.n]!;
        if (sim.host(id).running)
          sim.setView(
            id,
            e.sees.map((i) => sim.ids[i % r.n]!),
          );
        break;
      }
    }
  }
  sim.settle();
  return sim;
}

test('property: with the prepare phase no acknowledged write is lost, whatever the network, the views and the crashes', () => {
  let acked = 0;
  let refused = 0;
  let takeovers = 0;
  let servedAcrossChange = 0;
  fc.assert(
    fc.property(runArb, (r) => {
      const sim = play(r, 'durable');
      const problems = sim.checkAll();
      if (problems.length) throw new Error(`${problems.join('\n')}\n--- trace (last 80) ---\n${sim.trace.slice(-80).join('\n')}`);
      acked += sim.writes.filter((w) => w.outcome === 'acked').length;
      refused += sim.stats.refused;
      takeovers += sim.stats.synchRewrites;
      servedAcrossChange += sim.stats.servedAcrossChange;
    }),
    { numRuns: Number(process.env.RUNS ?? 300), seed: Number(process.env.SEED ?? 303) },
  );
  // The runs must have done what they claim to: writes acknowledged, old epochs refused, takeovers made.
  assert.ok(acked > 300, `acked ${acked}`);
  assert.ok(refused > 20, `refused ${refused}`);
  assert.ok(takeovers > 100, `takeovers ${takeovers}`);
  // Availability per link (lib/group/availability.ts): owners kept serving links they never lost
  // through membership changes, with no synchronization first, and nothing above was lost for it.
  assert.ok(servedAcrossChange > 5, `served across a change ${servedAcrossChange}`);
});

test('the same random runs without the prepare phase lose acknowledged writes', () => {
  const runs = fc.sample(runArb, { numRuns: Number(process.env.RUNS ?? 300), seed: Number(process.env.SEED ?? 303) });
  const losing = runs.filter((r) => lostWrites(play(r, 'off')).length > 0).length;
  assert.ok(losing >= 5, `runs losing an acknowledged write without the phase: ${losing} of ${runs.length}`);
});

test.run();
