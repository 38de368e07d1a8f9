import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isKryptonError } from '../../lib/errors.js';
import { MemoryDirectory } from '../../wal/file.js';
import { WriteAheadLog } from '../../wal/log.js';
import { listSnapshots, pruneSnapshots, readSnapshot, snapshotName, writeSnapshot, type SnapshotEntry } from '../../wal/snapshot.js';
import { newRecord } from './helpers.js';

function sampleEntries(n: number): SnapshotEntry[] {
  const out: SnapshotEntry[] = [{ kind: 'trimmed', link: '/core/examples/e0', micros: 17 }];
  for (let i = 0; i < n; i++) {
    const r = newRecord(i, 100);
    const e: SnapshotEntry = { kind: 'version', link: r.link, version: r.version, timeMicros: r.timeMicros, state: r.state };
    if (i % 3 === 0) e.requestId = `req-${i}`;
    out.push(e);
  }
  out.push({ kind: 'dedup', link: '/core/examples/e3', requestId: 'req-3', timeMicros: 5, state: newRecord(3).state });
  return out;
}

const header = { lastSeq: 42, clockMicros: 1000, newestTimeMicros: 900 };

async function readAll(dir: MemoryDirectory, name: string): Promise<{ entries: SnapshotEntry[]; lastSeq: number }> {
  const entries: SnapshotEntry[] = [];
  const h = await readSnapshot(dir, name, (e) => entries.push(e), 4096);
  return { entries, lastSeq: h.lastSeq };
}

async function damageOf(dir: MemoryDirectory, name: string): Promise<{ message: string; offset: number }> {
  try {
    await readAll(dir, name);
  } catch (e) {
    if (isKryptonError(e) && e.code === 'LOG_CORRUPT') return { message: e.message, offset: Number(e.detail.offset) };
    throw e;
  }
  throw new Error('the damaged snapshot was read without complaint');
}

test('a snapshot reads back every entry in order, across chunk boundaries', async () => {
  const dir = new MemoryDirectory();
  const entries = sampleEntries(300);
  const written = await writeSnapshot(dir, header, entries, 4096);
  assert.is(written.name, snapshotName(42));
  assert.is(written.entries, entries.length);
  const back = await readAll(dir, written.name);
  assert.is(back.lastSeq, 42);
  assert.equal(back.entries, entries);
  assert.equal(await dir.list(), [written.name]);
});

test('a flipped bit anywhere is reported with the file and the offset of the frame', async () => {
  const dir = new MemoryDirectory();
  const { name, bytes } = await writeSnapshot(dir, header, sampleEntries(50));
  for (const at of [3, 200, Math.floor(bytes / 2), bytes - 3]) {
    const copy = new MemoryDirectory();
    copy.put(name, dir.contents(name));
    copy.flipBit(name, at, 1);
    const d = await damageOf(copy, name);
    assert.match(d.message, name);
    assert.ok(d.offset <= at, `frame offset ${d.offset} at or before the flipped byte ${at}`);
  }
});

test('a snapshot cut short, or with bytes after its end frame, is damaged, not smaller', async () => {
  const dir = new MemoryDirectory();
  const { name, bytes } = await writeSnapshot(dir, header, sampleEntries(50));
  for (const keep of [0, 5, 100, bytes - 1]) {
    const copy = new MemoryDirectory();
    copy.put(name, dir.contents(name).subarray(0, keep));
    assert.match((await damageOf(copy, name)).message, /ends before|no header/);
  }
  const longer = new MemoryDirectory();
  longer.put(name, Buffer.concat([dir.contents(name), Buffer.from([1, 2, 3])]));
  assert.match((await damageOf(longer, name)).message, /after the end frame|ends before/);
  const renamed = new MemoryDirectory();
  renamed.put(snapshotName(43), dir.contents(name));
  assert.match((await damageOf(renamed, snapshotName(43))).message, /header says seq 42/);
});

test('a crash before the rename leaves no snapshot; the next write removes the leftover temp file', async () => {
  // A crash image taken once the second snapshot is written and synced, just before its rename.
  class CrashAtRename extends MemoryDirectory {
    image: MemoryDirectory | undefined;
    override async rename(from: string, to: string): Promise<void> {
      this.image ??= this.crash();
      return super.rename(from, to);
    }
  }
  const dir = new CrashAtRename();
  await writeSnapshot(dir, header, sampleEntries(5));
  dir.image = undefined;
  await writeSnapshot(dir, { ...header, lastSeq: 50 }, sampleEntries(2000), 4096);
  const image = dir.image!;
  assert.equal(
    (await listSnapshots(image)).map((s) => s.lastSeq),
    [42],
  );
  await writeSnapshot(image, { ...header, lastSeq: 60 }, sampleEntries(1));
  assert.not.ok((await image.list()).some((n) => n.endsWith('.tmp')));
  assert.equal(
    (await listSnapshots(image)).map((s) => s.lastSeq),
    [60, 42],
  );
});

test('a snapshot given up midway (the host stops) leaves neither a snapshot nor its temp file', async () => {
  const dir = new MemoryDirectory();
  let chunks = 0;
  let err: unknown;
  try {
    await writeSnapshot(dir, header, sampleEntries(2000), 4096, undefined, () => ++chunks >= 2);
  } catch (e) {
    err = e;
  }
  assert.is((err as { code?: string }).code, 'SHUTTING_DOWN');
  assert.equal(await dir.list(), []);
});

test('pruning keeps the newest snapshots', async () => {
  const dir = new MemoryDirectory();
  for (const lastSeq of [5, 9, 30, 12]) await writeSnapshot(dir, { ...header, lastSeq }, []);
  assert.equal(await pruneSnapshots(dir, 2), [snapshotName(9), snapshotName(5)]);
  assert.equal(
    (await listSnapshots(dir)).map((s) => s.lastSeq),
    [30, 12],
  );
});

test('compaction removes whole segments up to a seq, never the current one, and the log reopens from there', async () => {
  const dir = new MemoryDirectory();
  const seen: number[] = [];
  const log = await WriteAheadLog.open({ dir, onRecord: () => {}, segmentBytesMax: 600, preallocateBytes: 0 });
  for (let i = 1; i <= 40; i++) await log.append(newRecord(i));
  const before = log.stats();
  assert.ok(before.segments > 4, `${before.segments} segments`);
  const removed = await log.removeSegmentsThrough(20);
  assert.ok(removed.length > 0);
  assert.ok(log.firstSeq <= 21 && log.firstSeq > 1, `first kept seq ${log.firstSeq}`);
  assert.ok(log.stats().bytes < before.bytes);
  await log.close();
  const reopened = await WriteAheadLog.open({ dir, onRecord: (r) => seen.push(r.seq), fromSeq: 21 });
  assert.equal(
    seen,
    Array.from({ length: 20 }, (_, i) => 21 + i),
  );
  await reopened.removeSegmentsThrough(1000);
  assert.is(reopened.stats().segments, 1, 'the segment appended to stays');
  await reopened.append(newRecord(41));
  assert.is(reopened.lastSeq, 41);
  await reopened.close();
});

test('compaction keeps the newest segments holding at least keepBytes', async () => {
  const dir = new MemoryDirectory();
  const log = await WriteAheadLog.open({ dir, onRecord: () => {}, segmentBytesMax: 600, preallocateBytes: 0 });
  for (let i = 1; i <= 40; i++) await log.append(newRecord(i));
  const segments = log.stats().segments;
  await log.removeSegmentsThrough(40, 1800);
  const left = log.stats();
  assert.ok(left.segments > 1 && left.segments < segments, `${left.segments} of ${segments} segments left`);
  assert.ok(left.bytes >= 1800, `${left.bytes} bytes kept`);
  await log.removeSegmentsThrough(40, 0);
  assert.is(log.stats().segments, 1);
  await log.close();
});

test("the dedup window's forgotten marks travel in the header; a header without them, or with bad ones, is told apart", async () => {
  const dir = new MemoryDirectory();
  const marks: [string, number][] = [
    ['', 990],
    ['/core/examples/e3', 995],
  ];
  const { name } = await writeSnapshot(dir, { ...header, dedupForgotten: marks }, sampleEntries(3));
  const h = await readSnapshot(dir, name, () => undefined);
  assert.equal(h.dedupForgotten, marks);
  const plain = new MemoryDirectory();
  const { name: n2 } = await writeSnapshot(plain, header, sampleEntries(3));
  assert.is((await readSnapshot(plain, n2, () => undefined)).dedupForgotten, undefined);
  const bad = new MemoryDirectory();
  const { name: n3 } = await writeSnapshot(
    bad,
    { ...header, dedupForgotten: [['/x', 'soon']] as unknown as [string, number][] },
    sampleEntries(3),
  );
  assert.match((await damageOf(bad, n3)).message, /dedupForgotten/);
});

test.run();
