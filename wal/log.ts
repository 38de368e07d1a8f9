/**
 * The write-ahead log: recovery at open, then durable appends with group commit. Seq numbers are
 * given at call time, so call order is seq order; an append resolves only after its bytes are
 * written and datasync'ed. One flusher loop takes every waiting record (within the batch limits)
 * into one durable write (appendDurable: a writev on an O_DSYNC handle, the same guarantee as
 * writev then fdatasync in one trip to the disk), and rotates to a new segment before one would
 * overflow.
 * A failed write or sync poisons the log: after it, nothing is known about what reached the disk,
 * so every waiting and later append fails with LOG_FAILED and the host is expected to stop. A full
 * disk is the exception: the write is cut back and refused with DISK_FULL, and the log goes on.
 */

import type { LogRecord, NewLogRecord } from '../lib/document.js';
import { KryptonError } from '../lib/errors.js';
import type { Seq } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { LogDirectory, LogFile } from './file.js';
import { encodeRecord } from './record.js';
import { recoverLog, type LogLogger, type RecoveredSegment } from './recover.js';
import { segmentName } from './segment.js';

export interface WriteAheadLogOptions {
  dir: LogDirectory;
  /** Called once per surviving record, in seq order, during open. */
  onRecord: (r: LogRecord) => void;
  /** Cut the log at damage instead of refusing to open (see recover.ts). */
  repair?: boolean;
  /** Replay from this seq: a snapshot holds what came before (recover.ts). */
  fromSeq?: Seq;
  segmentBytesMax?: number;
  batchRecordsMax?: number;
  batchBytesMax?: number;
  pendingAppendsMax?: number;
  /** Zeros written ahead of the appends at a time (wal/file.ts); 0 appends at the file's end. */
  preallocateBytes?: number;
  logger?: LogLogger;
}

export interface WriteAheadLogStats {
  segments: number;
  bytes: number;
  /** Appends made durable since open. */
  appends: number;
  /** Datasyncs since open. */
  syncs: number;
  lastSeq: Seq;
  /** Zeros the open segment holds ahead of its appends: on disk, not in `bytes`. */
  aheadBytes: number;
}

/** One durable write, as told to the observer (the host's metrics and slow-fsync warning). */
export interface DurableWrite {
  records: number;
  bytes: number;
  /** How long the write and its sync took. */
  seconds: number;
  /** For each append call the write completed: seconds from the call to durable. */
  appendSeconds: number[];
}

interface Waiting {
  frame: Buffer;
  record: LogRecord;
  /** performance.now() at the call, on the last record of each call, when an observer listens. */
  queuedAt?: number;
  resolve: (r: LogRecord) => void;
  reject: (e: Error) => void;
}

interface Config {
  segmentBytesMax: number;
  batchRecordsMax: number;
  batchBytesMax: number;
  pendingAppendsMax: number;
  preallocateBytes: number;
}

export class WriteAheadLog {
  private queue: Waiting[] = [];
  /** Appends not yet settled: queued plus the batch being written. */
  private waiting = 0;
  private flushing = false;
  private drainWaiters: (() => void)[] = [];
  private failure: KryptonError | undefined;
  private closing = false;
  private closed: Promise<void> | undefined;
  private nextSeq: Seq;
  private durable: Seq;
  private currentBytes: number;
  private totalBytes: number;
  private appends = 0;
  private syncs = 0;
  private observer: ((w: DurableWrite) => void) | undefined;

  private constructor(
    private readonly dir: LogDirectory,
    private current: LogFile | undefined,
    private readonly segments: RecoveredSegment[],
    lastSeq: Seq,
    currentBytes: number,
    private readonly config: Config,
    private readonly logger: LogLogger | undefined,
  ) {
    this.nextSeq = lastSeq + 1;
    this.durable = lastSeq;
    this.currentBytes = currentBytes;
    this.totalBytes = segments.reduce((n, s) => n + s.bytes, 0);
  }

  static async open(opts: WriteAheadLogOptions): Promise<WriteAheadLog> {
    const config: Config = {
      segmentBytesMax: positive('segmentBytesMax', opts.segmentBytesMax ?? limits.segmentBytesMax),
      batchRecordsMax: positive('batchRecordsMax', opts.batchRecordsMax ?? limits.batchRecordsMax),
      batchBytesMax: positive('batchBytesMax', opts.batchBytesMax ?? limits.batchBytesMax),
      pendingAppendsMax: positive('pendingAppendsMax', opts.pendingAppendsMax ?? limits.pendingAppendsMax),
      preallocateBytes: opts.preallocateBytes === 0 ? 0 : positive('preallocateBytes', opts.preallocateBytes ?? limits.logPreallocateBytes),
    };
    const { dir } = opts;
    const recovered = await recoverLog(dir, { onRecord: opts.onRecord, repair: opts.repair, logger: opts.logger, fromSeq: opts.fromSeq });
    const segments = recovered.segments;
    let file: LogFile;
    const last = segments.at(-1);
    if (last === undefined) {
      const name = segmentName(recovered.lastSeq + 1);
      file = await dir.create(name, { preallocateBytes: config.preallocateBytes });
      await dir.syncDirectory();
      segments.push({ name, firstSeq: recovered.lastSeq + 1, bytes: 0 });
    } else {
      file = await dir.open(last.name, 'append', { preallocateBytes: config.preallocateBytes });
    }
    const size = await file.size();
    segments.at(-1)!.bytes = size;
    return new WriteAheadLog(dir, file, segments, recovered.lastSeq, size, config, opts.logger);
  }

  /** The seq given to the latest append (durable or not). */
  get lastSeq(): Seq {
    return this.nextSeq - 1;
  }

  /** The seq of the latest record known to be on disk. */
  get durableSeq(): Seq {
    return this.durable;
  }

  /** The seq of the oldest record the log still holds (1 until compaction removed a segment). */
  get firstSeq(): Seq {
    return this.segments[0]?.firstSeq ?? this.nextSeq;
  }

  /**
   * Compaction: removes every segment whose records all have seqs up to `seq` (a snapshot covers
   * them), oldest first so a crash midway leaves a log that still starts at a segment boundary.
   * The segment being appended to always stays, and so do the newest segments holding at least
   * `keepBytes` (history kept for the log tools). Returns the names removed.
   */
  async removeSegmentsThrough(seq: Seq, keepBytes = 0): Promise<string[]> {
    let n = 0;
    while (n + 1 < this.segments.length && this.segments[n + 1]!.firstSeq <= seq + 1) n++;
    let kept = 0;
    for (let i = n; i < this.segments.length; i++) kept += this.segments[i]!.bytes;
    while (n > 0 && kept < keepBytes) kept += this.segments[--n]!.bytes;
    if (n === 0) return [];
    const gone = this.segments.splice(0, n);
    for (const s of gone) {
      this.totalBytes -= s.bytes;
      await this.dir.remove(s.name);
    }
    await this.dir.syncDirectory();
    this.logger?.info({ removed: gone.map((s) => s.name), throughSeq: seq, segments: this.segments.length }, 'log: compacted');
    return gone.map((s) => s.name);
  }

  stats(): WriteAheadLogStats {
    const { segments, totalBytes: bytes, appends, syncs, lastSeq } = this;
    return { segments: segments.length, bytes, appends, syncs, lastSeq, aheadBytes: this.current?.aheadBytes?.() ?? 0 };
  }

  /** Tells `fn` about every durable write from now on; it must not throw (it runs in the flusher). */
  observe(fn: (w: DurableWrite) => void): void {
    this.observer = fn;
  }

  /**
   * Gives the record the next seq now and resolves once it is durable. `body`, when given, is the
   * record already encoded (encodeRecordBody); the frame is built around it.
   */
  append(r: NewLogRecord, body?: Buffer): Promise<LogRecord> {
    return new Promise((resolve, reject) =>
      this.enqueue([r], body === undefined ? undefined : [body], (records) => resolve(records[0]!), reject),
    );
  }

  /**
   * Appends records in order, their seqs consecutive, and resolves once the last (so all) is
   * durable: one promise for a batch a replica receives. All or none: a record the log refuses
   * (too large) refuses the whole call before any seq is taken. `bodies[i]`, when given, is
   * records[i] already encoded.
   */
  appendAll(records: readonly NewLogRecord[], bodies?: readonly (Buffer | undefined)[]): Promise<LogRecord[]> {
    return new Promise((resolve, reject) => this.enqueue(records, bodies, resolve, reject));
  }

  /** Why an append of `count` records cannot be queued now, or undefined when it can. */
  private refusal(count: number): Error | undefined {
    if (this.failure !== undefined) return this.failure;
    if (this.closing)
      return new KryptonError('LOG_FAILED', 'log is closed: the host is shutting down', { detail: { reason: 'SHUTTING_DOWN' } });
    if (count > 0 && this.waiting + count > this.config.pendingAppendsMax) {
      return new KryptonError(
        'LIMIT_EXCEEDED',
        `${this.waiting} appends are waiting for the disk; the limit is ${this.config.pendingAppendsMax}`,
        { detail: { limit: this.config.pendingAppendsMax } },
      );
    }
    return undefined;
  }

  /** Queues the records' frames, calling `resolve` once the last is durable, or `reject`. */
  private enqueue(
    rs: readonly NewLogRecord[],
    bodies: readonly (Buffer | undefined)[] | undefined,
    resolve: (records: LogRecord[]) => void,
    reject: (e: Error) => void,
  ): void {
    const refused = this.refusal(rs.length);
    if (refused !== undefined) {
      reject(refused);
      return;
    }
    if (rs.length === 0) {
      resolve([]);
      return;
    }
    const records: LogRecord[] = [];
    const frames: Buffer[] = [];
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i]!;
      const record: LogRecord = {
        seq: this.nextSeq + i,
        link: r.link,
        action: r.action,
        version: r.version,
        epoch: r.epoch,
        timeMicros: r.timeMicros,
        state: r.state,
      };
      if (r.resetHistory !== undefined) record.resetHistory = r.resetHistory;
      // The frame's version follows the request id: a body carrying one must frame as v2.
      if (r.requestId !== undefined) record.requestId = r.requestId;
      try {
        frames.push(encodeRecord(record, bodies?.[i]));
      } catch (e) {
        // Refused before taking any seq, so a too-large record leaves no gap.
        reject(e as Error);
        return;
      }
      records.push(record);
    }
    this.nextSeq += rs.length;
    this.waiting += rs.length;
    const last = records.length - 1;
    for (let i = 0; i < last; i++) this.queue.push({ frame: frames[i]!, record: records[i]!, resolve: noop, reject });
    // Seq order is durability order: the last record durable means all are.
    const tail: Waiting = { frame: frames[last]!, record: records[last]!, resolve: () => resolve(records), reject };
    if (this.observer !== undefined) tail.queuedAt = performance.now();
    this.queue.push(tail);
    if (!this.flushing) {
      this.flushing = true;
      void this.flushLoop();
    }
  }

  private tell(batch: readonly Waiting[], bytes: number, started: number): void {
    const now = performance.now();
    const appendSeconds: number[] = [];
    for (const w of batch) if (w.queuedAt !== undefined) appendSeconds.push((now - w.queuedAt) / 1000);
    this.observer!({ records: batch.length, bytes, seconds: (now - started) / 1000, appendSeconds });
  }

  /** Makes waiting appends durable, then closes. Later appends fail; closing twice is fine. */
  close(): Promise<void> {
    this.closing = true;
    this.closed ??= (async () => {
      if (this.flushing) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
      const file = this.current;
      this.current = undefined;
      if (file !== undefined) await file.close();
      this.logger?.info({ dir: this.dir.description, lastSeq: this.lastSeq }, 'log closed');
    })();
    return this.closed;
  }

  private async flushLoop(): Promise<void> {
    let batch: Waiting[] = [];
    try {
      // Let a synchronous burst of appends queue up before the first batch is taken.
      await null;
      while (this.queue.length > 0 && this.failure === undefined) {
        const first = this.queue[0]!;
        if (this.currentBytes > 0 && this.currentBytes + first.frame.length > this.config.segmentBytesMax)
          await this.rotate(first.record.seq);
        batch = this.takeBatch();
        const frames = batch.map((w) => w.frame);
        const bytes = frames.reduce((n, f) => n + f.length, 0);
        const file = this.current!;
        const started = this.observer === undefined ? 0 : performance.now();
        await file.appendDurable(frames);
        if (this.observer !== undefined) this.tell(batch, bytes, started);
        this.syncs++;
        this.appends += batch.length;
        this.currentBytes += bytes;
        this.totalBytes += bytes;
        this.segments.at(-1)!.bytes = this.currentBytes;
        this.durable = batch.at(-1)!.record.seq;
        this.waiting -= batch.length;
        for (const w of batch) w.resolve(w.record);
        batch = [];
        // The callers just resolved have not appended again yet, and requests that arrived during
        // the write are still unread: waiting for the event loop's check phase (after the poll
        // that reads them) takes both into the next batch. Under the replication bench's load this
        // gave 15.5 records per durable write instead of 12.5; a microtask turn caught only the first.
        await new Promise<void>((r) => setImmediate(r));
      }
    } catch (e) {
      if (!(isNoSpace(e) && (await this.refuseNoSpace(e, batch)))) this.poison(e, batch);
    } finally {
      this.flushing = false;
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  private takeBatch(): Waiting[] {
    const { batchRecordsMax, batchBytesMax, segmentBytesMax } = this.config;
    const room = segmentBytesMax - this.currentBytes;
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length && count < batchRecordsMax) {
      const size = this.queue[count]!.frame.length;
      // The first record always goes, so a record larger than a batch or a fresh segment still gets written.
      if (count > 0 && (bytes + size > batchBytesMax || bytes + size > room)) break;
      bytes += size;
      count++;
    }
    if (count === this.queue.length) {
      const all = this.queue;
      this.queue = [];
      return all;
    }
    return this.queue.splice(0, count);
  }

  /**
   * Starts a new segment, named by its first seq, because the next record would pass the size
   * limit. Every batch is written durably, so the old segment is already durable and only needs
   * closing; the directory sync makes the new name durable before any record in it is acknowledged.
   */
  private async rotate(firstSeq: Seq): Promise<void> {
    const old = this.current!;
    this.current = undefined;
    await old.close();
    const name = segmentName(firstSeq);
    this.current = await this.dir.create(name, { preallocateBytes: this.config.preallocateBytes });
    await this.dir.syncDirectory();
    this.segments.push({ name, firstSeq, bytes: 0 });
    this.currentBytes = 0;
    this.logger?.info({ file: name, segments: this.segments.length }, 'log: new segment');
  }

  /**
   * A full disk (ENOSPC, EDQUOT) is not damage: the file is cut back to its last whole record, the
   * batch and everything queued after it are refused with DISK_FULL, and their seqs are given out
   * again, so the log stays consecutive and later appends are tried afresh. False when the file
   * cannot be cut back (or there is none, mid-rotation): then nothing is known and the log is poisoned.
   */
  private async refuseNoSpace(cause: unknown, batch: Waiting[]): Promise<boolean> {
    const file = this.current;
    if (file === undefined) return false;
    try {
      await file.truncate(this.currentBytes);
      await file.datasync();
    } catch {
      return false;
    }
    const message = cause instanceof Error ? cause.message : String(cause);
    const err = new KryptonError(
      'DISK_FULL',
      `the disk is full: a log write to ${this.dir.description} ${file.name} failed (${message}); nothing of it was kept, ` +
        'and writes are taken again once there is space',
      { detail: { file: file.name } },
    );
    // Appends queued while the file was cut back took later seqs: they go too, in the same turn.
    const refused = [...batch, ...this.queue];
    this.queue = [];
    this.waiting = 0;
    this.nextSeq = this.durable + 1;
    this.logger?.warn({ file: file.name, refused: refused.length, err: message }, 'log: disk full, appends refused');
    for (const w of refused) w.reject(err);
    return true;
  }

  private poison(cause: unknown, batch: Waiting[]): void {
    const message = cause instanceof Error ? cause.message : String(cause);
    const file = this.segments.at(-1)?.name ?? '';
    this.failure = new KryptonError(
      'LOG_FAILED',
      `log write failed in ${this.dir.description} ${file}: ${message}; no more appends are accepted`,
      {
        detail: { file },
      },
    );
    this.logger?.warn({ file, err: message }, 'log failed');
    const rejected = [...batch, ...this.queue];
    this.queue = [];
    this.waiting = 0;
    for (const w of rejected) w.reject(this.failure);
  }
}

function noop(): void {}

function isNoSpace(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new KryptonError('INVALID_ARGUMENT', `${name} must be a positive integer, got ${value}`);
  }
  return value;
}
