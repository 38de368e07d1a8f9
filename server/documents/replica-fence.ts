/**
 * A replica's answer to one shipped record, before it appends it (DocumentStore.applyReplicated):
 * taken, a copy it already holds (acknowledged again, so retries are harmless), or refused for an
 * epoch below the one it holds or promised (STALE_EPOCH, lib/synch/promise.ts decideRecord).
 */

import type { NewLogRecord } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { decideRecord, fenceOf } from '../../lib/synch/promise.js';
import type { DocumentIndex } from '../../index/views.js';
import type { ReplicaPromisesPort, ReplicaResult } from './ports.js';

export const OK: ReplicaResult = { ok: true };

/** A replica's refusal of a record whose append failed. */
export function failed(e: unknown): ReplicaResult {
  return { ok: false, code: e instanceof KryptonError ? e.code : 'LOG_FAILED', message: (e as Error).message };
}

/** Why a replica takes no new record for `rec` (a copy it holds: ok; below the held or promised epoch: STALE_EPOCH), if it does not. */
export function fenced(index: DocumentIndex, promises: ReplicaPromisesPort | undefined, rec: NewLogRecord): ReplicaResult | undefined {
  const local = index.latest(rec.link);
  const held = local ? { epoch: local.documentEpoch ?? 0, version: local.documentVersion } : undefined;
  const promised = promises?.get(rec.link);
  const decision = decideRecord(held, promised, rec);
  if (decision === 'refuse')
    return { ok: false, code: 'STALE_EPOCH', message: `Expected epoch: ${fenceOf(held?.epoch, promised)}, in update: ${rec.epoch}` };
  if (decision === 'duplicate') return OK;
  return undefined;
}
