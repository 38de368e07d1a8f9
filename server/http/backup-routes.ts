/**
 * Backups over HTTP. `GET /core/management/backup` streams this host's backup
 * (documents/backup.ts) in the snapshot format, which `krypton backup` fetches from every member
 * and merges. Xenon's `BackupRequest` (PATCH /core/management) with a `file:` destination writes the
 * same backup to that file on the host's machine; what differs from Xenon is in
 * docs/xenon-compatibility.md (one file in Krypton's own format, not a zip of Lucene files; no
 * http destination; restore is `krypton restore`, into a stopped host's sandbox or, through
 * `POST /core/management/restore` on every member, into a running group that lacks the backup's
 * documents: documents/restore.ts; not a RestoreRequest).
 */

import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type Router from '@koa/router';
import type { JsonObject, NewLogRecord } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Link } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import { diskDirectory } from '../../wal/file.js';
import { snapshotChunks, writeSnapshot } from '../../wal/snapshot.js';
import { backupContent } from '../documents/backup.js';
import { restorePage } from '../documents/restore.js';
import { readJsonBody } from '../net/body.js';
import { notAllowed } from '../net/http-errors.js';
import { parseHistoryRecord } from '../synch/history.js';
import type { UtilityDeps } from './utility.js';

export const BACKUP_PATH = '/core/management/backup';
export const RESTORE_PATH = '/core/management/restore';

/**
 * A restore page: its records, each checked as a history record of its factory (synch/history.ts),
 * and `tops`, the backup's latest version of each link the page holds.
 */
function parseRestorePage(d: UtilityDeps, raw: unknown): { records: NewLogRecord[]; tops: Map<Link, number> } {
  const body = raw as { records?: unknown; tops?: unknown } | undefined;
  const records = body?.records;
  const tops = body?.tops;
  if (!tops || typeof tops !== 'object' || Array.isArray(tops))
    throw new KryptonError('INVALID_BODY', 'tops must map each link to its latest version');
  if (!Array.isArray(records) || records.length === 0 || records.length > limits.restorePageRecordsMax)
    throw new KryptonError('INVALID_BODY', `records must be an array of 1 to ${limits.restorePageRecordsMax} log records`);
  const parsed = records.map((r) => {
    const link = (r as { link?: unknown } | null)?.link;
    const svc = typeof link === 'string' ? d.registry.forChild(link) : undefined;
    if (!svc) throw new KryptonError('INVALID_BODY', `record link ${JSON.stringify(link)} is not a document of a service here`);
    return parseHistoryRecord(r, d.registry, svc.def.factoryLink);
  });
  const top = new Map<Link, number>();
  for (const r of parsed) {
    const v = (tops as Record<string, unknown>)[r.link];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < r.version)
      throw new KryptonError('INVALID_BODY', `tops must give ${r.link} a version at least its records' ${r.version}`);
    top.set(r.link, v);
  }
  return { records: parsed, tops: top };
}

export function backupRoutes(router: Router, d: UtilityDeps): void {
  router.get(BACKUP_PATH, (ctx) => {
    const b = backupContent(d.index, d.registry, d.nowMicros());
    ctx.set('content-type', 'application/octet-stream');
    ctx.set('x-krypton-backup-versions', String(b.versions));
    ctx.body = Readable.from(snapshotChunks(b.header, b.entries));
  });
  router.all(BACKUP_PATH, (ctx) => notAllowed(ctx.method));
  router.post(RESTORE_PATH, async (ctx) => {
    const dry = ctx.query.dryRun;
    if (dry !== undefined && dry !== 'true' && dry !== 'false') throw new KryptonError('INVALID_ARGUMENT', 'dryRun must be true or false');
    const holdsCopy = (selectorLink: string, link: Link) =>
      !d.selectors.spec(selectorLink)?.replicationFactor ||
      d.selectors.select(selectorLink, link).selectedNodes.some((n) => n.id === d.hostId);
    ctx.body = await restorePage({ ...d, holdsCopy }, parseRestorePage(d, await readJsonBody(ctx.req)), dry === 'true');
  });
  router.all(RESTORE_PATH, (ctx) => notAllowed(ctx.method));
}

/** PATCH /core/management with a BackupRequest, RestoreRequest or AutoBackupConfiguration (`name` is the kind's last part). */
export async function backupRequest(d: UtilityDeps, name: string, body: JsonObject): Promise<JsonObject> {
  if (name === 'RestoreRequest') {
    throw new KryptonError(
      'INVALID_BODY',
      'RestoreRequest is not supported: `krypton restore FILE --host URL` restores a backup into a running group, `--sandbox DIR` into a stopped host',
    );
  }
  if (name === 'AutoBackupConfiguration') {
    throw new KryptonError(
      'INVALID_BODY',
      'AutoBackupConfiguration is not supported: hosts write snapshots by themselves (--snapshotEveryRecords)',
    );
  }
  const { destination, backupType } = body;
  if (backupType !== undefined && backupType !== null) {
    throw new KryptonError(
      'INVALID_BODY',
      `backupType ${JSON.stringify(backupType)} is not supported: a Krypton backup is one file in its snapshot format`,
    );
  }
  if (typeof destination !== 'string' || !destination.startsWith('file:')) {
    throw new KryptonError(
      'INVALID_BODY',
      'destination must be a file: URI on this host (http destinations are not supported; use `krypton backup`)',
    );
  }
  let file: string;
  try {
    file = fileURLToPath(destination);
  } catch (e) {
    throw new KryptonError('INVALID_BODY', `destination ${destination} is not a file URI: ${(e as Error).message}`);
  }
  const b = backupContent(d.index, d.registry, d.nowMicros());
  let written: { bytes: number; entries: number };
  try {
    written = await writeSnapshot(diskDirectory(path.dirname(file)), b.header, b.entries, undefined, path.basename(file));
  } catch (e) {
    if (e instanceof KryptonError) throw e;
    throw new KryptonError('INVALID_ARGUMENT', `cannot write the backup to ${file}: ${(e as Error).message}`);
  }
  return { destination, bytes: written.bytes, entries: written.entries };
}
