/**
 * Backups over HTTP. `GET /core/management/backup` streams this host's backup
 * (documents/backup.ts) in the snapshot format, which `krypton backup` fetches from every member
 * and merges. Xenon's `BackupRequest` (PATCH /core/management) with a `file:` destination writes the
 * same backup to that file on the host's machine; what differs from Xenon is in
 * docs/xenon-compatibility.md (one file in Krypton's own format, not a zip of Lucene files; no
 * http destination; restore is `krypton restore` into a stopped host's sandbox, not a request).
 */

import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type Router from '@koa/router';
import type { JsonObject } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { diskDirectory } from '../../wal/file.js';
import { snapshotChunks, writeSnapshot } from '../../wal/snapshot.js';
import { backupContent } from '../documents/backup.js';
import { notAllowed } from '../net/http-errors.js';
import type { UtilityDeps } from './utility.js';

export const BACKUP_PATH = '/core/management/backup';

export function backupRoutes(router: Router, d: UtilityDeps): void {
  router.get(BACKUP_PATH, (ctx) => {
    const b = backupContent(d.index, d.registry, d.nowMicros());
    ctx.set('content-type', 'application/octet-stream');
    ctx.set('x-krypton-backup-versions', String(b.versions));
    ctx.body = Readable.from(snapshotChunks(b.header, b.entries));
  });
  router.all(BACKUP_PATH, (ctx) => notAllowed(ctx.method));
}

/** PATCH /core/management with a BackupRequest, RestoreRequest or AutoBackupConfiguration (`name` is the kind's last part). */
export async function backupRequest(d: UtilityDeps, name: string, body: JsonObject): Promise<JsonObject> {
  if (name === 'RestoreRequest') {
    throw new KryptonError(
      'INVALID_BODY',
      'RestoreRequest is not supported on a running host: stop it, then `krypton restore FILE --sandbox DIR` puts a backup in its sandbox',
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
