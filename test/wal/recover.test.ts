/**
 * Recovery against each kind of damage: a torn tail at every length of the last record, flipped
 * bits in the last and in a middle record, zero and garbage tails, damage in an older segment,
 * seq gaps, and repair. Also the torn-tail cut surviving the next crash, and the disk backend.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LogRecord } from '../../lib/document.js';
import type { KryptonError } from '../../lib/errors.js';
import { MemoryDirectory, diskDirectory } from '../../wal/file.js';
import { readLog, type LogEntry } from '../../wal/reader.js';
import { encodeRecord } from '../../wal/record.js';
import { listSegments, segmentName } from '../../wal/segment.js';
import { appendRange, captureLogger, newRecord, openLog, rejection, replayAll, tempDir, withSeq } from './helpers.js';

/** A closed log of records 1..n, with where each frame sits. */
async function buildLog(n: number, segmentBytesMax?: number): Promise<{ dir: MemoryDirectory; records: LogRecord[]; entries: LogEntry[] }> {
  const dir = new MemoryDirectory();
  const { log } = await openLog(dir, segmentBytesMax === undefined ? {} : { segmentBytesMax });
  const records = await appendRange(log, 1, n);
  await log.close();
  const entries: LogEntry[] = [];
  for await (const e of readLog(dir)) entries.push(e);
  return { dir, records, entries };
}

/** A copy of a directory (a crash image of a closed log is an exact copy). */
function copy(dir: MemoryDirectory): MemoryDirectory {
  return dir.crash();
}

async function corruptOpen(dir: MemoryDirectory): Promise<KryptonError> {
  const e = await rejection(openLog(dir));
  assert.is(e.code, 'LOG_CORRUPT');
  return e;
}

test('torn tail at every length of the last record: cut off, earlier records kept, log appendable', async () => {
  const { dir, records, entries } = await buildLog(5);
  const last = entries.at(-1)!;
  for (let keep = 0; keep < last.bytes; keep++) {
    const d = copy(dir);
    d.tearTail(last.file, last.offset + keep);
    const logger = captureLogger();
    const { log, replayed } = await openLog(d, { logger });
    assert.equal(replayed, records.slice(0, 4), `keep ${keep}`);
    if (keep === 0) assert.is(logger.warnings.length, 0, 'a file ending on a frame boundary is not damage');
    else
      assert.equal(
        logger.warnings.map((w) => [w.obj.file, w.obj.offset]),
        [[last.file, last.offset]],
      );
    assert.is(d.contents(last.file).length, last.offset, 'cut at the frame start');
    assert.is((await log.append(newRecord(50))).seq, 5, 'the torn record never happened: its seq is given again');
    await log.close();
    assert.equal(
      (await replayAll(d)).map((r) => r.seq),
      [1, 2, 3, 4, 5],
    );
  }
});

test('a flipped bit anywhere in the last record is a torn tail: cut off', async () => {
  const { dir, records, entries } = await buildLog(4);
  const last = entries.at(-1)!;
  for (let byte = 0; byte < last.bytes; byte++) {
    for (let bit = 0; bit < 8; bit++) {
      const d = copy(dir);
      d.flipBit(last.file, last.offset + byte, bit);
      const logger = captureLogger();
      const replayed = await replayAll(d, { logger });
      assert.equal(replayed, records.slice(0, 3), `byte ${byte} bit ${bit}`);
      assert.is(logger.warnings.length, 1);
      assert.is(d.contents(last.file).length, last.offset);
    }
  }
});

test('a flipped bit in a middle record is LOG_CORRUPT naming file and offset; repair cuts there', async () => {
  const { dir, records, entries } = await buildLog(6);
  const bad = entries[2]!;
  for (const byte of [0, 4, 8, 9, Math.floor(bad.bytes / 2), bad.bytes - 1]) {
    const d = copy(dir);
    d.flipBit(bad.file, bad.offset + byte, 0);
    const e = await corruptOpen(d);
    assert.match(e.message, new RegExp(`^log corrupt in ${bad.file} at offset ${bad.offset}: `));
    assert.equal(e.detail, { file: bad.file, offset: bad.offset });
    assert.is(d.contents(bad.file).length, dir.contents(bad.file).length, 'nothing is cut without repair');

    const logger = captureLogger();
    const { log, replayed } = await openLog(d, { repair: true, logger });
    assert.equal(replayed, records.slice(0, 2));
    assert.is(logger.warnings.length, 1);
    assert.equal([logger.warnings[0]!.obj.file, logger.warnings[0]!.obj.offset], [bad.file, bad.offset]);
    assert.is((await log.append(newRecord(99))).seq, 3);
    await log.close();
    assert.equal(
      (await replayAll(d.crash())).map((r) => r.seq),
      [1, 2, 3],
      'the repair is durable',
    );
  }
});

test('a middle record whose length field claims to run past the end is corruption, not a torn tail', async () => {
  const { dir, entries } = await buildLog(6);
  const bad = entries[2]!;
  const d = copy(dir);
  d.flipBit(bad.file, bad.offset + 2, 4); // +1 MiB: within the record limit, past the end of the file
  const e = await corruptOpen(d);
  assert.equal(e.detail, { file: bad.file, offset: bad.offset });
});

test('a tail of zeros or of garbage ending exactly at the end of the file is a torn tail', async () => {
  const { dir, records, entries } = await buildLog(3);
  const file = entries[0]!.file;
  const zeros = copy(dir);
  zeros.put(file, Buffer.concat([dir.contents(file), Buffer.alloc(4096)]));
  assert.equal(await replayAll(zeros), records);
  assert.is(zeros.contents(file).length, dir.contents(file).length);

  const garbage = copy(dir);
  const last = entries.at(-1)!;
  const bytes = dir.contents(file);
  for (let i = last.offset + 9; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff; // full length, wrong bytes
  garbage.put(file, bytes);
  assert.equal(await replayAll(garbage), records.slice(0, 2));
});

test('damage in an older segment is LOG_CORRUPT; repair cuts it and drops every later segment', async () => {
  const { dir, records, entries } = await buildLog(12, 700);
  const segments = await listSegments(dir);
  assert.ok(segments.length >= 3, `${segments.length} segments`);
  const inFirst = entries.filter((e) => e.file === segments[0]!.name);
  const lastOfFirst = inFirst.at(-1)!;
  const d = copy(dir);
  d.tearTail(lastOfFirst.file, lastOfFirst.offset + 3);
  const e = await corruptOpen(d);
  assert.equal(e.detail, { file: lastOfFirst.file, offset: lastOfFirst.offset });

  const logger = captureLogger();
  const { log, replayed } = await openLog(d, { repair: true, logger });
  assert.equal(replayed, records.slice(0, inFirst.length - 1));
  assert.equal(await d.list(), [segments[0]!.name]);
  assert.equal(
    logger.warnings[0]!.obj.droppedSegments,
    segments.slice(1).map((s) => s.name),
  );
  assert.is((await log.append(newRecord(1))).seq, inFirst.length);
  await log.close();
  assert.equal(await d.crash().list(), [segments[0]!.name], 'removals are durable');
});

test('a missing middle segment is a seq gap: LOG_CORRUPT; repair keeps what comes before it', async () => {
  const { dir, entries } = await buildLog(12, 700);
  const segments = await listSegments(dir);
  const d = copy(dir);
  await d.remove(segments[1]!.name);
  const e = await corruptOpen(d);
  assert.equal(e.detail, { file: segments[2]!.name, offset: 0 });
  assert.match(e.message, /segment starts at seq \d+, expected \d+/);
  const kept = entries.filter((x) => x.file === segments[0]!.name).length;
  assert.is((await replayAll(d, { repair: true })).length, kept);
  assert.equal(await d.list(), [segments[0]!.name]);
});

test('a seq gap inside a segment is LOG_CORRUPT at the frame that skips', async () => {
  const d = new MemoryDirectory();
  const frames = [1, 2, 4, 5].map((seq) => encodeRecord(withSeq(seq, newRecord(seq))));
  d.put(segmentName(1), Buffer.concat(frames));
  const e = await corruptOpen(d);
  assert.equal(e.detail, { file: segmentName(1), offset: frames[0]!.length + frames[1]!.length });
  assert.match(e.message, /expected seq 3, found 4/);
  assert.equal(
    (await replayAll(d, { repair: true })).map((r) => r.seq),
    [1, 2],
  );
});

test('the first segment may start at any seq; other files are ignored', async () => {
  const d = new MemoryDirectory();
  d.put(segmentName(100), Buffer.concat([100, 101, 102].map((seq) => encodeRecord(withSeq(seq, newRecord(seq))))));
  d.put('README.txt', Buffer.from('not a segment'));
  const { log, replayed } = await openLog(d);
  assert.equal(
    replayed.map((r) => r.seq),
    [100, 101, 102],
  );
  assert.is((await log.append(newRecord(103))).seq, 103);
  await log.close();
});

test('an empty last segment (a crash just after rotation) is fine; one with the wrong name is not', async () => {
  const frames = [1, 2].map((seq) => encodeRecord(withSeq(seq, newRecord(seq))));
  const d = new MemoryDirectory();
  d.put(segmentName(1), Buffer.concat(frames));
  d.put(segmentName(3), Buffer.alloc(0));
  const { log, replayed } = await openLog(d);
  assert.is(replayed.length, 2);
  assert.is((await log.append(newRecord(3))).seq, 3);
  await log.close();
  assert.is(d.contents(segmentName(3)).length > 0, true, 'appended into the empty segment');

  const wrong = new MemoryDirectory();
  wrong.put(segmentName(1), Buffer.concat(frames));
  wrong.put(segmentName(5), Buffer.alloc(0));
  await corruptOpen(wrong);
  assert.is((await replayAll(wrong, { repair: true })).length, 2);
  assert.equal(await wrong.list(), [segmentName(1)]);
});

test('the cut of a torn tail is synced: a crash right after recovery keeps it', async () => {
  const { dir, entries } = await buildLog(3);
  const last = entries.at(-1)!;
  const d = copy(dir);
  d.tearTail(last.file, last.offset + 5);
  await replayAll(d);
  const logger = captureLogger();
  assert.is((await replayAll(d.crash(), { logger })).length, 2);
  assert.is(logger.warnings.length, 0, 'nothing left to cut');
});

test('readLog: from a seq across segments, with file, offset and size; quiet at a torn tail, throws on damage', async () => {
  const { dir, records, entries } = await buildLog(12, 700);
  const from7: LogEntry[] = [];
  for await (const e of readLog(dir, { fromSeq: 7 })) from7.push(e);
  assert.equal(from7, entries.slice(6));
  assert.equal(
    from7.map((e) => e.record),
    records.slice(6),
  );
  for (const e of from7) assert.is(encodeRecord(e.record).length, e.bytes);

  const torn = copy(dir);
  const last = entries.at(-1)!;
  torn.tearTail(last.file, last.offset + 1);
  let n = 0;
  for await (const _ of readLog(torn)) n++;
  assert.is(n, 11);
  assert.is(torn.contents(last.file).length, last.offset + 1, 'readLog never changes a file');

  const damaged = copy(dir);
  damaged.flipBit(entries[3]!.file, entries[3]!.offset + 20, 1);
  const seen: number[] = [];
  const e = await rejection(
    (async () => {
      for await (const x of readLog(damaged)) seen.push(x.record.seq);
    })(),
  );
  assert.is(e.code, 'LOG_CORRUPT');
  assert.equal(seen, [1, 2, 3]);
});

test('disk: a torn tail cut by the file system is cut off on open', async () => {
  const tmp = await tempDir();
  try {
    const { log } = await openLog(diskDirectory(tmp.path));
    const records = await appendRange(log, 1, 4);
    await log.close();
    const file = path.join(tmp.path, segmentName(1));
    const size = (await fs.stat(file)).size;
    await fs.truncate(file, size - 7);
    const logger = captureLogger();
    const again = await openLog(diskDirectory(tmp.path), { logger });
    assert.equal(again.replayed, records.slice(0, 3));
    assert.is(logger.warnings.length, 1);
    assert.is((await again.log.append(newRecord(4))).seq, 4);
    await again.log.close();
    assert.is((await replayAll(diskDirectory(tmp.path))).length, 4);
  } finally {
    await tmp.remove();
  }
});

test('disk, preallocated: appends go into zeros written ahead; close cuts them; a crash image keeps every record and recovery cuts the zeros quietly', async () => {
  const tmp = await tempDir();
  const image = await tempDir();
  try {
    const { log } = await openLog(diskDirectory(tmp.path), { preallocateBytes: 64 * 1024 });
    const written = await appendRange(log, 1, 40);
    const name = segmentName(1);
    const used = log.stats().bytes;
    const file = path.join(tmp.path, name);
    const size = (await fs.stat(file)).size;
    assert.ok(size >= 64 * 1024 && size > used, `the file holds zeros ahead of the appends (${size} > ${used})`);
    assert.ok(
      (await fs.readFile(file)).subarray(used).every((b) => b === 0),
      'zeros after the last frame',
    );
    // A crash now: every acknowledged append is durable, and the zeros are still there.
    await fs.copyFile(file, path.join(image.path, name));
    await log.close();
    assert.is((await fs.stat(file)).size, used, 'a clean close cuts the zeros');

    const logger = captureLogger();
    const again = await openLog(diskDirectory(image.path), { preallocateBytes: 64 * 1024, logger });
    assert.equal(again.replayed, written);
    assert.is(logger.warnings.length, 0, 'unused preallocated space is not damage');
    assert.ok(logger.infos.some((i) => i.msg.includes('preallocated') && i.obj.zeroBytes === size - used));
    assert.is((await fs.stat(path.join(image.path, name))).size, used, 'recovery cut the zeros');
    assert.is((await again.log.append(newRecord(41))).seq, 41, 'appends go on after the last record');
    await again.log.close();
    assert.equal(
      (await replayAll(diskDirectory(image.path))).map((r) => r.seq),
      Array.from({ length: 41 }, (_, i) => i + 1),
    );
  } finally {
    await tmp.remove();
    await image.remove();
  }
});

test('disk: zeros with an intact frame after them are damage, not preallocated space', async () => {
  const tmp = await tempDir();
  try {
    const frame = (seq: number) => encodeRecord(withSeq(seq, newRecord(seq)));
    const name = segmentName(1);
    await fs.writeFile(
      path.join(tmp.path, name),
      Buffer.concat([frame(1), frame(2), Buffer.alloc(frame(3).length), frame(4), Buffer.alloc(4096)]),
    );
    const e = await rejection(openLog(diskDirectory(tmp.path)));
    assert.is(e.code, 'LOG_CORRUPT');
    // Zeros shorter than a frame header at the very end are unused space too.
    await fs.writeFile(path.join(tmp.path, name), Buffer.concat([frame(1), frame(2), Buffer.alloc(5)]));
    assert.equal(
      (await replayAll(diskDirectory(tmp.path))).map((r) => r.seq),
      [1, 2],
    );
    assert.is((await fs.stat(path.join(tmp.path, name))).size, frame(1).length + frame(2).length);
  } finally {
    await tmp.remove();
  }
});

test.run();
