/**
 * The golden log of format v1 (test/fixtures/wal-v1/, written once by its make.ts) must read back
 * with today's reader as the values in expected.json, forever. If this fails, the change broke
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
import { FORMAT_VERSION, decodeFrame } from '../../wal/record.js';
import { listSegments } from '../../wal/segment.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'wal-v1');

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
      assert.is(bytes[off + 8], FORMAT_VERSION);
      const d = decodeFrame(bytes, off);
      assert.is(d.kind, 'record');
      if (d.kind !== 'record') break;
      off = d.next;
    }
  }
});

test.run();
