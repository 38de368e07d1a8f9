/**
 * `krypton log inspect`: one line per record — seq, time, action, epoch, version, frame bytes and
 * link — or one JSON object per record with --json, filtered by link, kind and action, from a seq,
 * up to a count. Lines are printed as records are read, so the first ones appear at once on a big
 * log and a damaged log still shows everything before the damage.
 */

import { UPDATE_ACTIONS, type LogRecord, type UpdateAction } from '../../lib/document.js';
import { intFlag, usageError } from './args.js';
import { noteCompaction, reportEnd, type CommandContext } from './command.js';
import { isoMicros } from './format.js';
import { painter, startProgress, type Colour } from './io.js';
import { totalBytes, type HostLog } from './open.js';
import { readRecords } from './read.js';

const ACTION_COLOURS: Record<UpdateAction, Colour> = { POST: 'green', PUT: 'cyan', PATCH: 'yellow', DELETE: 'red' };

/** `--link /core/examples/one` matches that link; `--link '/core/examples/*'` every link starting so. */
function linkFilter(pattern: string): (link: string) => boolean {
  if (pattern.endsWith('*')) {
    const prefix = pattern.slice(0, -1);
    return (link) => link.startsWith(prefix);
  }
  return (link) => link === pattern;
}

function actionFilter(raw: string): Set<UpdateAction> {
  const wanted = new Set<UpdateAction>();
  for (const part of raw.split(',')) {
    const a = part.trim().toUpperCase();
    if (!(UPDATE_ACTIONS as readonly string[]).includes(a))
      throw usageError(`--action must be one of ${UPDATE_ACTIONS.join(', ')} (or several, comma-separated), got '${part}'`);
    wanted.add(a as UpdateAction);
  }
  return wanted;
}

/** Digits the seq column needs: no segment can hold more records than it has bytes per smallest frame. */
function seqWidth(log: HostLog): number {
  const i = log.segments.length - 1;
  const bound = i < 0 ? 0 : log.segments[i]!.firstSeq + Math.ceil(log.segmentBytes[i]! / 10);
  return Math.max(3, String(bound).length);
}

export async function runInspect(ctx: CommandContext): Promise<number> {
  const { args, log, io, out } = ctx;
  const json = args.booleans.has('json');
  const fromSeq = intFlag(args, 'from-seq', 1);
  const limit = intFlag(args, 'limit', 1);
  const linkArg = args.values.get('link');
  const kind = args.values.get('kind');
  const actionArg = args.values.get('action');
  const matchLink = linkArg === undefined ? undefined : linkFilter(linkArg);
  const actions = actionArg === undefined ? undefined : actionFilter(actionArg);

  const paint = painter(io.colour);
  const w = seqWidth(log);
  if (!json) {
    const header = `${'seq'.padStart(w)}  ${'time'.padEnd(27)}  ${'action'.padEnd(6)}  ${'epoch'.padStart(5)}  ${'version'.padStart(7)}  ${'bytes'.padStart(7)}  link`;
    out.line(paint(header, 'bold'));
  }
  const line = json
    ? (r: LogRecord, file: string, offset: number, bytes: number): string =>
        JSON.stringify({
          seq: r.seq,
          documentSelfLink: r.link,
          documentKind: r.state.documentKind,
          documentVersion: r.version,
          documentEpoch: r.epoch,
          documentUpdateAction: r.action,
          documentUpdateTimeMicros: r.timeMicros,
          ...(r.resetHistory === true ? { resetHistory: true } : {}),
          ...(r.requestId === undefined ? {} : { requestId: r.requestId }),
          file,
          offset,
          bytes,
        })
    : (r: LogRecord, _file: string, _offset: number, bytes: number): string =>
        `${String(r.seq).padStart(w)}  ${isoMicros(r.timeMicros).padEnd(27)}  ${paint(r.action.padEnd(6), ACTION_COLOURS[r.action])}  ${String(r.epoch).padStart(5)}  ${String(r.version).padStart(7)}  ${String(bytes).padStart(7)}  ${r.link}${r.resetHistory === true ? paint('  (history reset)', 'dim') : ''}${r.requestId === undefined ? '' : paint(`  (request ${r.requestId})`, 'dim')}`;

  noteCompaction(ctx, 'shown:');
  let shown = 0;
  const read = await readRecords(
    log,
    (r, file, offset, bytes) => {
      if (matchLink !== undefined && !matchLink(r.link)) return;
      if (kind !== undefined && r.state.documentKind !== kind) return;
      if (actions !== undefined && !actions.has(r.action)) return;
      out.line(line(r, file, offset, bytes));
      shown++;
      if (limit !== undefined && shown >= limit) return false;
    },
    {
      ...(fromSeq !== undefined ? { fromSeq } : {}),
      // Lines streaming to a terminal and a bar redrawn under them would garble each other.
      ...(io.stdoutIsTerminal ? {} : { progress: startProgress(io, 'inspect', totalBytes(log)) }),
    },
  );
  return reportEnd(ctx, read);
}
