/**
 * Where the log tools write, passed in rather than taken from `process`, so tests run a command
 * in-process and read exactly what a user would see. Also the presentation rules that depend on
 * the terminal: colour only when stdout is a terminal (and NO_COLOR is unset), a progress bar on
 * stderr only when stderr is a terminal and the work is long.
 */

import { SingleBar } from 'cli-progress';
import type { Micros } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';

export interface LogIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Colour codes in stdout. */
  readonly colour: boolean;
  /** Stdout is a terminal: a command streaming lines to it must not draw a bar over them. */
  readonly stdoutIsTerminal: boolean;
  /** The stream a progress bar may draw on, when stderr is a terminal. */
  readonly progressStream?: NodeJS.WritableStream;
  /** Now, for "as of the end of the log" (expiry); tests fix it. */
  nowMicros(): Micros;
}

export function processIO(): LogIO {
  const colour = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    colour,
    stdoutIsTerminal: process.stdout.isTTY === true,
    ...(process.stderr.isTTY === true ? { progressStream: process.stderr } : {}),
    nowMicros: () => Date.now() * 1000,
  };
}

/**
 * Stdout in 64 KiB pieces: an inspect of a million records would otherwise make a million
 * write calls. Flushed before anything goes to stderr, so the two stay in order on a terminal.
 */
export class Output {
  private parts: string[] = [];
  private bytes = 0;

  constructor(private readonly io: LogIO) {}

  line(text: string): void {
    this.parts.push(text, '\n');
    this.bytes += text.length + 1;
    if (this.bytes >= limits.logToolOutputFlushBytes) this.flush();
  }

  flush(): void {
    if (this.parts.length === 0) return;
    const text = this.parts.join('');
    this.parts = [];
    this.bytes = 0;
    this.io.stdout(text);
  }

  /** A line on stderr, after what stdout holds so far. */
  note(text: string): void {
    this.flush();
    this.io.stderr(text + '\n');
  }
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, dim: 2, bold: 1 } as const;
export type Colour = keyof typeof CODES;

export function painter(on: boolean): (text: string, colour: Colour) => string {
  return on ? (text, colour) => `\u001b[${CODES[colour]}m${text}\u001b[0m` : (text) => text;
}

/** A byte-count progress bar, or one that does nothing when there is no terminal or little work. */
export interface Progress {
  add(bytes: number): void;
  stop(): void;
}

const NO_PROGRESS: Progress = { add() {}, stop() {} };

export function startProgress(io: LogIO, label: string, totalBytes: number): Progress {
  if (io.progressStream === undefined || totalBytes < limits.logToolProgressBytesMin) return NO_PROGRESS;
  const bar = new SingleBar({
    stream: io.progressStream,
    format: `${label} [{bar}] {percentage}% | {done} of {all} MiB | {duration_formatted}`,
    hideCursor: true,
    clearOnComplete: true,
    fps: 5,
  });
  const mib = (n: number): string => (n / 2 ** 20).toFixed(0);
  bar.start(totalBytes, 0, { done: '0', all: mib(totalBytes) });
  let done = 0;
  let shown = 0;
  return {
    add(bytes) {
      done += bytes;
      if (done - shown >= limits.logToolProgressStepBytes) {
        shown = done;
        bar.update(Math.min(done, totalBytes), { done: mib(done) });
      }
    },
    stop() {
      bar.stop();
    },
  };
}
