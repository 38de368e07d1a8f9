/**
 * The owner lease at run time (the rules are lib/lease.ts; the design is docs/architecture.md,
 * "Owner lease"). An owner answers a read, or a precondition, from its own copy only while a write
 * quorum of the link's replicas has granted it a lease recently, so an owner cut off from the
 * majority stops serving what the majority may already have taken over and overwritten. This file
 * owns the renewal timer (every peer, every limits.leaseRenewIntervalMicros, one request in flight
 * per peer), the grantor's endpoint (`POST /core/node-selectors/default/lease`), the wait a replica
 * makes before it promises a link to a new owner (Takeovers.answer calls waitMicros and promised),
 * and the release a stopping host sends so its peers need not wait its grants out.
 *
 * Lease time is measured on performance.now(), which never jumps: the host clock's `observe`
 * moves it forward to the newest time in the log, which would end or stretch a lease at random.
 */

import { KryptonError } from '../../lib/errors.js';
import { eligibleOwners } from '../../lib/group/rules.js';
import type { NodeGroupState } from '../../lib/group/types.js';
import type { Link, Micros, NodeId } from '../../lib/ids.js';
import { LeaseGrantor, LeaseHolder, type LeaseReport, type LeaseTiming } from '../../lib/lease.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import { successThreshold } from '../../lib/replication/quorum.js';
import type { RegisteredService } from '../../lib/service.js';
import type { Clock } from '../base/clock.js';
import type { GroupRuntime } from '../membership/groups.js';
import type { Selectors } from '../membership/selectors.js';
import type { PeerClient } from '../net/peers.js';
import type { Replicator } from '../replication/replicator.js';
import { originOf } from '../routing/routing.js';

export const LEASE_PATH = '/core/node-selectors/default/lease';

const TIMING: LeaseTiming = {
  durationMicros: limits.leaseDurationMicros,
  driftRatio: limits.leaseDriftRatio,
  marginMicros: limits.leaseMarginMicros,
};

export interface OwnerLeaseDeps {
  hostId: NodeId;
  selectors: Selectors;
  group: Pick<GroupRuntime, 'onChanged'>;
  replicator: Pick<Replicator, 'replicaSet'>;
  peers: PeerClient;
  /** The promise sequence the promise file ended at (PromiseStore.sequence). */
  seqAtStart: number;
  /** The last process stopped cleanly, no grant of it running (PromiseStore.cleanStop): no wait at start. */
  cleanStart: boolean;
  /** Whether this host owns `link` in its view now. */
  owned(link: Link): boolean;
  /** Links to synchronize again before they are served (`all`: every link). */
  distrust(links: readonly Link[] | 'all'): void;
  /**
   * Off with peer synchronization (--isPeerSynchronizationEnabled=false): no host then takes a
   * link over behind its owner, so there is nothing to wait out; renewals are still answered.
   */
  enabled: boolean;
  /** The host clock, for request deadlines (never for lease time). */
  clock: Clock;
  operationTimeoutMicros: number;
  /** The monotonic clock, in µs; performance.now() unless a test gives its own. */
  now?: () => Micros;
}

/** A renewal as it arrives: a grant request, or a stopping holder's release. */
type LeaseRequest = { from: NodeId; release: true } | { from: NodeId; view: NodeId[]; cursor: number };

/** What a grantor answers a renewal with. */
export interface LeaseAnswer extends LeaseReport {
  view: NodeId[];
}

function checkView(v: unknown, what: string): NodeId[] {
  const bad = () => new KryptonError('INVALID_BODY', `lease: ${what} must be an array of at most ${limits.leaseViewNodesMax} host ids`);
  if (!Array.isArray(v) || v.length > limits.leaseViewNodesMax) throw bad();
  for (const id of v) if (typeof id !== 'string' || id === '' || id.length > limits.documentIdCharsMax) throw bad();
  return v as NodeId[];
}

/** Checks a renewal body; anything wrong is a 400 naming the field. */
export function parseLeaseRequest(raw: unknown): LeaseRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new KryptonError('INVALID_BODY', 'lease: the body must be an object');
  const { from, release, view, cursor } = raw as Record<string, unknown>;
  if (typeof from !== 'string' || from === '' || from.length > limits.documentIdCharsMax)
    throw new KryptonError('INVALID_BODY', 'lease: from must name the asking host');
  if (release !== undefined) {
    if (release !== true) throw new KryptonError('INVALID_BODY', 'lease: release must be true when present');
    return { from, release: true };
  }
  if (!Number.isSafeInteger(cursor) || (cursor as number) < 0)
    throw new KryptonError('INVALID_BODY', 'lease: cursor must be an integer of at least 0');
  return { from, view: checkView(view, 'view'), cursor: cursor as number };
}

function parseAnswer(body: unknown): LeaseAnswer | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { view, seq, floor, promised } = body as Record<string, unknown>;
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(floor)) return undefined;
  if (promised !== 'all' && !(Array.isArray(promised) && promised.every((l) => typeof l === 'string'))) return undefined;
  try {
    return { view: checkView(view, 'view'), seq: seq as number, floor: floor as number, promised: promised as Link[] | 'all' };
  } catch {
    return undefined;
  }
}

export class OwnerLease {
  private readonly holder: LeaseHolder;
  private readonly grantor: LeaseGrantor;
  private readonly now: () => Micros;
  private readonly inFlight = new Set<NodeId>();
  /** Readers waiting for the next renewal answer to check their lease again. */
  private waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private serving = true;
  private granting = true;
  private renewalsHeld = false;
  private viewOf: { group: NodeGroupState; view: NodeId[] } | undefined;
  private idsOf: { targets: readonly unknown[]; ids: NodeId[] } | undefined;
  readonly stats = { renewals: 0, renewalFailures: 0, waits: 0, refusedReads: 0, promiseWaitMicros: 0 };

  constructor(private readonly d: OwnerLeaseDeps) {
    this.now = d.now ?? (() => Math.trunc(performance.now() * 1000));
    this.holder = new LeaseHolder(d.hostId, TIMING);
    this.grantor = new LeaseGrantor({
      timing: TIMING,
      startedMicros: d.cleanStart ? Number.NEGATIVE_INFINITY : this.now(),
      seqAtStart: d.seqAtStart,
      promisesKeptMax: limits.leasePromisesKeptMax,
      reportLinksMax: limits.leaseReportLinksMax,
      viewsPerHolderMax: limits.leaseViewsPerHolderMax,
    });
  }

  /**
   * This host's eligible owners now, computed once per group state. When they change, the grants
   * of the old view are dropped here, before any renewal under the new one leaves (lib/lease.ts).
   */
  private view(): NodeId[] {
    const group = this.d.selectors.groupState;
    if (this.viewOf?.group !== group) {
      const view = eligibleOwners(group);
      const old = this.viewOf?.view;
      const changed = old === undefined || old.length !== view.length || old.some((id, i) => id !== view[i]);
      this.viewOf = { group, view: changed ? view : old };
      if (changed) this.holder.viewChanged(view);
    }
    return this.viewOf.view;
  }

  start(): void {
    if (!this.d.enabled) return;
    // A new view drops the grants of the old one: renew at once rather than at the next tick.
    this.d.group.onChanged(() => {
      const before = this.viewOf?.view;
      if (this.view() !== before) this.renew();
    });
    this.timer ??= setInterval(() => this.renew(), msFromMicros(limits.leaseRenewIntervalMicros));
    this.timer.unref();
    this.renew();
  }

  /** Peers to renew with: every other member but observers (they hold no copies). */
  private grantors(): { id: NodeId; url: string }[] {
    const out: { id: NodeId; url: string }[] = [];
    for (const n of Object.values(this.d.selectors.groupState.nodes)) {
      if (n.id === this.d.hostId || n.options.includes('OBSERVER') || n.status === 'REPLACED') continue;
      out.push({ id: n.id, url: `${originOf(n.groupReference)}${LEASE_PATH}` });
    }
    return out;
  }

  private renew(): void {
    if (!this.serving || this.renewalsHeld) return;
    const view = this.view();
    for (const { id, url } of this.grantors()) {
      if (this.inFlight.has(id) || this.d.peers.isClosed) continue;
      this.inFlight.add(id);
      const sent = this.now();
      const body = { from: this.d.hostId, view, cursor: this.holder.cursor(id) };
      void this.d.peers
        .json(url, { method: 'POST', body, timeoutMs: limits.leaseRenewTimeoutMs })
        .then((r) => (r.status === 200 ? parseAnswer(r.body) : undefined))
        .catch(() => undefined)
        .then((a) => {
          this.inFlight.delete(id);
          if (!a) {
            this.stats.renewalFailures++;
            return;
          }
          this.stats.renewals++;
          const distrust = this.holder.answered(id, sent, view, a.view, a);
          // Before anyone is woken to count this grant: a link the grantor promised elsewhere is
          // synchronized again before it is served.
          if (distrust === 'all' || distrust.length > 0) this.d.distrust(distrust);
          this.wake();
          // Sent under a view left since: its grant was not counted, so ask again under the new one.
          if (this.view() !== view) this.renew();
        });
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Whether this host may serve `link` of `svc` from its own copy now. */
  holds(svc: RegisteredService, link: Link): boolean {
    if (!this.serving) return false;
    // Only an owner answers from its copy as the group's: a host asked to act without owning the
    // link (pragma xn-no-fwd) was told to use its own copy.
    if (!this.d.enabled || !svc.has('REPLICATION')) return true;
    const set = this.d.replicator.replicaSet(svc.def.nodeSelector, link);
    const quorum = successThreshold({ eligible: set.eligible, membershipQuorum: set.membershipQuorum, action: 'PUT' });
    if (quorum <= 1) return true;
    // Without a replication factor the set is one object per group state: its ids are listed once.
    if (this.idsOf?.targets !== set.targets) this.idsOf = { targets: set.targets, ids: set.targets.map((n) => n.id) };
    const ids = this.idsOf.ids;
    // Held first: the common case, and it costs one owner hash where owned() costs another.
    return this.holder.held(link, ids, quorum, this.now()) || !this.d.owned(link);
  }

  /**
   * Undefined when this host may serve `link` now (the caller reads in the same synchronous step);
   * otherwise a promise that resolves at the next renewal answer, for the caller to check again, or
   * rejects with QUORUM_UNAVAILABLE (503) once the operation timeout since `sinceMicros` (host
   * clock, when the caller first asked) has passed.
   */
  check(svc: RegisteredService, link: Link, sinceMicros: Micros): Promise<void> | undefined {
    if (this.holds(svc, link)) return undefined;
    const left = sinceMicros + this.d.operationTimeoutMicros - this.d.clock.nowMicros();
    if (left <= 0 || !this.serving) {
      this.stats.refusedReads++;
      return Promise.reject(
        new KryptonError(
          'QUORUM_UNAVAILABLE',
          `${link}: this owner has not heard from a quorum of the link's replicas within its lease (${msFromMicros(limits.leaseDurationMicros)} ms); retry later`,
        ),
      );
    }
    this.stats.waits++;
    return new Promise<void>((resolve, reject) => {
      // The view may give the link to another owner meanwhile: this host's copy is then no answer,
      // and a read is routed again (document-requests.ts).
      const done = () => {
        clearTimeout(t);
        if (this.d.owned(link)) resolve();
        else reject(new KryptonError('STALE_VIEW', `${link} moved to another owner while this host waited for its lease`));
      };
      const t = setTimeout(done, Math.max(1, Math.min(msFromMicros(left), msFromMicros(limits.leaseRenewIntervalMicros * 2))));
      // A request's wait: it must not keep a stopped host's process alive.
      t.unref();
      this.waiters.push(done);
    });
  }

  /** Serves a peer's renewal or release. */
  serve(raw: unknown): LeaseAnswer | { released: true } {
    const req = parseLeaseRequest(raw);
    if ('release' in req) {
      this.grantor.released(req.from);
      return { released: true };
    }
    if (!this.granting) throw new KryptonError('SHUTTING_DOWN', 'this host is stopping: it grants no owner lease');
    const view = this.view();
    this.grantor.granted(req.from, req.view, view, this.now());
    return { view, ...this.grantor.report(req.from, req.cursor) };
  }

  /** How long to wait before `links` may be promised to `asker` (0: now). */
  waitMicros(asker: NodeId, links: readonly Link[]): Micros {
    if (!this.d.enabled) return 0;
    const now = this.now();
    let wait = 0;
    for (const link of links) wait = Math.max(wait, this.grantor.waitMicros(asker, link, now));
    return wait;
  }

  /**
   * `links` were just promised to `by`: numbered for the other holders' reports. A host promising
   * a link it owns to another host stops trusting its own copy of it (it counts itself in its own
   * lease quorum); links it does not own are synchronized anyway should the view give them to it.
   * Returns the sequence to write with the promise line.
   */
  promised(by: NodeId, links: readonly Link[]): number {
    this.grantor.promised(by, links);
    if (by !== this.d.hostId) {
      const mine = links.filter(this.d.owned);
      if (mine.length > 0) this.d.distrust(mine);
    }
    return this.grantor.sequence;
  }

  /** The promise file holds sequence `seq`: reports may move cursors up to it. */
  persisted(seq: number): void {
    this.grantor.persisted(seq);
  }

  /** The newest promise sequence. */
  get sequence(): number {
    return this.grantor.sequence;
  }

  /**
   * Graceful stop: this host serves nothing from its copies from here on, and tells its peers so
   * they may promise its links to a new owner at once. Best effort within the renewal timeout.
   */
  async release(): Promise<void> {
    this.serving = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.wake();
    if (this.d.peers.isClosed) return;
    await Promise.all(
      this.grantors().map(({ url }) =>
        this.d.peers
          .json(url, { method: 'POST', body: { from: this.d.hostId, release: true }, timeoutMs: limits.leaseRenewTimeoutMs })
          .catch(() => undefined),
      ),
    );
  }

  /**
   * Fault injection for tests: while held, this host sends no renewal, as if a partition cut its
   * lease traffic only; its grants run out and its peers may promise its links to another host.
   */
  holdRenewals(held: boolean): void {
    this.renewalsHeld = held;
  }

  /**
   * Graceful stop, the grantor's side: no grant from here on, and resolves once every grant this
   * host gave has run out on its clock (at most a lease plus drift and margin), after which the
   * host may mark a clean stop (PromiseStore.markCleanStop).
   */
  async stopGranting(): Promise<void> {
    this.granting = false;
    const wait = this.grantor.bindingMicros(this.now());
    if (wait > 0) await new Promise((r) => setTimeout(r, Math.ceil(wait / 1000)));
  }

  stop(): void {
    this.serving = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.wake();
  }
}
