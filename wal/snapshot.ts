/**
 * Snapshot files (checkpoints): what a host's index and dedup window held once every record up to
 * one log seq was applied, so a restart loads the newest snapshot and replays only the log after
 * it, and log segments a snapshot covers can be removed (docs/log-format.md, Snapshots).
 *
 * A file is `<last seq covered, 20 digits>.snap`, a run of frames: [u32 LE payload length]
 * [u32 LE crc32 of the kind byte and payload][u8 kind][MessagePack payload]. The first frame is the
 * header, the last the end frame with the count of every kind: a file that ends early, or whose
 * counts disagree, is damaged, not a smaller snapshot. It is written under a `.tmp` name, synced,
 * renamed and the folder synced, so a crash leaves the previous snapshots and at worst a `.tmp`,
 * which the next write removes. This module knows the format, not the index: entries are plain
 * values the host turns into index and dedup state (server/host/checkpoints.ts).
 */

import { crc32 } from 'node:zlib';
import { Packr, Unpackr } from 'msgpackr';
import type { ServiceDocument } from '../lib/document.js';
import { KryptonError } from '../lib/errors.js';
import type { Link, Micros, Seq, Version } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { LogDirectory } from './file.js';
import { UNPACK_OPTIONS } from './record.js';

/** The snapshot format this module writes and reads. */
export const SNAPSHOT_FORMAT = 1;
const SUFFIX = '.snap';
const TMP_SUFFIX = '.tmp';
const NAME = /^(\d{20})\.snap$/;
const FRAME_HEADER_BYTES = 9;

const KIND = { header: 1, trimmed: 2, version: 3, dedup: 4, end: 5 } as const;
type EntryKind = 'trimmed' | 'version' | 'dedup';

export interface SnapshotHeader {
  format: number;
  /** Every log record up to this seq is reflected; the log after it is replayed on top. */
  lastSeq: Seq;
  /** The writer's clock when it took the snapshot: no record covered is later. */
  clockMicros: Micros;
  /** The newest update time the index had applied (TIME_SNAPSHOT queries name times after it). */
  newestTimeMicros: Micros;
  /**
   * The dedup window's "may have forgotten" marks still within the retry horizon (lib/dedup.ts
   * forgottenMarks; link `''`: the whole window). Optional: absent in older snapshots, and
   * readers that do not know it ignore it.
   */
  dedupForgotten?: [Link, Micros][];
}

/** A link whose older versions are gone, with the update time of its oldest kept one (0: reset, none kept yet). */
export interface TrimmedEntry {
  kind: 'trimmed';
  link: Link;
  micros: Micros;
}

/** One retained version, in the order the index applied them. */
export interface VersionEntry {
  kind: 'version';
  link: Link;
  version: Version;
  timeMicros: Micros;
  requestId?: string;
  state: ServiceDocument;
}

/** One request id of the dedup window, in the order the window noted them. */
export interface DedupEntryRecord {
  kind: 'dedup';
  link: Link;
  requestId: string;
  timeMicros: Micros;
  state: ServiceDocument;
}

export type SnapshotEntry = TrimmedEntry | VersionEntry | DedupEntryRecord;

export interface SnapshotRef {
  name: string;
  lastSeq: Seq;
}

export interface WrittenSnapshot extends SnapshotRef {
  bytes: number;
  entries: number;
}

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr(UNPACK_OPTIONS);

export function snapshotName(lastSeq: Seq): string {
  if (!Number.isSafeInteger(lastSeq) || lastSeq < 0) throw new RangeError(`bad snapshot seq ${lastSeq}`);
  return String(lastSeq).padStart(20, '0') + SUFFIX;
}

/** The folder's snapshots, newest first; other files are ignored. */
export async function listSnapshots(dir: LogDirectory): Promise<SnapshotRef[]> {
  const out: SnapshotRef[] = [];
  for (const name of await dir.list()) {
    const m = NAME.exec(name);
    if (m !== null) out.push({ name, lastSeq: Number(m[1]) });
  }
  return out.sort((a, b) => b.lastSeq - a.lastSeq);
}

function frame(kind: number, value: unknown): Buffer {
  const payload = packr.pack(value);
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out[8] = kind;
  payload.copy(out, FRAME_HEADER_BYTES);
  out.writeUInt32LE(crc32(out.subarray(8)), 4);
  return out;
}

function entryFrame(e: SnapshotEntry): Buffer {
  switch (e.kind) {
    case 'trimmed':
      return frame(KIND.trimmed, [e.link, e.micros]);
    case 'version':
      return frame(KIND.version, [e.link, e.version, e.timeMicros, e.requestId ?? null, e.state]);
    case 'dedup':
      return frame(KIND.dedup, [e.link, e.requestId, e.timeMicros, e.state]);
  }
}

/**
 * The file's bytes, a chunk of at least `chunkBytes` at a time (the last may be shorter): the
 * header, every entry in order, the end frame. Encoding is lazy, so a caller writing or sending
 * each chunk before asking for the next lets the event loop run between chunks.
 */
export function* snapshotChunks(
  header: Omit<SnapshotHeader, 'format'>,
  entries: Iterable<SnapshotEntry>,
  chunkBytes = limits.snapshotChunkBytes,
): Generator<Buffer, { entries: number }> {
  const counts = { trimmed: 0, version: 0, dedup: 0 };
  let chunk: Buffer[] = [frame(KIND.header, { ...header, format: SNAPSHOT_FORMAT })];
  let size = chunk[0]!.length;
  for (const e of entries) {
    const f = entryFrame(e);
    counts[e.kind]++;
    chunk.push(f);
    size += f.length;
    if (size >= chunkBytes) {
      yield Buffer.concat(chunk, size);
      chunk = [];
      size = 0;
    }
  }
  const end = frame(KIND.end, counts);
  chunk.push(end);
  yield Buffer.concat(chunk, size + end.length);
  return { entries: counts.trimmed + counts.version + counts.dedup };
}

/**
 * Writes a snapshot of `entries` (trimmed marks, then versions, then dedup ids) and makes it
 * durable under its name (by default the one its seq gives; a backup file takes any name).
 * Entries are encoded a chunk at a time, so a large index is written while the host goes on
 * serving (each chunk's write yields to the event loop).
 */
export async function writeSnapshot(
  dir: LogDirectory,
  header: Omit<SnapshotHeader, 'format'>,
  entries: Iterable<SnapshotEntry>,
  chunkBytes = limits.snapshotChunkBytes,
  name = snapshotName(header.lastSeq),
  abandon?: () => boolean,
): Promise<WrittenSnapshot> {
  const tmp = name + TMP_SUFFIX;
  for (const n of await dir.list())
    if (n.endsWith(TMP_SUFFIX) && (NAME.test(n.slice(0, -TMP_SUFFIX.length)) || n === tmp)) await dir.remove(n);
  const file = await dir.create(tmp);
  let bytes = 0;
  let count = 0;
  try {
    const chunks = snapshotChunks(header, entries, chunkBytes);
    for (let step = chunks.next(); ; step = chunks.next()) {
      if (step.done) {
        count = step.value.entries;
        break;
      }
      await file.append([step.value]);
      bytes += step.value.length;
      if (abandon?.()) break;
    }
    if (!abandon?.()) await file.datasync();
  } catch (e) {
    // A full disk, say: the partial file would only take the space the next try needs.
    await file.close().catch(() => {});
    await dir.remove(tmp).catch(() => {});
    throw e;
  } finally {
    await file.close().catch(() => {});
  }
  if (abandon?.()) {
    await dir.remove(tmp);
    throw new KryptonError('SHUTTING_DOWN', `snapshot ${name} abandoned: the host is stopping`);
  }
  await dir.rename(tmp, name);
  await dir.syncDirectory();
  return { name, lastSeq: header.lastSeq, bytes, entries: count };
}

function damaged(dir: LogDirectory, name: string, offset: number, reason: string): KryptonError {
  return new KryptonError('LOG_CORRUPT', `snapshot ${dir.description}/${name} is damaged at offset ${offset}: ${reason}`, {
    detail: { file: name, offset, reason },
  });
}

/** Turns a frame's payload into an entry, or a reason it cannot be one. */
function decodeEntry(kind: number, v: unknown): SnapshotEntry | string {
  if (!Array.isArray(v)) return 'entry is not an array';
  const isState = (s: unknown): s is ServiceDocument => typeof s === 'object' && s !== null && !Array.isArray(s);
  if (kind === KIND.trimmed) {
    const [link, micros] = v as [unknown, unknown];
    return typeof link === 'string' && typeof micros === 'number' ? { kind: 'trimmed', link, micros } : 'bad trimmed entry';
  }
  if (kind === KIND.version) {
    const [link, version, timeMicros, requestId, state] = v as unknown[];
    if (typeof link !== 'string' || typeof version !== 'number' || typeof timeMicros !== 'number' || !isState(state))
      return 'bad version entry';
    if (requestId !== null && typeof requestId !== 'string') return 'bad request id';
    const e: VersionEntry = { kind: 'version', link, version, timeMicros, state };
    if (typeof requestId === 'string') e.requestId = requestId;
    return e;
  }
  if (kind === KIND.dedup) {
    const [link, requestId, timeMicros, state] = v as unknown[];
    if (typeof link !== 'string' || typeof requestId !== 'string' || typeof timeMicros !== 'number' || !isState(state))
      return 'bad dedup entry';
    return { kind: 'dedup', link, requestId, timeMicros, state };
  }
  return `unknown frame kind ${kind}`;
}

function headerProblem(v: unknown, name: string): string | undefined {
  if (typeof v !== 'object' || v === null) return 'header is not a map';
  const h = v as Record<string, unknown>;
  if (h.format !== SNAPSHOT_FORMAT) return `unknown snapshot format ${String(h.format)}`;
  for (const k of ['lastSeq', 'clockMicros', 'newestTimeMicros']) if (typeof h[k] !== 'number') return `bad header field ${k}`;
  const marks = h.dedupForgotten;
  if (
    marks !== undefined &&
    !(Array.isArray(marks) && marks.every((m) => Array.isArray(m) && typeof m[0] === 'string' && typeof m[1] === 'number'))
  )
    return 'bad header field dedupForgotten';
  // A backup file may have any name; a snapshot's name is its seq.
  if (NAME.test(name) && snapshotName(h.lastSeq as number) !== name) return `header says seq ${String(h.lastSeq)}, the name says otherwise`;
  return undefined;
}

/**
 * Reads a snapshot, calling `visit` for each entry in file order, and returns its header. Any
 * damage (a bad checksum, an early end, counts that disagree with the end frame) throws
 * LOG_CORRUPT naming the file and offset; `visit` may by then have seen part of it, so a caller
 * loading into live state starts over from fresh state when it falls back.
 */
export async function readSnapshot(
  dir: LogDirectory,
  name: string,
  visit: (e: SnapshotEntry) => void,
  chunkBytes = limits.snapshotChunkBytes,
): Promise<SnapshotHeader> {
  const file = await dir.open(name, 'read');
  try {
    const size = await file.size();
    let buf = Buffer.alloc(0);
    let base = 0; // file offset of buf[0]
    let at = 0; // offset in buf of the next frame
    let header: SnapshotHeader | undefined;
    const counts = { trimmed: 0, version: 0, dedup: 0 };
    for (;;) {
      if (buf.length - at < FRAME_HEADER_BYTES || buf.length - at < FRAME_HEADER_BYTES + buf.readUInt32LE(at)) {
        const read = base + buf.length;
        const want = buf.length - at < FRAME_HEADER_BYTES ? 0 : FRAME_HEADER_BYTES + buf.readUInt32LE(at);
        if (read >= size || base + at + want > size) {
          throw damaged(dir, name, base + at, header === undefined ? 'no header' : 'the file ends before its end frame');
        }
        const more = await file.read(read, Math.max(chunkBytes, want));
        buf = Buffer.concat([buf.subarray(at), more]);
        base += at;
        at = 0;
        continue;
      }
      const offset = base + at;
      const length = buf.readUInt32LE(at);
      const end = at + FRAME_HEADER_BYTES + length;
      if (crc32(buf.subarray(at + 8, end)) !== buf.readUInt32LE(at + 4)) throw damaged(dir, name, offset, 'checksum mismatch');
      const kind = buf[at + 8]!;
      let value: unknown;
      try {
        value = unpackr.unpack(buf.subarray(at + FRAME_HEADER_BYTES, end));
      } catch (e) {
        throw damaged(dir, name, offset, `undecodable payload: ${(e as Error).message}`);
      }
      at = end;
      if (header === undefined) {
        const problem = kind === KIND.header ? headerProblem(value, name) : 'the first frame is not a header';
        if (problem !== undefined) throw damaged(dir, name, offset, problem);
        header = value as SnapshotHeader;
        continue;
      }
      if (kind === KIND.end) {
        const c = value as Record<string, unknown>;
        if (c.trimmed !== counts.trimmed || c.version !== counts.version || c.dedup !== counts.dedup) {
          throw damaged(dir, name, offset, `the end frame counts ${JSON.stringify(c)}, the file holds ${JSON.stringify(counts)}`);
        }
        if (base + at !== size) throw damaged(dir, name, base + at, 'bytes after the end frame');
        return header;
      }
      const entry = decodeEntry(kind, value);
      if (typeof entry === 'string') throw damaged(dir, name, offset, entry);
      counts[entry.kind as EntryKind]++;
      visit(entry);
    }
  } finally {
    await file.close();
  }
}

/** Removes every snapshot but the newest `keep` (and any `.tmp` a crash left); returns the names removed. */
export async function pruneSnapshots(dir: LogDirectory, keep: number): Promise<string[]> {
  const removed: string[] = [];
  for (const s of (await listSnapshots(dir)).slice(keep)) {
    await dir.remove(s.name);
    removed.push(s.name);
  }
  if (removed.length > 0) await dir.syncDirectory();
  return removed;
}
