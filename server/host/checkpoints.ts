/**
 * Checkpoints: a host's snapshots and log compaction (docs/log-format.md, Snapshots and
 * compaction). At start, `loadNewestSnapshot` finds the newest snapshot the log continues from and
 * loads it into a fresh index and dedup window, falling back to an older one, then to the whole
 * log, when one is damaged. While the host runs, `Checkpointer` writes a snapshot once enough
 * records were appended since the last, keeps the newest few, and removes the log segments the
 * oldest kept snapshot covers, so a damaged newest snapshot always has an older one and its log
 * tail to fall back on. The file format is wal/snapshot.ts; the index copy is index/capture.ts.
 */

import path from 'node:path';
import type { Logger } from 'pino';
import { DEFAULT_DEDUP_BOUNDS, DedupWindow, type DedupBounds } from '../../lib/dedup.js';
import { isKryptonError, KryptonError } from '../../lib/errors.js';
import type { Seq } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import { recordOf, type DocumentIndex, type IndexCapture } from '../../index/views.js';
import { diskDirectory, type LogDirectory } from '../../wal/file.js';
import { WriteAheadLog } from '../../wal/log.js';
import { listSegments } from '../../wal/segment.js';
import {
  listSnapshots,
  pruneSnapshots,
  readSnapshot,
  writeSnapshot,
  type SnapshotEntry,
  type WrittenSnapshot,
} from '../../wal/snapshot.js';
import type { Clock } from '../base/clock.js';
import type { Config } from '../base/config.js';

export interface LoadedState {
  index: DocumentIndex;
  dedup: DedupWindow;
  /** The log is replayed from here: the seq after the snapshot's, or 1 without one. */
  fromSeq: Seq;
  snapshot?: string;
}

/**
 * Loads the newest usable snapshot of `snapshots` into state from `fresh`; `log` is only listed,
 * to skip a snapshot older than the log's first kept record. Without a usable snapshot the whole
 * log is replayed, which is possible only if compaction never removed a segment.
 */
export async function loadNewestSnapshot(
  snapshots: LogDirectory,
  log: LogDirectory,
  fresh: () => DocumentIndex,
  clock: Clock,
  logger: Logger,
  dedupBounds: DedupBounds = DEFAULT_DEDUP_BOUNDS,
): Promise<LoadedState> {
  const logStart = (await listSegments(log))[0]?.firstSeq ?? 1;
  const problems: string[] = [];
  for (const ref of await listSnapshots(snapshots)) {
    if (ref.lastSeq + 1 < logStart) {
      problems.push(`${ref.name} ends at seq ${ref.lastSeq}, before the log's first record ${logStart}`);
      continue;
    }
    const index = fresh();
    const dedup = new DedupWindow(dedupBounds);
    try {
      const header = await readSnapshot(snapshots, ref.name, (e) => restoreEntry(index, dedup, e));
      index.restoreNewestTime(header.newestTimeMicros);
      dedup.restoreForgotten(header.dedupForgotten ?? []);
      clock.observe(header.clockMicros);
      if (problems.length > 0) logger.warn({ skipped: problems, loaded: ref.name }, 'snapshots: fell back to an older snapshot');
      return { index, dedup, fromSeq: header.lastSeq + 1, snapshot: ref.name };
    } catch (e) {
      if (!isKryptonError(e) || e.code !== 'LOG_CORRUPT') throw e;
      logger.error({ file: ref.name, ...e.detail }, e.message);
      problems.push(e.message);
    }
  }
  if (logStart > 1) {
    throw new KryptonError(
      'LOG_CORRUPT',
      `the log starts at seq ${logStart} (compaction removed what came before) and no usable snapshot covers it` +
        (problems.length > 0 ? `: ${problems.join('; ')}` : ' (the snapshots folder holds none)'),
      { detail: { file: 'snapshots', offset: 0 } },
    );
  }
  if (problems.length > 0) logger.warn({ skipped: problems }, 'snapshots: none usable; replaying the whole log');
  return { index: fresh(), dedup: new DedupWindow(dedupBounds), fromSeq: 1 };
}

/** Applies one snapshot entry to a fresh index and dedup window (loading a snapshot). */
export function restoreEntry(index: DocumentIndex, dedup: DedupWindow, e: SnapshotEntry): void {
  if (e.kind === 'trimmed') index.restoreTrimmed(e.link, e.micros);
  else if (e.kind === 'version') index.restoreVersion(e);
  else
    dedup.note(
      recordOf({ link: e.link, version: e.state.documentVersion, timeMicros: e.timeMicros, requestId: e.requestId, state: e.state }),
    );
}

/** What a snapshot holds, in file order: trimmed marks, versions in apply order, dedup ids. */
export function* snapshotEntries(captured: IndexCapture, ids: ReturnType<DedupWindow['entries']>): Generator<SnapshotEntry> {
  for (const [link, micros] of captured.trimmed) yield { kind: 'trimmed', link, micros };
  for (const v of captured.versions()) yield { kind: 'version', ...v };
  for (const e of ids) yield { kind: 'dedup', ...e };
}

/**
 * The index and dedup window as the sandbox `dir` left them: the newest usable snapshot, then the
 * log after it, replayed; and the Checkpointer that carries on from there.
 */
export async function openIndexAndLog(
  config: Config,
  dir: string,
  fresh: () => DocumentIndex,
  clock: Clock,
  logger: Logger,
): Promise<{
  index: DocumentIndex;
  dedup: DedupWindow;
  wal: WriteAheadLog;
  checkpoints: Checkpointer;
  loaded: { snapshot?: string; fromSeq: Seq; snapshotMs: number; replayMs: number };
}> {
  const started = performance.now();
  const logDir = diskDirectory(path.join(dir, 'log'));
  const snapshotDir = diskDirectory(path.join(dir, 'snapshots'));
  // Retries come within a forwarding host's operation deadline: the window recognizes them that long.
  const horizon = Math.max(
    limits.dedupRetryHorizonMicros,
    config.operationTimeoutMicros + limits.dedupRetryHorizonMicros - limits.operationTimeoutMicros,
  );
  const loaded = await loadNewestSnapshot(snapshotDir, logDir, fresh, clock, logger, {
    ...DEFAULT_DEDUP_BOUNDS,
    retryHorizonMicros: horizon,
  });
  const { index, dedup, fromSeq } = loaded;
  const snapshotMs = performance.now() - started;
  const wal = await WriteAheadLog.open({
    dir: logDir,
    repair: config.repairLog,
    logger,
    fromSeq,
    segmentBytesMax: config.logSegmentBytes,
    onRecord: (r) => {
      index.apply(r);
      dedup.note(r);
      clock.observe(r.timeMicros);
    },
  });
  if (wal.lastSeq < fromSeq - 1) {
    await wal.close();
    throw new KryptonError(
      'LOG_CORRUPT',
      `snapshot ${loaded.snapshot} covers the log up to seq ${fromSeq - 1}, but the log ends at seq ${wal.lastSeq}: ` +
        'new records would reuse seqs it covers; move the snapshot away to start from the log alone',
      { detail: { file: loaded.snapshot ?? '', offset: 0 } },
    );
  }
  const checkpoints = new Checkpointer({
    wal,
    index,
    dedup,
    clock,
    dir: snapshotDir,
    logger,
    everyRecords: config.snapshotEveryRecords,
    keep: config.snapshotsKept,
    maxDiskBytes: config.maxDiskBytes,
    keepLogBytes: config.keepLogBytes,
    loadedSeq: fromSeq - 1,
  });
  await checkpoints.measure();
  const replayMs = performance.now() - started;
  return { index, dedup, wal, checkpoints, loaded: { snapshot: loaded.snapshot, fromSeq, snapshotMs, replayMs } };
}

export interface CheckpointerDeps {
  wal: WriteAheadLog;
  index: DocumentIndex;
  dedup: DedupWindow;
  clock: Clock;
  dir: LogDirectory;
  logger: Logger;
  /** Records appended since the last snapshot that make the next one due; 0 turns snapshots off. */
  everyRecords: number;
  keep: number;
  /** Past this many bytes of log and snapshots, writes are refused (0: no quota). */
  maxDiskBytes: number;
  /** Compaction leaves at least this many bytes of the newest log segments (history for the log tools). */
  keepLogBytes: number;
  /** The seq of the snapshot loaded at start (0 without one). */
  loadedSeq: Seq;
}

export interface CheckpointStats {
  snapshots: number;
  lastSnapshotSeq: Seq;
  lastSnapshotBytes: number;
  lastSnapshotSeconds: number;
  segmentsRemoved: number;
}

export class Checkpointer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<WrittenSnapshot | undefined> | undefined;
  private stopped = false;
  private lastSeq: Seq;
  /** After failed snapshots, none is tried before this (performance.now()): the wait doubles per failure. */
  private retryAt = 0;
  private failures = 0;
  /** The size of each snapshot kept, by name. */
  private readonly snapshotBytes_ = new Map<string, number>();
  readonly stats: CheckpointStats;

  constructor(private readonly d: CheckpointerDeps) {
    this.lastSeq = d.loadedSeq;
    this.stats = { snapshots: 0, lastSnapshotSeq: d.loadedSeq, lastSnapshotBytes: 0, lastSnapshotSeconds: 0, segmentsRemoved: 0 };
  }

  start(): void {
    if (this.d.everyRecords <= 0) return;
    this.timer = setInterval(() => {
      const since = this.d.wal.durableSeq - this.lastSeq;
      // Past the quota any record since the last snapshot is worth one: it lets compaction free segments.
      const due = since >= this.d.everyRecords || (since > 0 && this.overQuota() !== undefined);
      if (this.running === undefined && due && performance.now() >= this.retryAt) void this.snapshot().catch(() => {});
    }, limits.snapshotCheckIntervalMs);
    this.timer.unref();
  }

  /** Reads the sizes of the snapshots kept (at start; later writes and prunes keep them current). */
  async measure(): Promise<void> {
    this.snapshotBytes_.clear();
    for (const s of await listSnapshots(this.d.dir)) {
      const f = await this.d.dir.open(s.name, 'read');
      try {
        this.snapshotBytes_.set(s.name, await f.size());
      } finally {
        await f.close();
      }
    }
  }

  /** Bytes of log segments (with the zeros the open one holds ahead of its appends) and snapshots this host holds. */
  diskBytes(): number {
    const log = this.d.wal.stats();
    return log.bytes + log.aheadBytes + this.snapshotBytes();
  }

  /** Bytes of the snapshots kept. */
  snapshotBytes(): number {
    let n = 0;
    for (const b of this.snapshotBytes_.values()) n += b;
    return n;
  }

  quotaBytes(): number {
    return this.d.maxDiskBytes;
  }

  private overQuota(): number | undefined {
    const used = this.diskBytes();
    return this.d.maxDiskBytes > 0 && used >= this.d.maxDiskBytes ? used : undefined;
  }

  /** Throws DISK_FULL while the host is past its quota; an owner checks before it runs a write. */
  checkDisk(): void {
    const used = this.overQuota();
    if (used === undefined) return;
    throw new KryptonError(
      'DISK_FULL',
      `host is past its disk quota: its log and snapshots take ${used} bytes, --maxDiskBytes is ${this.d.maxDiskBytes}; ` +
        'reads still work, and writes are taken again once compaction or the operator frees space',
      { detail: { usedBytes: used, maxDiskBytes: this.d.maxDiskBytes } },
    );
  }

  /**
   * Writes a snapshot now (unless one is being written: that one is returned), then prunes old
   * snapshots and compacts the log. Resolves with the snapshot written, undefined when stopped.
   */
  snapshot(): Promise<WrittenSnapshot | undefined> {
    this.running ??= this.write().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async write(): Promise<WrittenSnapshot | undefined> {
    // From a fresh turn of the event loop: every record the log has made durable by then has
    // been applied to the index (appends resolve, and are applied, in the same turn).
    await new Promise<void>((r) => setImmediate(r));
    if (this.stopped) return undefined;
    const { wal, index, dedup, clock, dir, logger } = this.d;
    const started = performance.now();
    const lastSeq = wal.durableSeq;
    const captured = index.capture();
    const ids = dedup.entries();
    const now = clock.nowMicros();
    const marks = dedup.forgottenMarks(now);
    const header = {
      lastSeq,
      clockMicros: now,
      newestTimeMicros: captured.newestTimeMicros,
      ...(marks.length ? { dedupForgotten: marks } : {}),
    };
    try {
      const written = await writeSnapshot(dir, header, snapshotEntries(captured, ids), undefined, undefined, () => this.stopped);
      this.lastSeq = lastSeq;
      const seconds = (performance.now() - started) / 1000;
      Object.assign(this.stats, { lastSnapshotSeq: lastSeq, lastSnapshotBytes: written.bytes, lastSnapshotSeconds: seconds });
      this.stats.snapshots++;
      this.failures = 0;
      this.retryAt = 0;
      this.snapshotBytes_.set(written.name, written.bytes);
      const removed = await this.compact(this.d.keep, this.d.keepLogBytes);
      // Still past the quota: the log behind the older snapshots goes too, and with it their use
      // as a fallback (the peers still hold every replicated version); writes matter more.
      if (this.overQuota() !== undefined && this.d.keep > 1) {
        removed.push(...(await this.compact(1, 0)));
        logger.warn(
          { usedBytes: this.diskBytes(), maxDiskBytes: this.d.maxDiskBytes },
          'disk quota: kept only the newest snapshot and the log after it',
        );
      }
      logger.info(
        {
          file: written.name,
          lastSeq,
          versions: captured.count,
          bytes: written.bytes,
          ms: Math.round(seconds * 1000),
          segmentsRemoved: removed.length,
        },
        'snapshot written',
      );
      return written;
    } catch (e) {
      if (this.stopped) return undefined;
      this.failures++;
      const waitMs = Math.min(limits.snapshotRetryMaxMs, limits.snapshotCheckIntervalMs * 2 ** this.failures);
      this.retryAt = performance.now() + waitMs;
      logger.error(
        { err: e, failures: this.failures, retryInMs: waitMs },
        'snapshot failed; the log keeps every record until one succeeds',
      );
      throw e;
    }
  }

  /** Keeps the newest `keep` snapshots and removes the log segments the oldest of them covers, but the newest `keepBytes`. */
  private async compact(keep: number, keepBytes: number): Promise<string[]> {
    for (const name of await pruneSnapshots(this.d.dir, keep)) this.snapshotBytes_.delete(name);
    const oldest = (await listSnapshots(this.d.dir)).at(-1);
    const removed = oldest === undefined ? [] : await this.d.wal.removeSegmentsThrough(oldest.lastSeq, keepBytes);
    this.stats.segmentsRemoved += removed.length;
    return removed;
  }

  /** Stops the schedule and waits for a snapshot being written. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => {});
  }
}
