/**
 * History catch-up: after a synchronization settled a link's latest state, the owner makes every
 * replica's retained history match its own (the decisions are lib/synch/history.ts). Heads carry a
 * digest of each host's retained versions, so only links whose digests differ are listed: the owner
 * asks those peers for the marks of their versions (kind `versions`), takes the versions it lacks
 * itself from them (kind `records`, appended under its latest state), then sends each peer the
 * versions it lacks (kind `insert`), request ids included, so a retry of an old write is recognized
 * by whichever host owns the link next. Every request is paged by named limits; a failed request
 * leaves that history for a later synchronization and never fails the pass. This file also answers
 * those three requests as a peer.
 */

import type { NewLogRecord, ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Link, NodeId } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import type { ServiceRegistry } from '../../lib/service.js';
import { copiedByTakeover, copiesToPull, versionsToPull, versionsToShip, type VersionMark } from '../../lib/synch/history.js';
import type { Head } from '../../lib/synch/plan.js';
import { checkRequestId } from '../../lib/dedup.js';
import { peerTimeoutMs, type SynchDeps, type SynchStats } from './deps.js';

const ACTIONS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** JSON bytes of history one request or answer carries at most. */
const PAGE_BYTES = limits.bodyBytesMax / 2;

type Deps = Pick<SynchDeps, 'hostId' | 'registry' | 'index' | 'store' | 'peers' | 'logger' | 'operationTimeoutMicros'>;

/** What one history catch-up looks at: the links, the heads discovery read, the peers to reach. */
export interface HistoryScope {
  links: readonly Link[];
  heads: ReadonlyMap<Link, ReadonlyMap<NodeId, Head | undefined>>;
  /** Each link's replica set (other members) and the `/synch` URL of each peer. */
  replicas: ReadonlyMap<Link, ReadonlySet<NodeId>>;
  urls: ReadonlyMap<NodeId, string>;
}

const bad = (why: string) => new KryptonError('INVALID_BODY', `history request: ${why}`);

function childOf(registry: ServiceRegistry, factoryLink: unknown, link: unknown): link is Link {
  if (typeof factoryLink !== 'string' || typeof link !== 'string' || !registry.factory(factoryLink)?.has('REPLICATION')) return false;
  const prefix = `${factoryLink}/`;
  return link.startsWith(prefix) && link.length > prefix.length && link.indexOf('/', prefix.length) < 0;
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Checks one record of an `insert` request: its fields agree with its state, as the owner's index holds it. */
export function parseHistoryRecord(raw: unknown, registry: ServiceRegistry, factoryLink: string): NewLogRecord {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad('each record must be an object');
  const r = raw as Record<string, unknown>;
  const state = r.state as ServiceDocument | undefined;
  if (!childOf(registry, factoryLink, r.link)) throw bad(`${JSON.stringify(r.link)} is not a child of ${factoryLink}`);
  if (typeof r.action !== 'string' || !ACTIONS.has(r.action)) throw bad('action must be POST, PUT, PATCH or DELETE');
  if (!isCount(r.version) || !isCount(r.epoch) || !isCount(r.timeMicros)) throw bad('version, epoch and timeMicros must be integers');
  if (!state || typeof state !== 'object' || Array.isArray(state)) throw bad('state must be an object');
  if (
    state.documentSelfLink !== r.link ||
    state.documentVersion !== r.version ||
    (state.documentEpoch ?? 0) !== r.epoch ||
    state.documentUpdateTimeMicros !== r.timeMicros
  ) {
    throw bad(`the state of ${r.link} version ${r.version} does not match the record`);
  }
  const rec: NewLogRecord = {
    link: r.link,
    action: r.action as NewLogRecord['action'],
    version: r.version,
    epoch: r.epoch,
    timeMicros: r.timeMicros,
    state,
  };
  if (r.requestId !== undefined) rec.requestId = checkRequestId(String(r.requestId));
  return rec;
}

export class HistorySynch {
  constructor(
    private readonly d: Deps,
    private readonly stats: SynchStats,
  ) {}

  // ---- As a peer ----

  /** kind `versions`: the marks of every retained version of `links`, as many links as fit synchHistoryMarksMax. */
  versions(raw: Record<string, unknown>): { versions: Record<string, VersionMark[]> } {
    const { factoryLink, links } = raw;
    if (!Array.isArray(links) || links.length > limits.synchHistoryLinksMax)
      throw bad(`links must be an array of at most ${limits.synchHistoryLinksMax}`);
    const out: Record<string, VersionMark[]> = {};
    let marks = 0;
    for (const l of links as unknown[]) {
      if (!childOf(this.d.registry, factoryLink, l)) throw bad(`${JSON.stringify(l)} is not a child of ${String(factoryLink)}`);
      const m = this.d.index.marks(l);
      // At least one link per answer, so the asker always makes progress.
      if (marks > 0 && marks + m.length > limits.synchHistoryMarksMax) break;
      out[l] = m;
      marks += m.length;
    }
    return { versions: out };
  }

  /** kind `records`: the retained versions asked for ([link, [version...]] pairs), as many as fit a page. */
  records(raw: Record<string, unknown>): { records: NewLogRecord[] } {
    const { factoryLink, asks } = raw;
    if (!Array.isArray(asks) || asks.length > limits.synchHistoryLinksMax)
      throw bad(`asks must be an array of at most ${limits.synchHistoryLinksMax} [link, versions] pairs`);
    const out: NewLogRecord[] = [];
    let bytes = 0;
    for (const a of asks as unknown[]) {
      if (!Array.isArray(a) || a.length !== 2 || !childOf(this.d.registry, factoryLink, a[0]) || !Array.isArray(a[1]))
        throw bad('each ask must be a [link, versions] pair of a child of the factory');
      for (const v of a[1] as unknown[]) {
        if (!isCount(v)) throw bad('versions must be integers');
        const rec = this.recordOf(a[0], v);
        if (!rec) continue;
        const size = JSON.stringify(rec.state).length;
        if (out.length > 0 && (out.length >= limits.synchHistoryRecordsMax || bytes + size > PAGE_BYTES)) return { records: out };
        out.push(rec);
        bytes += size;
      }
    }
    return { records: out };
  }

  /** kind `insert`: versions an owner found this host lacks, appended under the latest state of each link. */
  async insert(raw: Record<string, unknown>): Promise<{ inserted: number }> {
    const { factoryLink, records } = raw;
    if (typeof factoryLink !== 'string') throw bad('factoryLink must name a replicated factory');
    if (!Array.isArray(records) || records.length > limits.synchHistoryRecordsMax)
      throw bad(`records must be an array of at most ${limits.synchHistoryRecordsMax}`);
    const byLink = new Map<Link, NewLogRecord[]>();
    for (const r of records as unknown[]) {
      const rec = parseHistoryRecord(r, this.d.registry, factoryLink);
      byLink.set(rec.link, [...(byLink.get(rec.link) ?? []), rec]);
    }
    const counts = await Promise.all([...byLink].map(([l, recs]) => this.d.store.appendHistory(l, recs)));
    const inserted = counts.reduce((a, b) => a + b, 0);
    this.stats.historyReceived += inserted;
    return { inserted };
  }

  private recordOf(link: Link, version: number): NewLogRecord | undefined {
    const state = this.d.index.version(link, version);
    if (!state) return undefined;
    const rec: NewLogRecord = {
      link,
      action: state.documentUpdateAction,
      version,
      epoch: state.documentEpoch ?? 0,
      timeMicros: state.documentUpdateTimeMicros,
      state,
    };
    const requestId = this.d.index.requestId(link, version);
    if (requestId !== undefined) rec.requestId = requestId;
    return rec;
  }

  // ---- As the owner ----

  /**
   * Brings the retained history of `scope.links` (owned here, their latest states settled) to the
   * same versions on this host and every replica that answered: pulls what this host lacks, then
   * ships what each replica lacks.
   */
  async catchUp(factoryLink: Link, scope: HistoryScope): Promise<void> {
    const candidates = new Map<NodeId, Link[]>();
    for (const l of scope.links) {
      const own = this.d.index.digest(l);
      if (own === 0) continue;
      // A single version here has nothing under it to send to a peer that held nothing (it was
      // just pushed the latest), and such a peer has nothing to give: the common case of a host
      // that missed creates costs no listing.
      const single = this.d.index.historyLength(l) <= 1;
      for (const id of scope.replicas.get(l) ?? []) {
        if (!scope.urls.has(id)) continue;
        const h = scope.heads.get(l)?.get(id);
        if (h?.history === own || (h === undefined && single)) continue;
        candidates.set(id, [...(candidates.get(id) ?? []), l]);
      }
    }
    if (candidates.size === 0) return;
    const listed = new Map<NodeId, Map<Link, VersionMark[]>>();
    await Promise.all(
      [...candidates].map(async ([id, links]) => {
        const m = await this.list(scope.urls.get(id)!, factoryLink, links).catch((e: unknown) => this.failed(id, e));
        if (m) listed.set(id, m);
      }),
    );
    await this.pull(factoryLink, listed, scope.urls);
    await Promise.all(
      [...listed].map(([id, m]) => this.ship(scope.urls.get(id)!, factoryLink, m).catch((e: unknown) => this.failed(id, e))),
    );
  }

  private failed(id: NodeId, e: unknown): undefined {
    this.stats.historyFailures++;
    this.d.logger.debug({ peer: id, err: (e as Error).message }, 'history catch-up left for later');
    return undefined;
  }

  private async call(url: string, body: Record<string, unknown>): Promise<unknown> {
    const r = await this.d.peers.json(url, { method: 'POST', body, timeoutMs: peerTimeoutMs(this.d) });
    if (r.status !== 200) throw new KryptonError('PEER_UNAVAILABLE', `history ${String(body.kind)} from ${url}: status ${r.status}`);
    return r.body;
  }

  /** A peer's marks of `links`, in as many requests as its answers need. */
  private async list(url: string, factoryLink: Link, links: Link[]): Promise<Map<Link, VersionMark[]>> {
    const out = new Map<Link, VersionMark[]>();
    let rest = links;
    while (rest.length > 0) {
      const page = rest.slice(0, limits.synchHistoryLinksMax);
      const body = (await this.call(url, { kind: 'versions', factoryLink, links: page })) as { versions?: Record<string, unknown> };
      let got = 0;
      for (const l of page) {
        const m = body.versions?.[l];
        if (!Array.isArray(m)) continue;
        out.set(l, m.filter(isMark));
        got++;
      }
      if (got === 0) throw new KryptonError('PEER_UNAVAILABLE', `history versions from ${url}: an empty answer`);
      rest = rest.filter((l) => !out.has(l));
    }
    return out;
  }

  /**
   * The versions this host lacks, each taken from the first peer listing it. A takeover's copy
   * taken (the last version of an epoch run, kept since the version above repeats it) vouches for
   * the rest of that run, which a second round takes at once: otherwise the run stayed missing
   * until the next pass (torture partition seed 2002: 64 versions missing at the check).
   */
  private async pull(
    factoryLink: Link,
    listed: Map<NodeId, Map<Link, VersionMark[]>>,
    urls: ReadonlyMap<NodeId, string>,
    again = true,
  ): Promise<void> {
    let copiesKept = 0;
    const wanted = new Map<NodeId, Map<Link, number[]>>();
    const taken = new Map<Link, Set<number>>();
    const maybeCopies = new Map<Link, Set<number>>();
    for (const [id, m] of listed) {
      for (const [l, marks] of m) {
        const own = this.d.index.marks(l);
        const got = taken.get(l) ?? new Set<number>();
        taken.set(l, got);
        const retention = this.d.index.retention(l);
        const copies = copiesToPull(own, marks, retention).filter((v) => !got.has(v));
        if (copies.length) maybeCopies.set(l, new Set(copies));
        const vs = [...versionsToPull(own, marks, retention), ...copies].filter((v) => !got.has(v));
        if (vs.length === 0) continue;
        for (const v of vs) got.add(v);
        const w = wanted.get(id) ?? new Map<Link, number[]>();
        w.set(l, vs);
        wanted.set(id, w);
      }
    }
    await Promise.all(
      [...wanted].map(async ([id, asks]) => {
        try {
          let rest = [...asks].flatMap(([l, vs]) => vs.map((v): [Link, number] => [l, v]));
          while (rest.length > 0) {
            const page = groupAsks(rest.slice(0, limits.synchHistoryRecordsMax));
            const body = (await this.call(urls.get(id)!, { kind: 'records', factoryLink, asks: page })) as { records?: unknown[] };
            const recs = (body.records ?? []).map((r) => parseHistoryRecord(r, this.d.registry, factoryLink));
            if (recs.length === 0) return;
            // A possible takeover copy is kept only when this host's next version repeats its state.
            const keep = (r: NewLogRecord) =>
              !maybeCopies.get(r.link)?.has(r.version) || sameState(r.state, this.d.index.version(r.link, r.version + 1));
            const byLink = new Map<Link, NewLogRecord[]>();
            for (const r of recs.filter(keep)) {
              if (maybeCopies.get(r.link)?.has(r.version)) copiesKept++;
              byLink.set(r.link, [...(byLink.get(r.link) ?? []), r]);
            }
            for (const [l, rs] of byLink) this.stats.historyPulled += await this.d.store.appendHistory(l, rs);
            // Answers follow the asks' order and stop at a page's end: what comes after the last
            // record answered is asked again; what came before it and was not answered is gone there.
            const last = recs[recs.length - 1]!;
            const at = rest.findIndex(([l, v]) => l === last.link && v === last.version);
            if (at < 0) return;
            rest = rest.slice(at + 1);
          }
        } catch (e) {
          this.failed(id, e);
        }
      }),
    );
    if (again && copiesKept > 0) await this.pull(factoryLink, listed, urls, false);
  }

  /** Sends one peer the versions it lacks of the links it listed, in pages. */
  private async ship(url: string, factoryLink: Link, listed: Map<Link, VersionMark[]>): Promise<void> {
    let page: NewLogRecord[] = [];
    let bytes = 0;
    const flush = async () => {
      if (page.length === 0) return;
      await this.call(url, { kind: 'insert', factoryLink, records: page });
      this.stats.historyShipped += page.length;
      page = [];
      bytes = 0;
    };
    for (const [l, marks] of listed) {
      const own = this.d.index.marks(l);
      const copied = copiedByTakeover(own, (v) => sameState(this.d.index.version(l, v), this.d.index.version(l, v + 1)));
      for (const v of versionsToShip(own, marks, copied)) {
        const rec = this.recordOf(l, v);
        if (!rec) continue;
        const size = JSON.stringify(rec).length;
        if (page.length > 0 && (page.length >= limits.synchHistoryRecordsMax || bytes + size > PAGE_BYTES)) await flush();
        page.push(rec);
        bytes += size;
      }
    }
    await flush();
  }
}

/** Marks a takeover's rewrite sets on the copy it starts from; everything else it keeps as it was. */
const REWRITTEN = new Set(['documentVersion', 'documentEpoch', 'documentOwner', 'documentUpdateTimeMicros']);

/** Whether two retained states are the same but for the marks a takeover's rewrite sets. */
function sameState(a: ServiceDocument | undefined, b: ServiceDocument | undefined): boolean {
  if (!a || !b) return false;
  const strip = (d: ServiceDocument) => JSON.stringify(Object.entries(d).filter(([k]) => !REWRITTEN.has(k)));
  return strip(a) === strip(b);
}

function isMark(m: unknown): m is VersionMark {
  return Array.isArray(m) && m.length === 3 && isCount(m[0]) && isCount(m[1]) && isCount(m[2]);
}

/** [link, version] pairs as [link, versions] asks. */
function groupAsks(pairs: readonly [Link, number][]): [Link, number[]][] {
  const m = new Map<Link, number[]>();
  for (const [l, v] of pairs) m.set(l, [...(m.get(l) ?? []), v]);
  return [...m];
}
