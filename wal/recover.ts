/**
 * Recovery at open: replay every intact record, then decide what the first problem means. A torn
 * tail (reader.ts: isTornTail) is the normal result of a crash mid-write and is cut off with a
 * warning; zeros after the last record of the last segment (space preallocated by a writer that
 * did not close the file) are cut too, as what they are. Anything else is damage to acknowledged data: LOG_CORRUPT, unless the operator asked
 * for repair, which cuts the log at the damage and drops every later segment. Nothing else in
 * the log layer truncates or deletes files.
 */

import type { LogRecord } from '../lib/document.js';
import type { Seq } from '../lib/ids.js';
import type { LogDirectory } from './file.js';
import { corruptError, isTornTail, scanLog, type ScanProblem } from './reader.js';
import { listSegments } from './segment.js';

export interface LogLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RecoverOptions {
  /** Called for each surviving record in seq order. If recovery then throws, it has seen the records before the damage. */
  onRecord: (r: LogRecord) => void;
  repair?: boolean;
  logger?: LogLogger;
  chunkBytes?: number;
  /**
   * Records before this seq are not replayed (a snapshot holds them): whole segments before it
   * are not read at all, and keep their file size.
   */
  fromSeq?: Seq;
}

export interface RecoveredSegment {
  name: string;
  firstSeq: Seq;
  bytes: number;
}

export interface RecoveredLog {
  /** The segments left, in order, with their sizes after any cut. */
  segments: RecoveredSegment[];
  /** Seq of the last surviving record (0 for an empty log). */
  lastSeq: Seq;
  records: number;
}

export async function recoverLog(dir: LogDirectory, opts: RecoverOptions): Promise<RecoveredLog> {
  const refs = await listSegments(dir);
  const onRecord = opts.onRecord;
  const fromSeq = opts.fromSeq ?? 1;
  const scan = await scanLog(dir, (record) => onRecord(record), { segments: refs, chunkBytes: opts.chunkBytes, fromSeq });
  const segments: RecoveredSegment[] = scan.segments.map((s) => ({ name: s.name, firstSeq: s.firstSeq, bytes: s.validBytes }));
  // Segments wholly before fromSeq were skipped, not read: count them at their size.
  for (let i = 0; i + 1 < segments.length && segments[i + 1]!.firstSeq <= fromSeq; i++) {
    const file = await dir.open(segments[i]!.name, 'read');
    try {
      segments[i]!.bytes = await file.size();
    } finally {
      await file.close();
    }
  }
  const p = scan.problem;
  const last = scan.segments.at(-1);
  if (p === undefined && last?.zeroBytes !== undefined) {
    // The writer preallocates zeros ahead of its appends and cuts what is left when it closes the
    // file; a host that did not stop cleanly leaves them. Appends continue at the last frame.
    await cutAt(dir, last.name, last.validBytes);
    opts.logger?.info(
      { file: last.name, offset: last.validBytes, zeroBytes: last.zeroBytes },
      'log: cut the unused preallocated space after the last record',
    );
  }
  if (p === undefined) {
    opts.logger?.info({ dir: dir.description, segments: segments.length, records: scan.records, lastSeq: scan.lastSeq }, 'log recovered');
    return { segments, lastSeq: scan.lastSeq, records: scan.records };
  }

  if (await isTornTail(dir, p, refs.length)) {
    await cutAt(dir, p.file, p.offset);
    opts.logger?.warn({ file: p.file, offset: p.offset, reason: p.reason, droppedBytes: p.fileBytes - p.offset }, 'log: cut a torn tail');
    return { segments, lastSeq: scan.lastSeq, records: scan.records };
  }
  if (opts.repair !== true) throw corruptError(p);

  const dropped = await repairAt(dir, p, segments);
  opts.logger?.warn(
    { file: p.file, offset: p.offset, reason: p.reason, droppedSegments: dropped },
    'log: repaired damage by cutting the log there',
  );
  return { segments, lastSeq: scan.lastSeq, records: scan.records };
}

/** Truncates and syncs, so the cut survives the next crash before anything is appended after it. */
async function cutAt(dir: LogDirectory, name: string, offset: number): Promise<void> {
  const file = await dir.open(name, 'append');
  try {
    await file.truncate(offset);
    await file.datasync();
  } finally {
    await file.close();
  }
}

/**
 * Cuts the damaged segment at the bad frame and removes every later one; edits `segments` to
 * match and returns the removed names. A non-first segment cut to nothing goes too: its name
 * may be the problem, and an empty segment there would only have to be kept consistent.
 */
async function repairAt(dir: LogDirectory, p: ScanProblem, segments: RecoveredSegment[]): Promise<string[]> {
  const dropped = segments.splice(p.segment + 1).map((s) => s.name);
  const dropDamaged = p.offset === 0 && p.segment > 0;
  if (dropDamaged) {
    dropped.unshift(p.file);
    segments.pop();
  }
  // Last-first, and before the cut: a crash midway leaves the same damage for the next repair to
  // find, never a log that ends cleanly and then jumps in seq.
  for (const name of [...dropped].reverse()) await dir.remove(name);
  await dir.syncDirectory();
  if (!dropDamaged) {
    await cutAt(dir, p.file, p.offset);
    segments[p.segment]!.bytes = p.offset;
  }
  return dropped;
}
