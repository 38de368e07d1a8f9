/**
 * The log tools on logs written by a real in-process host: every command while the host runs (its
 * LOCK held, its log open for append) and again after it stopped, checked against what the host
 * itself answers over HTTP; then verify and stats run over and over while writers keep the host
 * appending, which must never be mistaken for damage.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startHost, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';
import { hostRetentionFor, knownFactories } from '../../tools/log/retention.js';
import { cli, jsonLines } from './support.js';

interface Doc {
  documentSelfLink: string;
  documentVersion: number;
  documentUpdateTimeMicros: number;
  documentUpdateAction: string;
  [k: string]: unknown;
}

const A = '/core/examples/a';
const B = '/core/examples/b';
const C = '/core/examples/c';

async function hostFolder(h: TestHost): Promise<string> {
  const names = await fs.readdir(h.sandbox);
  assert.is(names.length, 1, 'the sandbox holds one host folder');
  return path.join(h.sandbox, names[0]!);
}

async function write(h: TestHost): Promise<Doc[]> {
  const steps: Doc[] = [];
  const ok = async (p: Promise<{ status: number; body: Doc }>): Promise<void> => {
    const r = await p;
    assert.is(r.status, 200, JSON.stringify(r.body));
    steps.push(r.body);
  };
  await ok(h.client.post<Doc>('/core/examples', { documentSelfLink: 'a', name: 'A', counter: 1 }));
  await ok(h.client.post<Doc>('/core/examples', { documentSelfLink: 'b', name: 'B', tags: ['t'] }));
  await ok(h.client.post<Doc>('/core/examples', { documentSelfLink: 'c', name: 'C' }));
  await ok(h.client.patch<Doc>(A, { counter: 5 }));
  await ok(h.client.patch<Doc>(A, { keyValues: { k: 'v' } }));
  await ok(h.client.put<Doc>(B, { name: 'B2' }));
  await ok(h.client.delete<Doc>(C));
  return steps;
}

async function checkEveryCommand(h: TestHost, steps: Doc[], label: string): Promise<void> {
  const dir = h.sandbox;
  const folder = await hostFolder(h);

  const inspect = await cli(['inspect', '--json', dir]);
  assert.is(inspect.code, 0, `${label}: ${inspect.stderr}`);
  assert.is(inspect.stderr, '');
  assert.equal(
    jsonLines(inspect).map((r) => [
      r.seq,
      r.documentUpdateAction,
      r.documentSelfLink,
      r.documentVersion,
      r.documentEpoch,
      r.documentUpdateTimeMicros,
    ]),
    steps.map((d, i) => [i + 1, d.documentUpdateAction, d.documentSelfLink, d.documentVersion, 0, d.documentUpdateTimeMicros]),
    label,
  );
  const human = await cli(['inspect', dir, '--link', A]);
  assert.is(human.lines.length, 4, label);
  assert.match(human.lines[3]!, /^ {2}5 {2}\S+Z {2}PATCH {7}0 {8}2 +\d+ {2}\/core\/examples\/a$/);

  // The frames' bytes: a running host's segment also holds the zeros it writes ahead (wal/file.ts),
  // which verify does not count, and which a stopped host has cut.
  const bytes = jsonLines(inspect).reduce((n, r) => n + (r.bytes as number), 0);
  assert.ok(bytes <= (await fs.stat(path.join(folder, 'log', '00000000000000000001.log'))).size, label);
  const verify = await cli(['verify', dir]);
  assert.equal(
    [verify.code, verify.lines],
    [0, [`ok: 1 segment, 7 intact records (seq 1 to 7), ${bytes.toLocaleString('en-US')} bytes`]],
    label,
  );

  const replay = await cli(['replay', '--json', folder]);
  assert.is(replay.code, 0, label);
  assert.equal(
    (JSON.parse(replay.stdout) as { factories: unknown }).factories,
    [{ factory: '/core/examples', live: 2, deleted: 1, expired: 0, versions: 7 }],
    label,
  );

  // A document as the tools rebuild it is the document the host serves.
  const getA = await h.client.get<Doc>(A);
  const linkA = await cli(['replay', '--json', dir, '--link', A]);
  assert.equal(
    JSON.parse(linkA.stdout),
    { documentSelfLink: A, status: 'live', asOf: { seq: 7, timeMicros: 1_800_000_000_000_000 }, versions: 3, state: getA.body },
    label,
  );
  const firstA = await cli(['replay', '--json', dir, '--link', A, '--at-seq', '3']);
  assert.equal((JSON.parse(firstA.stdout) as { state: unknown }).state, (await h.client.get<Doc>(`${A}?documentVersion=0`)).body, label);
  const deleted = await cli(['replay', '--json', dir, '--link', C]);
  assert.equal((JSON.parse(deleted.stdout) as { status: string; state: Doc }).status, 'deleted');
  assert.is((await h.client.get(C)).status, 404, 'the host agrees c is gone');

  const exported = await cli(['export', dir]);
  assert.is(exported.code, 0, label);
  assert.equal(jsonLines(exported), [getA.body, (await h.client.get<Doc>(B)).body], label);
  const every = await cli(['export', dir, '--all-versions']);
  assert.equal(
    jsonLines<Doc>(every).map((d) => [d.documentSelfLink, d.documentVersion, d.documentUpdateAction]),
    [
      [A, 0, 'POST'],
      [A, 1, 'PATCH'],
      [A, 2, 'PATCH'],
      [B, 0, 'POST'],
      [B, 1, 'PUT'],
      [C, 0, 'POST'],
      [C, 1, 'DELETE'],
    ],
    label,
  );

  const stats = await cli(['stats', '--json', dir]);
  assert.is(stats.code, 0, label);
  const s = JSON.parse(stats.stdout) as Record<string, unknown>;
  assert.equal(
    [s.records, s.lastSeq, s.actions, s.links, s.versions, s.firstTimeMicros, s.lastTimeMicros],
    [
      7,
      7,
      { POST: 3, PUT: 1, PATCH: 2, DELETE: 1 },
      { total: 3, live: 2, deleted: 1, expired: 0 },
      { held: 7, written: 7 },
      steps[0]!.documentUpdateTimeMicros,
      steps[6]!.documentUpdateTimeMicros,
    ],
    label,
  );
}

/** Every command's full output, to compare a running host's log with the same log after the stop. */
async function outputs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const argv of [
    ['inspect'],
    ['inspect', '--json'],
    ['verify'],
    ['replay'],
    ['replay', '--link', A],
    ['replay', '--at-seq', '4'],
    ['export'],
    ['export', '--all-versions'],
    ['stats'],
    ['stats', '--json'],
  ]) {
    const run = await cli([...argv, dir]);
    out.push(`${argv.join(' ')} -> ${run.code}\n${run.stdout}${run.stderr}`);
  }
  return out;
}

test('every command on a real host log, while the host runs and after it stopped', async () => {
  const h = await startHost();
  try {
    const steps = await write(h);
    const folder = await hostFolder(h);
    const lock = await fs.readFile(path.join(folder, 'LOCK'), 'utf8');
    await checkEveryCommand(h, steps, 'running');
    assert.is(await fs.readFile(path.join(folder, 'LOCK'), 'utf8'), lock, 'the host still holds its lock, untouched');
    const whileRunning = await outputs(h.sandbox);

    await h.client.close();
    await h.host.stop();
    let lockGone = false;
    await fs.access(path.join(folder, 'LOCK')).catch(() => (lockGone = true));
    assert.ok(lockGone, 'the host released its lock');
    assert.equal(await outputs(h.sandbox), whileRunning, "a stopped host's log reads the same");
  } finally {
    await h.close().catch(() => undefined);
    await fs.rm(h.sandbox, { recursive: true, force: true });
  }
});

test('a host appending all the while: verify and stats never mistake an append in progress for damage', async () => {
  const h = await startHost();
  let stop = false;
  let acked = 0;
  try {
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const r =
          i === 0
            ? await h.client.post('/core/examples', { documentSelfLink: `w${w}`, name: `w${w}`, counter: 0 })
            : await h.client.patch(`/core/examples/w${w}`, { counter: i, name: 'x'.repeat(i % 200) });
        assert.is(r.status, 200);
        acked++;
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));
    await waitFor('writes under way', () => acked >= 50);
    let last = 0;
    for (let round = 0; round < 20; round++) {
      const verify = await cli(['verify', '--json', h.sandbox]);
      assert.is(verify.code, 0, verify.stdout);
      const report = JSON.parse(verify.stdout) as { records: number; lastSeq: number; problems: unknown[] };
      assert.equal(report.problems, []);
      assert.is(report.records, report.lastSeq);
      assert.ok(report.lastSeq >= last, 'the log only grows');
      last = report.lastSeq;
      const stats = await cli(['stats', '--json', h.sandbox]);
      assert.is(stats.code, 0);
      assert.is(stats.stderr, '', 'no torn-tail warning for a running host');
    }
    stop = true;
    await Promise.all(writers);
    const final = await cli(['verify', '--json', h.sandbox]);
    assert.is(final.code, 0);
    assert.is((JSON.parse(final.stdout) as { records: number }).records, acked, 'every acknowledged write is in the log');
    assert.ok(last > 50, `reads overlapped the writes (last seen seq ${last})`);
  } finally {
    stop = true;
    await h.close();
  }
});

test('the tools know the retention of every factory a host serves', async () => {
  const h = await startHost();
  try {
    const root = await h.client.get<{ documentLinks: string[] }>('/');
    assert.is(root.status, 200);
    const served = root.body.documentLinks
      .filter((l) => !['/core/query-tasks', '/core/local-query-tasks', '/core/management'].includes(l))
      .sort();
    assert.ok(served.includes('/core/examples'));
    assert.equal(knownFactories().sort(), served, 'tools/log/retention.ts lists the services server/host/host.ts registers');
    assert.is(hostRetentionFor('/core/examples/x'), 100);
    assert.is(hostRetentionFor('/app/unknown/x'), 1000);
  } finally {
    await h.close();
  }
});

test.run();
