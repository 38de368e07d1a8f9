/**
 * Query execution over the version store: candidates (from postings when the query has a string
 * clause to drive it, else a scan), Xenon's visibility rules (latest versions only,
 * tombstones hidden, unless INCLUDE_ALL_VERSIONS / INCLUDE_DELETED; expired documents never), and
 * result order. Counting, TOP_RESULTS and paging are the caller's: it gets the whole ordered list.
 *
 * Order without SORT is Xenon's default Lucene sort: documentVersion descending, ties in the
 * order the versions were indexed (oldest first). That is why an INCLUDE_ALL_VERSIONS query over two tasks lists v3 of both,
 * then v2 of both, each pair in the order the tasks were created.
 * With SORT: by each sort term in turn (strings by UTF-16 code units, numbers numerically; a
 * document without a value for a term goes after those with one, in both directions), then in
 * indexing order, as Lucene breaks ties by document id.
 *
 * As of a time (TIME_SNAPSHOT, and every query page): each link is seen in its newest version
 * updated at or before that time, and expiry is judged at that time, so the answer is the one a
 * query run then would have given, within the versions the index still keeps. When a link's
 * kept history starts after that time its state then is unknown and the query fails rather than
 * answer without it.
 */

import { isTombstone, type ServiceDocument } from '../lib/document.js';
import { KryptonError } from '../lib/errors.js';
import type { Link, Micros, Version } from '../lib/ids.js';
import type { QueryPlan, SortTerm } from '../lib/query/spec.js';
import { isExpiredAt } from './expiry.js';
import { firstValueAt, type IndexedValue } from './fields.js';
import { chooseCandidates, compileQuery } from './match.js';
import type { VersionStore } from './store.js';

export interface QueryHit {
  link: Link;
  version: Version;
  doc: ServiceDocument;
}

/** What the last query examined: proof that selective queries read postings, not everything. */
export interface QueryStats {
  /** Versions tested against the query. */
  examined: number;
  /** True when no posting could drive the query and every version (or latest version) was read. */
  scanned: boolean;
}

/** Whether `doc`, a link's latest state, is a match of `plan` at `nowMicros` (runQuery's rules, one document). */
export function matchesLatest(plan: QueryPlan, doc: ServiceDocument, nowMicros: Micros): boolean {
  if (!(plan.includeDeleted || plan.includeAllVersions) && isTombstone(doc)) return false;
  return !isExpiredAt(doc, nowMicros) && compileQuery(plan.query)(doc);
}

export function runQuery(store: VersionStore, plan: QueryPlan, nowMicros: Micros, stats: QueryStats, asOfMicros?: Micros): QueryHit[] {
  const asOf = asOfMicros ?? plan.timeSnapshotMicros;
  if (asOf !== undefined) return runAsOf(store, plan, asOf, stats);
  const matches = compileQuery(plan.query);
  const allVersions = plan.includeAllVersions;
  const includeDeleted = plan.includeDeleted || allVersions;
  const hits: number[] = [];
  let examined = 0;

  const consider = (vid: number): void => {
    examined++;
    const doc = store.docAt(vid);
    if (doc === undefined) return;
    const latestVid = store.latestVidOf(vid);
    if (!allVersions && latestVid !== vid) return;
    if (!includeDeleted && isTombstone(doc)) return;
    if (isExpiredAt(doc, nowMicros)) return;
    // A link whose latest version expired is gone as a whole, whatever its older versions say.
    if (latestVid !== vid && isExpiredAt(store.docAt(latestVid)!, nowMicros)) return;
    if (exact || matches(doc)) hits.push(vid);
  };

  const cand = chooseCandidates(plan.query, store.postings, store.alive);
  // A wide posting (documentKind, say) costs more than reading each link's latest version once.
  const scanCost = allVersions ? store.versionCount() : store.linkCount();
  const scanned = cand === null || cand.size > scanCost;
  // A lone TERM clause read from its own posting holds exactly the versions with that value.
  const q = plan.query;
  const exact = !scanned && q.kind === 'term' && q.matchType === 'TERM';
  if (!scanned) cand.forEach(consider);
  else if (allVersions) store.forEachVersion(consider);
  else store.forEachLatest(consider);
  stats.examined = examined;
  stats.scanned = scanned;

  return finish(store, plan, hits);
}

function finish(store: VersionStore, plan: QueryPlan, hits: number[]): QueryHit[] {
  const ordered = plan.sort === undefined ? byVersion(store, hits) : bySortTerms(store, hits, plan.sort);
  return ordered.map((vid) => ({ link: store.linkAt(vid), version: store.versionAt(vid), doc: store.docAt(vid)! }));
}

/** The query as the index stood at `asOf` (see the header). */
function runAsOf(store: VersionStore, plan: QueryPlan, asOf: Micros, stats: QueryStats): QueryHit[] {
  const lost = plan.includeAllVersions ? undefined : store.lostAsOf(asOf);
  if (lost !== undefined) {
    throw new KryptonError(
      'INVALID_QUERY',
      `the index no longer keeps the state of ${lost} as of ${asOf}: that time is older than the versions kept`,
    );
  }
  const matches = compileQuery(plan.query);
  const allVersions = plan.includeAllVersions;
  const includeDeleted = plan.includeDeleted || allVersions;
  const hits: number[] = [];
  let examined = 0;
  const consider = (vid: number): void => {
    examined++;
    const doc = store.docAt(vid);
    if (doc === undefined || store.timeAt(vid) > asOf) return;
    const current = store.vidAsOf(vid, asOf);
    if (!allVersions && current !== vid) return;
    if (!includeDeleted && isTombstone(doc)) return;
    if (isExpiredAt(doc, asOf)) return;
    if (current !== vid && isExpiredAt(store.docAt(current)!, asOf)) return;
    if (matches(doc)) hits.push(vid);
  };
  const cand = chooseCandidates(plan.query, store.postings, store.alive);
  const scanCost = allVersions ? store.versionCount() : store.linkCount();
  const scanned = cand === null || cand.size > scanCost;
  if (!scanned) cand.forEach(consider);
  else if (allVersions) store.forEachVersion(consider);
  else store.forEachAsOf(asOf, consider);
  stats.examined = examined;
  stats.scanned = scanned;
  return finish(store, plan, hits);
}

/** A hit's sort keys, one per term (see bySortTerms), for merging with other hosts' hits. */
export function sortKeysOf(doc: ServiceDocument, terms: readonly SortTerm[]): (string | number | null)[] {
  return terms.map((t) => firstValueAt(doc, t.propertyName, isNumericSort(t)) ?? null);
}

function isNumericSort(t: SortTerm): boolean {
  return t.propertyType === 'LONG' || t.propertyType === 'DOUBLE' || t.propertyType === 'DATE';
}

function byVersion(store: VersionStore, vids: number[]): number[] {
  return vids.sort((a, b) => store.versionAt(b) - store.versionAt(a) || a - b);
}

function bySortTerms(store: VersionStore, vids: number[], terms: readonly SortTerm[]): number[] {
  const numeric = terms.map(isNumericSort);
  const keyed = vids.map((vid) => {
    const doc = store.docAt(vid)!;
    return { vid, keys: terms.map((t, i) => firstValueAt(doc, t.propertyName, numeric[i]!)) };
  });
  keyed.sort((a, b) => {
    for (let i = 0; i < terms.length; i++) {
      const c = compareKeys(a.keys[i], b.keys[i], terms[i]!.order === 'DESC');
      if (c !== 0) return c;
    }
    return a.vid - b.vid;
  });
  return keyed.map((k) => k.vid);
}

function compareKeys(a: IndexedValue | undefined, b: IndexedValue | undefined, desc: boolean): number {
  if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? 1 : -1;
  const c = a < b ? -1 : a > b ? 1 : 0;
  return desc ? -c : c;
}
