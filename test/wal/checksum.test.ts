/**
 * The replay checksum thread: what it vouches for, and that a scan with it finds exactly what a
 * scan without it finds — same records, and the same first problem for damage in any chunk.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChecksumThread } from '../../wal/checksum-thread.js';
import { MemoryDirectory } from '../../wal/file.js';
import { scanLog, type ScanResult } from '../../wal/reader.js';
import { encodeRecord } from '../../wal/record.js';
import { segmentName } from '../../wal/segment.js';
import { newRecord, withSeq } from './helpers.js';

test('the thread vouches for the run of intact frames at the start of a buffer', async () => {
  const frames = [1, 2, 3, 4].map((seq) => encodeRecord(withSeq(seq, newRecord(seq))));
  const buf = Buffer.concat(frames);
  const thread = new ChecksumThread();
  try {
    assert.is(await thread.verify(buf), buf.length);
    assert.is(await thread.verify(buf.subarray(0, buf.length - 1)), buf.length - frames[3]!.length, 'a cut frame is not vouched for');
    const damaged = Buffer.from(buf);
    damaged[frames[0]!.length + frames[1]!.length + 20]! ^= 4;
    assert.is(await thread.verify(damaged), frames[0]!.length + frames[1]!.length);
    assert.is(await thread.verify(Buffer.alloc(0)), 0);
    const many = await Promise.all([buf, damaged, buf].map((b) => thread.verify(b)));
    assert.equal(many, [buf.length, frames[0]!.length + frames[1]!.length, buf.length], 'overlapping requests');
  } finally {
    await thread.close();
  }
  assert.is(await thread.verify(buf), 0, 'a closed thread vouches for nothing');
});

/** One segment of about 5 MiB: more than two 2 MiB chunks, so a scan uses the thread. */
function bigLog(): { dir: MemoryDirectory; bytes: Buffer; offsets: number[] } {
  const frames: Buffer[] = [];
  const offsets: number[] = [];
  let at = 0;
  for (let seq = 1; seq <= 9000; seq++) {
    const f = encodeRecord(withSeq(seq, newRecord(seq, 300)));
    offsets.push(at);
    at += f.length;
    frames.push(f);
  }
  const bytes = Buffer.concat(frames);
  const dir = new MemoryDirectory();
  dir.put(segmentName(1), bytes);
  return { dir, bytes, offsets };
}

async function scan(dir: MemoryDirectory, checksumThread: boolean): Promise<{ result: ScanResult; seqs: number[] }> {
  const seqs: number[] = [];
  const result = await scanLog(dir, (r) => seqs.push(r.seq), { chunkBytes: 2 * 1024 * 1024, checksumThread });
  return { result, seqs };
}

test('with and without the thread, a scan sees the same records and the same first problem', async () => {
  const { dir, bytes, offsets } = bigLog();
  assert.ok(bytes.length > 4 * 1024 * 1024);
  const clean = await scan(dir, true);
  assert.is(clean.seqs.length, 9000);
  assert.equal(clean.seqs, (await scan(dir, false)).seqs);
  assert.is(clean.result.problem, undefined);

  // Damage at the start, in each chunk, next to a chunk boundary, and in the last frame.
  const boundary = offsets.findIndex((o) => o > 2 * 1024 * 1024) - 1;
  for (const i of [0, 100, boundary, boundary + 1, 4000, 7500, 8999]) {
    const d = dir.crash();
    d.flipBit(segmentName(1), offsets[i]! + 30, 2);
    const withThread = await scan(d, true);
    const without = await scan(d, false);
    assert.is(withThread.seqs.length, i, `frame ${i}`);
    assert.equal(withThread.seqs, without.seqs);
    assert.equal(withThread.result.problem, without.result.problem);
    assert.is(withThread.result.problem!.offset, offsets[i]);
    assert.is(withThread.result.problem!.kind, 'corrupt');
  }
});

test('a torn tail in a big segment is found the same way with the thread', async () => {
  const { dir, bytes, offsets } = bigLog();
  const d = dir.crash();
  d.tearTail(segmentName(1), bytes.length - 10);
  const withThread = await scan(d, true);
  assert.is(withThread.seqs.length, 8999);
  assert.equal(withThread.result.problem, {
    file: segmentName(1),
    segment: 0,
    offset: offsets[8999]!,
    kind: 'truncated',
    reason: withThread.result.problem!.reason,
    fileBytes: bytes.length - 10,
  });
});

test.run();
