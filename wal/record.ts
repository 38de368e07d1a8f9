/**
 * Log record framing, formats v1 and v2: the one module that turns a LogRecord into bytes and back.
 * A frame is a 9-byte header — [u32 LE payload length][u32 LE crc32][u8 format version] — and a
 * MessagePack payload `{ seq, link, action, version, epoch, timeMicros, resetHistory?, requestId?, state }`.
 * v2 adds `requestId`; a record without one is written as v1, byte for byte what a v1 writer
 * wrote, so a log without request ids stays readable by a v1 reader. The crc covers the version
 * byte and the payload, which sit next to each other, so one crc32 call checks both. Nothing here
 * touches files: recovery decides what a bad frame means.
 */

import { crc32 } from 'node:zlib';
import { Packr, Unpackr } from 'msgpackr';
import type { LogRecord, NewLogRecord } from '../lib/document.js';
import { KryptonError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';

/** The newest format version, which this module writes when a record needs it. */
export const FORMAT_VERSION = 2;
/** The oldest format version readers still read. */
export const FORMAT_VERSION_MIN = 1;

/** Whether `b`, a frame's version byte, is a version this reader knows. */
export function isFormatVersion(b: number | undefined): boolean {
  return b !== undefined && b >= FORMAT_VERSION_MIN && b <= FORMAT_VERSION;
}

/** The oldest version that holds `r`: v2 only for a request id, so v1 readers read the rest. */
function versionFor(r: NewLogRecord): number {
  return r.requestId === undefined ? 1 : 2;
}
export const HEADER_BYTES = 9;

/** Plain MessagePack (no msgpackr records), so other msgpack libraries and tools can read it. */
const packr = new Packr({ useRecords: false });
/**
 * copyBuffers: replay decodes from read buffers it reuses, so binary values must not be views of
 * them. int64AsType 'auto': peers or tools may write timeMicros as uint64; keep safe ones as numbers
 * (BigInt only past 2^53). msgpackr 2.1.3 supports 'auto' but its .d.ts omits it, hence the cast.
 * Exported so benchmarks decode with exactly the log's options.
 */
export const UNPACK_OPTIONS = { useRecords: false, copyBuffers: true, int64AsType: 'auto' as 'number' } as const;
const unpackr = new Unpackr(UNPACK_OPTIONS);

/** msgpackr reads `start`/`end` during the call and keeps no reference to the object. */
const payloadRange = { start: 0, end: 0 };

export type DecodedFrame =
  | { kind: 'record'; record: LogRecord; next: number }
  | { kind: 'truncated' }
  /** `claimedEnd` is where the header says the frame ends, when the header could be read. */
  | { kind: 'corrupt'; reason: string; claimedEnd?: number };

/** The keys of a record body, in the log's order (a frame's payload is `seq` then these). */
export const BODY_KEYS = ['link', 'action', 'version', 'epoch', 'timeMicros', 'resetHistory', 'requestId', 'state'] as const;

/**
 * A record without its seq, as a msgpack map in the log's key order. Log shipping carries records
 * this way, and a frame is these bytes behind the seq (encodeRecord's `body`), so a record is
 * encoded once on its owner and never again on its replicas. A copy: msgpackr reuses the memory
 * pack() returns.
 */
export function encodeRecordBody(r: NewLogRecord): Buffer {
  return Buffer.from(packr.pack(bodyOf(r)));
}

function bodyOf(r: NewLogRecord): Record<string, unknown> {
  // Fixed key order keeps frames of equal records byte-identical, which the golden fixture relies on.
  const body: Record<string, unknown> = { link: r.link, action: r.action, version: r.version, epoch: r.epoch, timeMicros: r.timeMicros };
  if (r.resetHistory !== undefined) body.resetHistory = r.resetHistory;
  if (r.requestId !== undefined) body.requestId = r.requestId;
  body.state = r.state;
  return body;
}

/** msgpack's encoding of a seq (a positive safe integer), as msgpackr writes it. */
function packSeq(seq: number): Buffer {
  if (seq < 0x80) return Buffer.from([seq]);
  if (seq < 0x100) return Buffer.from([0xcc, seq]);
  if (seq < 0x10000) return Buffer.from([0xcd, seq >> 8, seq & 0xff]);
  if (seq < 0x100000000) {
    const b = Buffer.allocUnsafe(5);
    b[0] = 0xce;
    b.writeUInt32BE(seq, 1);
    return b;
  }
  return Buffer.from(packr.pack(seq));
}

const SEQ_KEY = Buffer.from([0xa3, 0x73, 0x65, 0x71]); // fixstr "seq"

/**
 * Frames the record; refuses one whose frame would pass limits.recordBytesMax. `body`, when given,
 * must be encodeRecordBody of the same record (or bytes equal to it): the frame is built around it
 * without encoding the record again, byte for byte what encoding would give.
 */
export function encodeRecord(r: LogRecord, body?: Buffer): Buffer {
  const b = body ?? packr.pack(bodyOf(r));
  // msgpackr writes every plain object with a map16 header; a fixmap is valid msgpack too.
  const fix = (b[0]! & 0xf0) === 0x80;
  const keys = fix ? b[0]! & 0x0f : b[0] === 0xde ? b.readUInt16BE(1) : -1;
  const entries = fix ? 1 : 3;
  // The count must be the record's own: a body with a request id that `r` lacks would frame as v1.
  const fields = 6 + (r.resetHistory === undefined ? 0 : 1) + (r.requestId === undefined ? 0 : 1);
  if (keys !== fields) throw new KryptonError('INVALID_ARGUMENT', `record body for ${r.link} is not a map of the record's fields`);
  const seq = packSeq(r.seq);
  const payloadBytes = 3 + SEQ_KEY.length + seq.length + b.length - entries;
  const frameBytes = HEADER_BYTES + payloadBytes;
  if (frameBytes > limits.recordBytesMax) {
    throw new KryptonError('LIMIT_EXCEEDED', `log record for ${r.link} is ${frameBytes} bytes; the limit is ${limits.recordBytesMax}`, {
      detail: { link: r.link, bytes: frameBytes, limit: limits.recordBytesMax },
    });
  }
  // pack() returns a view into a slab it reuses; copying into our own frame makes it safe to queue.
  const frame = Buffer.allocUnsafe(frameBytes);
  frame.writeUInt32LE(payloadBytes, 0);
  frame[8] = versionFor(r);
  let at = HEADER_BYTES;
  frame[at] = 0xde;
  frame.writeUInt16BE(keys + 1, at + 1);
  at += 3;
  at += SEQ_KEY.copy(frame, at);
  at += seq.copy(frame, at);
  b.copy(frame, at, entries);
  frame.writeUInt32LE(crc32(frame.subarray(8)), 4);
  return frame;
}

/**
 * Reads the frame starting at `offset`. 'truncated' means `buf` ends before the frame does, so a
 * caller reading in chunks should fetch more before calling it damage.
 */
export function decodeFrame(buf: Buffer, offset: number): DecodedFrame {
  return decode(buf, offset, true);
}

/**
 * decodeFrame without the checksum, for replay frames the checksum thread has already verified
 * (checksum-thread.ts). Every other check still runs.
 */
export function decodeVerifiedFrame(buf: Buffer, offset: number): DecodedFrame {
  return decode(buf, offset, false);
}

function decode(buf: Buffer, offset: number, checkCrc: boolean): DecodedFrame {
  if (buf.length - offset < HEADER_BYTES) return { kind: 'truncated' };
  const length = buf.readUInt32LE(offset);
  const end = offset + HEADER_BYTES + length;
  if (length + HEADER_BYTES > limits.recordBytesMax) {
    return { kind: 'corrupt', reason: `frame length ${length} is over the record limit`, claimedEnd: end };
  }
  if (end > buf.length) return { kind: 'truncated' };
  const version = buf[offset + 8];
  if (!isFormatVersion(version)) {
    return { kind: 'corrupt', reason: `unknown format version ${version}`, claimedEnd: end };
  }
  if (length === 0) return { kind: 'corrupt', reason: 'empty payload', claimedEnd: end };
  if (checkCrc && crc32(buf.subarray(offset + 8, end)) !== buf.readUInt32LE(offset + 4)) {
    return { kind: 'corrupt', reason: 'checksum mismatch', claimedEnd: end };
  }
  let value: unknown;
  try {
    // A reused start/end range instead of a subarray: replay would otherwise allocate per record.
    payloadRange.start = offset + HEADER_BYTES;
    payloadRange.end = end;
    value = unpackr.unpack(buf, payloadRange);
  } catch (e) {
    return { kind: 'corrupt', reason: `undecodable payload: ${(e as Error).message}`, claimedEnd: end };
  }
  const problem = recordProblem(value, version!);
  if (problem !== undefined) return { kind: 'corrupt', reason: problem, claimedEnd: end };
  return { kind: 'record', record: value as LogRecord, next: end };
}

/**
 * A crc only proves the bytes are the ones written; this catches a writer that wrote the wrong
 * shape, so the index never sees one. The decoded object is returned as the record itself.
 */
function recordProblem(v: unknown, version: number): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'payload is not a map';
  const r = v as Record<string, unknown>;
  if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 1) return 'bad seq';
  if (typeof r.link !== 'string') return 'bad link';
  if (r.action !== 'POST' && r.action !== 'PUT' && r.action !== 'PATCH' && r.action !== 'DELETE') return 'bad action';
  if (typeof r.version !== 'number' || typeof r.epoch !== 'number' || typeof r.timeMicros !== 'number') {
    return 'bad version, epoch or timeMicros';
  }
  if (r.resetHistory !== undefined && typeof r.resetHistory !== 'boolean') return 'bad resetHistory';
  if (r.requestId !== undefined) {
    if (version < 2) return 'requestId in a v1 frame';
    if (typeof r.requestId !== 'string' || r.requestId.length === 0 || r.requestId.length > limits.requestIdCharsMax)
      return 'bad requestId';
  }
  if (typeof r.state !== 'object' || r.state === null || Array.isArray(r.state)) return 'bad state';
  return undefined;
}
