/**
 * The version store behind DocumentIndex: every retained version of every link, held under an
 * integer version id (vid), with the per-link history, the per-parent child sets, the links that
 * carry an expiration, and the field postings. `views.ts` is the public face; `query.ts` reads the
 * store directly.
 *
 * Vids are handed out in the order versions are applied, so a smaller vid means "applied earlier"
 * (the tie-break Lucene's document ids give Xenon). Per-vid data lives in three parallel arrays;
 * when more than half of the vids handed out are dead (retention, resets, expiry), `renumber`
 * packs the live ones down, keeping their order, so memory follows the live versions and not the
 * number of writes ever applied.
 */

import { isTombstone, parentLink, type LogRecord, type ServiceDocument } from '../lib/document.js';
import type { Link, Micros, Version } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { historyDigest, markHash, markOf, type VersionMark } from '../lib/synch/history.js';
import { expirationOf, isExpiredAt, isPurgeableAt } from './expiry.js';
import { Postings } from './postings.js';

export class VersionStore {
  readonly postings: Postings;
  readonly alive = (vid: number): boolean => this.docs[vid] !== undefined;

  private docs: (ServiceDocument | undefined)[] = [];
  private linkOf: Link[] = [];
  private versionOf: Version[] = [];
  /** Each version's documentUpdateTimeMicros (the record's time when the state has none), for TIME_SNAPSHOT. */
  private timeOf: Micros[] = [];
  /** The newest update time applied, so a query can name a time no held version is after. */
  private newestTime: Micros = 0;
  /**
   * Links that once held versions no longer kept (retention, a reset), with the update time of
   * their oldest kept version: before that time their state is unknown, and a TIME_SNAPSHOT
   * query at such a time cannot be answered.
   */
  private readonly trimmed = new Map<Link, Micros>();
  /** The request id of the write that made each version, when its record carried one (log format v2). */
  private requestIdOf: (string | undefined)[] = [];
  /** Per link, the sum of its retained versions' mark hashes (lib/synch/history.ts), kept as versions come and go. */
  private readonly hashSums = new Map<Link, number>();
  private nextVid = 0;
  private liveVersions = 0;
  /** Vids of each link, ascending by version; the last one is the latest. */
  private readonly byLink = new Map<Link, number[]>();
  /** Links present under each parent (factory) link, so a listing never scans other factories. */
  private readonly byParent = new Map<Link, Set<Link>>();
  /** Counts links appearing and leaving, so callers can cache what they derive from link lists. */
  private linkSetChanges = 0;
  /** Links whose latest version has an expiration, with that time. */
  private readonly expiring = new Map<Link, Micros>();
  private readonly retentionFor: (link: Link) => number;

  constructor(retentionFor: (link: Link) => number) {
    this.retentionFor = retentionFor;
    this.postings = new Postings(this.alive);
  }

  apply(r: LogRecord): void {
    const link = r.link;
    let vids = this.byLink.get(link);
    // A record for a link whose latest version had already expired when the record was made
    // starts a new history, as it would after Xenon's purge (a re-create starts at version 0).
    if (vids !== undefined && (r.resetHistory === true || isExpiredAt(this.latestDocOf(vids), r.timeMicros))) {
      // An expired history is gone for every reader; a reset one leaves a past that was real.
      const reset = r.resetHistory === true;
      this.purge(link);
      vids = undefined;
      if (reset) this.trimmed.set(link, 0);
    }
    if (vids === undefined) {
      vids = [];
      this.byLink.set(link, vids);
      this.linkSetChanges++;
      const parent = parentLink(link);
      let siblings = this.byParent.get(parent);
      if (siblings === undefined) {
        siblings = new Set();
        this.byParent.set(parent, siblings);
      }
      siblings.add(link);
    }

    const vid = this.nextVid++;
    this.docs[vid] = r.state;
    this.linkOf[vid] = link;
    this.versionOf[vid] = r.version;
    const t = typeof r.state.documentUpdateTimeMicros === 'number' ? r.state.documentUpdateTimeMicros : r.timeMicros;
    this.timeOf[vid] = t;
    if (t > this.newestTime) this.newestTime = t;
    this.requestIdOf[vid] = r.requestId;
    this.liveVersions++;
    this.hashSums.set(link, ((this.hashSums.get(link) ?? 0) + hashOf(r.state)) >>> 0);
    this.postings.add(vid, r.state);

    const n = vids.length;
    if (n === 0 || this.versionOf[vids[n - 1]!]! < r.version) {
      vids.push(vid);
    } else {
      // Not newer than the latest: a re-delivery replaces the version it repeats, and an older
      // version missing from the history (history synchronization) slots in by version.
      const i = this.lowerBound(vids, r.version);
      if (i < n && this.versionOf[vids[i]!] === r.version) {
        this.drop(vids[i]!);
        vids[i] = vid;
      } else {
        vids.splice(i, 0, vid);
      }
    }

    const keep = this.keepFor(link);
    if (vids.length > keep) {
      while (vids.length > keep) this.drop(vids.shift()!);
      this.trimmed.set(link, this.timeOf[vids[0]!]!);
    } else if (this.trimmed.get(link) === 0) this.trimmed.set(link, this.timeOf[vids[0]!]!);

    const exp = expirationOf(this.latestDocOf(vids));
    if (exp > 0) this.expiring.set(link, exp);
    else this.expiring.delete(link);
    this.maybeRenumber();
  }

  /** How many versions of `link` are retained. */
  keepFor(link: Link): number {
    const wanted = this.retentionFor(link);
    return Number.isFinite(wanted) ? Math.max(1, Math.floor(wanted)) : limits.versionRetentionDefault;
  }

  /** Purges every link whose latest version is due (see expiry.ts); returns them. */
  expire(nowMicros: Micros): Link[] {
    const due: Link[] = [];
    for (const [link, exp] of this.expiring) if (isPurgeableAt(exp, nowMicros)) due.push(link);
    for (const link of due) this.purge(link);
    this.maybeRenumber();
    return due;
  }

  latest(link: Link): ServiceDocument | undefined {
    const vids = this.byLink.get(link);
    return vids === undefined ? undefined : this.latestDocOf(vids);
  }

  version(link: Link, version: Version): ServiceDocument | undefined {
    const vids = this.byLink.get(link);
    if (vids === undefined) return undefined;
    const i = this.lowerBound(vids, version);
    return i < vids.length && this.versionOf[vids[i]!] === version ? this.docs[vids[i]!] : undefined;
  }

  /** The request id the record of `version` carried, if the index holds that version and it had one. */
  requestId(link: Link, version: Version): string | undefined {
    const vids = this.byLink.get(link);
    if (vids === undefined) return undefined;
    const i = this.lowerBound(vids, version);
    return i < vids.length && this.versionOf[vids[i]!] === version ? this.requestIdOf[vids[i]!] : undefined;
  }

  /** The marks of every retained version, oldest first (lib/synch/history.ts). */
  marks(link: Link): VersionMark[] {
    const vids = this.byLink.get(link);
    return vids === undefined ? [] : vids.map((vid) => markOf(this.docs[vid]!));
  }

  /** How many versions of the link are retained. */
  historyLength(link: Link): number {
    return this.byLink.get(link)?.length ?? 0;
  }

  /** The digest of the link's retained history (historyDigest), 0 when it holds none. */
  digest(link: Link): number {
    const vids = this.byLink.get(link);
    return vids === undefined ? 0 : historyDigest(vids.length, this.hashSums.get(link) ?? 0);
  }

  versions(link: Link): ServiceDocument[] {
    const vids = this.byLink.get(link);
    return vids === undefined ? [] : vids.map((vid) => this.docs[vid]!);
  }

  children(parent: Link, nowMicros: Micros): Link[] {
    const out: Link[] = [];
    const siblings = this.byParent.get(parent);
    if (siblings === undefined) return out;
    for (const link of siblings) {
      const doc = this.latest(link);
      if (doc !== undefined && !isTombstone(doc) && !isExpiredAt(doc, nowMicros)) out.push(link);
    }
    return out;
  }

  /** Every link under a parent with any retained version, tombstones included. */
  linksUnder(parent: Link): Link[] {
    const siblings = this.byParent.get(parent);
    return siblings === undefined ? [] : [...siblings];
  }

  /** Changes whenever a link appears in or leaves the store. */
  linkSetVersion(): number {
    return this.linkSetChanges;
  }

  linkCount(): number {
    return this.byLink.size;
  }

  versionCount(): number {
    return this.liveVersions;
  }

  // ---- Per-vid reads for query.ts (vid must be alive) ----

  docAt(vid: number): ServiceDocument | undefined {
    return this.docs[vid];
  }

  linkAt(vid: number): Link {
    return this.linkOf[vid]!;
  }

  versionAt(vid: number): Version {
    return this.versionOf[vid]!;
  }

  timeAt(vid: number): Micros {
    return this.timeOf[vid]!;
  }

  requestIdAt(vid: number): string | undefined {
    return this.requestIdOf[vid];
  }

  /** The links whose older versions are gone, with their marks (see `trimmed`), for a snapshot. */
  trimmedEntries(): [Link, Micros][] {
    return [...this.trimmed];
  }

  /** A snapshot's trimmed mark, restored before its versions; applying them never undoes it. */
  restoreTrimmed(link: Link, micros: Micros): void {
    this.trimmed.set(link, micros);
  }

  /** A snapshot's newest update time, which may be a version no longer held. */
  restoreNewestTime(micros: Micros): void {
    if (micros > this.newestTime) this.newestTime = micros;
  }

  newestTimeMicros(): Micros {
    return this.newestTime;
  }

  /**
   * The vid of the newest version of `vid`'s link updated at or before `asOf`, or -1 when the
   * link had no version by then.
   */
  vidAsOf(vid: number, asOf: Micros): number {
    const vids = this.byLink.get(this.linkOf[vid]!)!;
    for (let i = vids.length - 1; i >= 0; i--) if (this.timeOf[vids[i]!]! <= asOf) return vids[i]!;
    return -1;
  }

  /** A link whose state at `asOf` is no longer held (its older versions were dropped), if any. */
  lostAsOf(asOf: Micros): Link | undefined {
    for (const [link, oldest] of this.trimmed) if (oldest > asOf) return link;
    return undefined;
  }

  /** Visits, for every link, its newest version updated at or before `asOf` (links with none are skipped). */
  forEachAsOf(asOf: Micros, visit: (vid: number) => void): void {
    for (const vids of this.byLink.values()) {
      for (let i = vids.length - 1; i >= 0; i--) {
        if (this.timeOf[vids[i]!]! <= asOf) {
          visit(vids[i]!);
          break;
        }
      }
    }
  }

  /** The vid of the latest version of the link `vid` belongs to. */
  latestVidOf(vid: number): number {
    const vids = this.byLink.get(this.linkOf[vid]!)!;
    return vids[vids.length - 1]!;
  }

  forEachLatest(visit: (vid: number) => void): void {
    for (const vids of this.byLink.values()) visit(vids[vids.length - 1]!);
  }

  forEachVersion(visit: (vid: number) => void): void {
    const docs = this.docs;
    for (let vid = 0; vid < this.nextVid; vid++) if (docs[vid] !== undefined) visit(vid);
  }

  // ---- Internals ----

  private latestDocOf(vids: number[]): ServiceDocument {
    return this.docs[vids[vids.length - 1]!]!;
  }

  /** First index in `vids` whose version is >= `version`. */
  private lowerBound(vids: number[], version: Version): number {
    let lo = 0;
    let hi = vids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.versionOf[vids[mid]!]! < version) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private drop(vid: number): void {
    const doc = this.docs[vid]!;
    const link = this.linkOf[vid]!;
    this.hashSums.set(link, ((this.hashSums.get(link) ?? 0) - hashOf(doc)) >>> 0);
    this.docs[vid] = undefined;
    this.linkOf[vid] = '';
    this.requestIdOf[vid] = undefined;
    this.liveVersions--;
    this.postings.remove(doc);
  }

  private purge(link: Link): void {
    const vids = this.byLink.get(link);
    if (vids === undefined) return;
    for (const vid of vids) this.drop(vid);
    this.byLink.delete(link);
    this.hashSums.delete(link);
    this.linkSetChanges++;
    this.expiring.delete(link);
    this.trimmed.delete(link);
    const parent = parentLink(link);
    const siblings = this.byParent.get(parent);
    if (siblings !== undefined) {
      siblings.delete(link);
      if (siblings.size === 0) this.byParent.delete(parent);
    }
  }

  private maybeRenumber(): void {
    if (this.nextVid - this.liveVersions > Math.max(limits.indexRenumberDeadVersionsMin, this.liveVersions)) this.renumber();
  }

  /** Packs live vids into 0..live-1 keeping their order, everywhere they are held. */
  renumber(): void {
    const map = new Int32Array(this.nextVid).fill(-1);
    const docs: (ServiceDocument | undefined)[] = [];
    const linkOf: Link[] = [];
    const versionOf: Version[] = [];
    const timeOf: Micros[] = [];
    const requestIdOf: (string | undefined)[] = [];
    let j = 0;
    for (let vid = 0; vid < this.nextVid; vid++) {
      const doc = this.docs[vid];
      if (doc === undefined) continue;
      map[vid] = j;
      docs.push(doc);
      linkOf.push(this.linkOf[vid]!);
      versionOf.push(this.versionOf[vid]!);
      timeOf.push(this.timeOf[vid]!);
      requestIdOf.push(this.requestIdOf[vid]);
      j++;
    }
    for (const vids of this.byLink.values()) {
      for (let i = 0; i < vids.length; i++) vids[i] = map[vids[i]!]!;
    }
    this.postings.renumber(map, this.alive);
    this.docs = docs;
    this.linkOf = linkOf;
    this.versionOf = versionOf;
    this.timeOf = timeOf;
    this.requestIdOf = requestIdOf;
    this.nextVid = j;
  }
}

function hashOf(doc: ServiceDocument): number {
  return markHash(doc.documentVersion, doc.documentEpoch ?? 0, doc.documentUpdateTimeMicros);
}
