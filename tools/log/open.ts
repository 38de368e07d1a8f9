/**
 * Finding and opening a host's log for the log tools, read-only. DIR may be a host folder
 * (`<sandbox>/<port>`, which holds `log/`) or a sandbox holding exactly one such folder. The log is
 * opened through a LogDirectory whose files can only be read: the tools share the folder with a
 * host that may be running, so they must never create, append, truncate, remove or lock anything.
 * (wal/'s disk backend would do, but it creates a missing folder on first use, and a tool that
 * typos a path should get an error, not a new empty log.)
 */

import { constants } from 'node:fs';
import { open as openFile, readdir, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { invariantError, KryptonError } from '../../lib/errors.js';
import type { Seq } from '../../lib/ids.js';
import {
  listSegments,
  listSnapshots,
  readFully,
  usedBytes,
  type LogDirectory,
  type LogFile,
  type SegmentRef,
  type SnapshotRef,
} from '../../wal/index.js';

/** DIR cannot be used (code INVALID_SETUP): exit code 2, like bad usage. */
function dirError(message: string): KryptonError {
  return new KryptonError('INVALID_SETUP', message);
}

export interface HostLog {
  /** The host folder, as reached from the DIR the user gave (so messages show paths they know). */
  readonly hostDir: string;
  /** `<hostDir>/log`. */
  readonly logPath: string;
  readonly dir: LogDirectory;
  /**
   * The segments when the log was opened. Every command reads this list and no other, so a host
   * starting a new segment meanwhile does not change what a command sees halfway through.
   */
  readonly segments: SegmentRef[];
  /**
   * Each segment's size when the log was opened (the last may grow while a host runs), without the
   * zeros a host writes ahead of its appends (wal/file.ts): sizes read the same while it runs and
   * after it stopped.
   */
  readonly segmentBytes: number[];
  /**
   * After compaction (the first segment starts past seq 1): the newest snapshot that covers what
   * the log no longer holds, which replay and export start from; undefined when the log is whole,
   * or when no snapshot covers the gap (then those commands refuse).
   */
  readonly base?: { name: string; path: string; lastSeq: Seq; dir: LogDirectory };
  /** Every snapshot in `<hostDir>/snapshots`, newest first (verify checks them all). */
  readonly snapshots: SnapshotRef[];
  readonly snapshotDir?: LogDirectory;
}

/** The seq the log's first segment starts at: 1 unless compaction removed segments. */
export function logStart(log: HostLog): Seq {
  return log.segments[0]?.firstSeq ?? 1;
}

/** The log's size when opened: what a progress bar counts towards. */
export function totalBytes(log: HostLog): number {
  return log.segmentBytes.reduce((n, b) => n + b, 0);
}

/** The path of a segment for messages: the log folder joined with the name. */
export function segmentPath(log: HostLog, name: string): string {
  return path.join(log.logPath, name);
}

export async function openHostLog(dirArg: string): Promise<HostLog> {
  const hostDir = await resolveHostDir(dirArg);
  const logPath = path.join(hostDir, 'log');
  const dir = readOnlyDirectory(logPath);
  let segments: SegmentRef[];
  const segmentBytes: number[] = [];
  try {
    segments = await listSegments(dir);
    for (const s of segments) segmentBytes.push((await stat(path.join(logPath, s.name))).size);
    // Only the last segment is written to, so only it can end in unused zeros (save after a crash
    // mid-rotation, where the zeros then count as bytes of the file).
    const last = segments.length - 1;
    if (last >= 0) segmentBytes[last] = await usedBytes(dir, segments[last]!.name);
  } catch (e) {
    throw dirError(`cannot read ${logPath}: ${errorText(e)}`);
  }
  const snapshotPath = path.join(hostDir, 'snapshots');
  if (!(await isDirectory(snapshotPath))) return { hostDir, logPath, dir, segments, segmentBytes, snapshots: [] };
  const snapshotDir = readOnlyDirectory(snapshotPath);
  const snapshots = await listSnapshots(snapshotDir);
  const start = segments[0]?.firstSeq ?? 1;
  const covering = start > 1 ? snapshots.find((s) => s.lastSeq + 1 >= start) : undefined;
  const base = covering && {
    name: covering.name,
    path: path.join(snapshotPath, covering.name),
    lastSeq: covering.lastSeq,
    dir: snapshotDir,
  };
  return { hostDir, logPath, dir, segments, segmentBytes, snapshots, snapshotDir, ...(base ? { base } : {}) };
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw dirError(`cannot read ${p}: ${errorText(e)}`);
  }
}

async function resolveHostDir(dirArg: string): Promise<string> {
  if (!(await isDirectory(dirArg))) throw dirError(`${dirArg} is not a folder`);
  if (await isDirectory(path.join(dirArg, 'log'))) return dirArg;
  let names: string[];
  try {
    names = (await readdir(dirArg)).sort();
  } catch (e) {
    throw dirError(`cannot read ${dirArg}: ${errorText(e)}`);
  }
  const hosts: string[] = [];
  for (const name of names) if (await isDirectory(path.join(dirArg, name, 'log'))) hosts.push(name);
  if (hosts.length === 1) return path.join(dirArg, hosts[0]!);
  if (hosts.length === 0) throw dirError(`${dirArg} is neither a host folder (no log/ in it) nor a sandbox holding one`);
  const shown = hosts.length > 5 ? `${hosts.slice(0, 5).join(', ')}, ...` : hosts.join(', ');
  throw dirError(`${dirArg} is a sandbox with ${hosts.length} host folders (${shown}); name one, e.g. ${path.join(dirArg, hosts[0]!)}`);
}

function errorText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code !== undefined ? err.code : String(err.message ?? e);
}

/** A LogDirectory over a folder that only lists and reads; anything else is a bug in the tools. */
export function readOnlyDirectory(folder: string): LogDirectory {
  const refuse = (what: string): never => {
    throw invariantError(`the log tools never write; refused to ${what} in ${folder}`);
  };
  return {
    description: `read-only:${folder}`,
    async list() {
      return (await readdir(folder)).sort();
    },
    async open(name, mode) {
      if (mode !== 'read') refuse(`open ${name} for ${mode}`);
      if (name.includes('/') || name === '.' || name === '..')
        throw new KryptonError('INVALID_ARGUMENT', `bad log file name ${JSON.stringify(name)}`);
      return new ReadOnlyFile(name, await openFile(path.join(folder, name), constants.O_RDONLY));
    },
    create: async (name) => refuse(`create ${name}`),
    remove: async (name) => refuse(`remove ${name}`),
    rename: async (from) => refuse(`rename ${from}`),
    syncDirectory: async () => refuse('sync the folder'),
  };
}

class ReadOnlyFile implements LogFile {
  constructor(
    readonly name: string,
    private readonly handle: FileHandle,
  ) {}

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  read(position: number, length: number, into?: Buffer): Promise<Buffer> {
    return readFully(this.handle, position, length, into);
  }

  append(): Promise<void> {
    return Promise.reject(invariantError(`the log tools never write; refused to append to ${this.name}`));
  }

  datasync(): Promise<void> {
    return Promise.reject(invariantError(`the log tools never write; refused to sync ${this.name}`));
  }

  appendDurable(): Promise<void> {
    return Promise.reject(invariantError(`the log tools never write; refused to append to ${this.name}`));
  }

  truncate(): Promise<void> {
    return Promise.reject(invariantError(`the log tools never write; refused to truncate ${this.name}`));
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
