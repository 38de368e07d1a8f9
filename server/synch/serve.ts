/**
 * The replica's side of synchronization (`POST <selector>/synch`): a peer's pass reads the heads
 * of a factory's links in pages (sorted by link, each with the epoch this host promised above its
 * copy, if any), an owner fetches the full latest states of chosen links (with their fences), and
 * a new owner asks for promises (server/synch/takeover.ts) and lists, reads or sends retained
 * versions (server/synch/history.ts).
 */

import type { NewLogRecord, ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Link } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import type { VersionMark } from '../../lib/synch/history.js';
import type { HeadTuple } from '../../lib/synch/plan.js';
import type { SynchDeps } from './deps.js';
import type { HistorySynch } from './history.js';
import type { Takeovers } from './takeover.js';

export interface SynchRequest {
  kind: 'heads' | 'fetch' | 'promise' | 'versions' | 'records' | 'insert';
  factoryLink?: string;
  after?: string;
  limit?: number;
  links?: string[];
  /** kind 'promise': the asking host and its [link, epoch] pairs (server/synch/takeover.ts). */
  from?: string;
  asks?: [string, number][];
}

export type SynchAnswer =
  | { heads: HeadTuple[]; next?: string }
  | {
      states: Record<string, ServiceDocument>;
      fences?: Record<string, number>;
      digests?: Record<string, number>;
      requestIds?: Record<string, string>;
    }
  | { promises: unknown[] }
  | { versions: Record<string, VersionMark[]> }
  | { records: NewLogRecord[] }
  | { inserted: number };

export class SynchServer {
  private readonly sortedCache = new Map<string, { version: number; links: Link[] }>();

  constructor(
    private readonly d: Pick<SynchDeps, 'registry' | 'index' | 'promises'>,
    private readonly takeovers: Takeovers,
    private readonly history: HistorySynch,
  ) {}

  /** Serves a peer's synchronization request: heads of a factory in pages, full latest states, or promises. */
  async serve(raw: unknown): Promise<SynchAnswer> {
    const req = raw as SynchRequest | undefined;
    if (!req || typeof req !== 'object' || Array.isArray(req))
      throw new KryptonError('INVALID_BODY', 'SynchronizePeersRequest body is required');
    if (req.kind === 'heads') return this.heads(req);
    if (req.kind === 'fetch') return this.states(req);
    const body = req as unknown as Record<string, unknown>;
    if (req.kind === 'promise') return this.takeovers.serve(body);
    if (req.kind === 'versions') return this.history.versions(body);
    if (req.kind === 'records') return this.history.records(body);
    if (req.kind === 'insert') return this.history.insert(body);
    throw new KryptonError('INVALID_BODY', 'unknown request');
  }

  private heads(req: SynchRequest): { heads: HeadTuple[]; next?: string } {
    if (typeof req.factoryLink !== 'string' || !this.d.registry.factory(req.factoryLink))
      throw new KryptonError('INVALID_BODY', 'factoryLink must name a factory');
    const limit = Math.min(
      limits.synchHeadsPageLinksMax,
      typeof req.limit === 'number' && req.limit > 0 ? req.limit : limits.synchHeadsPageLinksMax,
    );
    const links = this.sortedLinks(req.factoryLink);
    const start = typeof req.after === 'string' ? upperBound(links, req.after) : 0;
    const page = links.slice(start, start + limit);
    const heads: HeadTuple[] = [];
    for (const l of page) {
      const doc = this.d.index.latest(l);
      if (!doc) continue;
      const t: HeadTuple = [
        l,
        doc.documentEpoch ?? 0,
        doc.documentVersion,
        doc.documentUpdateAction === 'DELETE' ? 1 : 0,
        doc.documentOwner ?? '',
      ];
      t.push(this.d.promises.get(l)?.epoch ?? null, this.d.index.digest(l));
      heads.push(t);
    }
    return start + limit < links.length ? { heads, next: page[page.length - 1]! } : { heads };
  }

  private states(req: SynchRequest): {
    states: Record<string, ServiceDocument>;
    fences?: Record<string, number>;
    digests: Record<string, number>;
    requestIds: Record<string, string>;
  } {
    if (!Array.isArray(req.links) || req.links.length > limits.synchPageLinksMax)
      throw new KryptonError('INVALID_BODY', `links must be an array of at most ${limits.synchPageLinksMax}`);
    const states: Record<string, ServiceDocument> = {};
    const fences: Record<string, number> = {};
    const digests: Record<string, number> = {};
    const requestIds: Record<string, string> = {};
    for (const l of req.links) {
      if (typeof l !== 'string') continue;
      const doc = this.d.index.latest(l);
      if (doc) {
        states[l] = doc;
        digests[l] = this.d.index.digest(l);
        const id = this.d.index.requestId(l, doc.documentVersion);
        if (id !== undefined) requestIds[l] = id;
      }
      const promised = this.d.promises.get(l);
      if (promised) fences[l] = promised.epoch;
    }
    return Object.keys(fences).length ? { states, fences, digests, requestIds } : { states, digests, requestIds };
  }

  /**
   * The links under a factory in sorted order, sorted again only when the index's set of links
   * changed: a peer pages through every head of a large factory, and sorting it for each page
   * made serving a pass quadratic.
   */
  private sortedLinks(factoryLink: string): Link[] {
    const version = this.d.index.linkSetVersion();
    let c = this.sortedCache.get(factoryLink);
    if (c?.version !== version) {
      c = { version, links: this.d.index.linksUnder(factoryLink).sort() };
      this.sortedCache.set(factoryLink, c);
    }
    return c.links;
  }
}

/** The index of the first element of sorted `links` greater than `after`. */
export function upperBound(links: readonly string[], after: string): number {
  let lo = 0;
  let hi = links.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (links[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
