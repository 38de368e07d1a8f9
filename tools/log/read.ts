/**
 * The one way inspect, replay, export and stats read a log: wal's scanLog over the segments
 * listed at open (big sequential reads, checksums on a second thread), a visitor per intact
 * record, and a verdict on how the read ended. These commands stop at the first problem: a torn
 * tail ends the read with a warning (the host's recovery would cut it too), anything else is
 * damage. `verify` reads past damage and has its own loop in verify.ts.
 *
 * A running host may be appending to the last segment while we read it. scanLog reads each file up
 * to the size it had when opened, so a frame the host was writing at that instant looks cut off,
 * or, in the zeros the host writes ahead of its appends, not there yet while frames after it are;
 * before calling that damage or a torn tail we look again, and a frame that has meanwhile been
 * completed is simply where our snapshot ends.
 */

import type { LogRecord } from '../../lib/document.js';
import type { Seq } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import { decodeFrame, isTornTail, scanLog, type ScanProblem } from '../../wal/index.js';
import type { Progress } from './io.js';
import type { HostLog } from './open.js';

/** Return false to stop reading (a limit or a point in time was reached). */
export type Visit = (record: LogRecord, file: string, offset: number, bytes: number) => boolean | undefined;

export type ReadEnd =
  /** Every record was read (up to the log's end when the read began). */
  | { kind: 'end' }
  /** The visitor stopped the read. */
  | { kind: 'stopped' }
  /** The last segment ends in a frame that is cut off or garbage, with nothing intact after it. */
  | { kind: 'torn'; problem: ScanProblem }
  /** Damage anywhere else, or a seq out of order. */
  | { kind: 'corrupt'; problem: ScanProblem };

export interface ReadResult {
  /** Records passed to the visitor (those at or after fromSeq). */
  visited: number;
  /** The seq of the last intact record read (0 if none). */
  lastSeq: Seq;
  end: ReadEnd;
}

export interface ReadOptions {
  fromSeq?: Seq;
  progress?: Progress;
}

/** Thrown through scanLog to end it early; scanLog's own cleanup closes files and threads. */
class StopRead {}
const STOP = new StopRead();

export async function readRecords(log: HostLog, visit: Visit, opts: ReadOptions = {}): Promise<ReadResult> {
  let visited = 0;
  let lastSeq = 0;
  const progress = opts.progress;
  const wrapped = (record: LogRecord, file: string, offset: number, bytes: number): void => {
    visited++;
    lastSeq = record.seq;
    progress?.add(bytes);
    if (visit(record, file, offset, bytes) === false) throw STOP;
  };
  try {
    const scan = await scanLog(log.dir, wrapped, {
      segments: log.segments,
      ...(opts.fromSeq !== undefined ? { fromSeq: opts.fromSeq } : {}),
    });
    lastSeq = scan.lastSeq;
    if (scan.problem === undefined) return { visited, lastSeq, end: { kind: 'end' } };
    const verdict = await judgeProblem(log, scan.problem, scan.lastSeq + 1);
    if (verdict === 'in-flight') return { visited, lastSeq, end: { kind: 'end' } };
    return { visited, lastSeq, end: { kind: verdict, problem: scan.problem } };
  } catch (e) {
    if (e === STOP) return { visited, lastSeq, end: { kind: 'stopped' } };
    throw e;
  } finally {
    progress?.stop();
  }
}

/**
 * What a scan problem means: damage ('corrupt'), a torn tail as recovery sees it ('torn'), or the
 * end of our snapshot of a segment a running host is still appending to ('in-flight').
 */
export async function judgeProblem(log: HostLog, p: ScanProblem, expectedSeq: Seq): Promise<'corrupt' | 'torn' | 'in-flight'> {
  // First, since the host may have written past the problem since (into preallocated zeros, the
  // file not growing), and a frame written after ours would otherwise look like damage.
  if (p.segment === log.segments.length - 1 && (await completedSince(log, p.file, p.offset, expectedSeq))) return 'in-flight';
  return (await isTornTail(log.dir, p, log.segments.length)) ? 'torn' : 'corrupt';
}

/**
 * Whether the last segment now holds an intact frame with the expected seq at `offset`, where the
 * scan found a cut frame or zeros: then that was an append in progress (a cut frame, or a frame
 * not yet written into preallocated space, never becomes intact otherwise).
 */
export async function completedSince(log: HostLog, name: string, offset: number, expectedSeq: Seq): Promise<boolean> {
  const file = await log.dir.open(name, 'read');
  try {
    const size = await file.size();
    if (size <= offset) return false;
    const buf = await file.read(offset, Math.min(size - offset, limits.recordBytesMax));
    const frame = decodeFrame(buf, 0);
    return frame.kind === 'record' && frame.record.seq === expectedSeq;
  } finally {
    await file.close();
  }
}
