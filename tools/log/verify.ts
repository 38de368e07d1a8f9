/**
 * `krypton log verify`: checks every frame of every segment — length, format version, crc32, a
 * payload that decodes to a well-formed record — and that seqs run on by one across records and
 * segments, starting at 1. Unlike the host's recovery and the other tools it does not stop at the
 * first problem: it resynchronises on the next intact frame and goes on, so one run lists every
 * problem, each with its file and byte offset.
 *
 * Sound stretches are read by wal's scanLog (big reads, checksums on a second thread), so verify
 * runs at close to decode speed; only the rest of a damaged segment, after the damage, is read
 * by the slower frame-by-frame loop here, which can start mid-file.
 */

import { invariant, isKryptonError } from '../../lib/errors.js';
import type { Seq } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import { decodeFrame, findIntactFrame, readSnapshot, scanLog, type LogFile, type ScanProblem } from '../../wal/index.js';
import { EXIT_OK, EXIT_PROBLEMS, type CommandContext } from './command.js';
import { count } from './format.js';
import { painter, startProgress, type Progress } from './io.js';
import { logStart, segmentPath, totalBytes, type HostLog } from './open.js';
import { completedSince } from './read.js';

export type VerifyProblemKind = 'corrupt' | 'sequence' | 'torn-tail';

export interface VerifyProblem {
  /** Segment file name (in the log folder). */
  file: string;
  /** Byte offset in the file where the problem starts. */
  offset: number;
  kind: VerifyProblemKind;
  reason: string;
}

export interface VerifyReport {
  segments: number;
  /** Bytes of the segments when the log was opened. */
  bytes: number;
  /** Intact records, in every segment. */
  records: number;
  /** Lowest and highest seq among intact records (0 when there are none). */
  firstSeq: Seq;
  lastSeq: Seq;
  problems: VerifyProblem[];
  /** Snapshots checked (every one in `<host>/snapshots`). */
  snapshots: number;
  /** After compaction: the seq the log starts at, and the snapshot that covers what came before. */
  compacted?: { logStart: Seq; snapshot: string };
}

export interface VerifyOptions {
  progress?: Progress;
}

/** How the seq of a record relates to the one expected, in words. */
function seqBreak(expected: Seq, found: Seq): string {
  if (found > expected) {
    const missing = found - expected;
    return `seq jumps from ${expected - 1} to ${found}: ${missing} record${missing === 1 ? '' : 's'} missing`;
  }
  return `seq ${found} where ${expected} was expected: a repeated or out-of-order record`;
}

export async function verifyLog(log: HostLog, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const segs = log.segments;
  const problems: VerifyProblem[] = [];
  const progress = opts.progress;
  let records = 0;
  let firstSeq = 0;
  let lastSeq = 0;
  const saw = (seq: Seq): void => {
    records++;
    if (firstSeq === 0 || seq < firstSeq) firstSeq = seq;
    if (seq > lastSeq) lastSeq = seq;
  };
  const visit =
    progress === undefined
      ? (r: { seq: Seq }) => saw(r.seq)
      : (r: { seq: Seq }, _f: string, _o: number, bytes: number) => {
          saw(r.seq);
          progress.add(bytes);
        };

  try {
    /** The seq the next segment should start with; undefined after damage that hid where the run stood. */
    // After compaction the log starts where the snapshot covering its start leaves off.
    let expected: Seq | undefined = log.base ? logStart(log) : 1;
    let i = 0;
    while (i < segs.length) {
      const seg = segs[i]!;
      /** Segment i is misnamed but its records run on: its first record must not be reported again. */
      let misnamed = false;
      if (expected !== undefined && seg.firstSeq !== expected) {
        const first = await firstSeqOf(log, seg.name);
        misnamed = first === expected;
        const before = i === 0 ? '' : `, which follows seq ${expected - 1}`;
        const reason = misnamed
          ? `segment named for seq ${seg.firstSeq}, but it starts with seq ${first}${before}: the name is wrong`
          : i === 0
            ? `the log starts at seq ${seg.firstSeq}: ${seg.firstSeq === 2 ? 'seq 1 is' : `seqs 1 to ${seg.firstSeq - 1} are`} missing`
            : `segment named for seq ${seg.firstSeq} follows seq ${expected - 1}: ${seqBreak(expected, seg.firstSeq)}`;
        problems.push({ file: seg.name, offset: 0, kind: 'sequence', reason });
      }
      const scan = await scanLog(log.dir, visit, { segments: segs.slice(i) });
      const p = scan.problem;
      if (p === undefined) break;
      const j = i + p.segment;
      if (p.kind === 'sequence' && p.offset === 0 && p.segment > 0 && segs[j]!.firstSeq !== scan.lastSeq + 1) {
        // scanLog stops at a segment whose name breaks the run; the top of the loop reports it.
        expected = scan.lastSeq + 1;
        i = j;
        continue;
      }
      const quiet = misnamed && j === i && p.offset === 0 && p.kind === 'sequence';
      expected = await checkRest(log, j, p, scan.lastSeq + 1, quiet, problems, saw, progress);
      i = j + 1;
    }
  } finally {
    progress?.stop();
  }
  await verifySnapshots(log, problems);
  const compacted = log.base ? { compacted: { logStart: logStart(log), snapshot: log.base.path } } : {};
  return {
    segments: segs.length,
    bytes: totalBytes(log),
    records,
    firstSeq,
    lastSeq,
    problems,
    snapshots: log.snapshots.length,
    ...compacted,
  };
}

/** Reads every snapshot through, checksums and counts included; damage is a problem like the log's. */
async function verifySnapshots(log: HostLog, problems: VerifyProblem[]): Promise<void> {
  for (const s of log.snapshots) {
    try {
      await readSnapshot(log.snapshotDir!, s.name, () => {});
    } catch (e) {
      if (!isKryptonError(e) || e.code !== 'LOG_CORRUPT') throw e;
      // Named from the log folder, as segment problems are: segmentPath() joins it.
      problems.push({
        file: `../snapshots/${s.name}`,
        offset: Number(e.detail.offset ?? 0),
        kind: 'corrupt',
        reason: String(e.detail.reason ?? e.message),
      });
    }
  }
}

/** The damaged segment checkRest reads, and where its findings go. */
interface RestSegment {
  log: HostLog;
  name: string;
  /** The segment's number in its name: the seq its first record should have. */
  namedSeq: Seq;
  isLast: boolean;
  /** The size scanLog saw: a running host may have appended since, and those bytes are not ours to judge. */
  size: number;
  file: LogFile;
  problems: VerifyProblem[];
}

/** Where checkRest stands: the offset, the seq expected there (undefined once unknown), the problem found there. */
interface RestState {
  off: number;
  next: Seq | undefined;
  problem: { kind: ScanProblem['kind']; reason: string } | undefined;
  /** The problem at `off` is a misnamed segment's first record, already reported. */
  firstReported: boolean;
}

/**
 * Reads segment `j` from the problem scanLog stopped at to the segment's end, reporting every
 * problem and resynchronising after each. Returns the seq the next segment should start with, or
 * undefined when damage ran to the end of the segment and the run's position is unknown.
 */
async function checkRest(
  log: HostLog,
  j: number,
  first: ScanProblem,
  expectedSeq: Seq,
  /** The first problem is a misnamed segment's first record, already reported. */
  firstReported: boolean,
  problems: VerifyProblem[],
  saw: (seq: Seq) => void,
  progress: Progress | undefined,
): Promise<Seq | undefined> {
  const segment = log.segments[j]!;
  const s: RestState = { off: first.offset, next: expectedSeq, problem: { kind: first.kind, reason: first.reason }, firstReported };
  const file = await log.dir.open(segment.name, 'read');
  const seg: RestSegment = {
    log,
    name: segment.name,
    namedSeq: segment.firstSeq,
    isLast: j === log.segments.length - 1,
    size: first.fileBytes,
    file,
    problems,
  };
  try {
    for (;;) {
      if (s.problem !== undefined) {
        if (s.problem.kind === 'sequence') await takeSequenceBreak(seg, s);
        else if (await resynchronise(seg, s, s.problem)) return s.next;
        s.problem = undefined;
      }
      if (s.off >= seg.size) return s.next;
      await readIntact(seg, s, saw, progress);
    }
  } finally {
    await file.close();
  }
}

/** The frame at `s.off` is intact; only its seq breaks the run. Report it and take the run on from it. */
async function takeSequenceBreak(seg: RestSegment, s: RestState): Promise<void> {
  const seq = await seqAt(seg.file, s.off);
  if (!s.firstReported) {
    const reason =
      s.off === 0 && s.next === seg.namedSeq
        ? `the first record is seq ${seq}, but the segment is named for seq ${s.next}`
        : seqBreak(s.next ?? seq, seq);
    seg.problems.push({ file: seg.name, offset: s.off, kind: 'sequence', reason });
  }
  s.firstReported = false;
  s.next = seq;
}

/**
 * Damage at `s.off`: reports it and moves `s` to the next intact frame. True when the segment's
 * run ends here (`s.next` then says where the next segment should start, undefined if unknown).
 */
async function resynchronise(seg: RestSegment, s: RestState, problem: NonNullable<RestState['problem']>): Promise<boolean> {
  const { name, size } = seg;
  const off = s.off;
  // A running host may have written here since (see read.ts): our snapshot ends here then.
  if (seg.isLast && s.next !== undefined && (await completedSince(seg.log, name, off, s.next))) return true;
  const resume = await findIntactFrame(seg.log.dir, name, off + 1, size);
  if (resume === undefined) {
    if (!seg.isLast) {
      seg.problems.push({
        file: name,
        offset: off,
        kind: 'corrupt',
        reason: `${problem.reason}; nothing intact follows in this segment (${size - off} bytes)`,
      });
      s.next = undefined;
      return true;
    }
    const what =
      problem.kind === 'truncated' ? problem.reason : `${problem.reason}, then garbage to the end of the file: ${size - off} bytes`;
    seg.problems.push({ file: name, offset: off, kind: 'torn-tail', reason: `the host's recovery would cut the log here (${what})` });
    return true;
  }
  const seq = await seqAt(seg.file, resume);
  const next = s.next;
  const lost = next !== undefined && seq > next ? `; ${seq - next === 1 ? `seq ${next}` : `seqs ${next} to ${seq - 1}`} lost` : '';
  seg.problems.push({
    file: name,
    offset: off,
    kind: 'corrupt',
    reason: `${problem.reason}; ${resume - off} bytes unreadable, next intact frame at offset ${resume} (seq ${seq})${lost}`,
  });
  // The damage explains any gap up to the frame found: the run goes on from it.
  s.next = seq;
  s.off = resume;
  return false;
}

/** Reads one chunk of intact frames from `s.off`, stopping at the first problem (left in `s.problem`). */
async function readIntact(seg: RestSegment, s: RestState, saw: (seq: Seq) => void, progress: Progress | undefined): Promise<void> {
  // A chunk plus a record, so a frame starting anywhere in the chunk is whole in the buffer.
  const buf = await seg.file.read(s.off, Math.min(limits.logReadChunkBytes + limits.recordBytesMax, seg.size - s.off));
  const atEnd = s.off + buf.length >= seg.size;
  let pos = 0;
  for (;;) {
    const f = decodeFrame(buf, pos);
    if (f.kind === 'record') {
      const seq = f.record.seq;
      if (s.next !== undefined && seq !== s.next) {
        s.problem = { kind: 'sequence', reason: '' };
        break;
      }
      saw(seq);
      progress?.add(f.next - pos);
      s.next = seq + 1;
      pos = f.next;
      continue;
    }
    if (f.kind === 'corrupt') s.problem = { kind: 'corrupt', reason: f.reason };
    else if (atEnd && pos < buf.length) s.problem = { kind: 'truncated', reason: `file ends ${buf.length - pos} bytes into a frame` };
    break;
  }
  s.off += pos;
}

/** The seq of a segment's first record, if it has an intact one. */
async function firstSeqOf(log: HostLog, name: string): Promise<Seq | undefined> {
  const file = await log.dir.open(name, 'read');
  try {
    const f = decodeFrame(await file.read(0, limits.recordBytesMax), 0);
    return f.kind === 'record' ? f.record.seq : undefined;
  } finally {
    await file.close();
  }
}

async function seqAt(file: LogFile, offset: number): Promise<Seq> {
  const buf = await file.read(offset, limits.recordBytesMax);
  const f = decodeFrame(buf, 0);
  // Only called where the scan or findIntactFrame just found an intact frame, and the log never rewrites one.
  invariant(f.kind === 'record', `${file.name} at offset ${offset}: expected an intact frame (${f.kind})`);
  return f.record.seq;
}

function problemLine(log: HostLog, p: VerifyProblem): string {
  const what = p.kind === 'torn-tail' ? 'torn tail' : p.kind === 'sequence' ? 'sequence' : 'corrupt';
  return `${segmentPath(log, p.file)} at offset ${p.offset}: ${what}: ${p.reason}`;
}

export async function runVerify(ctx: CommandContext): Promise<number> {
  const { log, io, out, args } = ctx;
  const report = await verifyLog(log, { progress: startProgress(io, 'verify', totalBytes(log)) });
  const ok = report.problems.length === 0;
  if (args.booleans.has('json')) {
    const problems = report.problems.map((p) => ({ ...p, path: segmentPath(log, p.file) }));
    out.line(JSON.stringify({ ok, ...report, problems }));
    return ok ? EXIT_OK : EXIT_PROBLEMS;
  }
  const paint = painter(io.colour);
  for (const p of report.problems) out.line(paint(problemLine(log, p), 'red'));
  const seqs = report.records > 0 ? ` (seq ${report.firstSeq} to ${report.lastSeq})` : '';
  const compacted = report.compacted
    ? `; compacted: the records before seq ${report.compacted.logStart} are in ${report.compacted.snapshot}`
    : '';
  const snapshots = report.snapshots > 0 ? `, ${count(report.snapshots)} snapshot${report.snapshots === 1 ? '' : 's'}` : '';
  const summary = `${count(report.segments)} segment${report.segments === 1 ? '' : 's'}, ${count(report.records)} intact record${report.records === 1 ? '' : 's'}${seqs}, ${count(report.bytes)} bytes${snapshots}${compacted}`;
  if (ok) out.line(`${paint('ok', 'green')}: ${summary}`);
  else
    out.line(`${paint('FAILED', 'red')}: ${count(report.problems.length)} problem${report.problems.length === 1 ? '' : 's'}; ${summary}`);
  return ok ? EXIT_OK : EXIT_PROBLEMS;
}
