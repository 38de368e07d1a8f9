/**
 * The dedup window: which request ids an owner has already applied, per link, and what each
 * answered. A write carries a request id (its entry host's, kept across forward retries, or the
 * client's Idempotency-Key) into its log record; every record a host appends or replays is noted
 * here, so the owner, a restarted owner and a replica that becomes owner all know the ids of
 * recent writes. A hit answers the state the original write made, so a retry is told what the
 * original was told (the same documentVersion) and nothing new is logged.
 *
 * A write logged but short of its quorum is kept as unconfirmed: its retry is answered "outcome
 * unknown", never applied a second time nor reported a success it may not be.
 *
 * Bounded four ways (lib/limits.ts): ids per link (the oldest goes first, but an id younger than
 * the retry horizon only past a hard bound), links and ids in all (the link written least recently
 * goes first), and age (an id older than the window is no hit). Time is passed in: the caller's
 * clock, or a replayed record's own time. An entry host retries a forward only within its
 * operation deadline, so within the horizon a retry's original is either remembered or was never
 * applied here, unless a hard bound dropped a young id: mayHaveForgotten() says so, and the owner
 * then answers the retry "outcome unknown" instead of applying it a second time (torture seed
 * 4004: a write retried by its entry host after a 7 s pause, 65 writes of the link later, was
 * applied again at version 82 after version 17).
 */

import type { LogRecord, NewLogRecord, ServiceDocument } from './document.js';
import { KryptonError } from './errors.js';
import type { Link, Micros } from './ids.js';
import { limits } from './limits.js';

/** What a write with a request id made: the state its retries are answered with. */
export interface DedupEntry {
  requestId: string;
  timeMicros: Micros;
  state: ServiceDocument;
  /**
   * Set when the write was logged here but failed its quorum: it may survive (a replica took it)
   * or be lost to a takeover, so a retry may neither run it again nor report it as a success.
   */
  unconfirmed?: true;
}

export interface DedupBounds {
  idsPerLinkMax: number;
  linksMax: number;
  windowMicros: Micros;
  /** Ids younger than this (the newest note's time minus it) stay past idsPerLinkMax, up to idsPerLinkHardMax. 0: none do. */
  retryHorizonMicros?: Micros;
  idsPerLinkHardMax?: number;
  /** Ids over all links; past it the links written least recently go. */
  idsMax?: number;
}

export const DEFAULT_DEDUP_BOUNDS: DedupBounds = {
  idsPerLinkMax: limits.dedupIdsPerLinkMax,
  linksMax: limits.dedupLinksMax,
  windowMicros: limits.dedupWindowMicros,
  retryHorizonMicros: limits.dedupRetryHorizonMicros,
  idsPerLinkHardMax: limits.dedupIdsPerLinkHardMax,
  idsMax: limits.dedupIdsMax,
};

/** An Idempotency-Key or forwarded request id as given, checked: printable ASCII, bounded. */
export function checkRequestId(raw: string): string {
  if (raw.length === 0 || raw.length > limits.requestIdCharsMax || !/^[\x21-\x7e]+$/.test(raw)) {
    throw new KryptonError(
      'INVALID_ARGUMENT',
      `Idempotency-Key must be 1 to ${limits.requestIdCharsMax} printable ASCII characters without spaces`,
    );
  }
  return raw;
}

export class DedupWindow {
  /**
   * Per link, its ids oldest first, the count of its last note (to tell a stale queue slot), and
   * the time of the newest id a hard bound dropped from it.
   */
  private readonly links = new Map<Link, { entries: DedupEntry[]; written: number; forgotten?: Micros }>();
  /** The time of the newest id of any link dropped whole (the link or id bounds). */
  private droppedNewest = Number.NEGATIVE_INFINITY;
  private total = 0;
  /**
   * Links in the order of their notes, a link again at each note; a slot whose count is not its
   * link's last is stale and skipped. Evicting from the front of a Map in V8 walks every deleted
   * slot before it, so past the link bound each note got slower (50 us at 100 000 links).
   */
  private order: { link: Link; written: number }[] = [];
  private head = 0;
  private notes = 0;

  constructor(private readonly bounds: DedupBounds = DEFAULT_DEDUP_BOUNDS) {}

  /** Notes a record a host appended or replayed; one without a request id changes nothing. */
  note(rec: NewLogRecord | LogRecord): void {
    if (rec.requestId === undefined) return;
    let at = this.links.get(rec.link);
    if (!at) {
      at = { entries: [], written: 0 };
      this.links.set(rec.link, at);
    }
    at.written = ++this.notes;
    this.order.push({ link: rec.link, written: at.written });
    const { entries } = at;
    const same = entries.findIndex((e) => e.requestId === rec.requestId);
    if (same >= 0) {
      entries.splice(same, 1);
      this.total--;
    }
    entries.push({ requestId: rec.requestId, timeMicros: rec.timeMicros, state: rec.state });
    this.total++;
    if (entries.length > this.bounds.idsPerLinkMax) this.trim(at, rec.timeMicros);
    this.evict();
  }

  /** Drops a link's ids past its bound: the old ones first, young ones only past the hard bound. */
  private trim(at: { entries: DedupEntry[]; forgotten?: Micros }, nowMicros: Micros): void {
    const { entries } = at;
    const young = nowMicros - (this.bounds.retryHorizonMicros ?? 0);
    const hard = Math.max(this.bounds.idsPerLinkMax, this.bounds.idsPerLinkHardMax ?? 0);
    let drop = 0;
    while (entries.length - drop > this.bounds.idsPerLinkMax && entries[drop]!.timeMicros < young) drop++;
    const over = entries.length - drop - hard;
    if (over > 0) {
      drop += over;
      at.forgotten = Math.max(at.forgotten ?? Number.NEGATIVE_INFINITY, entries[drop - 1]!.timeMicros);
    }
    entries.splice(0, drop);
    this.total -= drop;
  }

  /**
   * Whether a write of `link` within the retry horizon before `nowMicros` may have left the window
   * (a hard bound dropped a young id of it, or a whole link that recently): a retry whose id is
   * not found is then in doubt, not new.
   */
  mayHaveForgotten(link: Link, nowMicros: Micros): boolean {
    const from = nowMicros - (this.bounds.retryHorizonMicros ?? 0);
    return this.droppedNewest >= from || (this.links.get(link)?.forgotten ?? Number.NEGATIVE_INFINITY) >= from;
  }

  /** Drops the links written least recently past the link bound, and compacts the order queue. */
  private evict(): void {
    const idsMax = this.bounds.idsMax ?? Number.POSITIVE_INFINITY;
    while ((this.links.size > this.bounds.linksMax || this.total > idsMax) && this.head < this.order.length) {
      const { link, written } = this.order[this.head++]!;
      const at = this.links.get(link);
      if (at?.written !== written) continue;
      this.links.delete(link);
      this.total -= at.entries.length;
      const newest = at.entries[at.entries.length - 1]?.timeMicros ?? Number.NEGATIVE_INFINITY;
      this.droppedNewest = Math.max(this.droppedNewest, newest, at.forgotten ?? Number.NEGATIVE_INFINITY);
    }
    // Stale slots pile up at the front and for links noted again (one live slot per link): start
    // over from the live ones once they are most of the queue, so it stays within twice the links.
    if (this.order.length - this.head > 2 * this.links.size + 1024 || (this.head > 1024 && this.head > this.order.length / 2)) {
      this.order = this.order.slice(this.head).filter((o) => this.links.get(o.link)?.written === o.written);
      this.head = 0;
    }
  }

  /** The write `requestId` made to `link`, when it is within the window at `nowMicros`. */
  lookup(link: Link, requestId: string, nowMicros: Micros): DedupEntry | undefined {
    const entries = this.links.get(link)?.entries;
    if (!entries) return undefined;
    const from = nowMicros - this.bounds.windowMicros;
    let stale = 0;
    while (stale < entries.length && entries[stale]!.timeMicros < from) stale++;
    // Ids past the window are dropped as they are met: nothing else walks the window.
    if (stale > 0) {
      entries.splice(0, stale);
      this.total -= stale;
    }
    if (entries.length === 0) {
      // Its forgotten mark, if any, is older than the window, itself longer than the horizon.
      this.links.delete(link);
      return undefined;
    }
    // Newest first; an id noted out of time order may sit behind a newer one and still be stale.
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i]!;
      if (e.requestId === requestId) return e.timeMicros >= from ? e : undefined;
    }
    return undefined;
  }

  /** Marks the write `requestId` made to `link` unconfirmed: it did not reach its quorum. A later note of the id clears it. */
  unconfirmed(link: Link, requestId: string): void {
    const e = this.links.get(link)?.entries.find((x) => x.requestId === requestId);
    if (e) e.unconfirmed = true;
  }

  /**
   * Every id remembered, links in the order they were last noted and each link's ids oldest
   * first: noting them in this order into an empty window rebuilds this one (a snapshot does).
   * Unconfirmed marks are not included: they have their own store on disk.
   */
  entries(): { link: Link; requestId: string; timeMicros: Micros; state: ServiceDocument }[] {
    const out: { link: Link; requestId: string; timeMicros: Micros; state: ServiceDocument }[] = [];
    for (let i = this.head; i < this.order.length; i++) {
      const { link, written } = this.order[i]!;
      const at = this.links.get(link);
      if (at?.written !== written) continue;
      for (const e of at.entries) out.push({ link, requestId: e.requestId, timeMicros: e.timeMicros, state: e.state });
    }
    return out;
  }

  /**
   * The marks mayHaveForgotten() reads that still count at `nowMicros` (within the retry
   * horizon), `''` standing for the whole window: a snapshot keeps them, since rebuilding the
   * window from entries() alone would not drop those ids again and would forget that it had.
   */
  forgottenMarks(nowMicros: Micros): [Link, Micros][] {
    const from = nowMicros - (this.bounds.retryHorizonMicros ?? 0);
    const out: [Link, Micros][] = [];
    if (this.droppedNewest >= from) out.push(['', this.droppedNewest]);
    for (const [link, at] of this.links) if (at.forgotten !== undefined && at.forgotten >= from) out.push([link, at.forgotten]);
    return out;
  }

  /**
   * Marks from a snapshot (forgottenMarks), after its ids were noted. A link the window no longer
   * holds ids of gets a mark for the whole window: a lookup drops a link without ids, mark and all.
   */
  restoreForgotten(marks: readonly (readonly [Link, Micros])[]): void {
    for (const [link, micros] of marks) {
      const at = link === '' ? undefined : this.links.get(link);
      if (at) at.forgotten = Math.max(at.forgotten ?? Number.NEGATIVE_INFINITY, micros);
      else this.droppedNewest = Math.max(this.droppedNewest, micros);
    }
  }

  /** Slots in the order queue, live or stale: within twice the links remembered, plus a constant. */
  queued(): number {
    return this.order.length - this.head;
  }

  /** Ids remembered, over all links. */
  size(): number {
    return this.total;
  }
}
