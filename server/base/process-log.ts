/**
 * The host's structured log: pino writing JSON lines to stdout (at the configured level) and to an
 * in-memory ring of the latest lines, which `/core/management/process-log` serves the way Xenon
 * serves its process log. The ring is bounded by limits.processLogLinesMax.
 */

import { pino, type Logger } from 'pino';
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

export function createLogger(level: string, ring: LogRing, base: Record<string, unknown>): Logger {
  const streams: { level: pino.Level; stream: { write(s: string): void } }[] = [{ level: 'info', stream: ring }];
  if (level !== 'silent') streams.push({ level: level as pino.Level, stream: process.stdout });
  const lowest = level === 'silent' || ['warn', 'error', 'fatal'].includes(level) ? 'info' : level;
  return pino({ level: lowest, base }, pino.multistream(streams));
}
