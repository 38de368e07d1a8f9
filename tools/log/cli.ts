/**
 * `krypton log <command> DIR [flags]`: the entry point of the log tools. It parses the command
 * line, opens the log read-only, runs one command, and turns every failure into one line on
 * stderr and a documented exit code — never a stack trace. Tests call runLog in-process with
 * their own LogIO; tools/krypton.ts calls it with the process's.
 */

import { isKryptonError } from '../../lib/errors.js';
import { parseArgs, type FlagKind } from './args.js';
import { EXIT_PROBLEMS, EXIT_USAGE, type CommandContext } from './command.js';
import { runExport } from './export.js';
import { runInspect } from './inspect.js';
import { Output, type LogIO } from './io.js';
import { openHostLog } from './open.js';
import { runReplay } from './replay.js';
import { runStats } from './stats.js';
import { runVerify } from './verify.js';

interface Command {
  flags: Readonly<Record<string, FlagKind>>;
  run(ctx: CommandContext): Promise<number>;
}

const COMMANDS: Readonly<Record<string, Command>> = {
  inspect: {
    flags: { link: 'value', kind: 'value', action: 'value', 'from-seq': 'value', limit: 'value', json: 'boolean' },
    run: runInspect,
  },
  verify: { flags: { json: 'boolean' }, run: runVerify },
  replay: { flags: { 'at-seq': 'value', 'at-time': 'value', link: 'value', json: 'boolean' }, run: runReplay },
  export: { flags: { 'all-versions': 'boolean', 'at-seq': 'value', 'at-time': 'value' }, run: runExport },
  stats: { flags: { json: 'boolean' }, run: runStats },
};

export const LOG_USAGE = `usage: krypton log <command> DIR [flags]

DIR is a host's folder (<sandbox>/<port>, the one holding log/) or a sandbox holding exactly one.
The tools only read: they never write, lock or truncate anything, so they work on the folder of a
running host (they read the log as it was when they started). Flags take --flag=value or
--flag value. The record format is described in docs/log-format.md.

commands:
  inspect   one line per record: seq, time, action, epoch, version, frame bytes, link
              --link L          only this link; a trailing * matches a prefix (/core/examples/*)
              --kind K          only records whose state has this documentKind
              --action A        only POST, PUT, PATCH or DELETE (several: POST,DELETE)
              --from-seq N      start at seq N
              --limit N         stop after N records
              --json            JSON lines: seq, documentSelfLink, documentKind, documentVersion,
                                documentEpoch, documentUpdateAction, documentUpdateTimeMicros,
                                resetHistory and requestId (when set), file, offset, bytes
  verify    check the length, version and crc32 of every frame, that every payload is a record,
            and that seqs run on by one from 1 across records and segments; every problem is
            listed with its file and byte offset, reading on past damage where a later frame is
            intact. A torn tail counts as a problem here.
              --json            one JSON object: ok, counts, problems [{file, path, offset, kind, reason}]
  replay    rebuild the index as of a point: documents and versions per factory, or one document
              --at-seq N        up to and including seq N
              --at-time T       up to the last record stamped at or before T (ISO-8601, or
                                microseconds since the epoch); without either, the whole log
              --link L          print that document's state as of then (live, deleted or expired)
              --json            JSON instead of a table / a header and the state
  export    JSON lines of documents, ordered by link then version: the latest state of each live
            document, or every version the index holds
              --all-versions    every held version, tombstones included
              --at-seq N, --at-time T   as of a point, as for replay
  stats     segments, bytes, records per action and kind, seq and time span, links and versions
              --json            one JSON object

inspect, replay, export and stats stop at the first damage, after printing what they read before
it; at a torn tail (the last record cut off by a crash) they warn on stderr and end there, as the
host's recovery would. Run verify for the full list of problems.

exit codes:
  0  done (also after a torn-tail warning from inspect, replay, export or stats)
  1  problems: verify found any, a command stopped at damage, or replay --link found no document
  2  bad usage, or DIR is not a readable host folder or sandbox`;

export async function runLog(argv: string[], io: LogIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr(LOG_USAGE + '\n');
    return EXIT_USAGE;
  }
  if (name === '--help' || name === '-h' || name === 'help' || rest.includes('--help') || rest.includes('-h')) {
    io.stdout(LOG_USAGE + '\n');
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr(`krypton log: unknown command '${name}'; the commands are ${Object.keys(COMMANDS).join(', ')} (krypton log --help)\n`);
    return EXIT_USAGE;
  }
  const out = new Output(io);
  try {
    const args = parseArgs(rest, command.flags);
    const log = await openHostLog(args.dir);
    return await command.run({ name, args, log, io, out });
  } catch (e) {
    if (isKryptonError(e) && e.code === 'INVALID_USAGE') {
      out.note(`krypton log ${name}: ${e.message} (krypton log --help)`);
      return EXIT_USAGE;
    }
    if (isKryptonError(e) && e.code === 'INVALID_SETUP') {
      out.note(`krypton log ${name}: ${e.message}`);
      return EXIT_USAGE;
    }
    const message = isKryptonError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
    out.note(`krypton log ${name}: ${message}`);
    return EXIT_PROBLEMS;
  } finally {
    out.flush();
  }
}
