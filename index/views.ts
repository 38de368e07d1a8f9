/**
 * DocumentIndex: the in-memory views built from log records (docs/architecture.md): the latest
 * version per link, the retained versions per link, the children of each factory, expiration, and
 * query execution. It is fed by `apply` in log order, on replay and live alike, and holds the
 * state objects it is given without copying them: callers must not mutate a state after applying
 * it (its postings are found again from it when the version leaves the index).
 *
 * Records not newer than the latest held version are not errors: a record repeating a held
 * version replaces it (a re-delivery after an owner change carries the state that won), and an
 * older version the history lacks is inserted in version order (then trimmed by retention like
 * any other). A record for a link whose latest version expired before the record's time, or one
 * with `resetHistory`, starts the link's history afresh.
 */

import type { LogRecord, ServiceDocument } from '../lib/document.js';
import type { Link, Micros, Version } from '../lib/ids.js';
import type { QueryPlan } from '../lib/query/spec.js';
import type { VersionMark } from '../lib/synch/history.js';
import { captureIndex, restoreVersion, type CapturedVersion, type IndexCapture } from './capture.js';
import { runQuery, type QueryHit, type QueryStats } from './query.js';
import { VersionStore } from './store.js';

export type { QueryHit, QueryStats } from './query.js';
export type { CapturedVersion, IndexCapture } from './capture.js';
export { recordOf } from './capture.js';

export interface DocumentIndexOptions {
  /** Versions kept per link (Xenon: 1000 by default, 100 for /core/examples children); at least 1. */
  retentionFor(link: Link): number;
}

export class DocumentIndex {
  private readonly store: VersionStore;
  private readonly last: QueryStats = { examined: 0, scanned: false };

  constructor(opts: DocumentIndexOptions) {
    this.store = new VersionStore((link) => opts.retentionFor(link));
  }

  /** Adds version `r.version` of `r.link` with state `r.state`, dropping what retention no longer keeps. */
  apply(r: LogRecord): void {
    this.store.apply(r);
  }

  /** A consistent copy for a snapshot (capture.ts), taken synchronously. */
  capture(): IndexCapture {
    return captureIndex(this.store);
  }

  /**
   * Loads a snapshot into an empty index: its trimmed marks first, then its versions in order,
   * then its newest update time.
   */
  restoreTrimmed(link: Link, micros: Micros): void {
    this.store.restoreTrimmed(link, micros);
  }

  restoreVersion(v: CapturedVersion): void {
    restoreVersion(this.store, v);
  }

  restoreNewestTime(micros: Micros): void {
    this.store.restoreNewestTime(micros);
  }

  /** The latest version, tombstones included (check `documentUpdateAction === 'DELETE'`). */
  latest(link: Link): ServiceDocument | undefined {
    return this.store.latest(link);
  }

  version(link: Link, version: Version): ServiceDocument | undefined {
    return this.store.version(link, version);
  }

  /** The request id of the write that made `version` (log format v2), if retained and it had one. */
  requestId(link: Link, version: Version): string | undefined {
    return this.store.requestId(link, version);
  }

  /** The marks (version, epoch, update time) of every retained version, oldest first. */
  marks(link: Link): VersionMark[] {
    return this.store.marks(link);
  }

  /** How many versions of `link` the index holds. */
  historyLength(link: Link): number {
    return this.store.historyLength(link);
  }

  /** A digest of the link's retained history: equal on two hosts when they hold the same versions. */
  digest(link: Link): number {
    return this.store.digest(link);
  }

  /** How many versions of `link` the index retains. */
  retention(link: Link): number {
    return this.store.keepFor(link);
  }

  /** Retained versions, oldest first. */
  versions(link: Link): ServiceDocument[] {
    return this.store.versions(link);
  }

  /**
   * Direct children `<factory>/<id>` whose latest version is neither deleted nor expired at
   * `nowMicros`, in the order the links first appeared (Xenon leaves listing order unspecified).
   */
  children(factoryLink: Link, nowMicros: Micros): Link[] {
    return this.store.children(factoryLink, nowMicros);
  }

  /** Every child link the index holds under a factory, deleted and expired ones included (synchronization needs them all). */
  linksUnder(factoryLink: Link): Link[] {
    return this.store.linksUnder(factoryLink);
  }

  /**
   * Changes whenever a link appears in or leaves the index: what a caller derived from
   * `linksUnder` (a sorted copy, say) stays right until it changes.
   */
  linkSetVersion(): number {
    return this.store.linkSetVersion();
  }

  /** Purges every version of links whose latest version expired before `nowMicros`; returns those links. */
  expire(nowMicros: Micros): Link[] {
    return this.store.expire(nowMicros);
  }

  /**
   * Every match of `plan`, in result order (see query.ts); the caller counts, limits and pages.
   * `asOfMicros` (or the plan's TIME_SNAPSHOT) answers as the index stood at that time.
   */
  query(plan: QueryPlan, nowMicros: Micros, asOfMicros?: Micros): QueryHit[] {
    return runQuery(this.store, plan, nowMicros, this.last, asOfMicros);
  }

  /**
   * A time no version the index holds was updated after: a query page "as of" it shows at
   * least everything the index holds now.
   */
  newestTimeMicros(): Micros {
    return this.store.newestTimeMicros();
  }

  /** What the most recent `query` examined. */
  lastQueryStats(): Readonly<QueryStats> {
    return { ...this.last };
  }

  stats(): { links: number; versions: number } {
    return { links: this.store.linkCount(), versions: this.store.versionCount() };
  }

  /** Posting-list totals (live entries), for tests and the benchmark. */
  postingStats(): { postings: number; entries: number; fields: number } {
    return this.store.postings.stats();
  }

  /** Live versions posted under (propertyName, value): 0 once they all left the index. */
  postingSize(propertyName: string, value: string): number {
    return this.store.postings.get(propertyName, value)?.live ?? 0;
  }
}
