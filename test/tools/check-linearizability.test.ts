/**
 * The linearizability checker on hand-made histories: each anomaly a store could show (stale read,
 * lost update, two compare-and-sets from one version, a read going back in time, a write seen then
 * unseen) is reported with the ops involved; histories with overlapping and unknown ops pass;
 * generated linearizable histories of hundreds of ops per key check quickly; and a search that
 * cannot finish in its time limit says 'unknown', never 'ok'.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkHistory, explain, formatOp, type KeyVerdict, type Op } from '../../tools/check/history.js';
import { mulberry32 as prng } from '../support/sim-network.js';

const A = '/core/examples/a';
const B = '/core/examples/b';

/** Builds ops with ids in order; each helper's last arguments are times and what the op saw. */
function history() {
  const ops: Op[] = [];
  const add = (op: Omit<Op, 'id' | 'key'> & { key?: string }) => {
    const full: Op = { ...op, key: op.key ?? A, id: ops.length };
    ops.push(full);
    return full;
  };
  return {
    ops,
    write: (process: number, value: string, call: number, ret: number, version: number, key?: string) =>
      add({ process, kind: 'write', value, call, ret, outcome: 'ok', result: { value, version }, key }),
    read: (process: number, call: number, ret: number, value: string | null, version: number, key?: string) =>
      add({ process, kind: 'read', call, ret, outcome: 'ok', result: { value, version }, key }),
    cas: (process: number, expectedVersion: number, value: string, call: number, ret: number, version: number) =>
      add({ process, kind: 'cas', expectedVersion, value, call, ret, outcome: 'ok', result: { value, version } }),
    casFail: (process: number, expectedVersion: number, value: string, call: number, ret: number) =>
      add({ process, kind: 'cas', expectedVersion, value, call, ret, outcome: 'fail' }),
    unknownWrite: (process: number, value: string, call: number) => add({ process, kind: 'write', value, call, outcome: 'unknown' }),
    unknownCas: (process: number, expectedVersion: number, value: string, call: number) =>
      add({ process, kind: 'cas', expectedVersion, value, call, outcome: 'unknown' }),
  };
}

function only(verdicts: KeyVerdict[]): KeyVerdict {
  assert.is(verdicts.length, 1);
  return verdicts[0]!;
}

function assertViolation(ops: Op[], involved: number[]): KeyVerdict {
  const v = only(checkHistory(ops));
  assert.is(v.result, 'violation', explain([v]));
  for (const id of involved) assert.ok(v.ops?.includes(id), `op ${id} among ${JSON.stringify(v.ops)}:\n${v.explanation}`);
  assert.match(v.explanation!, /not linearizable/);
  return v;
}

function assertOk(ops: Op[]): void {
  const vs = checkHistory(ops);
  for (const v of vs) assert.is(v.result, 'ok', explain([v]));
}

test('an empty history has no keys; sequential writes and reads pass', () => {
  assert.equal(checkHistory([]), []);
  const h = history();
  h.read(1, 0, 1, null, -1);
  h.write(1, 'a', 2, 3, 0);
  h.read(2, 4, 5, 'a', 0);
  h.cas(2, 0, 'b', 6, 7, 1);
  h.read(1, 8, 9, 'b', 1);
  assertOk(h.ops);
});

test('overlapping writes may take effect in either order, and reads during them may see either', () => {
  const h = history();
  h.write(1, 'a', 0, 10, 1);
  h.write(2, 'b', 1, 9, 0);
  h.read(3, 2, 3, 'b', 0);
  h.read(4, 4, 12, 'a', 1);
  h.read(3, 11, 13, 'a', 1);
  assertOk(h.ops);
});

test('ops that touch at an instant count as concurrent', () => {
  const h = history();
  h.write(1, 'a', 0, 5, 0);
  h.read(2, 5, 6, null, -1);
  assertOk(h.ops);
});

test('an unknown write may take effect late, or never; a refused cas changes nothing', () => {
  const seenLate = history();
  seenLate.write(1, 'a', 0, 1, 0);
  seenLate.unknownWrite(2, 'b', 2);
  seenLate.read(1, 3, 4, 'a', 0);
  seenLate.read(1, 100, 101, 'b', 1);
  assertOk(seenLate.ops);

  const never = history();
  never.write(1, 'a', 0, 1, 0);
  never.unknownWrite(2, 'b', 2);
  never.unknownCas(3, 0, 'c', 3);
  never.read(1, 100, 101, 'a', 0);
  never.casFail(1, 5, 'd', 102, 103);
  never.read(1, 104, 105, 'a', 0);
  assertOk(never.ops);

  const casApplied = history();
  casApplied.write(1, 'a', 0, 1, 0);
  casApplied.unknownCas(2, 0, 'c', 2);
  casApplied.read(1, 3, 4, 'c', 1);
  casApplied.write(1, 'd', 5, 6, 2);
  assertOk(casApplied.ops);
});

test('keys are checked apart: the same versions under two links do not interfere', () => {
  const h = history();
  h.write(1, 'a', 0, 1, 0, A);
  h.write(1, 'b', 2, 3, 0, B);
  h.read(2, 4, 5, 'a', 0, A);
  h.read(2, 6, 7, 'b', 0, B);
  const vs = checkHistory(h.ops);
  assert.equal(
    vs.map((v) => [v.key, v.result]),
    [
      [A, 'ok'],
      [B, 'ok'],
    ],
  );
});

test('stale read: a read after a write returned sees the state before it', () => {
  const h = history();
  h.write(1, 'a', 0, 1, 0);
  const b = h.write(1, 'b', 2, 3, 1);
  const r = h.read(2, 4, 5, 'a', 0);
  const v = assertViolation(h.ops, [b.id, r.id]);
  assert.match(v.explanation!, /cannot be placed: op 2 p2 read ok → "a"@v0 \[4\.0, 5\.0\]/);
  assert.match(v.explanation!, /would see "b"@v1/);
});

test('stale read: a document created and acknowledged then read as absent', () => {
  const h = history();
  const a = h.write(1, 'a', 0, 1, 0);
  const r = h.read(2, 2, 3, null, -1);
  const v = assertViolation(h.ops, [a.id, r.id]);
  assert.match(v.explanation!, /not absent/);
});

test('lost update: two writes acknowledged with the same new version', () => {
  const h = history();
  h.write(1, 'a', 0, 1, 0);
  const b = h.write(2, 'b', 2, 6, 1);
  const c = h.write(3, 'c', 3, 7, 1);
  assertViolation(h.ops, [b.id, c.id]);
});

test('lost update: after two acknowledged writes a read sees only one of them applied', () => {
  const h = history();
  h.write(1, 'a', 0, 1, 0);
  h.ops.push({ id: 1, process: 2, key: A, kind: 'write', value: 'b', call: 2, ret: 6, outcome: 'ok' });
  h.ops.push({ id: 2, process: 3, key: A, kind: 'write', value: 'c', call: 3, ret: 7, outcome: 'ok' });
  h.ops.push({ id: 3, process: 1, key: A, kind: 'read', call: 8, ret: 9, outcome: 'ok', result: { value: 'c', version: 1 } });
  assertViolation(h.ops, [3]);
});

test('two compare-and-sets from one version both succeed', () => {
  const h = history();
  h.write(1, 'a', 0, 1, 0);
  const x = h.cas(2, 0, 'x', 2, 5, 1);
  const y = h.cas(3, 0, 'y', 3, 6, 1);
  const v = assertViolation(h.ops, [x.id, y.id]);
  assert.match(v.explanation!, /the version is 1, not the 0 it expects/);
});

test('a read going back in time while a write is still in flight', () => {
  const h = history();
  h.write(1, 'a', 0, 1, 0);
  h.write(2, 'b', 2, 20, 1);
  const seen = h.read(3, 3, 4, 'b', 1);
  const back = h.read(3, 5, 6, 'a', 0);
  assertViolation(h.ops, [seen.id, back.id]);
});

test('a write seen then unseen: an unknown write read by one client, then gone for another', () => {
  const h = history();
  h.write(1, 'a', 0, 1, 0);
  const c = h.unknownWrite(2, 'c', 2);
  h.read(3, 3, 4, 'c', 1);
  const gone = h.read(4, 5, 6, 'a', 0);
  const v = assertViolation(h.ops, [c.id, gone.id]);
  assert.match(v.explanation!, /set by op 1/);
});

test('a read of a value never written, and an ok write whose version skips one', () => {
  const ghost = history();
  ghost.write(1, 'a', 0, 1, 0);
  ghost.read(2, 2, 3, 'zzz', 0);
  assertViolation(ghost.ops, [1]);
  const skip = history();
  skip.write(1, 'a', 0, 1, 0);
  const w = skip.write(1, 'b', 2, 3, 2);
  const v = assertViolation(skip.ops, [w.id]);
  assert.match(v.explanation!, /would make version 1, but reported 2/);
});

test('a violation in one key leaves the others ok', () => {
  const h = history();
  h.write(1, 'a', 0, 1, 0, A);
  h.read(1, 2, 3, null, -1, A);
  h.write(1, 'b', 0, 1, 0, B);
  h.read(1, 2, 3, 'b', 0, B);
  const vs = checkHistory(h.ops);
  assert.equal(
    vs.map((v) => v.result),
    ['violation', 'ok'],
  );
  assert.match(explain(vs), /^2 key\(s\): 1 ok, 1 violation\(s\), 0 unknown\n\/core\/examples\/a: not linearizable/);
});

test('malformed histories are refused', () => {
  const h = history();
  h.write(1, 'a', 0, 1, 0);
  assert.throws(() => checkHistory([...h.ops, ...h.ops]), /appears twice/);
  assert.throws(
    () => checkHistory([{ id: 9, process: 1, key: A, kind: 'cas', value: 'x', call: 0, ret: 1, outcome: 'ok' }]),
    /expectedVersion/,
  );
  assert.throws(() => checkHistory([{ id: 9, process: 1, key: A, kind: 'read', call: 5, ret: 1, outcome: 'ok' }]), /before its call/);
});

test('formatOp shows kind, outcome, what was seen and the times', () => {
  const h = history();
  assert.is(formatOp(h.cas(2, 3, 'x', 10, 12.5, 4)), 'op 0 p2 cas(v3 → "x") ok @v4 [10.0, 12.5]');
  assert.is(formatOp(h.unknownWrite(1, 'y', 3)), 'op 1 p1 write("y") unknown [3.0, ?]');
  assert.is(formatOp(h.read(1, 0, 1, null, -1)), 'op 2 p1 read ok → absent [0.0, 1.0]');
});

/**
 * A linearizable history: `processes` clients each run ops back to back with random durations;
 * each op takes effect at a random instant inside its interval, and results come from applying
 * them in that order. Some writes end 'unknown' (applied or not), some cas are refused.
 */
function generate(seed: number, perKey: number, processes: number, keys: string[], unknownShare = 0.05): Op[] {
  const rnd = prng(seed);
  const ops: (Op & { at: number; applies: boolean })[] = [];
  for (const key of keys) {
    const clock = Array.from({ length: processes }, () => rnd() * 5);
    for (let i = 0; i < perKey; i++) {
      const p = Math.floor(rnd() * processes);
      const call = clock[p]!;
      const ret = call + 1 + rnd() * 20;
      clock[p] = ret + rnd() * 3;
      const r = rnd();
      const kind = r < 0.45 ? 'read' : r < 0.8 ? 'write' : 'cas';
      const op = {
        id: ops.length,
        process: p + keys.indexOf(key) * processes,
        key,
        kind,
        call,
        ret,
        outcome: 'ok',
        at: call + rnd() * (ret - call),
        applies: true,
      } as Op & { at: number; applies: boolean };
      if (kind !== 'read') op.value = `${key}#${i}`;
      if (kind !== 'read' && rnd() < unknownShare) {
        op.outcome = 'unknown';
        op.applies = rnd() < 0.5;
        delete op.ret;
      }
      ops.push(op);
    }
  }
  const state = new Map<string, { value: string | null; version: number }>();
  for (const op of [...ops].sort((a, b) => a.at - b.at)) {
    const s = state.get(op.key) ?? { value: null, version: -1 };
    if (op.kind === 'read') op.result = { ...s };
    else if (op.kind === 'cas') {
      // Clients expect the version they last read or one near it, so most cas succeed.
      op.expectedVersion = rnd() < 0.7 ? s.version : Math.max(-1, s.version - 1 - Math.floor(rnd() * 2));
      if (op.expectedVersion !== s.version) {
        if (op.outcome === 'ok') op.outcome = 'fail';
        continue;
      }
    }
    if (op.kind === 'read' || !op.applies) continue;
    const next = { value: op.value!, version: s.version + 1 };
    state.set(op.key, next);
    if (op.outcome === 'ok') op.result = { ...next };
  }
  return ops.map(({ at: _at, applies: _applies, ...op }) => op);
}

test('generated linearizable histories of 400 ops per key pass, in well under a second', () => {
  const cases = [
    [1, 6, 0.05],
    [2, 6, 0.05],
    [3, 20, 0.1],
    [4, 40, 0.1],
    [5, 10, 0.3],
  ] as const;
  for (const [seed, processes, unknownShare] of cases) {
    const ops = generate(seed, 400, processes, [A, B], unknownShare);
    const t0 = performance.now();
    const vs = checkHistory(ops, { timeLimitMs: 5000 });
    const ms = performance.now() - t0;
    for (const v of vs) assert.is(v.result, 'ok', `seed ${seed}: ${explain([v])}`);
    assert.ok(ms < 1000, `seed ${seed}: ${ms.toFixed(0)} ms`);
  }
});

test('a generated history with one read made stale is a violation, found quickly', () => {
  const ops = generate(7, 300, 6, [A]);
  // The last read that saw a version of at least 3 now claims an earlier state that was overwritten long before.
  const reads = ops.filter((op) => op.kind === 'read' && op.result!.version >= 3);
  const r = reads[reads.length - 1]!;
  const earlier = ops.find((op) => op.kind !== 'read' && op.outcome === 'ok' && op.result!.version === 0)!;
  r.result = { value: earlier.value!, version: 0 };
  const t0 = performance.now();
  const v = only(checkHistory(ops, { timeLimitMs: 5000 }));
  assert.is(v.result, 'violation', explain([v]));
  assert.ok(performance.now() - t0 < 1000);
  assert.ok(v.ops!.includes(r.id), v.explanation);
});

test('past its time limit the search says unknown, never ok', () => {
  // Thirty writes acknowledged without a version, all in flight together, then a read of a state
  // none of them makes: the search must try every subset and order before it could say 'violation'.
  const h = history();
  for (let p = 0; p < 30; p++)
    h.ops.push({ id: p, process: p, key: A, kind: 'write', value: `w${p}`, call: p * 0.01, ret: 1, outcome: 'ok' });
  h.ops.push({
    id: 99,
    process: 99,
    key: A,
    kind: 'read',
    call: 2,
    ret: 3,
    outcome: 'ok',
    result: { value: 'never written', version: 20 },
  });
  const t0 = performance.now();
  const v = only(checkHistory(h.ops, { timeLimitMs: 150 }));
  const ms = performance.now() - t0;
  assert.is(v.result, 'unknown');
  assert.match(v.explanation!, /gave up after 150 ms \(\d+ ms, \d+ search steps over 31 ops\)/);
  assert.ok(ms < 1500, `${ms.toFixed(0)} ms`);
  assert.match(explain([v]), /0 ok, 0 violation\(s\), 1 unknown/);
});

test('past its memory bound the search says unknown too', () => {
  const h = history();
  for (let p = 0; p < 30; p++)
    h.ops.push({ id: p, process: p, key: A, kind: 'write', value: `w${p}`, call: p * 0.01, ret: 1, outcome: 'ok' });
  h.ops.push({
    id: 99,
    process: 99,
    key: A,
    kind: 'read',
    call: 2,
    ret: 3,
    outcome: 'ok',
    result: { value: 'never written', version: 20 },
  });
  const v = only(checkHistory(h.ops, { maxConfigs: 1000 }));
  assert.is(v.result, 'unknown');
  assert.match(v.explanation!, /gave up after 1000 configurations remembered/);
});

test('forty unknown writes nobody saw are cheap: a read of a state none makes is refuted at once', () => {
  const h = history();
  for (let p = 0; p < 40; p++) h.unknownWrite(p, `w${p}`, p * 0.01);
  const r = h.read(99, 1, 2, 'never written', 30);
  assertViolation(h.ops, [r.id]);
});

/**
 * Linearizability by brute force, straight from the definition: some order of all ok ops and any
 * subset of unknown ones, agreeing with real time, in which each takes effect under the model.
 */
function bruteForce(ops: Op[]): boolean {
  const live = ops.filter((op) => op.outcome !== 'fail' && !(op.kind === 'read' && op.outcome !== 'ok'));
  const placed = new Set<number>();
  const go = (s: { value: string | null; version: number }): boolean => {
    if (live.every((op) => op.outcome !== 'ok' || placed.has(op.id))) return true;
    for (const op of live) {
      if (placed.has(op.id)) continue;
      // Every op that returned before this one was called must already be in the order.
      if (live.some((o) => !placed.has(o.id) && o !== op && o.outcome === 'ok' && o.ret! < op.call)) continue;
      let next = s;
      if (op.kind === 'read') {
        if (op.result!.value !== s.value || op.result!.version !== s.version) continue;
      } else {
        if (op.kind === 'cas' && op.expectedVersion !== s.version) continue;
        next = { value: op.value!, version: s.version + 1 };
        if (op.outcome === 'ok' && op.result && op.result.version !== next.version) continue;
      }
      placed.add(op.id);
      const found = go(next);
      placed.delete(op.id);
      if (found) return true;
    }
    return false;
  };
  return go({ value: null, version: -1 });
}

test('on thousands of small random histories the search agrees with brute force', () => {
  const rnd = prng(42);
  let violations = 0;
  for (let round = 0; round < 3000; round++) {
    const ops = generate(round, 3 + Math.floor(rnd() * 5), 2 + Math.floor(rnd() * 2), [A], 0.25);
    // Half the histories get one result bent, so both verdicts turn up.
    const bendable = ops.filter((op) => op.result);
    if (rnd() < 0.5 && bendable.length) {
      const op = bendable[Math.floor(rnd() * bendable.length)]!;
      const values = [null, ...ops.filter((o) => o.value).map((o) => o.value!)];
      if (rnd() < 0.5) op.result = { ...op.result!, version: op.result!.version + (rnd() < 0.5 ? 1 : -1) };
      else op.result = { ...op.result!, value: op.kind === 'read' ? values[Math.floor(rnd() * values.length)]! : op.result!.value };
    }
    const expected = bruteForce(ops);
    const v = only(checkHistory(ops));
    if (!expected) violations++;
    assert.is(v.result, expected ? 'ok' : 'violation', `round ${round}:\n${ops.map(formatOp).join('\n')}\n${explain([v])}`);
  }
  assert.ok(violations > 300, `${violations} violations`);
});

test.run();
