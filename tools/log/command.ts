/**
 * What every log command is handed, and the one place that turns how a read ended into stderr
 * lines and an exit code, so all commands word a torn tail and damage the same way.
 */

import type { Seq } from '../../lib/ids.js';
import type { ParsedArgs } from './args.js';
import type { LogIO, Output } from './io.js';
import { logStart, segmentPath, type HostLog } from './open.js';
import type { ReadResult } from './read.js';

export interface CommandContext {
  /** `inspect`, `verify`, ... for messages. */
  readonly name: string;
  readonly args: ParsedArgs;
  readonly log: HostLog;
  readonly io: LogIO;
  readonly out: Output;
}

export const EXIT_OK = 0;
/** Problems found: damage, verify failures, a document that is not there. */
export const EXIT_PROBLEMS = 1;
/** Bad usage, or DIR is not a readable host folder or sandbox. */
export const EXIT_USAGE = 2;

/**
 * Says on stderr how a read ended when it did not simply reach the end: a torn tail is a
 * warning (exit 0, the records before it are all there is), damage is an error (exit 1).
 */
export function reportEnd(ctx: CommandContext, read: ReadResult): number {
  const after = (seq: Seq): string => (seq > 0 ? `after seq ${seq}` : 'before the first record');
  const end = read.end;
  if (end.kind === 'torn') {
    const p = end.problem;
    ctx.out.note(
      `krypton log ${ctx.name}: warning: torn tail in ${segmentPath(ctx.log, p.file)} at offset ${p.offset} (${p.reason}); the log ends ${after(read.lastSeq)}, where the host's recovery would cut it`,
    );
    return EXIT_OK;
  }
  if (end.kind === 'corrupt') {
    const p = end.problem;
    ctx.out.note(
      `krypton log ${ctx.name}: log corrupt in ${segmentPath(ctx.log, p.file)} at offset ${p.offset}: ${p.reason}; stopped ${after(read.lastSeq)} (krypton log verify lists every problem)`,
    );
    return EXIT_PROBLEMS;
  }
  return EXIT_OK;
}

/**
 * For commands that show records (inspect, stats): after compaction the records before the log's
 * first segment are gone; say so, and which snapshot holds the index as of then.
 */
export function noteCompaction(ctx: CommandContext, what: string): void {
  const start = logStart(ctx.log);
  if (start <= 1) return;
  const base = ctx.log.base;
  const where = base
    ? `; ${base.path} holds the index as of seq ${base.lastSeq} (replay and export start from it)`
    : '; no snapshot covers them';
  ctx.out.note(
    `krypton log ${ctx.name}: the log was compacted: the records before seq ${start} are gone${where}; ${what} the records from seq ${start} on`,
  );
}
