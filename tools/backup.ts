/**
 * `krypton backup` and `krypton restore`. A backup of a group is taken online: every available
 * member streams its own backup (GET /core/management/backup: every retained version of the
 * replicated services, tombstones included, in the snapshot format), and the tool merges them by
 * link and version, so a version any member holds is kept, and where two disagree on a version the
 * one of the later epoch wins, as synchronization would decide. The result is one file, checksummed
 * frame by frame. `krypton restore` checks such a file through and puts it in an empty host
 * folder as the snapshot the host starts from (seq 0: no log before it); restore every host of the
 * new group from the same file.
 */

import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';
import { KryptonError } from '../lib/errors.js';
import type { Link, Micros, Version } from '../lib/ids.js';
import { diskDirectory } from '../wal/file.js';
import { listSegments } from '../wal/segment.js';
import { listSnapshots, readSnapshot, snapshotName, writeSnapshot, type SnapshotEntry, type VersionEntry } from '../wal/snapshot.js';

export interface BackupOptions {
  host: string;
  out: string;
  authToken?: string;
  /** A line per member fetched. */
  say?: (line: string) => void;
  /** Progress: a member's backup starts (`total`: the versions it holds), then each version read. */
  progress?: { member(id: string, total: number): void; version(): void; done(): void };
}

export interface BackupSummary {
  members: string[];
  links: number;
  versions: number;
  bytes: number;
  seconds: number;
  /** Versions two members held in different states; the later epoch's was kept. */
  conflicts: number;
}

interface Held {
  versions: Map<Version, VersionEntry>;
  /** The oldest-kept mark of every member holding the link; null once one holds its whole history. */
  trimmed: Micros | null | undefined;
}

async function getJson<T>(url: string, headers: Record<string, string>): Promise<T> {
  const r = await request(url, { headers });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new KryptonError('PEER_UNAVAILABLE', `GET ${url} answered ${r.statusCode}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** The available members' base URLs, as the group `host` belongs to lists them; `all`: fails unless every member is available. */
export async function members(host: string, headers: Record<string, string>, all = false): Promise<{ id: string; base: string }[]> {
  const g = await getJson<{ nodes?: Record<string, { id?: string; groupReference?: string; status?: string }> }>(
    `${host}/core/node-groups/default`,
    headers,
  );
  const out: { id: string; base: string }[] = [];
  for (const [id, n] of Object.entries(g.nodes ?? {})) {
    if (all && n.status !== 'AVAILABLE')
      throw new KryptonError('QUORUM_UNAVAILABLE', `member ${id} is ${n.status}: every member must be available`);
    if (n.status !== 'AVAILABLE' || typeof n.groupReference !== 'string') continue;
    out.push({ id, base: new URL(n.groupReference).origin });
  }
  if (out.length === 0) throw new KryptonError('QUORUM_UNAVAILABLE', `${host} lists no available member`);
  return out.sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** Adds one member's entry; `seen` collects the links the member sent versions of, `marks` its trimmed marks. */
function merge(all: Map<Link, Held>, e: SnapshotEntry, seen: Set<Link>, marks: Map<Link, Micros>, counts: { conflicts: number }): void {
  if (e.kind === 'trimmed') {
    marks.set(e.link, e.micros);
    return;
  }
  if (e.kind !== 'version') return;
  seen.add(e.link);
  let held = all.get(e.link);
  if (held === undefined) {
    held = { versions: new Map(), trimmed: undefined };
    all.set(e.link, held);
  }
  const had = held.versions.get(e.version);
  if (had === undefined) held.versions.set(e.version, e);
  else if (JSON.stringify(had.state) !== JSON.stringify(e.state)) {
    counts.conflicts++;
    if ((e.state.documentEpoch ?? 0) > (had.state.documentEpoch ?? 0)) held.versions.set(e.version, e);
  }
}

/**
 * The merged history of a link begins where the fullest member's does: a member that holds the
 * link without a mark holds its whole history (no mark in the merge); otherwise the oldest mark.
 */
function mergeMarks(all: Map<Link, Held>, seen: Set<Link>, marks: Map<Link, Micros>): void {
  for (const link of seen) {
    const held = all.get(link)!;
    const mark = marks.get(link);
    if (held.trimmed === null) continue;
    held.trimmed = mark === undefined ? null : Math.min(held.trimmed ?? mark, mark);
  }
}

export async function backupGroup(opts: BackupOptions): Promise<BackupSummary> {
  const started = performance.now();
  const host = opts.host.replace(/\/$/, '');
  const headers: Record<string, string> = opts.authToken ? { 'x-xenon-auth-token': opts.authToken } : {};
  const out = path.resolve(opts.out);
  const outDir = path.dirname(out);
  await fs.mkdir(outDir, { recursive: true });
  const all = new Map<Link, Held>();
  const counts = { conflicts: 0 };
  let clockMicros = 0;
  let newestTimeMicros = 0;
  const listed = await members(host, headers);
  for (const m of listed) {
    const part = `${path.basename(out)}.${m.id.replace(/[^A-Za-z0-9_-]/g, '_')}.part`;
    const r = await request(`${m.base}/core/management/backup`, { headers });
    if (r.statusCode !== 200)
      throw new KryptonError(
        'PEER_UNAVAILABLE',
        `${m.base} answered ${r.statusCode} for its backup: ${(await r.body.text()).slice(0, 300)}`,
      );
    await pipeline(r.body, createWriteStream(path.join(outDir, part)));
    opts.progress?.member(m.id, Number(r.headers['x-krypton-backup-versions'] ?? 0));
    const marks = new Map<Link, Micros>();
    const seen = new Set<Link>();
    try {
      const header = await readSnapshot(diskDirectory(outDir), part, (e) => {
        merge(all, e, seen, marks, counts);
        if (e.kind === 'version') opts.progress?.version();
      });
      clockMicros = Math.max(clockMicros, header.clockMicros);
      newestTimeMicros = Math.max(newestTimeMicros, header.newestTimeMicros);
    } finally {
      await fs.rm(path.join(outDir, part), { force: true });
      opts.progress?.done();
    }
    mergeMarks(all, seen, marks);
    opts.say?.(`  ${m.id} (${m.base}): ${all.size} links so far`);
  }
  const links = [...all.keys()].sort();
  let versions = 0;
  function* entries(): Generator<SnapshotEntry> {
    for (const link of links) {
      const t = all.get(link)!.trimmed;
      if (typeof t === 'number') yield { kind: 'trimmed', link, micros: t };
    }
    for (const link of links) {
      const held = all.get(link)!.versions;
      for (const v of [...held.keys()].sort((a, b) => a - b)) {
        versions++;
        yield held.get(v)!;
      }
    }
  }
  const written = await writeSnapshot(
    diskDirectory(outDir),
    { lastSeq: 0, clockMicros, newestTimeMicros },
    entries(),
    undefined,
    path.basename(out),
  );
  const seconds = (performance.now() - started) / 1000;
  return { members: listed.map((m) => m.id), links: links.length, versions, bytes: written.bytes, seconds, conflicts: counts.conflicts };
}

export interface RestoreSummary {
  hostDir: string;
  links: number;
  versions: number;
}

/** Checks a backup file through and makes it the snapshot an empty host folder starts from. */
export async function restoreBackup(file: string, sandbox: string, port: number): Promise<RestoreSummary> {
  const src = path.resolve(file);
  const links = new Set<Link>();
  let versions = 0;
  const header = await readSnapshot(diskDirectory(path.dirname(src)), path.basename(src), (e) => {
    if (e.kind !== 'version') return;
    versions++;
    links.add(e.link);
  });
  if (header.lastSeq !== 0) {
    throw new KryptonError(
      'INVALID_ARGUMENT',
      `${file} is a host's snapshot (it covers its log up to seq ${header.lastSeq}), not a backup: take one with krypton backup`,
    );
  }
  const hostDir = path.join(path.resolve(sandbox), String(port));
  const logDir = diskDirectory(path.join(hostDir, 'log'));
  const snapDir = diskDirectory(path.join(hostDir, 'snapshots'));
  if ((await listSegments(logDir)).length > 0 || (await listSnapshots(snapDir)).length > 0) {
    throw new KryptonError('INVALID_SETUP', `${hostDir} already holds a log or snapshots: restore only into an empty host folder`);
  }
  const name = snapshotName(0);
  const tmp = path.join(hostDir, 'snapshots', `${name}.tmp`);
  await fs.copyFile(src, tmp);
  const fh = await fs.open(tmp, 'r');
  await fh.datasync();
  await fh.close();
  await fs.rename(tmp, path.join(hostDir, 'snapshots', name));
  await snapDir.syncDirectory();
  return { hostDir, links: links.size, versions };
}
