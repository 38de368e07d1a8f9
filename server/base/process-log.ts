/**
 * The host's structured log: pino writing to stdout (at the configured level; JSON lines, or
 * readable ones on a terminal) and JSON lines to an
 * in-memory ring of the latest lines, which `/core/management/process-log` serves the way Xenon
 * serves its process log. The ring is bounded by limits.processLogLinesMax.
 */

import { pino, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import { limits } from '../../lib/limits.js';

export class LogRing {
  private readonly lines: string[] = [];
  constructor(private readonly max: number = limits.processLogLinesMax) {}

  write(line: string): void {
    this.lines.push(line.endsWith('\n') ? line.slice(0, -1) : line);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }

  tail(count: number): string[] {
    return this.lines.slice(-Math.max(0, count));
  }
}

/**
 * `format`: `json` writes pino's JSON lines to stdout; `pretty` one coloured, readable line per
 * entry (pino-pretty, written synchronously so a crash loses nothing); `auto` is pretty when
 * stdout is a terminal and JSON when it is a pipe or file, as log shippers expect.
 */
export function createLogger(
  level: string,
  ring: LogRing,
  base: Record<string, unknown>,
  format: 'auto' | 'pretty' | 'json' = 'json',
): Logger {
  const streams: { level: pino.Level; stream: { write(s: string): void } }[] = [{ level: 'info', stream: ring }];
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  const out = pretty
    ? pinoPretty({
        sync: true,
        colorize: process.stdout.isTTY === true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
        singleLine: true,
      })
    : process.stdout;
  if (level !== 'silent') streams.push({ level: level as pino.Level, stream: out });
  const lowest = level === 'silent' || ['warn', 'error', 'fatal'].includes(level) ? 'info' : level;
  return pino({ level: lowest, base }, pino.multistream(streams));
}
