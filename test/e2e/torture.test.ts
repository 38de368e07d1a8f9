/**
 * The short torture runs of `npm test` (tools/torture, real host processes, about 45 s each):
 * each asserts every property the suite checks (assertSafe), and prints the runner's report so a
 * failure comes with its explanation. Both runs also assert that faults were applied and that
 * clients got work done, so they cannot pass on a run that did nothing. Partitions need root;
 * without it the second run says so and pauses hosts only.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { partitionsUnsupported } from '../../tools/torture/netns.js';
import type { RunResult } from '../../tools/torture/report.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RUNNER = path.join(ROOT, 'tools/torture/run.ts');

interface Ran {
  code: number | null;
  result: RunResult;
  log: string;
  explanation?: string;
}

/** Runs the runner as a user would and reads its JSON line; the runner cleans up its hosts and namespaces, and is killed past the deadline. */
async function torture(args: string[], deadlineMs = 100_000): Promise<Ran> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'krypton-torture-test-'));
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', RUNNER, ...args, '--json', `--out=${out}`], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let log = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (log += b.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), deadlineMs);
    const kill = setTimeout(() => child.kill('SIGKILL'), deadlineMs + 15_000);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    clearTimeout(timer);
    clearTimeout(kill);
    const last = stdout.trim().split('\n').pop() ?? '';
    let result: RunResult;
    try {
      result = JSON.parse(last) as RunResult;
    } catch {
      throw new Error(`the runner (exit ${code}) printed no result:\n${log.slice(-4000)}`);
    }
    const explanation = result.savedTo ? fs.readFileSync(path.join(result.savedTo, 'explanation.txt'), 'utf8') : undefined;
    return { code, result, log, explanation };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/** What the run found that this test does not assert: printed so the known bugs stay in view. */
function show(name: string, r: Ran): void {
  console.log(`\n---- torture ${name} (seed ${r.result.seed}): runner output\n${r.log.trim()}`);
  if (r.explanation) console.log(`---- explanation (first 60 lines)\n${r.explanation.split('\n').slice(0, 60).join('\n')}`);
}

function assertWorked(r: RunResult): void {
  assert.ok(r.availability.length > 1, `no fault was applied: ${JSON.stringify(r.availability)}`);
  for (const a of r.availability) assert.not.ok(a.error, `fault ${a.fault} on ${a.host} failed: ${a.error}`);
  assert.ok(r.finalConvergedMs !== undefined, 'the group did not converge after healing');
  for (const [name, w] of Object.entries(r.workloadResults))
    assert.ok((w.summary.ok ?? 0) > 50, `${name} got almost nothing done: ${JSON.stringify(w.summary)}`);
  assert.ok(r.comparison.versionsRead > 0, 'the history comparison read nothing');
}

/**
 * Everything the suite checks, strictly: the register linearizable on every key, no write applied
 * twice, no refused write applied, no read of a write later discarded, the set complete and
 * without strangers on every host, and the same retained history on every host after healing.
 * (Until December 2026 this test tolerated the register violations three known failure modes
 * explained: a retried forward applied twice, a CAS answered 400 though it took effect, a read of
 * a discarded write. The last of them, refused writes found applied, came from forwards delivered
 * after a partition healed or a paused owner resumed; owners now refuse those, STALE_VIEW.)
 */
function assertSafe(r: RunResult): void {
  const reg = r.workloadResults.register!;
  assert.is(reg.summary.duplicateApplications, 0, 'register writes applied twice');
  assert.is(reg.summary.refusedButApplied, 0, 'register writes refused yet applied');
  assert.is(reg.summary.readsOfDiscardedWrites, 0, 'reads of writes later discarded');
  assert.equal(reg.violations, [], 'register histories that are not linearizable');
  const set = r.workloadResults.set!.summary;
  assert.is(set.lostAcknowledged, 0, 'acknowledged adds lost');
  assert.is(set.unexpectedPresent, 0, 'refused or never sent adds present');
  assert.is(set.listedTwice, 0, 'adds listed twice');
  assert.is(set.lostOnAReplicaOnly, 0, 'adds missing from one host only');
  const c = r.comparison;
  assert.equal([c.differences, c.duplicates, c.unreadable], [0, 0, 0], `retained histories differ after healing: ${c.samples.join('; ')}`);
  assert.ok(r.ok, 'the runner found something this test does not name');
}

test('torture: kill -9 and graceful stops, a snapshot every 300 records: no acknowledged add lost, watches in order, the register linearizable, the same history on every host', async () => {
  const r = await torture([
    '--workload=register,set,watch',
    '--faults=kill,stop',
    '--seconds=25',
    '--seed=1001',
    '--hold=3-5',
    '--quiet=1-2',
    // Hosts snapshot and compact all the time, so killed hosts restart from snapshots.
    '--host-arg=--snapshotEveryRecords=300',
    '--host-arg=--logSegmentBytes=16384',
  ]);
  show('kill,stop', r);
  assertWorked(r.result);
  assert.equal(r.result.workloadResults.watch!.violations, [], 'watch streams out of order, disagreeing or behind');
  assertSafe(r.result);
});

test('torture: partitions and paused hosts: no acknowledged add lost, watches in order, the register linearizable, the same history on every host', async () => {
  // Without root the runner skips the partitions itself and still pauses hosts.
  const why = partitionsUnsupported();
  if (why) console.log(`torture partitions skipped (pauses only): ${why}`);
  const r = await torture([
    '--workload=register,set,watch',
    '--faults=partition,pause',
    '--seconds=25',
    '--seed=2002',
    '--hold=7-8',
    '--quiet=1-2',
  ]);
  show('partition,pause', r);
  assertWorked(r.result);
  assert.equal(r.result.workloadResults.watch!.violations, [], 'watch streams out of order, disagreeing or behind');
  assertSafe(r.result);
});

test.run();
