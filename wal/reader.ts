/**
 * Read-only scanning of the log: segments in seq order, read in big chunks, frames decoded from
 * the chunk buffer, seq numbers checked to be consecutive across segments. The scan stops at the
 * first problem and reports it; it never changes a file. recover.ts decides what a problem means
 * and repairs; readLog() is the streaming view for tools and for reading from a position.
 * Also here, because both need it: deciding whether a problem is only a torn tail.
 */

import type { LogRecord } from '../lib/document.js';
import { KryptonError, invariant } from '../lib/errors.js';
import type { Seq } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { LogDirectory, LogFile } from './file.js';
import { ChecksumThread } from './checksum-thread.js';
import { HEADER_BYTES, decodeFrame, decodeVerifiedFrame, isFormatVersion } from './record.js';
import { listSegments, type SegmentRef } from './segment.js';

export interface LogEntry {
  record: LogRecord;
  /** Segment file name. */
  file: string;
  /** Byte offset of the frame in the file. */
  offset: number;
  /** Frame size in bytes, header included. */
  bytes: number;
}

export interface ScanProblem {
  file: string;
  /** Index of the damaged segment in the scanned list. */
  segment: number;
  /** Where the bad frame starts: everything before it in the file is intact. */
  offset: number;
  /** 'truncated': the file ends inside a frame; 'sequence': an intact frame has the wrong seq. */
  kind: 'truncated' | 'corrupt' | 'sequence';
  reason: string;
  /** File size when scanned. */
  fileBytes: number;
}

export interface ScannedSegment extends SegmentRef {
  /** Bytes of intact frames (the whole file unless the problem is here). */
  validBytes: number;
  /**
   * Zeros after the last intact frame, up to the end of the file: space the writer had
   * preallocated (wal/file.ts) and not yet used when it stopped without closing the file.
   */
  zeroBytes?: number;
}

export interface ScanResult {
  /** Every segment listed, with intact sizes for those scanned; later ones have validBytes 0. */
  segments: ScannedSegment[];
  /** Seq of the last intact record, or the seq before the first segment's name if none. */
  lastSeq: Seq;
  records: number;
  problem?: ScanProblem;
}

export interface ScanOptions {
  /** Records before this seq are checked where read but not visited; whole segments before it are skipped. */
  fromSeq?: Seq;
  chunkBytes?: number;
  /** The segments to scan, if the caller has listed them already. */
  segments?: SegmentRef[];
  /** false: check every checksum on this thread. Otherwise a checksum thread helps with segments of more than two chunks. */
  checksumThread?: boolean;
}

export type RecordVisitor = (record: LogRecord, file: string, offset: number, bytes: number) => void;

interface SegmentOutcome {
  validBytes: number;
  zeroBytes?: number;
  fileBytes: number;
  nextSeq: Seq;
  records: number;
  problem?: { offset: number; kind: ScanProblem['kind']; reason: string };
}

/** One read of a segment. Chunks start on frame boundaries, so no frame is ever split in two. */
interface Chunk {
  buf: Buffer;
  /** File position of buf[0]. */
  pos: number;
  /** Length of the run of intact frames at the start of buf, per the checksum thread (0: none vouched for). */
  verified: Promise<number>;
}

const NOTHING_VERIFIED = Promise.resolve(0);

/**
 * The read buffers of one scan, reused chunk after chunk: fresh 8 MiB buffers per chunk made V8
 * run a full GC every few chunks for the external memory alone. Three are in use at once (the
 * chunk being decoded, the next being checksummed, the one after being read). Decoded records
 * never point into them: msgpackr copies strings, and record.ts asks it to copy binary too.
 */
class ReadBuffers {
  private readonly buffers: Buffer[] = [];
  private turn = 0;

  constructor(private readonly chunkBytes: number) {}

  next(length: number): Buffer {
    const i = this.turn;
    this.turn = (this.turn + 1) % 3;
    let buf = this.buffers[i];
    if (buf === undefined || buf.length < length) {
      // Small segments get small buffers; the first big one sets the size for the rest.
      buf = Buffer.allocUnsafe(length > this.chunkBytes / 2 ? this.chunkBytes : length);
      this.buffers[i] = buf;
    }
    return buf;
  }
}

/**
 * Where a chunk's last whole frame ends, walking the length fields only, and whether the walk
 * stopped on an absurd length (then decoding will find the damage, and reading further is moot).
 */
function walkFrames(buf: Buffer): { end: number; absurd: boolean } {
  let off = 0;
  for (;;) {
    if (buf.length - off < HEADER_BYTES) return { end: off, absurd: false };
    const frameBytes = HEADER_BYTES + buf.readUInt32LE(off);
    if (frameBytes > limits.recordBytesMax) return { end: off, absurd: true };
    if (off + frameBytes > buf.length) return { end: off, absurd: false };
    off += frameBytes;
  }
}

/** Where a segment scan is: the seq it expects next and the file position of the next frame. */
interface Cursor {
  next: Seq;
  records: number;
  at: number;
  problem?: { kind: ScanProblem['kind']; reason: string };
}

/**
 * Decodes the frames of one chunk into `visit`, advancing `cursor`, until the chunk ends or a
 * problem (left in cursor.problem). Returns the offset reached. A plain function, apart from the
 * generator below, so the hot loop compiles to straight code.
 */
function decodeChunk(
  buf: Buffer,
  pos: number,
  verifiedEnd: number,
  fromSeq: Seq,
  name: string,
  cursor: Cursor,
  visit: RecordVisitor,
): number {
  let off = 0;
  let next = cursor.next;
  let records = 0;
  for (;;) {
    const f = off < verifiedEnd ? decodeVerifiedFrame(buf, off) : decodeFrame(buf, off);
    if (f.kind === 'truncated') break;
    if (f.kind === 'corrupt') {
      cursor.problem = { kind: 'corrupt', reason: f.reason };
      break;
    }
    const seq = f.record.seq;
    if (seq !== next) {
      cursor.problem = { kind: 'sequence', reason: `expected seq ${next}, found ${seq}` };
      break;
    }
    if (seq >= fromSeq) visit(f.record, name, pos + off, f.next - off);
    next = seq + 1;
    records++;
    off = f.next;
  }
  cursor.next = next;
  cursor.records += records;
  cursor.at = pos + off;
  return off;
}

/**
 * Scans one segment, calling `visit` synchronously for each record; yields once per chunk so a
 * streaming consumer can take what was visited. While chunk N is decoded, chunk N+1 is being
 * checksummed on the checksum thread (if any) and chunk N+2 read, so replay runs at decode speed.
 */
async function* scanSegment(
  dir: LogDirectory,
  seg: SegmentRef,
  expectedSeq: Seq,
  fromSeq: Seq,
  chunkBytes: number,
  buffers: ReadBuffers,
  checksums: (() => ChecksumThread) | undefined,
  visit: RecordVisitor,
): AsyncGenerator<void, SegmentOutcome> {
  const file = await dir.open(seg.name, 'read');
  let reading: Promise<Buffer> | undefined;
  try {
    let size = await file.size();
    const thread = checksums !== undefined && size > 2 * chunkBytes ? checksums() : undefined;
    let readPos = 0;
    let want = 0;
    const startRead = (pos: number): void => {
      readPos = pos;
      want = Math.min(chunkBytes, size - pos);
      reading = want > 0 ? file.read(pos, want, buffers.next(want)) : undefined;
    };
    const receive = async (): Promise<Chunk | undefined> => {
      if (reading === undefined) return undefined;
      const pos = readPos;
      const buf = await reading;
      reading = undefined;
      // A file that shrank under us ends where the read ended; decoding then sees the cut frame.
      if (buf.length < want) size = pos + buf.length;
      const walk = walkFrames(buf);
      if (!walk.absurd && walk.end > 0 && pos + buf.length < size) startRead(pos + walk.end);
      return { buf, pos, verified: thread === undefined ? NOTHING_VERIFIED : thread.verify(buf) };
    };

    const cursor: Cursor = { next: expectedSeq, records: 0, at: 0 };
    const outcome = async (problem?: Cursor['problem']): Promise<SegmentOutcome> => {
      const out: SegmentOutcome = { validBytes: cursor.at, fileBytes: size, nextSeq: cursor.next, records: cursor.records };
      // Zeros from a frame boundary to the end of the file are preallocated space, not damage:
      // no frame is all zeros (its version byte is not 0).
      if (problem !== undefined && problem.kind !== 'sequence' && (await zerosUpToEnd(file, cursor.at, size)))
        out.zeroBytes = size - cursor.at;
      else if (problem !== undefined) out.problem = { offset: cursor.at, ...problem };
      return out;
    };

    startRead(0);
    let chunk = await receive();
    while (chunk !== undefined) {
      const following = await receive();
      const verifiedEnd = await chunk.verified;
      const end = decodeChunk(chunk.buf, chunk.pos, verifiedEnd, fromSeq, seg.name, cursor, visit);
      if (cursor.problem !== undefined) return await outcome(cursor.problem);
      if (following === undefined) {
        const left = chunk.buf.length - end;
        return await (left === 0 ? outcome() : outcome({ kind: 'truncated', reason: `file ends ${left} bytes into a frame` }));
      }
      invariant(following.pos === cursor.at, 'log chunks start on frame boundaries');
      chunk = following;
      yield;
    }
    return await outcome();
  } finally {
    // Let a read finish before closing: a backend may not allow closing under a read.
    if (reading !== undefined) await (reading as Promise<Buffer>).catch(() => undefined);
    await file.close();
  }
}

async function* scanAll(dir: LogDirectory, opts: ScanOptions, visit: RecordVisitor): AsyncGenerator<void, ScanResult> {
  const refs = opts.segments ?? (await listSegments(dir));
  const fromSeq = opts.fromSeq ?? 1;
  // A chunk must hold the largest record, or a frame could never be read whole.
  const chunkBytes = Math.max(opts.chunkBytes ?? limits.logReadChunkBytes, limits.recordBytesMax);
  const buffers = new ReadBuffers(chunkBytes);
  let thread: ChecksumThread | undefined;
  const checksums = opts.checksumThread === false ? undefined : (): ChecksumThread => (thread ??= new ChecksumThread());
  const segments: ScannedSegment[] = refs.map((r) => ({ ...r, validBytes: 0 }));
  let start = 0;
  while (start + 1 < refs.length && refs[start + 1]!.firstSeq <= fromSeq) start++;
  let next = refs[start]?.firstSeq ?? 1;
  let records = 0;
  try {
    for (let i = start; i < refs.length; i++) {
      const seg = refs[i]!;
      if (seg.firstSeq !== next) {
        const reason = `segment starts at seq ${seg.firstSeq}, expected ${next}`;
        const fileBytes = await fileSize(dir, seg.name);
        return {
          segments,
          lastSeq: next - 1,
          records,
          problem: { file: seg.name, segment: i, offset: 0, kind: 'sequence', reason, fileBytes },
        };
      }
      const gen = scanSegment(dir, seg, next, fromSeq, chunkBytes, buffers, checksums, visit);
      let out: SegmentOutcome;
      try {
        let step = await gen.next();
        while (!step.done) {
          yield;
          step = await gen.next();
        }
        out = step.value;
      } finally {
        // Runs the segment's own cleanup (closing its file) when our consumer stops early.
        await gen.return(undefined as never);
      }
      segments[i]!.validBytes = out.validBytes;
      if (out.zeroBytes !== undefined) segments[i]!.zeroBytes = out.zeroBytes;
      records += out.records;
      next = out.nextSeq;
      if (out.problem !== undefined) {
        return { segments, lastSeq: next - 1, records, problem: { file: seg.name, segment: i, fileBytes: out.fileBytes, ...out.problem } };
      }
    }
    return { segments, lastSeq: next - 1, records };
  } finally {
    await thread?.close();
  }
}

/**
 * The bytes a segment's frames take, without the zeros a writer preallocated after them: hops from
 * frame to frame by their length fields (no decoding) until an all-zero header whose remainder of
 * the file is zeros too. Anything else (damage, a cut frame) counts to the end of the file, so
 * nothing that is not plainly unused space is hidden. For sizes shown to people: the log tools.
 */
export async function usedBytes(dir: LogDirectory, name: string): Promise<number> {
  const file = await dir.open(name, 'read');
  try {
    const size = await file.size();
    let at = 0;
    while (at + HEADER_BYTES <= size) {
      const buf = await file.read(at, Math.min(limits.logReadChunkBytes, size - at));
      let off = 0;
      while (off + HEADER_BYTES <= buf.length) {
        const length = buf.readUInt32LE(off);
        if (length === 0 && buf[off + 8] === 0) return (await zerosUpToEnd(file, at + off, size)) ? at + off : size;
        if (HEADER_BYTES + length > limits.recordBytesMax) return size;
        off += HEADER_BYTES + length;
      }
      if (off === 0) break;
      at += off;
    }
    return size;
  } finally {
    await file.close();
  }
}

/** True when the file holds only zero bytes from `from` to `to` (and at least one). */
async function zerosUpToEnd(file: LogFile, from: number, to: number): Promise<boolean> {
  if (to <= from) return false;
  const step = limits.logZeroChunkBytes;
  const zeros = Buffer.alloc(Math.min(step, to - from));
  for (let at = from; at < to; at += step) {
    const buf = await file.read(at, Math.min(step, to - at));
    if (buf.length === 0 || !buf.equals(zeros.subarray(0, buf.length))) return false;
  }
  return true;
}

async function fileSize(dir: LogDirectory, name: string): Promise<number> {
  const file = await dir.open(name, 'read');
  try {
    return await file.size();
  } finally {
    await file.close();
  }
}

/** Scans the whole log (or from `fromSeq`), visiting each intact record; stops at the first problem. */
export async function scanLog(dir: LogDirectory, visit: RecordVisitor, opts: ScanOptions = {}): Promise<ScanResult> {
  const gen = scanAll(dir, opts, visit);
  let step = await gen.next();
  while (!step.done) step = await gen.next();
  return step.value;
}

/**
 * Streams intact records in seq order from `fromSeq`. A torn tail (see isTornTail) ends the
 * stream quietly, since its record was never acknowledged; any other damage throws LOG_CORRUPT.
 */
export async function* readLog(dir: LogDirectory, opts: Omit<ScanOptions, 'segments'> = {}): AsyncGenerator<LogEntry, void> {
  let pending: LogEntry[] = [];
  const gen = scanAll(dir, opts, (record, file, offset, bytes) => pending.push({ record, file, offset, bytes }));
  try {
    for (;;) {
      const step = await gen.next();
      const ready = pending;
      pending = [];
      yield* ready;
      if (!step.done) continue;
      const { problem, segments } = step.value;
      if (problem !== undefined && !(await isTornTail(dir, problem, segments.length))) throw corruptError(problem);
      return;
    }
  } finally {
    // A consumer that stops early must still close the files and the checksum thread.
    await gen.return(undefined as never);
  }
}

export function corruptError(p: ScanProblem): KryptonError {
  return new KryptonError('LOG_CORRUPT', `log corrupt in ${p.file} at offset ${p.offset}: ${p.reason}`, {
    detail: { file: p.file, offset: p.offset },
  });
}

/**
 * A problem is a torn tail when it is in the last segment and nothing intact follows it: a crash
 * mid-write leaves a cut frame, a frame of garbage ending at EOF, or a few of those. An intact
 * frame anywhere after the bad one means acknowledged data would be lost by cutting, so that is
 * corruption — even when the bad frame's length field claims to run past EOF, which is how a
 * flipped length bit in a middle record looks.
 */
export async function isTornTail(dir: LogDirectory, p: ScanProblem, segmentCount: number): Promise<boolean> {
  if (p.segment !== segmentCount - 1 || p.kind === 'sequence') return false;
  return (await findIntactFrame(dir, p.file, p.offset + 1, p.fileBytes)) === undefined;
}

/** The offset of the first intact frame starting in [from, to), if any. Slow path: damage only. */
export async function findIntactFrame(dir: LogDirectory, name: string, from: number, to: number): Promise<number | undefined> {
  const file = await dir.open(name, 'read');
  try {
    const window = limits.logReadChunkBytes;
    for (let start = from; start + HEADER_BYTES < to; start += window) {
      // Read a record's worth past the window, so a frame starting inside it is whole in `buf`.
      const buf = await file.read(start, Math.min(window + limits.recordBytesMax, to - start));
      const last = Math.min(window, buf.length - HEADER_BYTES);
      for (let i = 0; i < last; i++) {
        if (!isFormatVersion(buf[i + 8])) continue;
        const length = buf.readUInt32LE(i);
        if (length === 0 || i + HEADER_BYTES + length > buf.length) continue;
        if (decodeFrame(buf, i).kind === 'record') return start + i;
      }
    }
    return undefined;
  } finally {
    await file.close();
  }
}
