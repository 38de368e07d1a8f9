/**
 * The promises this host made as a replica (lib/synch/promise.ts), kept durably in
 * `<sandbox>/<port>/promises/`. A promise must outlive a restart: a replica that forgot it could
 * take and acknowledge the old owner's late write after all, and the takeover built from the head
 * it reported with the promise would then overwrite that acknowledged write. The epoch a replica
 * holds comes back with its log's replay; the promised epoch, which no log record carries, comes
 * back from here. So a promise is written and fdatasync'ed before the reply that grants it leaves.
 *
 * One file at a time, `promises-<n>.log`, lines `<crc32 hex> <json>\n` with json
 * `{"by": host, "asks": [[link, epoch], ...], "seq": n}` (one line per promise request; concurrent
 * requests share one write and one sync). `seq`, when present, is the owner lease's promise
 * sequence after the line's promises (lib/lease.ts LeaseGrantor): a start continues from the
 * highest one read, and a rewrite keeps it in a line of its own with no asks. A graceful stop ends
 * the file with such a line carrying `"clean": true` once no lease grant it gave is running
 * (markCleanStop), which spares the next start the lease's wait for grants it cannot know. Reading stops at a
 * torn tail (its request was never answered); a damaged line followed by good ones is LOG_CORRUPT
 * unless the host starts with --repairLog.
 * A promise is spent, and dropped, once the replica holds a state at its epoch or later. At open,
 * and when the file passes limits.promiseFileBytesMax, the outstanding promises are written to
 * the next file, which is synced before the older files are removed.
 */

import { crc32 } from 'node:zlib';
import { KryptonError } from '../../lib/errors.js';
import type { Epoch, Link, NodeId } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import { promiseSpent, type PromiseAsk, type Promised } from '../../lib/synch/promise.js';
import type { LogDirectory, LogFile } from '../../wal/file.js';

const FILE = /^promises-(\d{20})\.log$/;
const fileName = (n: number) => `promises-${String(n).padStart(20, '0')}.log`;

interface Held extends Promised {
  /** Resolves once the promise is on disk; a reply granting it again waits for it too. */
  durable: Promise<void>;
}

interface Waiting {
  line: Buffer;
  resolve(): void;
  reject(e: unknown): void;
}

/** The part of pino's Logger the store uses. */
export interface PromiseLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface PromiseStoreOptions {
  dir: LogDirectory;
  /** The epoch of the state the index holds for a link (undefined: nothing). */
  heldEpoch(link: Link): Epoch | undefined;
  logger: PromiseLogger;
  repair?: boolean;
}

export function encodeLine(by: NodeId, asks: readonly PromiseAsk[], seq?: number, clean?: true): Buffer {
  const v = seq === undefined ? { by, asks } : clean ? { by, asks, seq, clean } : { by, asks, seq };
  const json = Buffer.from(JSON.stringify(v), 'utf8');
  const head = Buffer.from(`${crc32(json).toString(16).padStart(8, '0')} `, 'latin1');
  return Buffer.concat([head, json, Buffer.from('\n')]);
}

/** The (by, asks, seq, clean) of one line, or undefined when it is damaged. */
function decodeLine(line: Buffer): { by: NodeId; asks: PromiseAsk[]; seq: number; clean: boolean } | undefined {
  if (line.length < 10 || line[8] !== 0x20) return undefined;
  const json = line.subarray(9);
  if (line.subarray(0, 8).toString('latin1') !== crc32(json).toString(16).padStart(8, '0')) return undefined;
  try {
    const v = JSON.parse(json.toString('utf8')) as { by?: unknown; asks?: unknown; seq?: unknown; clean?: unknown };
    if (typeof v.by !== 'string' || !Array.isArray(v.asks)) return undefined;
    if (v.seq !== undefined && !(Number.isSafeInteger(v.seq) && (v.seq as number) >= 0)) return undefined;
    for (const a of v.asks as unknown[]) {
      if (!Array.isArray(a) || typeof a[0] !== 'string' || !Number.isSafeInteger(a[1])) return undefined;
    }
    return { by: v.by, asks: v.asks as PromiseAsk[], seq: (v.seq as number | undefined) ?? 0, clean: v.clean === true };
  } catch {
    return undefined;
  }
}

export class PromiseStore {
  private readonly held = new Map<Link, Held>();
  private readonly waiting: Waiting[] = [];
  private draining: Promise<void> | undefined;
  private file!: LogFile;
  private fileNo = 0;
  private bytes = 0;
  private broken: unknown;
  private seq = 0;
  private stoppedCleanly = false;
  readonly stats = { granted: 0, writes: 0, compactions: 0 };

  private constructor(private readonly o: PromiseStoreOptions) {}

  static async open(o: PromiseStoreOptions): Promise<PromiseStore> {
    const s = new PromiseStore(o);
    await s.load();
    return s;
  }

  private async load(): Promise<void> {
    const names = (await this.o.dir.list()).filter((n) => FILE.test(n));
    const done = Promise.resolve();
    // Every file, oldest first: a compaction cut short leaves the older file complete.
    for (const name of names) {
      this.fileNo = Math.max(this.fileNo, Number(FILE.exec(name)![1]));
      const f = await this.o.dir.open(name, 'read');
      let buf: Buffer;
      try {
        buf = await f.read(0, await f.size());
      } finally {
        await f.close();
      }
      let at = 0;
      let damagedAt = -1;
      let repaired = false;
      while (at < buf.length) {
        const nl = buf.indexOf(0x0a, at);
        const line = nl < 0 ? undefined : decodeLine(buf.subarray(at, nl));
        if (!line) {
          if (damagedAt < 0) damagedAt = at;
          if (nl < 0) break;
          at = nl + 1;
          continue;
        }
        if (damagedAt >= 0) {
          const msg = `promise file damaged in ${name} at offset ${damagedAt}`;
          if (!this.o.repair)
            throw new KryptonError('LOG_CORRUPT', `${msg}: a good line follows (start with --repairLog to drop what follows it)`, {
              detail: { file: name, offset: damagedAt },
            });
          this.o.logger.error({ file: name, offset: damagedAt }, `${msg}; --repairLog: the promises after it are dropped`);
          repaired = true;
          break;
        }
        this.seq = Math.max(this.seq, line.seq);
        this.stoppedCleanly = line.clean;
        for (const [link, epoch] of line.asks) {
          const cur = this.held.get(link);
          if (!cur || epoch > cur.epoch) this.held.set(link, { epoch, by: line.by, durable: done });
        }
        at = nl + 1;
      }
      if (damagedAt >= 0) this.stoppedCleanly = false;
      // Damage with no good line after it is a write cut short by a crash: never answered.
      if (damagedAt >= 0 && !repaired)
        this.o.logger.warn({ file: name, offset: damagedAt }, 'torn tail of the promise file dropped (its request was never answered)');
    }
    for (const [link, p] of this.held) if (promiseSpent(this.o.heldEpoch(link), p)) this.held.delete(link);
    await this.rewrite(names);
    if (this.held.size) this.o.logger.info({ promises: this.held.size }, 'outstanding synchronization promises reloaded');
  }

  /** Writes the outstanding promises to a new file, syncs it, then removes `old`. */
  private async rewrite(old: readonly string[]): Promise<void> {
    const byHost = new Map<NodeId, PromiseAsk[]>();
    for (const [link, p] of this.held) {
      if (promiseSpent(this.o.heldEpoch(link), p)) {
        this.held.delete(link);
        continue;
      }
      let list = byHost.get(p.by);
      if (!list) {
        list = [];
        byHost.set(p.by, list);
      }
      list.push([link, p.epoch]);
    }
    const lines: Buffer[] = [];
    for (const [by, asks] of byHost) {
      for (let i = 0; i < asks.length; i += limits.synchPromiseLinksMax)
        lines.push(encodeLine(by, asks.slice(i, i + limits.synchPromiseLinksMax)));
    }
    if (this.seq > 0) lines.push(encodeLine('', [], this.seq));
    const next = await this.o.dir.create(fileName(++this.fileNo));
    if (lines.length) await next.append(lines);
    await next.datasync();
    await this.o.dir.syncDirectory();
    const previous = this.file as LogFile | undefined;
    this.file = next;
    this.bytes = lines.reduce((n, l) => n + l.length, 0);
    await previous?.close();
    for (const name of old) await this.o.dir.remove(name);
    if (old.length) await this.o.dir.syncDirectory();
  }

  /** The outstanding promise for `link`, if any (a spent one is dropped here). */
  get(link: Link): Promised | undefined {
    const p = this.held.get(link);
    if (!p) return undefined;
    if (promiseSpent(this.o.heldEpoch(link), p)) {
      this.held.delete(link);
      return undefined;
    }
    return { epoch: p.epoch, by: p.by };
  }

  /** Resolves once the promise for `link` (granted earlier, perhaps by a request still being written) is durable. */
  durable(link: Link): Promise<void> {
    return this.held.get(link)?.durable ?? Promise.resolve();
  }

  get size(): number {
    return this.held.size;
  }

  /** Refuses a request that would push the table past limits.promisesHeldMax. */
  checkRoom(count: number): void {
    if (this.held.size + count > limits.promisesHeldMax) {
      throw new KryptonError(
        'LIMIT_EXCEEDED',
        `this host holds ${this.held.size} synchronization promises; the limit is ${limits.promisesHeldMax}`,
      );
    }
  }

  /**
   * Makes `link` promised to `by` at `epoch` in memory: records below it are refused from now on.
   * `durable` is the write() that carries it to disk.
   */
  hold(link: Link, promised: Promised, durable: Promise<void>): void {
    this.held.set(link, { epoch: promised.epoch, by: promised.by, durable });
    this.stats.granted++;
  }

  /**
   * Whether the file ended with the mark of a clean stop (markCleanStop): the last process gave
   * no owner lease grant that was still running. The open's rewrite leaves the mark out, so a
   * crash after this start is not taken for a clean stop.
   */
  get cleanStop(): boolean {
    return this.stoppedCleanly;
  }

  /** Marks a clean stop (server/synch/lease.ts stopGranting: every grant it gave has run out). */
  markCleanStop(): Promise<void> {
    if (this.broken) return Promise.reject(this.brokenError());
    const durable = new Promise<void>((resolve, reject) =>
      this.waiting.push({ line: encodeLine('', [], this.seq, true), resolve, reject }),
    );
    this.draining ??= this.drain();
    return durable;
  }

  /** The highest lease promise sequence written (0: none), which a start continues from. */
  get sequence(): number {
    return this.seq;
  }

  /**
   * Writes promises already held in memory and resolves once they are durable; `seq` is the
   * lease's promise sequence after them (see the file comment).
   */
  write(by: NodeId, asks: readonly PromiseAsk[], seq?: number): Promise<void> {
    if (this.broken) return Promise.reject(this.brokenError());
    if (!asks.length) return Promise.resolve();
    if (seq !== undefined) this.seq = Math.max(this.seq, seq);
    const durable = new Promise<void>((resolve, reject) => this.waiting.push({ line: encodeLine(by, asks, seq), resolve, reject }));
    this.draining ??= this.drain();
    return durable;
  }

  private brokenError(): KryptonError {
    return new KryptonError(
      'LOG_FAILED',
      `the promise file could not be written: ${String((this.broken as Error)?.message ?? this.broken)}`,
    );
  }

  private async drain(): Promise<void> {
    await null;
    while (this.waiting.length) {
      const batch = this.waiting.splice(0);
      const lines = batch.map((w) => w.line);
      try {
        if (this.broken) throw this.brokenError();
        if (lines.length) {
          await this.file.append(lines);
          await this.file.datasync();
          this.stats.writes++;
          this.bytes += lines.reduce((n, l) => n + l.length, 0);
        }
      } catch (e) {
        // After a failed write or sync nothing later in the file can be trusted: no more promises.
        this.broken ??= e;
        this.o.logger.error({ err: String(e) }, 'writing the promise file failed; this host grants no more promises');
        for (const w of batch) w.reject(this.brokenError());
        continue;
      }
      if (this.bytes > limits.promiseFileBytesMax) {
        // Before answering, so the size stays bounded however fast requests come. The batch is
        // durable in the old file whatever happens here (a start reads every file it finds).
        try {
          await this.rewrite([fileName(this.fileNo)]);
          this.stats.compactions++;
        } catch (e) {
          this.broken ??= e;
          this.o.logger.error({ err: String(e) }, 'rewriting the promise file failed; this host grants no more promises');
        }
      }
      for (const w of batch) w.resolve();
    }
    // Cleared in the same turn as the last check, so a record() after it starts a new drain.
    this.draining = undefined;
  }

  /** Waits for pending writes, then closes the file. */
  async close(): Promise<void> {
    await this.draining;
    await this.file.close();
  }
}
