/**
 * `krypton log replay`: the index as a host would have rebuilt it from a prefix of its log — up to
 * a seq, up to the last record stamped at or before a time, or the whole log. Without --link it
 * prints live, deleted and expired documents and held versions per factory (from a HistoryTally,
 * which keeps up with decoding); with --link it replays that link's records into a real
 * DocumentIndex and prints the document as it then stood.
 *
 * After compaction the replay starts from the snapshot that covers what the log lost, and a point
 * older than it is refused with the oldest one that can be shown.
 *
 * A point in time ends the replay at the first record stamped later, so the result is always a
 * prefix of the log — a state the host really was in — even though replicated records carry their
 * owner's clock and times need not rise with seq. Expiry is judged at the point's time: the time
 * asked for, the latest record time applied for --at-seq, and now for the whole log (as a host
 * starting now would purge).
 */

import { parentLink, type LogRecord, type ServiceDocument } from '../../lib/document.js';
import type { Link, Micros, Seq } from '../../lib/ids.js';
import path from 'node:path';
import { KryptonError } from '../../lib/errors.js';
import { DocumentIndex, recordOf } from '../../index/views.js';
import { readSnapshot, type VersionEntry } from '../../wal/index.js';
import { pointFlags, type Point } from './args.js';
import { EXIT_PROBLEMS, reportEnd, type CommandContext } from './command.js';
import { count, isoMicros, plural, table } from './format.js';
import { startProgress, type LogIO, type Progress } from './io.js';
import { logStart, totalBytes, type HostLog } from './open.js';
import { readRecords, type ReadResult } from './read.js';
import { hostRetentionFor } from './retention.js';
import { documentStatus, HistoryTally, type FactoryCounts, type LinkStatus } from './tally.js';

export interface ReplayedTo {
  read: ReadResult;
  /** Records applied (the prefix up to the point). */
  applied: number;
  /** The seq of the last record applied (0: none). */
  seq: Seq;
  /** Latest record time applied (0: none). */
  latestMicros: Micros;
}

export interface ReplayOptions {
  progress?: Progress;
}

/** What a replay feeds: HistoryTally and DocumentIndex both are one. */
export interface RecordSink {
  apply(r: LogRecord): void;
}

/**
 * Reads the log up to `point`, handing each record of the prefix to `sink`. One visitor does the
 * point test and the bookkeeping: replay runs at decode speed, where every call per record shows.
 */
export async function replayPrefix(log: HostLog, point: Point, sink: RecordSink, opts: ReplayOptions = {}): Promise<ReplayedTo> {
  const lastSeq = point.kind === 'seq' ? point.seq : Infinity;
  const lastMicros = point.kind === 'time' ? point.micros : Infinity;
  const base = await replayBase(log, point, sink);
  let seq = base.seq;
  let latestMicros = base.latestMicros;
  const read = await readRecords(
    log,
    (r) => {
      if (r.seq > lastSeq || r.timeMicros > lastMicros) return false;
      sink.apply(r);
      seq = r.seq;
      if (r.timeMicros > latestMicros) latestMicros = r.timeMicros;
    },
    { fromSeq: base.seq + 1, ...(opts.progress !== undefined ? { progress: opts.progress } : {}) },
  );
  // The record that ended a stopped read was visited, not applied.
  const applied = base.applied + (read.end.kind === 'stopped' ? read.visited - 1 : read.visited);
  return { read, applied, seq, latestMicros };
}

/**
 * Where a replay starts: seq 0 for a whole log; after compaction, the snapshot covering what the
 * log no longer holds, applied to `sink` first. A point older than that snapshot cannot be
 * shown (what came before it is gone), and that is said, never answered from what is left.
 */
async function replayBase(log: HostLog, point: Point, sink: RecordSink): Promise<{ seq: Seq; latestMicros: Micros; applied: number }> {
  const start = logStart(log);
  if (start <= 1) return { seq: 0, latestMicros: 0, applied: 0 };
  const base = log.base;
  if (base === undefined) {
    throw new KryptonError(
      'LOG_CORRUPT',
      `the log starts at seq ${start}: compaction removed what came before, and no snapshot in ${path.join(log.hostDir, 'snapshots')} covers it`,
    );
  }
  const kept = `the log was compacted through seq ${base.lastSeq} (snapshot ${base.path})`;
  if (point.kind === 'seq' && point.seq < base.lastSeq) {
    throw new KryptonError(
      'INVALID_ARGUMENT',
      `seq ${point.seq} is older than what this host kept: ${kept}; the oldest seq replay can show is ${base.lastSeq}`,
    );
  }
  const versions: VersionEntry[] = [];
  const header = await readSnapshot(base.dir, base.name, (e) => {
    if (e.kind === 'version') versions.push(e);
  });
  if (point.kind === 'time' && point.micros < header.newestTimeMicros) {
    throw new KryptonError(
      'INVALID_ARGUMENT',
      `${isoMicros(point.micros)} is older than what this host kept: ${kept}, whose newest update is ${isoMicros(header.newestTimeMicros)}; the oldest time replay can show is that one`,
    );
  }
  for (const v of versions) sink.apply(recordOf(v, base.lastSeq));
  return { seq: base.lastSeq, latestMicros: header.newestTimeMicros, applied: versions.length };
}

/** The time expiry is judged at for a replay to `point` (see the file comment). */
export function asOfMicros(point: Point, to: ReplayedTo, io: Pick<LogIO, 'nowMicros'>): Micros {
  if (point.kind === 'time') return point.micros;
  if (point.kind === 'seq') return to.latestMicros;
  return io.nowMicros();
}

export interface CountsReplay extends ReplayedTo {
  tally: HistoryTally;
}

/** The replay behind `krypton log replay DIR` (and the benchmark): a HistoryTally of the prefix. */
export async function replayCounts(log: HostLog, point: Point, opts: ReplayOptions = {}): Promise<CountsReplay> {
  const tally = new HistoryTally(hostRetentionFor);
  const to = await replayPrefix(log, point, tally, opts);
  return { ...to, tally };
}

export interface IndexReplay extends ReplayedTo {
  index: DocumentIndex;
  /** Every factory (parent link) a replayed record belonged to: DocumentIndex lists by factory. */
  factories: Set<Link>;
}

/** The prefix replayed into a DocumentIndex, optionally only the records of one link. */
export async function replayIndex(log: HostLog, point: Point, onlyLink: Link | undefined, opts: ReplayOptions = {}): Promise<IndexReplay> {
  const index = new DocumentIndex({ retentionFor: hostRetentionFor });
  const factories = new Set<Link>();
  const sink: RecordSink = {
    apply(r) {
      if (onlyLink !== undefined && r.link !== onlyLink) return;
      index.apply(r);
      factories.add(parentLink(r.link));
    },
  };
  const to = await replayPrefix(log, point, sink, opts);
  return { ...to, index, factories };
}

function describePoint(point: Point, to: ReplayedTo): string {
  if (point.kind === 'time') return `as of ${isoMicros(point.micros)} (${to.seq > 0 ? `seq ${to.seq}` : 'no record yet'})`;
  if (to.seq === 0)
    return point.kind === 'end' && to.read.end.kind === 'end'
      ? 'as of the end of the log, which holds no records'
      : 'before the first record';
  if (point.kind === 'seq' || to.read.end.kind !== 'end') return `as of seq ${to.seq}`;
  return `as of seq ${to.seq}, the end of the log`;
}

export async function runReplay(ctx: CommandContext): Promise<number> {
  const { args, log, io, out } = ctx;
  const point = pointFlags(args);
  const json = args.booleans.has('json');
  const link = args.values.get('link');
  const progress = startProgress(io, 'replay', totalBytes(log));
  if (link !== undefined) return replayOneLink(ctx, point, link, json, progress);

  const to = await replayCounts(log, point, { progress });
  const asOf = asOfMicros(point, to, io);
  const counts = to.tally.countByFactory(asOf);
  if (json) {
    out.line(JSON.stringify({ asOf: { seq: to.seq, timeMicros: asOf }, records: to.applied, factories: counts, totals: totalsOf(counts) }));
  } else {
    out.line(`${describePoint(point, to)}: ${plural(to.applied, 'record')} applied`);
    if (counts.length > 0) {
      const rows = [
        ['factory', 'live', 'deleted', 'expired', 'versions'],
        ...[...counts, totalsOf(counts)].map((c) => [c.factory, count(c.live), count(c.deleted), count(c.expired), count(c.versions)]),
      ];
      for (const line of table(rows, ['left', 'right', 'right', 'right', 'right'])) out.line(line);
    }
  }
  noteBeyondEnd(ctx, point, to);
  return reportEnd(ctx, to.read);
}

function totalsOf(counts: FactoryCounts[]): FactoryCounts {
  const t: FactoryCounts = { factory: 'total', live: 0, deleted: 0, expired: 0, versions: 0 };
  for (const c of counts) {
    t.live += c.live;
    t.deleted += c.deleted;
    t.expired += c.expired;
    t.versions += c.versions;
  }
  return t;
}

async function replayOneLink(ctx: CommandContext, point: Point, link: Link, json: boolean, progress: Progress): Promise<number> {
  const { log, io, out } = ctx;
  const to = await replayIndex(log, point, link, { progress });
  const asOf = asOfMicros(point, to, io);
  const latest = to.index.latest(link);
  if (latest !== undefined) {
    const status = documentStatus(latest, asOf);
    const versions = to.index.versions(link).length;
    if (json) {
      out.line(JSON.stringify({ documentSelfLink: link, status, asOf: { seq: to.seq, timeMicros: asOf }, versions, state: latest }));
    } else {
      out.line(`${link}: ${describeStatus(status, latest)}; ${plural(versions, 'version')} held; ${describePoint(point, to)}`);
      for (const line of JSON.stringify(latest, null, 2).split('\n')) out.line(line);
    }
  }
  noteBeyondEnd(ctx, point, to);
  const ended = reportEnd(ctx, to.read);
  if (latest === undefined) {
    out.note(`krypton log replay: no document ${link} ${describePoint(point, to)}`);
    return EXIT_PROBLEMS;
  }
  return ended;
}

function describeStatus(status: LinkStatus, doc: ServiceDocument): string {
  const at = `version ${doc.documentVersion}, epoch ${doc.documentEpoch ?? 0}, ${doc.documentUpdateAction} at ${isoMicros(doc.documentUpdateTimeMicros)}`;
  if (status === 'deleted') return `deleted (${at})`;
  if (status === 'expired') return `expired at ${isoMicros(doc.documentExpirationTimeMicros)} (${at})`;
  return `live (${at})`;
}

/** An --at-seq past the end is not an error, but the user may have expected more. */
function noteBeyondEnd(ctx: CommandContext, point: Point, to: ReplayedTo): void {
  if (point.kind === 'seq' && to.read.end.kind === 'end' && to.read.lastSeq < point.seq) {
    ctx.out.note(`krypton log ${ctx.name}: note: the log ends at seq ${to.read.lastSeq}, before seq ${point.seq}`);
  }
}
