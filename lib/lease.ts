/**
 * Owner leases, the pure part (docs/architecture.md, "Owner lease"): when an owner may serve a
 * link from its own copy, how long a replica waits before it promises a link to a new owner, and
 * which links a holder must synchronize again because a grantor promised them to someone else.
 * server/synch/lease.ts runs them.
 *
 * A holder uses grants made under its current view only: when its view changes it drops the
 * others before its next renewal leaves, and records no answer to a renewal sent under an older
 * view. So a grantor that gets a renewal under a new holder view drops that holder's grants under
 * other holder views at once, and a link that moved away from the holder is promised to its new
 * owner without waiting them out.
 *
 * A grant is dated on the holder's clock from when it SENT the renewal, and on the grantor's from
 * when it ANSWERED it, so the holder's lease always ends first in real time, given clock rates
 * that differ by less than `driftRatio`. A grant covers a link only when both the holder's view
 * and the grantor's view name the holder its owner: a grantor that thinks another host owns the
 * link neither feeds the holder's lease for it nor waits for it.
 */

import { holders } from './group/availability.js';
import type { Link, Micros, NodeId } from './ids.js';

export interface LeaseTiming {
  /** How long a grant lasts on the holder's clock, from the renewal's send time. */
  durationMicros: Micros;
  /** Bound on how much two hosts' clock rates differ (0.01: 1 %). */
  driftRatio: number;
  /** Added to the grantor's wait for the time an answer spends on the wire and in queues. */
  marginMicros: Micros;
}

/** The owner of `link` among `view` (eligible owners), as ownerOf picks it; undefined for an empty view. */
export function ownerIn(view: readonly NodeId[], link: Link): NodeId | undefined {
  return view.length === 0 ? undefined : holders(link, view, undefined)[0];
}

/** What a grantor answers a renewal with, besides its view. */
export interface LeaseReport {
  /** The grantor's newest promise sequence: the holder's next cursor. */
  seq: number;
  /** Promises at or below this sequence can no longer be listed. */
  floor: number;
  /** Links promised to other hosts since the holder's cursor; `all` when they cannot be listed. */
  promised: readonly Link[] | 'all';
}

/** The two views a grant was given under: it covers the links both name the holder the owner of. */
interface GrantViews {
  holderView: readonly NodeId[];
  grantorView: readonly NodeId[];
}

const sameView = (a: readonly NodeId[], b: readonly NodeId[]) => a.length === b.length && a.every((id, i) => id === b[i]);

function coversLink(g: GrantViews, holder: NodeId, link: Link): boolean {
  return ownerIn(g.holderView, link) === holder && ownerIn(g.grantorView, link) === holder;
}

interface HeldGrant extends GrantViews {
  sentMicros: Micros;
}

/** The holder's side: the grants it holds and the promise cursors it keeps per grantor. */
export class LeaseHolder {
  private readonly grants = new Map<NodeId, HeldGrant>();
  private readonly cursors = new Map<NodeId, number>();
  /** The holder view grants count under (viewChanged); undefined until first set: any. */
  private view: readonly NodeId[] | undefined;

  constructor(
    private readonly selfId: NodeId,
    private readonly timing: LeaseTiming,
  ) {}

  /** The cursor to send `grantor` with the next renewal (0 before any answer). */
  cursor(grantor: NodeId): number {
    return this.cursors.get(grantor) ?? 0;
  }

  /**
   * An answered renewal, sent at `sentMicros` with `holderView`. Returns the links to synchronize
   * again before serving them (`all`: every link), to be acted on before the grant counts.
   */
  answered(
    grantor: NodeId,
    sentMicros: Micros,
    holderView: readonly NodeId[],
    grantorView: readonly NodeId[],
    report: LeaseReport,
  ): readonly Link[] | 'all' {
    const cursor = this.cursor(grantor);
    const distrust = report.floor > cursor ? 'all' : report.promised;
    this.cursors.set(grantor, Math.max(cursor, report.seq));
    // Sent under a view this holder has left: the grantor may already drop it (viewChanged).
    if (this.view !== undefined && !sameView(holderView, this.view)) return distrust;
    const cur = this.grants.get(grantor);
    // The same array for equal views: held() then picks the link's owner once per view, not per grant.
    const gv = sameView(grantorView, holderView) ? holderView : grantorView;
    if (!cur || sentMicros > cur.sentMicros) this.grants.set(grantor, { sentMicros, holderView, grantorView: gv });
    return distrust;
  }

  /**
   * This holder's view is now `view`: grants made under another holder view no longer count.
   * Called before a renewal under `view` is sent (its grantors drop those grants on receipt).
   */
  viewChanged(view: readonly NodeId[]): void {
    this.view = view;
    for (const [grantor, g] of this.grants) if (!sameView(g.holderView, view)) this.grants.delete(grantor);
  }

  /** A grantor left the group or restarted unknown: its grant no longer counts. */
  forget(grantor: NodeId): void {
    this.grants.delete(grantor);
  }

  /** Whether `grantor`'s grant covers `link` at `nowMicros`. */
  covers(grantor: NodeId, link: Link, nowMicros: Micros): boolean {
    const g = this.grants.get(grantor);
    if (!g || nowMicros >= g.sentMicros + this.timing.durationMicros) return false;
    return coversLink(g, this.selfId, link);
  }

  /**
   * Whether this host may serve `link`: itself plus the `replicas` (other hosts) whose grant
   * covers it reach `quorum`.
   */
  held(link: Link, replicas: readonly NodeId[], quorum: number, nowMicros: Micros): boolean {
    if (quorum <= 1) return true;
    let count = 1;
    // The read path asks this on every GET: the owner under one view is hashed once, not per grant.
    let seen: readonly NodeId[] | undefined;
    let seenOwner: NodeId | undefined;
    const owner = (view: readonly NodeId[]) => {
      if (view !== seen) [seen, seenOwner] = [view, ownerIn(view, link)];
      return seenOwner;
    };
    for (const r of replicas) {
      const g = r === this.selfId ? undefined : this.grants.get(r);
      if (!g || nowMicros >= g.sentMicros + this.timing.durationMicros) continue;
      if (owner(g.holderView) === this.selfId && owner(g.grantorView) === this.selfId && ++count >= quorum) return true;
    }
    return false;
  }
}

interface GivenGrant extends GrantViews {
  answeredMicros: Micros;
}

interface PromiseEntry {
  seq: number;
  link: Link;
  by: NodeId;
}

export interface GrantorOptions {
  timing: LeaseTiming;
  /** When this process started, on its clock: no promise until a lease after it. */
  startedMicros: Micros;
  /** The last promise sequence made before this start (from the promise file). */
  seqAtStart: number;
  /** Promises kept to report (limits.ts). */
  promisesKeptMax: number;
  /** Links one report lists at most; more is reported as `all`. */
  reportLinksMax: number;
  /** Distinct view pairs kept per holder; past it, one grant covering every link stands in. */
  viewsPerHolderMax: number;
}

/** The grantor's side: the grants it gave, the wait before a promise, the promises to report. */
export class LeaseGrantor {
  private readonly given = new Map<NodeId, { byViews: Map<string, GivenGrant>; everything?: Micros }>();
  private readonly ring: PromiseEntry[] = [];
  private seq: number;
  private durableSeq: number;
  private floor: number;

  constructor(private readonly o: GrantorOptions) {
    this.seq = o.seqAtStart;
    this.durableSeq = o.seqAtStart;
    this.floor = o.seqAtStart;
  }

  /** How long a grant answered at `answeredMicros` binds this grantor. */
  private expiry(answeredMicros: Micros): Micros {
    const t = this.o.timing;
    return answeredMicros + Math.ceil(t.durationMicros * (1 + t.driftRatio)) + t.marginMicros;
  }

  /** A renewal answered now: `holder` may count it for the links both views name it the owner of. */
  granted(holder: NodeId, holderView: readonly NodeId[], grantorView: readonly NodeId[], nowMicros: Micros): void {
    let h = this.given.get(holder);
    if (!h) {
      h = { byViews: new Map() };
      this.given.set(holder, h);
    }
    for (const [k, g] of h.byViews) if (this.expiry(g.answeredMicros) <= nowMicros) h.byViews.delete(k);
    // The holder uses no grant of another holder view from the moment it sent this renewal.
    for (const [k, g] of h.byViews) if (!sameView(g.holderView, holderView)) h.byViews.delete(k);
    const key = `${holderView.join(',')}|${grantorView.join(',')}`;
    h.byViews.delete(key);
    h.byViews.set(key, { answeredMicros: nowMicros, holderView, grantorView });
    if (h.byViews.size > this.o.viewsPerHolderMax) {
      // Dropping a live grant would let a promise through early: fold the oldest into one that covers everything.
      const [oldKey, oldest] = h.byViews.entries().next().value!;
      h.byViews.delete(oldKey);
      h.everything = Math.max(h.everything ?? 0, oldest.answeredMicros);
    }
  }

  /** `holder` announced it stopped serving (a graceful stop): its grants bind no more. */
  released(holder: NodeId): void {
    this.given.delete(holder);
  }

  /** Microseconds to wait before `link` may be promised to `asker` (0: now). */
  waitMicros(asker: NodeId, link: Link, nowMicros: Micros): Micros {
    let until = this.expiry(this.o.startedMicros);
    for (const [holder, h] of this.given) {
      if (holder === asker) continue;
      if (h.everything !== undefined) until = Math.max(until, this.expiry(h.everything));
      for (const g of h.byViews.values()) {
        const end = this.expiry(g.answeredMicros);
        if (end <= until || end <= nowMicros) continue;
        if (coversLink(g, holder, link)) until = end;
      }
    }
    return Math.max(0, until - nowMicros);
  }

  /** How long any grant given binds this grantor still, whatever the link (0: none does). */
  bindingMicros(nowMicros: Micros): Micros {
    let until = Number.NEGATIVE_INFINITY;
    for (const h of this.given.values()) {
      if (h.everything !== undefined) until = Math.max(until, this.expiry(h.everything));
      for (const g of h.byViews.values()) until = Math.max(until, this.expiry(g.answeredMicros));
    }
    return Math.max(0, until - nowMicros);
  }

  /** Promises just granted to `by`: numbered, and reported to the other holders from now on. */
  promised(by: NodeId, links: readonly Link[]): void {
    for (const link of links) this.ring.push({ seq: ++this.seq, link, by });
    const over = this.ring.length - this.o.promisesKeptMax;
    if (over > 0) this.floor = this.ring.splice(0, over).at(-1)!.seq;
  }

  /** The newest promise sequence, written with each promise line so a restart continues it. */
  get sequence(): number {
    return this.seq;
  }

  /**
   * The promise file holds sequence `seq`. Reports move a holder's cursor only up to here: a
   * promise lost with a crash before its line was synced is numbered again after the restart,
   * and a cursor past its number would skip the new promise.
   */
  persisted(seq: number): void {
    this.durableSeq = Math.max(this.durableSeq, Math.min(seq, this.seq));
  }

  /** What to tell `holder`, whose cursor is `cursor`: every promise above it, durable or not. */
  report(holder: NodeId, cursor: number): LeaseReport {
    const base = { seq: this.durableSeq, floor: this.floor };
    if (cursor < this.floor) return { ...base, promised: 'all' };
    let lo = 0;
    let hi = this.ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ring[mid]!.seq <= cursor) lo = mid + 1;
      else hi = mid;
    }
    const links: Link[] = [];
    for (let i = lo; i < this.ring.length; i++) {
      const e = this.ring[i]!;
      if (e.by === holder) continue;
      if (links.length >= this.o.reportLinksMax) return { ...base, promised: 'all' };
      links.push(e.link);
    }
    return { ...base, promised: links };
  }
}
