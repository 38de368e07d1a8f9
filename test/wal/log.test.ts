/**
 * WriteAheadLog: seq assignment, group commit (fewer syncs than appends, nothing acknowledged
 * before it is durable), batch and queue limits, segment rotation and replay, poisoning on a
 * failed write or sync, a full disk refused without poisoning, close, and the disk backend end to end.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LogRecord } from '../../lib/document.js';
import { MemoryDirectory, diskDirectory, type LogFile } from '../../wal/file.js';
import { WriteAheadLog } from '../../wal/log.js';
import { decodeFrame, encodeRecord } from '../../wal/record.js';
import { listSegments, segmentName } from '../../wal/segment.js';
import { appendRange, newRecord, openLog, rejection, replayAll, tempDir, withSeq } from './helpers.js';

test('an empty folder gets a first segment; appends get seqs 1, 2, 3 in call order', async () => {
  const dir = new MemoryDirectory();
  const { log, replayed } = await openLog(dir);
  assert.equal(replayed, []);
  assert.equal(await dir.list(), [segmentName(1)]);
  assert.is(log.lastSeq, 0);
  const p1 = log.append(newRecord(1));
  const p2 = log.append(newRecord(2));
  assert.is(log.lastSeq, 2, 'seq is given at call time');
  const p3 = log.append({ ...newRecord(3), action: 'POST', resetHistory: true });
  assert.equal(await Promise.all([p1, p2, p3]), [
    withSeq(1, newRecord(1)),
    withSeq(2, newRecord(2)),
    withSeq(3, { ...newRecord(3), action: 'POST', resetHistory: true }),
  ]);
  assert.equal(log.stats(), { segments: 1, bytes: dir.contents(segmentName(1)).length, appends: 3, syncs: 1, lastSeq: 3, aheadBytes: 0 });
  await log.close();
  assert.equal(
    (await replayAll(dir)).map((r) => r.seq),
    [1, 2, 3],
  );
});

test('appendAll: consecutive seqs, one durable resolution for all, all or none when one is refused', async () => {
  const dir = new MemoryDirectory();
  const { log } = await openLog(dir, { pendingAppendsMax: 6 });
  const single = log.append(newRecord(1));
  const before = dir.crash();
  const batch = log.appendAll([newRecord(2), newRecord(3), { ...newRecord(4), resetHistory: true }]);
  assert.is(log.lastSeq, 4, 'seqs are given at call time');
  const logged = await batch;
  assert.equal(
    logged.map((r) => r.seq),
    [2, 3, 4],
  );
  assert.equal(logged[2], withSeq(4, { ...newRecord(4), resetHistory: true }));
  assert.equal(
    (await replayAll(dir.crash())).map((r) => r.seq),
    [1, 2, 3, 4],
    'durable when it resolves',
  );
  assert.equal(await replayAll(before), []);
  await single;
  // A record the log refuses takes the whole call down before any seq is taken.
  const tooBig = await rejection(log.appendAll([newRecord(5), newRecord(6, 3 * 1024 * 1024)]));
  assert.is(tooBig.code, 'LIMIT_EXCEEDED');
  assert.is(log.lastSeq, 4);
  // Past pendingAppendsMax the whole call is refused.
  const held = [log.append(newRecord(5)), log.append(newRecord(6))];
  assert.is((await rejection(log.appendAll([7, 8, 9, 10, 11].map((i) => newRecord(i))))).code, 'LIMIT_EXCEEDED');
  await Promise.all(held);
  assert.equal(await log.appendAll([]), []);
  await log.close();
  assert.equal(
    (await replayAll(dir)).map((r) => r.seq),
    [1, 2, 3, 4, 5, 6],
  );
});

test('appendAll: a failed sync rejects the whole call and poisons the log', async () => {
  const dir = new MemoryDirectory();
  const { log } = await openLog(dir);
  await log.append(newRecord(1));
  dir.failNextSync(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }));
  assert.is((await rejection(log.appendAll([newRecord(2), newRecord(3)]))).code, 'LOG_FAILED');
  assert.is((await rejection(log.append(newRecord(4)))).code, 'LOG_FAILED');
  await log.close();
});

test('group commit: concurrent appends share syncs and resolve in seq order', async () => {
  const dir = new MemoryDirectory();
  const { log } = await openLog(dir);
  const resolved: number[] = [];
  const all = Array.from({ length: 500 }, (_, i) => log.append(newRecord(i + 1)).then((r) => resolved.push(r.seq)));
  await Promise.all(all);
  assert.equal(
    resolved,
    Array.from({ length: 500 }, (_, i) => i + 1),
  );
  assert.ok(log.stats().syncs < 500 / 10, `syncs ${log.stats().syncs}`);
  await log.close();
});

test('group commit: nothing resolves before it is durable (a crash image at each resolution holds it)', async () => {
  const dir = new MemoryDirectory();
  const { log } = await openLog(dir);
  const images: { seq: number; image: MemoryDirectory }[] = [];
  const first = log.append(newRecord(1));
  const before = dir.crash();
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; i < 15; i++) {
      const r = await log.append(newRecord(w * 100 + i));
      images.push({ seq: r.seq, image: dir.crash() });
    }
  };
  await Promise.all([first, ...[1, 2, 3, 4, 5, 6].map(writer)]);
  assert.equal(await replayAll(before), [], 'not durable before its sync');
  assert.is(images.length, 90);
  for (const { seq, image } of images) {
    const seqs = (await replayAll(image)).map((r) => r.seq);
    assert.ok(seqs.length >= seq && seqs[seq - 1] === seq, `seq ${seq} resolved but not in the crash image`);
  }
  await log.close();
});

test('group commit: steady writers are all caught by each batch (the turn before taking a batch)', async () => {
  const dir = new MemoryDirectory();
  const { log } = await openLog(dir);
  const rounds = 20;
  const writer = async (w: number, delayTicks: number): Promise<void> => {
    for (let i = 0; i < delayTicks; i++) await null;
    await appendRange(log, w * 1000, w * 1000 + rounds - 1);
  };
  // Half the writers start while the first batch is being written. A flusher that takes the next
  // batch straight after resolving one would keep the halves apart forever (2 syncs per round);
  // with the turn, the just-resolved half re-appends in time and every batch carries all 8.
  await Promise.all([0, 1, 2, 3].map((w) => writer(w, 0)).concat([4, 5, 6, 7].map((w) => writer(w, 2))));
  assert.ok(log.stats().syncs <= rounds + 2, `syncs ${log.stats().syncs} for ${8 * rounds} appends`);
  await log.close();
});

test('batch limits bound what one sync carries', async () => {
  const byRecords = await openLog(new MemoryDirectory(), { batchRecordsMax: 10 });
  await Promise.all(Array.from({ length: 100 }, (_, i) => byRecords.log.append(newRecord(i))));
  assert.is(byRecords.log.stats().syncs, 10);
  await byRecords.log.close();

  const frameBytes = encodeRecord(withSeq(1, newRecord(1))).length;
  const byBytes = await openLog(new MemoryDirectory(), { batchBytesMax: 3 * frameBytes + 2 });
  await Promise.all(Array.from({ length: 9 }, () => byBytes.log.append(newRecord(1))));
  assert.is(byBytes.log.stats().syncs, 3);
  await byBytes.log.close();
});

test('pendingAppendsMax: past it appends fail at once with LIMIT_EXCEEDED and take no seq', async () => {
  const { log } = await openLog(new MemoryDirectory(), { pendingAppendsMax: 5 });
  const ok = Array.from({ length: 5 }, (_, i) => log.append(newRecord(i)));
  const refused = await rejection(log.append(newRecord(99)));
  assert.is(refused.code, 'LIMIT_EXCEEDED');
  assert.is(log.lastSeq, 5);
  await Promise.all(ok);
  assert.is((await log.append(newRecord(6))).seq, 6, 'room again once the disk caught up');
  await log.close();
});

test('a record over recordBytesMax is refused with LIMIT_EXCEEDED and takes no seq', async () => {
  const { log } = await openLog(new MemoryDirectory());
  await log.append(newRecord(1));
  const e = await rejection(log.append(newRecord(2, 3 * 1024 * 1024)));
  assert.is(e.code, 'LIMIT_EXCEEDED');
  assert.is((await log.append(newRecord(3))).seq, 2);
  await log.close();
});

test('rotation: segments named by their first seq, each within segmentBytesMax, all replayed', async () => {
  const dir = new MemoryDirectory();
  const segmentBytesMax = 1000;
  const { log } = await openLog(dir, { segmentBytesMax });
  const written: LogRecord[] = [];
  written.push(...(await appendRange(log, 1, 10)));
  written.push(...(await Promise.all(Array.from({ length: 30 }, (_, i) => log.append(newRecord(11 + i))))));
  const stats = log.stats();
  await log.close();
  const segments = await listSegments(dir);
  assert.ok(segments.length >= 8, `${segments.length} segments`);
  assert.is(stats.segments, segments.length);
  let bytes = 0;
  for (const s of segments) {
    const content = dir.contents(s.name);
    bytes += content.length;
    assert.ok(content.length <= segmentBytesMax, `${s.name} has ${content.length} bytes`);
    const first = decodeFrame(content, 0);
    assert.ok(first.kind === 'record' && first.record.seq === s.firstSeq, `${s.name} starts with its seq`);
  }
  assert.is(stats.bytes, bytes);
  assert.equal(await replayAll(dir), written);
  assert.equal(await replayAll(dir.crash()), written, 'new segments were made durable in the directory');

  const again = await openLog(dir, { segmentBytesMax });
  assert.is((await again.log.append(newRecord(41))).seq, 41);
  await again.log.close();
  assert.is((await replayAll(dir)).length, 41);
});

test('a record bigger than a segment still gets written, alone in its segment', async () => {
  const dir = new MemoryDirectory();
  const { log } = await openLog(dir, { segmentBytesMax: 100 });
  await appendRange(log, 1, 3, 200);
  await log.close();
  assert.equal(await dir.list(), [segmentName(1), segmentName(2), segmentName(3)]);
  assert.is((await replayAll(dir)).length, 3);
});

test('a failed sync poisons the log: waiting and later appends fail with LOG_FAILED', async () => {
  const dir = new MemoryDirectory();
  const { log } = await openLog(dir);
  await log.append(newRecord(1));
  dir.failNextSync(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }));
  const waiting = [log.append(newRecord(2)), log.append(newRecord(3))];
  for (const p of waiting) {
    const e = await rejection(p);
    assert.is(e.code, 'LOG_FAILED');
    assert.match(e.message, /EIO/);
  }
  assert.is((await rejection(log.append(newRecord(4)))).code, 'LOG_FAILED');
  assert.is(log.durableSeq, 1);
  await log.close();
  assert.equal(
    (await replayAll(dir.crash())).map((r) => r.seq),
    [1],
    'nothing unsynced survives',
  );
});

test('a failed write poisons the log too', async () => {
  const dir = new MemoryDirectory();
  const { log } = await openLog(dir);
  dir.failNextAppend(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }));
  assert.is((await rejection(log.append(newRecord(1)))).code, 'LOG_FAILED');
  assert.is((await rejection(log.append(newRecord(2)))).code, 'LOG_FAILED');
  await log.close();
});

/** A directory whose next durable append writes half its bytes, durably, then fails with ENOSPC. */
class FillingDirectory extends MemoryDirectory {
  armed = false;
  override async create(name: string): Promise<LogFile> {
    return this.wrap(await super.create(name));
  }
  override async open(name: string, mode: 'read' | 'append'): Promise<LogFile> {
    return this.wrap(await super.open(name, mode));
  }
  private wrap(f: LogFile): LogFile {
    return {
      name: f.name,
      size: () => f.size(),
      read: (p, l, into) => f.read(p, l, into),
      append: (b) => f.append(b),
      datasync: () => f.datasync(),
      truncate: (l) => f.truncate(l),
      close: () => f.close(),
      appendDurable: async (buffers) => {
        if (!this.armed) return f.appendDurable(buffers);
        this.armed = false;
        const all = Buffer.concat(buffers);
        await f.appendDurable([all.subarray(0, Math.floor(all.length / 2))]);
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      },
    };
  }
}

test('a full disk refuses the batch with DISK_FULL, cuts the half-written frame, gives the seqs out again and goes on', async () => {
  const dir = new FillingDirectory();
  const { log } = await openLog(dir, { preallocateBytes: 0 });
  await appendRange(log, 1, 3);
  dir.armed = true;
  const refused = await Promise.allSettled([log.append(newRecord(4)), log.append(newRecord(5))]);
  for (const r of refused) {
    assert.is(r.status, 'rejected');
    const e = (r as PromiseRejectedResult).reason as { code: string; message: string };
    assert.is(e.code, 'DISK_FULL');
    assert.match(e.message, /disk is full/);
  }
  const next = await log.append(newRecord(6));
  assert.is(next.seq, 4, 'the refused records took no seq for good');
  await log.close();
  const replayed = await replayAll(dir.crash());
  assert.equal(
    replayed.map((r) => [r.seq, r.version]),
    [
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 6],
    ],
  );
});

test('close flushes waiting appends; appends after close fail; close twice is fine', async () => {
  const dir = new MemoryDirectory();
  const { log } = await openLog(dir);
  const waiting = Array.from({ length: 20 }, (_, i) => log.append(newRecord(i)));
  await log.close();
  assert.is((await Promise.all(waiting)).length, 20);
  const e = await rejection(log.append(newRecord(99)));
  assert.is(e.code, 'LOG_FAILED');
  assert.is(e.detail.reason, 'SHUTTING_DOWN');
  await log.close();
  assert.is((await replayAll(dir.crash())).length, 20);
});

test('an onRecord that throws fails open with its error', async () => {
  const dir = new MemoryDirectory();
  const { log } = await openLog(dir);
  await appendRange(log, 1, 3);
  await log.close();
  const boom = new Error('index refused the record');
  try {
    await WriteAheadLog.open({
      dir,
      onRecord: (r) => {
        if (r.seq === 2) throw boom;
      },
    });
    assert.unreachable('opened');
  } catch (e) {
    assert.is(e, boom);
  }
  assert.is((await replayAll(dir)).length, 3, 'nothing was changed');
});

test('options are checked', async () => {
  for (const bad of [{ segmentBytesMax: 0 }, { batchRecordsMax: -1 }, { batchBytesMax: 1.5 }, { pendingAppendsMax: Number.NaN }]) {
    const e = await rejection(WriteAheadLog.open({ dir: new MemoryDirectory(), onRecord: () => {}, ...bad }));
    assert.is(e.code, 'INVALID_ARGUMENT');
  }
});

test('disk: concurrent appends, close, reopen replays everything and appends go on', async () => {
  const tmp = await tempDir();
  try {
    const dir = diskDirectory(tmp.path);
    const { log } = await openLog(dir, { segmentBytesMax: 4096 });
    const written = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(newRecord(i + 1))));
    assert.ok(log.stats().syncs < 200);
    await log.close();
    assert.ok((await listSegments(dir)).length > 3);

    const again = await openLog(diskDirectory(tmp.path), { segmentBytesMax: 4096 });
    assert.equal(again.replayed, written);
    assert.is((await again.log.append(newRecord(201))).seq, 201);
    await again.log.close();
    assert.is((await replayAll(diskDirectory(tmp.path))).length, 201);
  } finally {
    await tmp.remove();
  }
});

test('disk: the zeros written ahead of the appends are counted (aheadBytes), so a quota sees the space the files take', async () => {
  const tmp = await tempDir();
  try {
    const { log } = await openLog(diskDirectory(tmp.path), { preallocateBytes: 1024 * 1024 });
    await log.append(newRecord(1));
    const st = log.stats();
    assert.ok(st.aheadBytes > 0, 'zeros were written ahead');
    let onDisk = 0;
    for (const name of await fs.readdir(tmp.path)) onDisk += (await fs.stat(path.join(tmp.path, name))).size;
    assert.is(st.bytes + st.aheadBytes, onDisk);
    await log.close();
    assert.is(log.stats().aheadBytes, 0, 'close cuts them');
  } finally {
    await tmp.remove();
  }
});

test.run();
