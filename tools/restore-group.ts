/**
 * `krypton restore FILE --host URL`: a backup (tools/backup.ts) restored into a running group that
 * does not hold its documents. The file is checked through first (every frame's checksum and the
 * end frame's counts, wal/snapshot.ts); then its versions go, in pages of log records in link and
 * version order, to every member (`POST /core/management/restore`; all must be available), each of
 * which keeps the links it holds a copy of (server/documents/restore.ts). Every page is first
 * checked on every member (`?dryRun=true`): a document the group already holds stops the restore
 * before anything is written, with the member's reason naming it. Then each page is applied on
 * every member before the next is sent. Pages are idempotent on the members, so a restore stopped
 * by a failure midway (a member lost) can be run again from the start, before clients use the
 * group: the first request for a restored document takes it over under the group's own epoch, a
 * version past the backup's, and a restore then refuses that document.
 */

import path from 'node:path';
import { request } from 'undici';
import type { NewLogRecord } from '../lib/document.js';
import { KryptonError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { recordOf } from '../index/capture.js';
import { diskDirectory } from '../wal/file.js';
import { readSnapshot } from '../wal/snapshot.js';
import { members } from './backup.js';

export interface GroupRestoreOptions {
  file: string;
  host: string;
  authToken?: string;
  say?: (line: string) => void;
  /** Progress: the versions to restore, then each page done. */
  progress?: { start(total: number): void; page(versions: number): void; done(): void };
}

export interface GroupRestoreSummary {
  members: string[];
  links: number;
  versions: number;
  /** Versions appended, summed over the members (each holds its share of copies). */
  applied: number;
  /** Versions a member held already alike (a restore run again). */
  held: number;
  seconds: number;
}

/** A page's JSON body stays this far under the endpoint's body limit. */
const PAGE_BYTES = Math.floor(limits.bodyBytesMax * 0.8);

/** The backup's versions as log records, checked through; refuses a host's own snapshot. */
async function recordsOf(file: string): Promise<NewLogRecord[]> {
  const src = path.resolve(file);
  const out: NewLogRecord[] = [];
  const header = await readSnapshot(diskDirectory(path.dirname(src)), path.basename(src), (e) => {
    if (e.kind !== 'version') return;
    const { seq: _seq, ...rec } = recordOf(e);
    out.push(rec);
  });
  if (header.lastSeq !== 0)
    throw new KryptonError(
      'INVALID_ARGUMENT',
      `${file} is a host's snapshot (seq ${header.lastSeq}), not a backup: take one with krypton backup`,
    );
  return out;
}

/**
 * Pages of at most restorePageRecordsMax records and PAGE_BYTES of JSON each, each naming the
 * backup's latest version of its links (`tops`): a member holding one past it refuses the page.
 */
function* pages(records: readonly NewLogRecord[]): Generator<{ body: string; count: number }> {
  const top = new Map<string, number>();
  for (const r of records) top.set(r.link, Math.max(r.version, top.get(r.link) ?? 0));
  let page: string[] = [];
  let links = new Set<string>();
  let bytes = 0;
  const body = () => `{"records":[${page.join(',')}],"tops":${JSON.stringify(Object.fromEntries([...links].map((l) => [l, top.get(l)])))}}`;
  for (const r of records) {
    const text = JSON.stringify(r);
    if (text.length > PAGE_BYTES)
      throw new KryptonError('BODY_TOO_LARGE', `${r.link} version ${r.version} is too large for a restore page`);
    if (page.length > 0 && (page.length >= limits.restorePageRecordsMax || bytes + text.length > PAGE_BYTES)) {
      yield { body: body(), count: page.length };
      page = [];
      links = new Set();
      bytes = 0;
    }
    page.push(text);
    links.add(r.link);
    bytes += text.length + r.link.length + 16;
  }
  if (page.length > 0) yield { body: body(), count: page.length };
}

export async function restoreToGroup(opts: GroupRestoreOptions): Promise<GroupRestoreSummary> {
  const started = performance.now();
  const host = opts.host.replace(/\/$/, '');
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(opts.authToken ? { 'x-xenon-auth-token': opts.authToken } : {}),
  };
  const records = await recordsOf(opts.file);
  // A member left out would lack its copies until synchronization found them: all or nothing.
  const listed = await members(host, headers, true);
  opts.say?.(`restoring ${records.length} versions into ${listed.map((m) => m.id).join(', ')}`);
  opts.progress?.start(records.length);
  let applied = 0;
  let held = 0;
  const send = async (m: { id: string; base: string }, body: string, dryRun: boolean) => {
    const r = await request(`${m.base}/core/management/restore${dryRun ? '?dryRun=true' : ''}`, { method: 'POST', headers, body });
    const text = await r.body.text();
    if (r.statusCode !== 200) {
      let message = text.slice(0, 500);
      try {
        message = String((JSON.parse(text) as { message?: unknown }).message ?? message);
      } catch {
        // not JSON: the text as it came
      }
      throw new KryptonError('PEER_UNAVAILABLE', `${m.id} (${m.base}) refused a restore page with ${r.statusCode}: ${message}`);
    }
    return JSON.parse(text) as { applied: number; held: number };
  };
  for (const p of pages(records)) for (const m of listed) await send(m, p.body, true);
  try {
    for (const p of pages(records)) {
      for (const m of listed) {
        const a = await send(m, p.body, false);
        applied += a.applied;
        held += a.held;
      }
      opts.progress?.page(p.count);
    }
  } finally {
    opts.progress?.done();
  }
  const links = new Set(records.map((r) => r.link)).size;
  const seconds = (performance.now() - started) / 1000;
  return { members: listed.map((m) => m.id), links, versions: records.length, applied, held, seconds };
}
