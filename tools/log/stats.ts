/**
 * `krypton log stats`: what a log holds, in one pass — segments and bytes, records per action
 * and per kind, the seq and time span, and links and versions as the index would hold them now
 * (from a HistoryTally, so a big log is summed at close to decode speed).
 */

import { UPDATE_ACTIONS, type UpdateAction } from '../../lib/document.js';
import type { Micros } from '../../lib/ids.js';
import { noteCompaction, reportEnd, type CommandContext } from './command.js';
import { count, isoMicros, span, table } from './format.js';
import { painter, startProgress } from './io.js';
import { totalBytes } from './open.js';
import { type ReadResult, readRecords } from './read.js';
import { hostRetentionFor } from './retention.js';
import { HistoryTally } from './tally.js';

const NO_KIND = '(no documentKind)';

/** What one pass over the log found. */
interface LogStats {
  tally: HistoryTally;
  actions: Record<UpdateAction, number>;
  /** Records per documentKind, most first. */
  kindRows: [string, number][];
  records: number;
  frameBytes: number;
  firstSeq: number;
  lastSeq: number;
  firstMicros: Micros;
  lastMicros: Micros;
  /** Links and held versions summed over every factory, as the index would hold them now. */
  totals: { live: number; deleted: number; expired: number; versions: number };
  diskBytes: number;
}

export async function runStats(ctx: CommandContext): Promise<number> {
  noteCompaction(ctx, 'counted (records, documents and versions):');
  const { read, stats } = await gatherStats(ctx);
  if (ctx.args.booleans.has('json')) printJson(ctx, stats);
  else printTables(ctx, stats);
  return reportEnd(ctx, read);
}

async function gatherStats(ctx: CommandContext): Promise<{ read: ReadResult; stats: LogStats }> {
  const { log, io } = ctx;
  const tally = new HistoryTally(hostRetentionFor);
  const actions: Record<UpdateAction, number> = { POST: 0, PUT: 0, PATCH: 0, DELETE: 0 };
  const kinds = new Map<string, number>();
  let records = 0;
  let frameBytes = 0;
  let firstSeq = 0;
  let firstMicros: Micros = Infinity;
  let lastMicros: Micros = -Infinity;
  const read = await readRecords(
    log,
    (r, _file, _offset, bytes) => {
      tally.apply(r);
      if (records++ === 0) firstSeq = r.seq;
      frameBytes += bytes;
      actions[r.action]++;
      const kind = typeof r.state.documentKind === 'string' ? r.state.documentKind : NO_KIND;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      if (r.timeMicros < firstMicros) firstMicros = r.timeMicros;
      if (r.timeMicros > lastMicros) lastMicros = r.timeMicros;
    },
    { progress: startProgress(io, 'stats', totalBytes(log)) },
  );
  const lastSeq = records > 0 ? read.lastSeq : 0;
  const totals = { live: 0, deleted: 0, expired: 0, versions: 0 };
  for (const c of tally.countByFactory(io.nowMicros())) {
    totals.live += c.live;
    totals.deleted += c.deleted;
    totals.expired += c.expired;
    totals.versions += c.versions;
  }
  const kindRows = [...kinds].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const diskBytes = totalBytes(log);
  return {
    read,
    stats: { tally, actions, kindRows, records, frameBytes, firstSeq, lastSeq, firstMicros, lastMicros, totals, diskBytes },
  };
}

function printJson(ctx: CommandContext, st: LogStats): void {
  const { log, out } = ctx;
  const { tally, totals, records } = st;
  out.line(
    JSON.stringify({
      segments: {
        count: log.segments.length,
        bytes: st.diskBytes,
        files: log.segments.map((s, i) => ({ name: s.name, firstSeq: s.firstSeq, bytes: log.segmentBytes[i] })),
      },
      records,
      firstSeq: st.firstSeq,
      lastSeq: st.lastSeq,
      frameBytes: st.frameBytes,
      ...(records > 0 ? { firstTimeMicros: st.firstMicros, lastTimeMicros: st.lastMicros } : {}),
      actions: st.actions,
      kinds: Object.fromEntries(st.kindRows),
      links: { total: tally.links.size, live: totals.live, deleted: totals.deleted, expired: totals.expired },
      historyResets: tally.resets,
      versions: { held: totals.versions, written: records },
    }),
  );
}

function printTables(ctx: CommandContext, st: LogStats): void {
  const { log, io, out } = ctx;
  const { tally, totals, records, firstSeq, lastSeq, firstMicros, lastMicros, kindRows } = st;
  const paint = painter(io.colour);
  const names =
    log.segments.length === 0 ? '' : ` (${log.segments[0]!.name}${log.segments.length > 1 ? ` to ${log.segments.at(-1)!.name}` : ''})`;
  const summary: string[][] = [
    ['segments', `${count(log.segments.length)}, ${count(st.diskBytes)} bytes${names}`],
    ['records', records === 0 ? '0' : `${count(records)}, seq ${firstSeq} to ${lastSeq}, ${count(st.frameBytes)} bytes in frames`],
    ['time span', records === 0 ? '-' : `${isoMicros(firstMicros)} to ${isoMicros(lastMicros)} (${span(lastMicros - firstMicros)})`],
    [
      'links',
      `${count(tally.links.size)}: ${count(totals.live)} live, ${count(totals.deleted)} deleted, ${count(totals.expired)} expired; ${count(tally.resets)} history reset${tally.resets === 1 ? '' : 's'}`,
    ],
    ['versions', `${count(totals.versions)} held by the index, of ${count(records)} written`],
  ];
  for (const line of table(summary, ['left', 'left'], (cell, _r, c) => (c === 0 ? paint(cell, 'bold') : cell))) out.line(line);
  out.line('');
  const actionRows = [['action', 'records'], ...UPDATE_ACTIONS.map((a) => [a, count(st.actions[a])])];
  for (const line of table(actionRows, ['left', 'right'], (cell, r) => (r === 0 ? paint(cell, 'bold') : cell))) out.line(line);
  if (kindRows.length > 0) {
    out.line('');
    const rows = [['kind', 'records'], ...kindRows.map(([k, n]) => [k, count(n)])];
    for (const line of table(rows, ['left', 'right'], (cell, r) => (r === 0 ? paint(cell, 'bold') : cell))) out.line(line);
  }
}
