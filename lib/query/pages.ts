/**
 * Query page tokens: what a `nextPageLink` or `prevPageLink` carries so that any host of the
 * group can answer it, not only the host that made it (docs/xenon-compatibility.md, Queries). A
 * page is the query run again "as of" the time the first run saw (TIME_SNAPSHOT at that time),
 * ordered the host-independent way (merge.ts), and sliced at the token's offset: the pages of one
 * query see one state of the index even while writes go on, and a page link outlives the host
 * that made it. This module only checks and shapes the token's JSON; the host compresses it into
 * the link (server/tasks/query-tasks.ts).
 */

import type { QuerySpecJson } from './spec.js';

export interface PageToken {
  /** The query as the task echoes it. */
  spec: QuerySpecJson;
  /** The pages show the index as of this time (microseconds). */
  asOf: number;
  offset: number;
  /** Whether the pages gather from every host (BROADCAST, or a factory not replicated everywhere). */
  gather: boolean;
  /** After this time the page answers 404, as the task's pages do in Xenon. */
  expires: number;
  /** The host that made the first page, named in the link as Xenon's `peer`. */
  host: string;
  /** With authorization on, the user who ran the query: only they may read its pages. */
  owner?: string;
  /** A GROUP_BY query's page of groups (its `nextPageLinksPerGroup`), `offset` counting groups. */
  groups?: boolean;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/** The token's JSON text. */
export function pageTokenJson(t: PageToken): string {
  const o: Record<string, unknown> = { s: t.spec, t: t.asOf, o: t.offset, g: t.gather ? 1 : 0, e: t.expires, h: t.host };
  if (t.owner !== undefined) o.u = t.owner;
  if (t.groups === true) o.k = 1;
  return JSON.stringify(o);
}

/** A token read back from its JSON text; undefined for anything a host did not make. */
export function parsePageToken(text: string): PageToken | undefined {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined;
  const r = o as Record<string, unknown>;
  if (typeof r.s !== 'object' || r.s === null || Array.isArray(r.s)) return undefined;
  if (!isInt(r.t) || !isInt(r.o) || r.o < 0 || (r.g !== 0 && r.g !== 1) || !isInt(r.e) || typeof r.h !== 'string') return undefined;
  if (r.u !== undefined && typeof r.u !== 'string') return undefined;
  if (r.k !== undefined && r.k !== 1) return undefined;
  const t: PageToken = { spec: r.s as QuerySpecJson, asOf: r.t, offset: r.o, gather: r.g === 1, expires: r.e, host: r.h };
  if (typeof r.u === 'string') t.owner = r.u;
  if (r.k === 1) t.groups = true;
  return t;
}
