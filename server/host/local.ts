/**
 * What one host has before it talks to anyone: its TLS material, its id (kept in the sandbox),
 * its logger, its services, and its durable state read back: the newest snapshot, then the
 * write-ahead log after it, replayed into the index (and the request ids of recent writes into
 * the dedup window; checkpoints.ts), then the replica
 * promises, then expired documents dropped. Nothing here listens (the host opens its ports in
 * the `beforeReplay` step) or opens a connection; host/cluster.ts builds the rest on top.
 */

import { randomUUID } from 'node:crypto';
import path from 'node:path';
import fs from 'fs-extra';
import type { Logger } from 'pino';
import type { JsonObject } from '../../lib/document.js';
import type { DedupWindow } from '../../lib/dedup.js';
import { KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';
import { ServiceRegistry, type ServiceDefinition, type StatelessServiceDefinition } from '../../lib/service.js';
import { serviceProperties } from '../../lib/service-fingerprint.js';
import { BUILTIN_SERVICES } from '../../lib/services/builtin.js';
import { DocumentIndex } from '../../index/views.js';
import { diskDirectory } from '../../wal/file.js';
import type { WriteAheadLog } from '../../wal/log.js';
import type { Clock } from '../base/clock.js';
import type { Config } from '../base/config.js';
import { createLogger, LogRing } from '../base/process-log.js';
import { loadTls, type TlsMaterial } from '../net/tls.js';
import { PeerAuth } from '../auth/peer-auth.js';
import { PromiseStore } from '../synch/promises.js';
import { UnconfirmedStore } from '../documents/unconfirmed.js';
import { openIndexAndLog, type Checkpointer } from './checkpoints.js';

const STATE_FILE = 'serviceHostState.json';

export interface LocalState {
  id: string;
  /** The sandbox folder of this host. */
  dir: string;
  tls: TlsMaterial | undefined;
  ring: LogRing;
  logger: Logger;
  peerAuth: PeerAuth;
  registry: ServiceRegistry;
  index: DocumentIndex;
  wal: WriteAheadLog;
  /** Snapshots and log compaction, started by the host once it serves. */
  checkpoints: Checkpointer;
  promises: PromiseStore;
  /** Request ids of recent writes, so a retry after a restart is still recognized. */
  dedup: DedupWindow;
  /** The dedup window's "outcome unknown" marks on disk, already applied to it. */
  unconfirmed: UnconfirmedStore;
  /** The user's services without documents (custom GET and POST handlers). */
  stateless: StatelessServiceDefinition[];
  /** Fingerprints of the user's services, which every member of the group must share. */
  serviceProperties: Record<string, string>;
}

/**
 * Reads everything the sandbox `dir` holds; a bad key or certificate fails here, before any port
 * opens. `beforeReplay` runs once TLS and the logger are ready and before the log is replayed:
 * the host opens its ports there, so probes see it recovering (a bad log then closes them).
 */
export async function openLocalState(
  config: Config,
  dir: string,
  clock: Clock,
  services: readonly (ServiceDefinition<JsonObject> | StatelessServiceDefinition)[],
  beforeReplay?: (tls: TlsMaterial | undefined, logger: Logger) => Promise<void>,
): Promise<LocalState> {
  const tls = await loadTls(config, clock.nowMicros() / 1000);
  const id = await loadOrCreateId(dir, config.id);
  const ring = new LogRing();
  const logger = createLogger(
    config.logLevel,
    ring,
    { host: id, port: config.port >= 0 ? config.port : config.securePort },
    config.logFormat,
  );
  for (const w of tls?.warnings ?? []) logger.warn(w);
  const peerAuth = await PeerAuth.fromConfig(config);

  const registry = new ServiceRegistry();
  for (const s of BUILTIN_SERVICES) registry.add(s);
  const stateless: StatelessServiceDefinition[] = [];
  for (const s of services) {
    if ('stateless' in s) stateless.push(s);
    else registry.add(s);
  }

  const fresh = () =>
    new DocumentIndex({
      retentionFor: (link) => Math.max(limits.versionRetentionFloor, registry.retentionFor(link) ?? limits.versionRetentionDefault),
    });
  await beforeReplay?.(tls, logger);
  const { index, dedup, wal, checkpoints, loaded } = await openIndexAndLog(config, dir, fresh, clock, logger);
  // After the replay and before expired documents leave the index: a promise the log has since
  // overtaken (held epoch at or past it) is spent, and the expired copy may be what proves it.
  const promises = await PromiseStore.open({
    dir: diskDirectory(path.join(dir, 'promises')),
    heldEpoch: (link) => {
      const doc = index.latest(link);
      return doc ? (doc.documentEpoch ?? 0) : undefined;
    },
    logger,
    repair: config.repairLog,
  });
  // After the replay, which noted those writes as if they had succeeded.
  const unconfirmed = await UnconfirmedStore.open(diskDirectory(path.join(dir, 'unconfirmed')), logger, clock.nowMicros());
  for (const m of unconfirmed.loaded()) dedup.unconfirmed(m.link, m.requestId);
  index.expire(clock.nowMicros());
  logger.info(
    {
      records: wal.lastSeq,
      ms: Math.round(loaded.replayMs),
      snapshot: loaded.snapshot ?? null,
      snapshotMs: Math.round(loaded.snapshotMs),
      replayedFromSeq: loaded.fromSeq,
      ...index.stats(),
    },
    'log replayed into the index',
  );
  return {
    id,
    dir,
    tls,
    ring,
    logger,
    peerAuth,
    registry,
    index,
    wal,
    checkpoints,
    promises,
    dedup,
    unconfirmed,
    stateless,
    serviceProperties: serviceProperties(services),
  };
}

async function loadOrCreateId(dir: string, requested: string | undefined): Promise<string> {
  const file = path.join(dir, STATE_FILE);
  let saved: string | undefined;
  if (await fs.pathExists(file)) {
    try {
      const parsed = (await fs.readJson(file)) as { id?: unknown };
      if (typeof parsed.id === 'string') saved = parsed.id;
    } catch (e) {
      throw new KryptonError('INVALID_SETUP', `${file} is not valid JSON (${(e as Error).message}); fix or remove it`);
    }
  }
  const id = requested ?? saved ?? randomUUID();
  if (id !== saved) {
    // Write then rename, so a crash never leaves a half-written id file.
    const tmp = `${file}.tmp`;
    await fs.writeJson(tmp, { id });
    const fh = await fs.promises.open(tmp, 'r');
    await fh.datasync();
    await fh.close();
    await fs.rename(tmp, file);
  }
  return id;
}
