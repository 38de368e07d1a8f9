/**
 * verify on crafted logs: seq gaps and repeats inside a segment and across segment names, a
 * misnamed segment, missing leading segments, a middle segment cut short, an undecodable payload
 * behind a good checksum; and the rule for a running host, whose last frame may be mid-append
 * when a tool looks.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32 } from 'node:zlib';
import type { LogRecord } from '../../lib/document.js';
import { encodeRecord, scanLog } from '../../wal/index.js';
import { openHostLog } from '../../tools/log/open.js';
import { judgeProblem } from '../../tools/log/read.js';
import { verifyLog } from '../../tools/log/verify.js';
import { cli, frameBytes, record, tempDir, writeSegments } from './support.js';

const A = '/core/examples/a';

function run(from: number, to: number, link = A): LogRecord[] {
  const out: LogRecord[] = [];
  for (let s = from; s <= to; s++) out.push(record(s, link, s - from));
  return out;
}

async function problems(host: string): Promise<[string, number, string, string][]> {
  const report = await verifyLog(await openHostLog(host));
  return report.problems.map((p) => [p.file, p.offset, p.kind, p.reason]);
}

test('a gap and a repeat inside one segment are reported at their offsets; reading goes on', async () => {
  const dir = await tempDir();
  try {
    const records = [...run(1, 3), ...run(6, 7), record(7, A, 9), record(8, A, 10)];
    const [name] = await writeSegments(dir.path, [[1, records]]);
    const offsets = records.map((_, i) => records.slice(0, i).reduce((n, r) => n + frameBytes(r), 0));
    assert.equal(await problems(dir.path), [
      [name!, offsets[3]!, 'sequence', 'seq jumps from 3 to 6: 2 records missing'],
      [name!, offsets[5]!, 'sequence', 'seq 7 where 8 was expected: a repeated or out-of-order record'],
    ]);
    const cliRun = await cli(['verify', dir.path]);
    assert.is(cliRun.code, 1);
    assert.is(
      cliRun.lines[0],
      `${path.join(dir.path, 'log', name!)} at offset ${offsets[3]}: sequence: seq jumps from 3 to 6: 2 records missing`,
    );
    assert.is(
      cliRun.lines.at(-1),
      'FAILED: 2 problems; 1 segment, 7 intact records (seq 1 to 8), ' +
        records.reduce((n, r) => n + frameBytes(r), 0).toLocaleString('en-US') +
        ' bytes',
    );
  } finally {
    await dir.remove();
  }
});

test('segment names: a gap between segments, a misnamed segment, missing leading segments', async () => {
  const gap = await tempDir();
  const misnamed = await tempDir();
  const late = await tempDir();
  try {
    // Records 1-3, then a segment rightly named 6 holding 6-7: seq 4 and 5 are gone.
    const [, six] = await writeSegments(gap.path, [
      [1, run(1, 3)],
      [6, run(6, 7)],
    ]);
    assert.equal(await problems(gap.path), [
      [six!, 0, 'sequence', 'segment named for seq 6 follows seq 3: seq jumps from 3 to 6: 2 records missing'],
    ]);

    // Records run 1-5 without a break, but the second segment is named 5 instead of 4.
    const [, five] = await writeSegments(misnamed.path, [
      [1, run(1, 3)],
      [5, run(4, 5)],
    ]);
    assert.equal(await problems(misnamed.path), [
      [five!, 0, 'sequence', 'segment named for seq 5, but it starts with seq 4, which follows seq 3: the name is wrong'],
    ]);

    const [first] = await writeSegments(late.path, [[4, run(4, 6)]]);
    assert.equal(await problems(late.path), [[first!, 0, 'sequence', 'the log starts at seq 4: seqs 1 to 3 are missing']]);
  } finally {
    await gap.remove();
    await misnamed.remove();
    await late.remove();
  }
});

test('a middle segment cut short is corruption, not a torn tail; the next segment is still checked', async () => {
  const dir = await tempDir();
  try {
    const first = run(1, 3);
    const [one, four] = await writeSegments(dir.path, [
      [1, first],
      [4, [...run(4, 5), record(7, A, 9)]],
    ]);
    const size = first.reduce((n, r) => n + frameBytes(r), 0);
    await fs.truncate(path.join(dir.path, 'log', one!), size - 10);
    const lastOffset = frameBytes(record(4, A, 0)) + frameBytes(record(5, A, 1));
    assert.equal(await problems(dir.path), [
      [
        one!,
        first.slice(0, 2).reduce((n, r) => n + frameBytes(r), 0),
        'corrupt',
        `file ends ${frameBytes(first[2]!) - 10} bytes into a frame; nothing intact follows in this segment (${frameBytes(first[2]!) - 10} bytes)`,
      ],
      [four!, lastOffset, 'sequence', 'seq jumps from 5 to 7: 1 record missing'],
    ]);
  } finally {
    await dir.remove();
  }
});

test('a payload that is not a record, behind a good checksum, is corrupt; the first record must match its segment name', async () => {
  const dir = await tempDir();
  try {
    const good = encodeRecord(record(1, A, 0));
    // A frame whose crc is right but whose msgpack payload is a string, not a record map.
    const payload = Buffer.from([0xa3, 0x61, 0x62, 0x63]);
    const bad = Buffer.alloc(9 + payload.length);
    bad.writeUInt32LE(payload.length, 0);
    bad[8] = 1;
    payload.copy(bad, 9);
    bad.writeUInt32LE(crc32(bad.subarray(8)), 4);
    await fs.mkdir(path.join(dir.path, 'log'));
    await fs.writeFile(path.join(dir.path, 'log', '00000000000000000001.log'), Buffer.concat([good, bad, encodeRecord(record(3, A, 2))]));
    await writeSegments(dir.path, [[4, run(5, 5)]]);
    assert.equal(await problems(dir.path), [
      [
        '00000000000000000001.log',
        good.length,
        'corrupt',
        `payload is not a map; ${bad.length} bytes unreadable, next intact frame at offset ${good.length + bad.length} (seq 3); seq 2 lost`,
      ],
      ['00000000000000000004.log', 0, 'sequence', 'the first record is seq 5, but the segment is named for seq 4'],
    ]);
  } finally {
    await dir.remove();
  }
});

test('running host: a last frame cut by the snapshot but completed since is the end of the snapshot, not a torn tail', async () => {
  const dir = await tempDir();
  try {
    const records = run(1, 3);
    const frames = records.map((r) => encodeRecord(r));
    const file = path.join(dir.path, 'log', '00000000000000000001.log');
    await writeSegments(dir.path, [[1, records.slice(0, 2)]]);
    // The host is in the middle of appending seq 3: half of its frame is in the file.
    await fs.appendFile(file, frames[2]!.subarray(0, 40));
    const log = await openHostLog(dir.path);
    const scan = await scanLog(log.dir, () => {}, { segments: log.segments });
    assert.is(scan.problem?.kind, 'truncated');
    assert.is(await judgeProblem(log, scan.problem!, 3), 'torn', 'nothing has been added yet');
    // The append completes after the scan looked.
    await fs.appendFile(file, frames[2]!.subarray(40));
    assert.is(await judgeProblem(log, scan.problem!, 3), 'in-flight');
    assert.is(await judgeProblem(log, scan.problem!, 4), 'torn', 'a completed frame must still carry the seq that comes next');
    // Grown, but into garbage: still torn.
    await fs.truncate(file, frames[0]!.length + frames[1]!.length + 40);
    await fs.appendFile(file, Buffer.alloc(frames[2]!.length - 40, 0xee));
    assert.is(await judgeProblem(log, scan.problem!, 3), 'torn');
  } finally {
    await dir.remove();
  }
});

test.run();
