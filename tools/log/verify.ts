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

import type { Seq } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import { decodeFrame, findIntactFrame, READ_CHUNK_BYTES, scanLog, type LogFile, type ScanProblem } from '../../wal/index.js';
import { EXIT_OK, EXIT_PROBLEMS, type CommandContext } from './command.js';
import { count } from './format.js';
import { painter, startProgress, type Progress } from './io.js';
import { segmentPath, totalBytes, type HostLog } from './open.js';
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
    let expected: Seq | undefined = 1;
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
  return { segments: segs.length, bytes: totalBytes(log), records, firstSeq, lastSeq, problems };
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
  const name = log.segments[j]!.name;
  const isLast = j === log.segments.length - 1;
  // The size scanLog saw: a running host may have appended since, and those bytes are not ours to judge.
  const size = first.fileBytes;
  let next: Seq | undefined = expectedSeq;
  let off = first.offset;
  let problem: { kind: ScanProblem['kind']; reason: string } | undefined = { kind: first.kind, reason: first.reason };
  const file = await log.dir.open(name, 'read');
  try {
    for (;;) {
      if (problem !== undefined) {
        if (problem.kind === 'sequence') {
          // The frame here is intact; only its seq breaks the run. Report it and take the run on from it.
          const seq = await seqAt(file, off);
          if (!firstReported) {
            const reason =
              off === 0 && next === log.segments[j]!.firstSeq
                ? `the first record is seq ${seq}, but the segment is named for seq ${next}`
                : seqBreak(next ?? seq, seq);
            problems.push({ file: name, offset: off, kind: 'sequence', reason });
          }
          firstReported = false;
          next = seq;
        } else {
          // A running host may have written here since (see read.ts): our snapshot ends here then.
          if (isLast && next !== undefined && (await completedSince(log, name, off, next))) return next;
          const resume = await findIntactFrame(log.dir, name, off + 1, size);
          if (resume === undefined) {
            if (!isLast) {
              problems.push({
                file: name,
                offset: off,
                kind: 'corrupt',
                reason: `${problem.reason}; nothing intact follows in this segment (${size - off} bytes)`,
              });
              return undefined;
            }
            const what =
              problem.kind === 'truncated' ? problem.reason : `${problem.reason}, then garbage to the end of the file: ${size - off} bytes`;
            problems.push({ file: name, offset: off, kind: 'torn-tail', reason: `the host's recovery would cut the log here (${what})` });
            return next;
          }
          const seq = await seqAt(file, resume);
          const lost = next !== undefined && seq > next ? `; ${seq - next === 1 ? `seq ${next}` : `seqs ${next} to ${seq - 1}`} lost` : '';
          problems.push({
            file: name,
            offset: off,
            kind: 'corrupt',
            reason: `${problem.reason}; ${resume - off} bytes unreadable, next intact frame at offset ${resume} (seq ${seq})${lost}`,
          });
          // The damage explains any gap up to the frame found: the run goes on from it.
          next = seq;
          off = resume;
        }
        problem = undefined;
      }
      if (off >= size) return next;
      // A chunk plus a record, so a frame starting anywhere in the chunk is whole in the buffer.
      const buf = await file.read(off, Math.min(READ_CHUNK_BYTES + limits.recordBytesMax, size - off));
      const atEnd = off + buf.length >= size;
      let pos = 0;
      for (;;) {
        const f = decodeFrame(buf, pos);
        if (f.kind === 'record') {
          const seq = f.record.seq;
          if (next !== undefined && seq !== next) {
            problem = { kind: 'sequence', reason: '' };
            break;
          }
          saw(seq);
          progress?.add(f.next - pos);
          next = seq + 1;
          pos = f.next;
          continue;
        }
        if (f.kind === 'corrupt') problem = { kind: 'corrupt', reason: f.reason };
        else if (atEnd && pos < buf.length) problem = { kind: 'truncated', reason: `file ends ${buf.length - pos} bytes into a frame` };
        break;
      }
      off += pos;
      if (problem === undefined && atEnd && off >= size) return next;
    }
  } finally {
    await file.close();
  }
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
  if (f.kind !== 'record') throw new Error(`${file.name} at offset ${offset}: expected an intact frame (${f.kind})`);
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
  const summary = `${count(report.segments)} segment${report.segments === 1 ? '' : 's'}, ${count(report.records)} intact record${report.records === 1 ? '' : 's'}${seqs}, ${count(report.bytes)} bytes`;
  if (ok) out.line(`${paint('ok', 'green')}: ${summary}`);
  else
    out.line(`${paint('FAILED', 'red')}: ${count(report.problems.length)} problem${report.problems.length === 1 ? '' : 's'}; ${summary}`);
  return ok ? EXIT_OK : EXIT_PROBLEMS;
}
