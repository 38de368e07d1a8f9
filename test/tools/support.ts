/**
 * Helpers for the log tools' tests: run `krypton log` in-process and capture what it prints,
 * lay out host folders in temp directories (from the golden fixture or from crafted frames), and
 * damage a copy the way a crash or a bad disk would. Not a suite itself.
 */

import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KINDS, type LogRecord, type UpdateAction } from '../../lib/document.js';
import { encodeRecord, segmentName } from '../../wal/index.js';
import { runLog } from '../../tools/log/cli.js';
import type { LogIO } from '../../tools/log/io.js';

export const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'wal-v1');
export const SEG1 = '00000000000000000001.log';
export const SEG4 = '00000000000000000004.log';
/** "Now" for every in-process run, so expiry and as-of times are fixed: 2027-01-15T08:00:00Z. */
export const NOW_MICROS = 1_800_000_000_000_000;

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout split into lines, without the final empty one. */
  lines: string[];
}

export async function cli(argv: string[], nowMicros = NOW_MICROS): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: LogIO = {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    colour: false,
    stdoutIsTerminal: false,
    nowMicros: () => nowMicros,
  };
  const code = await runLog(argv, io);
  return { code, stdout, stderr, lines: stdout === '' ? [] : stdout.replace(/\n$/, '').split('\n') };
}

/** Every line of stdout parsed as JSON. */
export function jsonLines<T = Record<string, unknown>>(run: CliRun): T[] {
  return run.lines.map((l) => JSON.parse(l) as T);
}

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

export async function tempDir(prefix = 'krypton-logtools-'): Promise<TempDir> {
  const p = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  return { path: p, remove: () => fs.rm(p, { recursive: true, force: true }) };
}

/** A sandbox `<tmp>` holding one host folder `<tmp>/8000` whose log/ holds copies of the golden segments. */
export async function fixtureSandbox(): Promise<TempDir & { host: string; logDir: string }> {
  const dir = await tempDir();
  const host = path.join(dir.path, '8000');
  const logDir = path.join(host, 'log');
  await fs.mkdir(logDir, { recursive: true });
  for (const name of [SEG1, SEG4]) await fs.copyFile(path.join(FIXTURE, name), path.join(logDir, name));
  return { ...dir, host, logDir };
}

export async function expectedRecords(): Promise<LogRecord[]> {
  return JSON.parse(await fs.readFile(path.join(FIXTURE, 'expected.json'), 'utf8')) as LogRecord[];
}

/** Xors one byte of a file (a bad sector's worth of damage). */
export async function flipByte(file: string, offset: number): Promise<void> {
  const fh = await fs.open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0]! ^= 0x5a;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

/** A digest of every file under a folder (names and bytes), to prove the tools changed nothing. */
export async function folderDigest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (d: string): Promise<void> => {
    for (const e of (await fs.readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, e.name);
      hash.update(p + '\0');
      if (e.isDirectory()) await walk(p);
      else hash.update(await fs.readFile(p));
    }
  };
  await walk(dir);
  return hash.digest('hex');
}

/** An example record with a given seq, link, version and action; times 1 ms apart by seq. */
export function record(
  seq: number,
  link: string,
  version: number,
  action: UpdateAction = 'PUT',
  extra: Partial<LogRecord> = {},
): LogRecord {
  const timeMicros = 1_700_000_000_000_000 + seq * 1000;
  return {
    seq,
    link,
    action,
    version,
    epoch: 0,
    timeMicros,
    ...extra,
    state: {
      name: `${link} v${version}`,
      documentVersion: version,
      documentEpoch: 0,
      documentKind: KINDS.example,
      documentSelfLink: link,
      documentUpdateTimeMicros: timeMicros,
      documentUpdateAction: action,
      documentExpirationTimeMicros: 0,
      ...(extra.state ?? {}),
    },
  };
}

/** Writes segments of crafted records into `<host>/log/`: each entry is [first seq for the name, records]. */
export async function writeSegments(host: string, segments: [number, LogRecord[]][]): Promise<string[]> {
  const logDir = path.join(host, 'log');
  await fs.mkdir(logDir, { recursive: true });
  const names: string[] = [];
  for (const [firstSeq, records] of segments) {
    const name = segmentName(firstSeq);
    await fs.writeFile(path.join(logDir, name), Buffer.concat(records.map((r) => encodeRecord(r))));
    names.push(name);
  }
  return names;
}

export function frameBytes(r: LogRecord): number {
  return encodeRecord(r).length;
}
