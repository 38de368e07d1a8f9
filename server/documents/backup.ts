/**
 * What a host's backup holds: every retained version (tombstones included) of the documents of
 * its replicated services, with the trimmed marks that say where their kept history begins, in
 * the snapshot format (wal/snapshot.ts) under seq 0, since a backup covers no log. Host-local
 * documents (local query tasks, say) stay out: they are not the group's. The index is copied in
 * one synchronous step, so the backup is one consistent state of this host while it keeps serving.
 * `krypton backup` merges the backups of every member (tools/backup.ts); `krypton restore` puts
 * the result in a sandbox, where the host loads it as a snapshot.
 */

import type { ServiceRegistry } from '../../lib/service.js';
import type { Link, Micros } from '../../lib/ids.js';
import type { DocumentIndex } from '../../index/views.js';
import type { SnapshotEntry, SnapshotHeader } from '../../wal/snapshot.js';

export interface BackupContent {
  header: Omit<SnapshotHeader, 'format'>;
  entries: Iterable<SnapshotEntry>;
  versions: number;
}

export function backupContent(index: DocumentIndex, registry: ServiceRegistry, nowMicros: Micros): BackupContent {
  const replicated = new Map<Link, boolean>();
  const wanted = (link: Link): boolean => {
    let yes = replicated.get(link);
    if (yes === undefined) {
      yes = registry.forChild(link)?.has('REPLICATION') === true;
      replicated.set(link, yes);
    }
    return yes;
  };
  const captured = index.capture();
  function* entries(): Generator<SnapshotEntry> {
    for (const [link, micros] of captured.trimmed) if (wanted(link)) yield { kind: 'trimmed', link, micros };
    for (const v of captured.versions()) if (wanted(v.link)) yield { kind: 'version', ...v };
  }
  return {
    header: { lastSeq: 0, clockMicros: nowMicros, newestTimeMicros: captured.newestTimeMicros },
    entries: entries(),
    versions: captured.count,
  };
}
