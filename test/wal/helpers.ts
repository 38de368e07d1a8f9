/**
 * Shared helpers for the log tests: deterministic records, a logger that remembers what it was
 * told, and small wrappers to open a log and collect what it replays. Not a suite itself (the
 * test runner only picks files ending in .test.ts).
 */

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KINDS, type LogRecord, type NewLogRecord } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { LogDirectory } from '../../wal/file.js';
import { WriteAheadLog, type WriteAheadLogOptions } from '../../wal/log.js';

/** A small ExampleService-shaped record; `padding` makes it bigger. */
export function newRecord(i: number, padding = 0): NewLogRecord {
  const link = `/core/examples/e${i}`;
  const timeMicros = 1_700_000_000_000_000 + i;
  return {
    link,
    action: 'PUT',
    version: i,
    epoch: 0,
    timeMicros,
    state: {
      name: `example ${i}`,
      counter: i,
      padding: 'x'.repeat(padding),
      documentSelfLink: link,
      documentKind: KINDS.example,
      documentVersion: i,
      documentEpoch: 0,
      documentUpdateTimeMicros: timeMicros,
      documentUpdateAction: 'PUT',
      documentExpirationTimeMicros: 0,
    },
  };
}

/** The record newRecord(i) becomes once the log gives it `seq`. */
export function withSeq(seq: number, r: NewLogRecord): LogRecord {
  return { seq, ...r };
}

export interface CapturedLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  readonly warnings: { obj: Record<string, unknown>; msg: string }[];
  readonly infos: { obj: Record<string, unknown>; msg: string }[];
}

export function captureLogger(): CapturedLogger {
  const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
  const infos: { obj: Record<string, unknown>; msg: string }[] = [];
  return {
    warnings,
    infos,
    info(obj, msg) {
      infos.push({ obj: obj as Record<string, unknown>, msg });
    },
    warn(obj, msg) {
      warnings.push({ obj: obj as Record<string, unknown>, msg });
    },
  };
}

/** Opens a log and returns it with every record it replayed. */
export async function openLog(
  dir: LogDirectory,
  opts: Partial<WriteAheadLogOptions> = {},
): Promise<{ log: WriteAheadLog; replayed: LogRecord[] }> {
  const replayed: LogRecord[] = [];
  const log = await WriteAheadLog.open({ dir, onRecord: (r) => replayed.push(r), ...opts });
  return { log, replayed };
}

/** Opens, replays, closes: the records a log holds. */
export async function replayAll(dir: LogDirectory, opts: Partial<WriteAheadLogOptions> = {}): Promise<LogRecord[]> {
  const { log, replayed } = await openLog(dir, opts);
  await log.close();
  return replayed;
}

/** Appends newRecord(from..to) one after another (each awaited). */
export async function appendRange(log: WriteAheadLog, from: number, to: number, padding = 0): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for (let i = from; i <= to; i++) out.push(await log.append(newRecord(i, padding)));
  return out;
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejection(p: Promise<unknown>): Promise<KryptonError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KryptonError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

export async function tempDir(prefix = 'krypton-wal-'): Promise<{ path: string; remove(): Promise<void> }> {
  const p = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  return { path: p, remove: () => fs.rm(p, { recursive: true, force: true }) };
}
