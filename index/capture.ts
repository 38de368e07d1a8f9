/**
 * A consistent copy of the index for a snapshot, and the way back. `captureIndex` copies,
 * synchronously (so no write lands halfway), the trimmed marks and every retained version in the
 * order it was applied; the states themselves are shared, not copied, since nothing mutates a
 * state once applied. Applying the copy to an empty index, trimmed marks first, gives the same
 * versions, digests and TIME_SNAPSHOT answers (test/index/capture.test.ts checks it over random
 * histories). The file format is the log layer's (wal/snapshot.ts); this module knows the index.
 */

import type { LogRecord, ServiceDocument } from '../lib/document.js';
import type { Link, Micros, Seq, Version } from '../lib/ids.js';
import type { VersionStore } from './store.js';

export interface CapturedVersion {
  link: Link;
  version: Version;
  timeMicros: Micros;
  requestId?: string;
  state: ServiceDocument;
}

export interface IndexCapture {
  newestTimeMicros: Micros;
  trimmed: [Link, Micros][];
  /** How many versions were copied. */
  readonly count: number;
  /** The copied versions, in apply order. */
  versions(): Generator<CapturedVersion>;
}

export function captureIndex(store: VersionStore): IndexCapture {
  const links: Link[] = [];
  const versions: Version[] = [];
  const times: Micros[] = [];
  const ids: (string | undefined)[] = [];
  const states: ServiceDocument[] = [];
  store.forEachVersion((vid) => {
    links.push(store.linkAt(vid));
    versions.push(store.versionAt(vid));
    times.push(store.timeAt(vid));
    ids.push(store.requestIdAt(vid));
    states.push(store.docAt(vid)!);
  });
  return {
    newestTimeMicros: store.newestTimeMicros(),
    trimmed: store.trimmedEntries(),
    count: links.length,
    *versions() {
      for (let i = 0; i < links.length; i++) {
        const v: CapturedVersion = { link: links[i]!, version: versions[i]!, timeMicros: times[i]!, state: states[i]! };
        const id = ids[i];
        if (id !== undefined) v.requestId = id;
        yield v;
      }
    },
  };
}

/**
 * The log record that made a captured version (seq `seq`), as a replay applies it: the action
 * and epoch are the state's own. Snapshot loads and the log tools' snapshot-based replay use it.
 */
export function recordOf(v: CapturedVersion, seq: Seq = 0): LogRecord {
  const r: LogRecord = {
    seq,
    link: v.link,
    action: v.state.documentUpdateAction,
    version: v.version,
    epoch: v.state.documentEpoch ?? 0,
    timeMicros: v.timeMicros,
    state: v.state,
  };
  if (v.requestId !== undefined) r.requestId = v.requestId;
  return r;
}

/** Applies one captured version to `store` as the log record that made it would be. */
export function restoreVersion(store: VersionStore, v: CapturedVersion): void {
  store.apply(recordOf(v));
}
