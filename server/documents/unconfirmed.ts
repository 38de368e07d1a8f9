/**
 * The dedup window's "outcome unknown" marks (lib/dedup.ts), kept durably in
 * `<sandbox>/<port>/unconfirmed/`. A write logged here that missed its quorum is answered
 * REPLICATION_FAILED, and its retries must be too: it may survive or be lost to a takeover. The
 * log's replay brings its record back as if it had succeeded, so the mark must outlive a restart
 * on its own: it is written and fdatasync'ed before the failure is answered.
 *
 * One file at a time, `unconfirmed-<n>.log`, lines `<crc32 hex> <json>\n` with json
 * `{"link": L, "id": request id, "t": micros}` (the write's time). A torn or damaged line is
 * dropped with a warning (a mark is a refusal to claim success, so losing one is no worse than
 * the host before marks were kept). At open, and when the file passes
 * limits.unconfirmedFileBytesMax, the marks still inside the dedup window are written to the
 * next file, which is synced before the older ones are removed; at most
 * limits.dedupUnconfirmedMax are kept, the oldest dropped first.
 */

import { crc32 } from 'node:zlib';
import type { DedupWindow } from '../../lib/dedup.js';
import type { NewLogRecord } from '../../lib/document.js';
import type { Link, Micros } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import type { LogDirectory, LogFile } from '../../wal/file.js';

const FILE = /^unconfirmed-(\d{20})\.log$/;
const fileName = (n: number) => `unconfirmed-${String(n).padStart(20, '0')}.log`;

export interface UnconfirmedMark {
  link: Link;
  requestId: string;
  timeMicros: Micros;
}

/** The part of pino's Logger the store uses. */
export interface MarksLogger {
  warn(obj: object, msg: string): void;
}

function encodeLine(m: UnconfirmedMark): Buffer {
  const json = Buffer.from(JSON.stringify({ link: m.link, id: m.requestId, t: m.timeMicros }), 'utf8');
  return Buffer.concat([Buffer.from(`${crc32(json).toString(16).padStart(8, '0')} `, 'latin1'), json, Buffer.from('\n')]);
}

function decodeLine(line: Buffer): UnconfirmedMark | undefined {
  if (line.length < 10 || line[8] !== 0x20) return undefined;
  const json = line.subarray(9);
  if (line.subarray(0, 8).toString('latin1') !== crc32(json).toString(16).padStart(8, '0')) return undefined;
  try {
    const v = JSON.parse(json.toString('utf8')) as { link?: unknown; id?: unknown; t?: unknown };
    if (typeof v.link !== 'string' || typeof v.id !== 'string' || !Number.isSafeInteger(v.t)) return undefined;
    return { link: v.link, requestId: v.id, timeMicros: v.t as number };
  } catch {
    return undefined;
  }
}

/**
 * Marks the write of `rec` "outcome unknown" in the dedup window and on disk, before its failure is
 * answered: the replay would bring the write back as a success.
 */
export async function markUnconfirmed(
  dedup: DedupWindow | undefined,
  store: UnconfirmedStore | undefined,
  rec: NewLogRecord,
  nowMicros: Micros,
): Promise<void> {
  if (rec.requestId === undefined) return;
  dedup?.unconfirmed(rec.link, rec.requestId);
  await store?.add({ link: rec.link, requestId: rec.requestId, timeMicros: rec.timeMicros }, nowMicros);
}

export class UnconfirmedStore {
  private marks: UnconfirmedMark[] = [];
  private file: LogFile | undefined;
  private fileNo = 0;
  private bytes = 0;
  /** Writes go one after another: each resolves once its line is on disk. */
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly dir: LogDirectory,
    private readonly logger: MarksLogger,
  ) {}

  /** Reads the marks still inside the dedup window at `nowMicros` and starts a fresh file with them. */
  static async open(dir: LogDirectory, logger: MarksLogger, nowMicros: Micros): Promise<UnconfirmedStore> {
    const s = new UnconfirmedStore(dir, logger);
    const names = (await dir.list()).filter((n) => FILE.test(n)).sort();
    for (const name of names) {
      s.fileNo = Math.max(s.fileNo, Number(FILE.exec(name)![1]));
      const f = await dir.open(name, 'read');
      let buf: Buffer;
      try {
        buf = await f.read(0, await f.size());
      } finally {
        await f.close();
      }
      for (let at = 0; at < buf.length; ) {
        const nl = buf.indexOf(0x0a, at);
        const m = nl < 0 ? undefined : decodeLine(buf.subarray(at, nl));
        if (m) s.marks.push(m);
        else s.logger.warn({ file: name, offset: at }, 'a damaged line of the unconfirmed-writes file was dropped');
        if (nl < 0) break;
        at = nl + 1;
      }
    }
    await s.rewrite(names, nowMicros);
    return s;
  }

  /** The marks read at open, for the dedup window. */
  loaded(): readonly UnconfirmedMark[] {
    return this.marks;
  }

  /** Keeps `m` durably; resolves once it is on disk. */
  add(m: UnconfirmedMark, nowMicros: Micros): Promise<void> {
    const run = this.chain.then(async () => {
      if (this.bytes > limits.unconfirmedFileBytesMax) await this.rewrite([this.file!.name], nowMicros);
      const line = encodeLine(m);
      await this.file!.appendDurable([line]);
      this.bytes += line.length;
      this.marks.push(m);
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Writes the marks inside the window to a new file, syncs it, then removes `old`. */
  private async rewrite(old: readonly string[], nowMicros: Micros): Promise<void> {
    const from = nowMicros - limits.dedupWindowMicros;
    this.marks = this.marks.filter((m) => m.timeMicros >= from).slice(-limits.dedupUnconfirmedMax);
    const lines = this.marks.map(encodeLine);
    const next = await this.dir.create(fileName(++this.fileNo));
    if (lines.length) await next.append(lines);
    await next.datasync();
    await this.dir.syncDirectory();
    const previous = this.file;
    this.file = next;
    this.bytes = lines.reduce((n, l) => n + l.length, 0);
    await previous?.close();
    for (const name of old) await this.dir.remove(name);
    if (old.length) await this.dir.syncDirectory();
  }

  async close(): Promise<void> {
    await this.chain;
    await this.file?.close();
    this.file = undefined;
  }
}
