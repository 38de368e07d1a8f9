/**
 * HistoryTally: for each link, which versions the index would hold after applying a run of log
 * records, and whether its latest version is a tombstone or expires — without keeping any state.
 * `replay` (counts per factory) and `stats` use it because it keeps up with decoding: feeding a
 * DocumentIndex costs several times the decode (field postings, a million states held), and a
 * count needs none of that. `replay --link` and `export` need states and use DocumentIndex itself.
 *
 * The rules are VersionStore.apply's (index/store.ts), restated over version numbers:
 * - a record with `resetHistory`, or one made after the link's latest version expired, drops the
 *   link's history first;
 * - a version newer than the latest is appended; one already held is replaced (when it is the
 *   latest, its tombstone and expiration come from the new record); an older one the history lacks
 *   is inserted in order;
 * - then the oldest versions beyond the link's retention are dropped.
 * test/tools/tally.test.ts holds this to DocumentIndex on random histories; change both together.
 */

import { isTombstone, parentLink, type LogRecord, type ServiceDocument } from '../../lib/document.js';
import type { Link, Micros, Version } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';

export interface LinkTally {
  /**
   * The versions held, ascending: `first..last` when `list` is undefined (the usual case: a
   * history written in order has no holes), otherwise exactly `list`.
   */
  first: Version;
  last: Version;
  list: Version[] | undefined;
  /** The latest version is a tombstone. */
  deleted: boolean;
  /** The latest version's documentExpirationTimeMicros (0: none). */
  expiration: Micros;
  /** Versions the index keeps for this link, looked up once: a lookup per record would cost a slice and a map probe. */
  keep: number;
}

export type LinkStatus = 'live' | 'deleted' | 'expired';

export interface FactoryCounts {
  factory: Link;
  live: number;
  deleted: number;
  /** Links whose latest version expired by the as-of time: a host purges them, versions and all. */
  expired: number;
  /** Versions the index holds for the links not expired. */
  versions: number;
}

export class HistoryTally {
  readonly links = new Map<Link, LinkTally>();
  /** Histories dropped by resetHistory or by a record made after expiry. */
  resets = 0;

  constructor(private readonly retentionFor: (link: Link) => number) {}

  apply(r: LogRecord): void {
    const link = r.link;
    const state = r.state;
    const t0 = this.links.get(link);
    let t = t0;
    if (t !== undefined && (r.resetHistory === true || (t.expiration > 0 && t.expiration <= r.timeMicros))) {
      this.resets++;
      t = undefined;
    }
    const v = r.version;
    if (t === undefined) {
      const keep = t0?.keep ?? retained(this.retentionFor(link));
      this.links.set(link, {
        first: v,
        last: v,
        list: undefined,
        deleted: isTombstone(state),
        expiration: expirationOf(state.documentExpirationTimeMicros),
        keep,
      });
      return;
    }
    const latest = t.list === undefined ? t.last : t.list[t.list.length - 1]!;
    if (v >= latest) {
      if (v > latest) {
        if (t.list === undefined && v === t.last + 1) t.last = v;
        else this.listOf(t).push(v);
      }
      t.deleted = isTombstone(state);
      t.expiration = expirationOf(state.documentExpirationTimeMicros);
    } else if (t.list === undefined ? v < t.first : !t.list.includes(v)) {
      const list = this.listOf(t);
      let i = 0;
      while (list[i]! < v) i++;
      list.splice(i, 0, v);
    }
    this.trim(t);
  }

  /** The tally's versions as an explicit list, made from its first..last run the first time a gap appears. */
  private listOf(t: LinkTally): number[] {
    t.list ??= range(t.first, t.last);
    return t.list;
  }

  private trim(t: LinkTally): void {
    const keep = t.keep;
    if (t.list === undefined) {
      if (t.last - t.first + 1 > keep) t.first = t.last - keep + 1;
    } else if (t.list.length > keep) {
      t.list.splice(0, t.list.length - keep);
    }
  }

  /** How a link stands at `asOfMicros`; undefined for a link never seen. */
  status(link: Link, asOfMicros: Micros): LinkStatus | undefined {
    const t = this.links.get(link);
    return t === undefined ? undefined : statusOf(t, asOfMicros);
  }

  /** Live, deleted and expired links and held versions per factory, in factory order. */
  countByFactory(asOfMicros: Micros): FactoryCounts[] {
    const byFactory = new Map<Link, FactoryCounts>();
    for (const [link, t] of this.links) {
      const factory = parentLink(link);
      let c = byFactory.get(factory);
      if (c === undefined) {
        c = { factory, live: 0, deleted: 0, expired: 0, versions: 0 };
        byFactory.set(factory, c);
      }
      const status = statusOf(t, asOfMicros);
      c[status]++;
      if (status !== 'expired') c.versions += versionCount(t);
    }
    return [...byFactory.values()].sort((a, b) => (a.factory < b.factory ? -1 : a.factory > b.factory ? 1 : 0));
  }
}

export function versionCount(t: LinkTally): number {
  return t.list === undefined ? t.last - t.first + 1 : t.list.length;
}

/**
 * Expired follows the index's purge rule (expiration strictly before now: index/expiry.ts), since
 * a purged link is gone from every count; listings hide it a microsecond earlier.
 */
function statusOf(t: LinkTally, asOfMicros: Micros): LinkStatus {
  if (t.expiration > 0 && t.expiration < asOfMicros) return 'expired';
  return t.deleted ? 'deleted' : 'live';
}

/** The same verdict for a latest version held in a DocumentIndex. */
export function documentStatus(latest: ServiceDocument, asOfMicros: Micros): LinkStatus {
  const exp = expirationOf(latest.documentExpirationTimeMicros);
  if (exp > 0 && exp < asOfMicros) return 'expired';
  return isTombstone(latest) ? 'deleted' : 'live';
}

/** As index/expiry.ts reads it: anything but a positive number means no expiration. */
function expirationOf(exp: unknown): Micros {
  return typeof exp === 'number' && exp > 0 ? exp : 0;
}

/** The index keeps at least one version and falls back to its default for a non-finite wish. */
function retained(wanted: number): number {
  return Number.isFinite(wanted) ? Math.max(1, Math.floor(wanted)) : limits.versionRetentionDefault;
}

function range(first: Version, last: Version): Version[] {
  const out: Version[] = [];
  for (let v = first; v <= last; v++) out.push(v);
  return out;
}
