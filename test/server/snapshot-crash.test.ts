/**
 * A crash at any moment of a snapshot and the compaction after it loses nothing: the host's log and
 * snapshots folders are captured as a power loss would leave them (MemoryDirectory.crash) at every
 * file operation of the Checkpointer, and each pair of images must start (newest usable snapshot,
 * then the log after it) into the index a full replay of every record gives.
 */

import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DedupWindow } from '../../lib/dedup.js';
import type { LogRecord } from '../../lib/document.js';
import { DocumentIndex } from '../../index/views.js';
import { MemoryDirectory } from '../../wal/file.js';
import { WriteAheadLog } from '../../wal/log.js';
import { Checkpointer, loadNewestSnapshot } from '../../server/host/checkpoints.js';
import { shiftableClock } from '../support/clock.js';
import { newRecord } from '../wal/helpers.js';

const logger = pino({ level: 'silent' });
const fresh = () => new DocumentIndex({ retentionFor: () => 5 });

/** Both folders of one host; every change to either takes a crash image of both, as one instant. */
class Host {
  readonly images: { log: MemoryDirectory; snaps: MemoryDirectory }[] = [];
  readonly log: MemoryDirectory;
  readonly snaps: MemoryDirectory;
  constructor() {
    const take = () => this.images.push({ log: this.log.crash(), snaps: this.snaps.crash() });
    class Watched extends MemoryDirectory {
      override async remove(name: string) {
        take();
        await super.remove(name);
        take();
      }
      override async rename(from: string, to: string) {
        take();
        await super.rename(from, to);
        take();
      }
      override async syncDirectory() {
        await super.syncDirectory();
        take();
      }
    }
    this.log = new Watched();
    this.snaps = new Watched();
  }
}

/** A Checkpointer that snapshots only when asked, keeps two, with no quota. */
function manualCheckpoints(
  d: Pick<ConstructorParameters<typeof Checkpointer>[0], 'wal' | 'index' | 'dedup' | 'clock' | 'dir'>,
): Checkpointer {
  return new Checkpointer({ ...d, logger, everyRecords: 0, keep: 2, maxDiskBytes: 0, keepLogBytes: 0, loadedSeq: 0 });
}

function contents(index: DocumentIndex): unknown {
  const c = index.capture();
  return {
    trimmed: [...c.trimmed].sort((a, b) => a[0].localeCompare(b[0])),
    versions: [...c.versions()].map((v) => [v.link, v.version, v.state.name]),
  };
}

test('a crash at every step of three snapshots and their compactions leaves a folder that starts into the full index', async () => {
  const host = new Host();
  const clock = shiftableClock();
  const index = fresh();
  const dedup = new DedupWindow();
  const wal = await WriteAheadLog.open({ dir: host.log, onRecord: () => {}, segmentBytesMax: 1500, preallocateBytes: 0 });
  const checkpoints = manualCheckpoints({ wal, index, dedup, clock, dir: host.snaps });
  const records: LogRecord[] = [];
  let n = 0;
  const write = async (count: number) => {
    for (let i = 0; i < count; i++) {
      // Eight links, each updated over and over: retention (5) drops most of each history.
      const r = newRecord(n % 8);
      const rec = { ...r, version: Math.floor(n / 8), state: { ...r.state, name: `w${n}`, documentVersion: Math.floor(n / 8) } };
      n++;
      const logged = await wal.append(rec);
      index.apply(logged);
      records.push(logged);
    }
  };
  for (let round = 0; round < 3; round++) {
    await write(60);
    assert.ok(await checkpoints.snapshot());
  }
  await write(10);
  assert.ok(host.images.length > 20, `${host.images.length} crash images`);
  assert.ok(wal.firstSeq > 1, 'compaction removed segments');
  for (const [i, image] of host.images.entries()) {
    const loaded = await loadNewestSnapshot(image.snaps, image.log, fresh, clock, logger);
    const log = await WriteAheadLog.open({ dir: image.log, onRecord: (r) => loaded.index.apply(r), fromSeq: loaded.fromSeq });
    await log.close();
    // Every append was awaited before the next, so an image holds a prefix of the records.
    const full = fresh();
    for (const r of records.slice(0, log.lastSeq)) full.apply(r);
    assert.equal(
      contents(loaded.index),
      contents(full),
      `image ${i} (snapshot ${loaded.snapshot ?? 'none'}, log from seq ${log.firstSeq})`,
    );
  }
  await wal.close();
});

test('a restart from a snapshot still knows which ids its dedup window dropped young: a retry of one is in doubt, not new', async () => {
  const bounds = {
    idsPerLinkMax: 2,
    linksMax: 100,
    windowMicros: 1e12,
    retryHorizonMicros: 60_000_000,
    idsPerLinkHardMax: 3,
    idsMax: 1000,
  };
  const clock = shiftableClock();
  const snaps = new MemoryDirectory();
  const logDir = new MemoryDirectory();
  const index = fresh();
  const dedup = new DedupWindow(bounds);
  const wal = await WriteAheadLog.open({ dir: logDir, onRecord: () => {}, preallocateBytes: 0 });
  const checkpoints = manualCheckpoints({ wal, index, dedup, clock, dir: snaps });
  const link = '/core/examples/e1';
  for (let v = 0; v < 5; v++) {
    const r = newRecord(1);
    const logged = await wal.append({
      ...r,
      version: v,
      timeMicros: clock.nowMicros(),
      requestId: `id-${v}`,
      state: { ...r.state, documentVersion: v },
    });
    index.apply(logged);
    dedup.note(logged);
  }
  assert.ok(dedup.mayHaveForgotten(link, clock.nowMicros()), 'the hard bound dropped young ids');
  assert.ok(await checkpoints.snapshot());
  await wal.close();
  const loaded = await loadNewestSnapshot(snaps, logDir, fresh, clock, logger, bounds);
  assert.ok(loaded.snapshot, 'started from the snapshot');
  assert.ok(loaded.dedup.mayHaveForgotten(link, clock.nowMicros()), 'the mark came back with the snapshot');
  assert.is(loaded.dedup.lookup(link, 'id-4', clock.nowMicros())?.state.documentVersion, 4);
});

test('a snapshot that fails (a full disk) is logged with the wait before the next try, which doubles per failure; one that works resets it', async () => {
  const snaps = new MemoryDirectory();
  const errors: Record<string, unknown>[] = [];
  const quiet = { info: () => {}, warn: () => {}, error: (o: Record<string, unknown>) => errors.push(o) } as unknown as typeof logger;
  const wal = await WriteAheadLog.open({ dir: new MemoryDirectory(), onRecord: () => {}, preallocateBytes: 0 });
  const index = fresh();
  const logged = await wal.append(newRecord(1));
  index.apply(logged);
  const deps = { wal, index, dedup: new DedupWindow(), clock: shiftableClock(), dir: snaps, logger: quiet };
  const checkpoints = new Checkpointer({ ...deps, everyRecords: 1, keep: 2, maxDiskBytes: 0, keepLogBytes: 0, loadedSeq: 0 });
  const full = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
  for (let i = 0; i < 2; i++) {
    snaps.failNextAppend(full);
    let failed = false;
    await checkpoints.snapshot().catch(() => {
      failed = true;
    });
    assert.ok(failed);
  }
  assert.equal(await snaps.list(), [], 'a failed snapshot leaves no partial file taking space');
  assert.equal(
    errors.map((e) => [e.failures, e.retryInMs]),
    [
      [1, 2000],
      [2, 4000],
    ],
  );
  assert.ok(await checkpoints.snapshot(), 'a snapshot once there is space');
  snaps.failNextAppend(full);
  await checkpoints.snapshot().catch(() => {});
  assert.equal(errors.at(-1)!.failures, 1, 'the count starts over after a success');
  await wal.close();
});

test.run();
