/**
 * The golden logs of formats v1 and v2 (test/fixtures/wal-v1/ and wal-v2/, each written once by
 * its make.ts), and the golden snapshot of format v1 (snapshot-v1/), must read back with today's reader as the values in their expected.json, forever. If this fails, the change broke
 * old logs: fix the reader, never the fixture.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LogRecord } from '../../lib/document.js';
import { diskDirectory } from '../../wal/file.js';
import { readLog, scanLog } from '../../wal/reader.js';
import { decodeFrame } from '../../wal/record.js';
import { listSegments } from '../../wal/segment.js';
import { listSnapshots, readSnapshot, type SnapshotEntry } from '../../wal/snapshot.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const fixture = path.join(fixtures, 'wal-v1');
const fixtureV2 = path.join(fixtures, 'wal-v2');

test('wal-v1: the committed segments decode to expected.json', async () => {
  const expected = JSON.parse(await fs.readFile(path.join(fixture, 'expected.json'), 'utf8')) as LogRecord[];
  const dir = diskDirectory(fixture);
  const read: LogRecord[] = [];
  for await (const e of readLog(dir)) read.push(e.record);
  assert.equal(read, expected);
  assert.equal(
    read.map((r) => [r.action, r.resetHistory ?? false]),
    [
      ['POST', false],
      ['PUT', false],
      ['PATCH', false],
      ['DELETE', false],
      ['POST', true],
      ['POST', false],
    ],
  );
});

test('wal-v1: two segments named by first seq, every frame version 1, no damage', async () => {
  const dir = diskDirectory(fixture);
  assert.equal(
    (await listSegments(dir)).map((s) => s.firstSeq),
    [1, 4],
  );
  const result = await scanLog(dir, () => {});
  assert.is(result.problem, undefined);
  assert.is(result.lastSeq, 6);
  for (const s of await listSegments(dir)) {
    const bytes = await fs.readFile(path.join(fixture, s.name));
    for (let off = 0; off < bytes.length; ) {
      assert.is(bytes[off + 8], 1);
      const d = decodeFrame(bytes, off);
      assert.is(d.kind, 'record');
      if (d.kind !== 'record') break;
      off = d.next;
    }
  }
});

test('wal-v2: request ids read back, on v2 frames only; records without one are v1 frames', async () => {
  const expected = JSON.parse(await fs.readFile(path.join(fixtureV2, 'expected.json'), 'utf8')) as LogRecord[];
  const dir = diskDirectory(fixtureV2);
  const read: LogRecord[] = [];
  for await (const e of readLog(dir)) read.push(e.record);
  assert.equal(read, expected);
  assert.equal(
    read.map((r) => [r.action, r.version, r.requestId ?? null, r.resetHistory ?? false]),
    [
      ['POST', 0, '6f1c2a1e-8f0b-4c57-9a36-3d2f1b7e9c40', false],
      ['PUT', 1, null, false],
      ['PUT', 2, 'client-key:retry-1', false],
      ['PATCH', 3, '0b7e4d2c-1a9f-4e3b-8c6d-5f2a9e1b7c03', false],
      ['DELETE', 4, null, false],
      ['POST', 0, 'k'.repeat(128), true],
    ],
  );
  const result = await scanLog(dir, () => {});
  assert.is(result.problem, undefined);
  assert.is(result.lastSeq, 6);
  const versions: number[] = [];
  for (const s of await listSegments(dir)) {
    const bytes = await fs.readFile(path.join(fixtureV2, s.name));
    for (let off = 0; off < bytes.length; ) {
      versions.push(bytes[off + 8]!);
      const d = decodeFrame(bytes, off);
      assert.is(d.kind, 'record');
      if (d.kind !== 'record') break;
      off = d.next;
    }
  }
  assert.equal(versions, [2, 1, 2, 2, 1, 2]);
});

test('snapshot-v1: the committed snapshot reads back as expected.json', async () => {
  const folder = path.join(fixtures, 'snapshot-v1');
  const expected = JSON.parse(await fs.readFile(path.join(folder, 'expected.json'), 'utf8')) as {
    lastSeq: number;
    entries: SnapshotEntry[];
  };
  const dir = diskDirectory(folder);
  const [ref] = await listSnapshots(dir);
  const read: SnapshotEntry[] = [];
  const header = await readSnapshot(dir, ref!.name, (e) => read.push(e));
  assert.is(header.lastSeq, expected.lastSeq);
  assert.equal(read, expected.entries);
});

test.run();
