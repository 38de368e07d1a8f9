/**
 * Queries across hosts, the pure half: merging what several hosts answered into one list without
 * duplicates, the one order such a list is given (the same on every host, so a page computed on
 * one host lines up with a page computed on another), the window a page shows, whether the hosts
 * that answered can hold every match, and whether a query can match a given factory's children at
 * all (so a query that names a fully replicated factory stays on the entry host). The fan-out
 * itself is server/tasks/query-gather.ts.
 */

import type { JsonObject } from '../document.js';
import type { PlanQuery, SortTerm } from './spec.js';

/** One sort term's value in a hit; null when the document has none. */
export type SortKey = string | number | null;

export interface GatheredHit {
  link: string;
  version: number;
  /** One key per sort term, primary first, present when the query sorts. */
  keys?: SortKey[];
  doc?: JsonObject;
}

/**
 * The union of every host's hits, one per link (one per link and version with
 * INCLUDE_ALL_VERSIONS). Where hosts hold different versions of a link the highest wins: a
 * replica that has not yet applied the latest write must not hide it. Equal versions keep the
 * first list's copy, so the entry host's own answer (passed first) is the one shown.
 */
export function mergeGathered(lists: readonly (readonly GatheredHit[])[], allVersions: boolean): GatheredHit[] {
  const best = new Map<string, GatheredHit>();
  for (const list of lists) {
    for (const h of list) {
      const k = allVersions ? `${h.link}\u0000${h.version}` : h.link;
      const cur = best.get(k);
      if (cur === undefined || h.version > cur.version) best.set(k, h);
    }
  }
  return [...best.values()];
}

/**
 * How a host-independent list is ordered when the query does not sort (or its sort keys tie):
 * `link`, self link ascending, as Xenon merges a BROADCAST; `version`, documentVersion descending
 * then self link, the local order Xenon gives with the tie broken by link rather than by the
 * order a host happened to index the versions in.
 */
export type TieOrder = 'link' | 'version';

/** Orders `hits` in place: sort keys first (when `sort` is given), then `tie`; returns `hits`. */
export function orderHits(hits: GatheredHit[], sort: readonly SortTerm[] | undefined, tie: TieOrder): GatheredHit[] {
  const desc = sort?.map((t) => t.order === 'DESC') ?? [];
  return hits.sort((a, b) => {
    for (let i = 0; i < desc.length; i++) {
      const c = compareSortKeys(a.keys?.[i] ?? null, b.keys?.[i] ?? null, desc[i]!);
      if (c !== 0) return c;
    }
    if (tie === 'version' && a.version !== b.version) return b.version - a.version;
    if (a.link !== b.link) return a.link < b.link ? -1 : 1;
    return b.version - a.version;
  });
}

/**
 * Strings by UTF-16 code units, numbers numerically; a missing key goes after every present one
 * in both directions (as index/query.ts sorts one host's hits).
 */
export function compareSortKeys(a: SortKey | undefined, b: SortKey | undefined, desc: boolean): number {
  const am = a === null || a === undefined;
  const bm = b === null || b === undefined;
  if (am || bm) return am === bm ? 0 : am ? 1 : -1;
  const c = a < b ? -1 : a > b ? 1 : 0;
  return desc ? -c : c;
}

export interface PageWindow {
  start: number;
  end: number;
  /** Offset of the next page, when there is one. */
  next?: number;
  /** Offset of the previous page, when there is one and the query is not FORWARD_ONLY. */
  prev?: number;
}

/** The slice of `total` ordered hits a page at `offset` of `size` shows. */
export function pageWindow(total: number, offset: number, size: number, forwardOnly: boolean): PageWindow {
  const start = Math.min(Math.max(0, offset), total);
  const end = Math.min(total, start + size);
  const w: PageWindow = { start, end };
  if (end < total) w.next = end;
  if (start > 0 && !forwardOnly) w.prev = Math.max(0, start - size);
  return w;
}

export interface Coverage {
  /** Members of the group (observers excluded), this host included. */
  members: number;
  /** Members that answered. */
  answered: number;
  /**
   * The smallest replication factor among the factories the query can match that do not replicate
   * everywhere; undefined when every such factory replicates everywhere.
   */
  minFactor: number | undefined;
  ownerSelection: boolean;
  /** READ_AFTER_WRITE_CONSISTENCY: a majority of the members must answer, whatever the factor. */
  majority?: boolean;
}

/**
 * Whether the members that answered hold every document the query can match (and, when asked,
 * are a majority). With a factor of
 * N, a document lives on N members, so it is missing only when all N failed to answer; with
 * OWNER_SELECTION each host contributes only what it owns, so every member must answer.
 */
export function covered(c: Coverage): boolean {
  const missing = c.members - c.answered;
  if (c.answered === 0) return false;
  if (c.majority && c.answered * 2 <= c.members) return false;
  if (c.ownerSelection) return missing === 0;
  if (c.minFactor === undefined) return true;
  return missing < c.minFactor;
}

/**
 * False when `q` cannot match any child of `factoryLink` whose documents are of `kind`: a
 * top-level MUST clause (or the query itself, when it is a term) on `documentKind` with another
 * kind, or on `documentSelfLink` outside the factory. True otherwise, including whenever in doubt.
 */
export function mayMatchFactory(q: PlanQuery, factoryLink: string, kind: string): boolean {
  const prefix = `${factoryLink}/`;
  const excludes = (c: PlanQuery): boolean => {
    if (c.kind !== 'term') return false;
    if (c.propertyName === 'documentKind' && c.matchType === 'TERM') return c.matchValue !== kind;
    if (c.propertyName !== 'documentSelfLink') return false;
    if (c.matchType === 'TERM') return !c.matchValue.startsWith(prefix);
    if (c.matchType === 'PREFIX') return !c.matchValue.startsWith(prefix) && !prefix.startsWith(c.matchValue);
    return false;
  };
  if (q.kind === 'boolean') {
    if (q.occurance === 'MUST_NOT_OCCUR') return false;
    return !q.clauses.some((c) => c.occurance === 'MUST_OCCUR' && excludes(c));
  }
  return !excludes(q);
}
