/**
 * Synchronization (Krypton's rules in lib/synch/, not Xenon's). After the membership changes
 * and the group is available again, every host runs a pass: for each replicated factory it
 * collects every peer's heads and, for each link it now owns, picks the best copy, adopts it and
 * pushes it to every replica that lacks it, tombstones included; when ownership moved (or copies
 * diverged, or a replica is bound to a higher epoch) it takes the link over under a new epoch
 * that a quorum of the replicas promised first. A host restarted after missing updates is caught
 * up by these pushes; the plain ones already run while the group settles (the early pass). Until
 * a pass has covered a link, an owner that is asked for it synchronizes that one link first (on
 * demand), so no request is answered from a stale copy; so does an owner that finds its own
 * writes of the link refused for their epoch.
 *
 * This is the facade the host wires and DocumentStore and the HTTP routes call. The parts, one job
 * each: passes.ts runs the schedule (lib/synch/schedule.ts: when passes run, retries, links done)
 * and the settled pass, early.ts the early pass, links.ts the per-link work of both and of
 * on-demand synchronization, discovery.ts the reads from peers, serve.ts the answers to them,
 * fencing.ts the owner's epoch checks on the write path, takeover.ts the prepare round, lease.ts
 * the owner lease a read from the owner's own copy needs.
 */

import type { ServiceDocument } from '../../lib/document.js';
import { KryptonError, isKryptonError } from '../../lib/errors.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import type { Epoch, Link } from '../../lib/ids.js';
import type { RegisteredService } from '../../lib/service.js';
import { newSynchStats, peerTimeoutMs, type SynchDeps, type SynchStats } from './deps.js';
import { Discovery } from './discovery.js';
import { EarlyPass } from './early.js';
import { Fencing } from './fencing.js';
import { OwnerLease } from './lease.js';
import { HistorySynch } from './history.js';
import { LinkSynch } from './links.js';
import { Passes } from './passes.js';
import { SynchServer, type SynchAnswer } from './serve.js';
import { Takeovers } from './takeover.js';

export type { SynchDeps, SynchStats } from './deps.js';
export type { SynchRequest } from './serve.js';

export class Synchronizer {
  readonly stats: SynchStats;
  /** The owner lease: the store's lease port, the peer endpoint's renewals, the release at stop. */
  readonly lease: OwnerLease;
  private readonly passes: Passes;
  private readonly links: LinkSynch;
  private readonly fencing: Fencing;
  private readonly server: SynchServer;

  constructor(private readonly d: SynchDeps) {
    this.stats = newSynchStats(d.promises);
    const owned = (link: Link) => {
      const svc = d.registry.forChild(link);
      return svc !== undefined && d.selectors.ownedHere(svc.def.nodeSelector, link);
    };
    this.lease = new OwnerLease({
      ...d,
      seqAtStart: d.promises.sequence,
      cleanStart: d.promises.cleanStop,
      owned,
      distrust: (links) => {
        if (links === 'all') this.passes.feed({ type: 'distrustAll' });
        else for (const link of links) this.passes.feed({ type: 'staleEpoch', link });
      },
    });
    const takeovers = new Takeovers({ ...d, timeoutMs: peerTimeoutMs(d), lease: this.lease });
    const discovery = new Discovery(d);
    const history = new HistorySynch(d, this.stats);
    this.passes = new Passes(d, discovery, this.stats);
    const passes = this.passes;
    Object.defineProperty(this.stats, 'passPending', { get: () => passes.passPending(), enumerable: true });
    this.links = new LinkSynch(d, discovery, takeovers, history, this.stats, (generation, link) => this.passes.done(generation, link));
    this.passes.links = this.links;
    this.passes.early = new EarlyPass(d, discovery, this.links, this.stats, this.passes);
    this.fencing = new Fencing(
      d,
      () => discovery.peers().length > 0,
      (link, factor) => this.passes.pending(link, factor),
      (link) => this.staleEpoch(link),
    );
    this.server = new SynchServer(d, takeovers, history);
    this.passes.start();
    this.lease.start();
  }

  /** Serves a peer's synchronization request: heads of a factory in pages, full latest states, or promises. */
  serve(raw: unknown): Promise<SynchAnswer> {
    return this.server.serve(raw);
  }

  /**
   * Brings one link up to date before its owner acts on it: while a pass has not covered it since
   * the last membership change, while this host is bound to a later epoch for it than the one it
   * holds, or when its latest state was stamped by another owner (this host then takes it over
   * under a new epoch rather than write on in one it never won). Concurrent callers share one
   * synchronization, a pass's included.
   */
  ensure(svc: RegisteredService, link: Link): Promise<void> | undefined {
    // Nearly always nothing to do: answered without a promise, so a write does not wait a tick.
    return this.fencing.needsSynch(svc, link) ? this.synchOnDemand(svc, link, () => this.fencing.needsSynch(svc, link)) : undefined;
  }

  /**
   * ensure() for a read or an update (which need the link to exist), which also synchronizes a
   * link this host holds no copy of (Fencing.needsSynchExisting): a 404 then waits for the peers'
   * heads of that link; nothing else does.
   */
  ensureExisting(svc: RegisteredService, link: Link): Promise<void> | undefined {
    const needs = () => this.fencing.needsSynchExisting(svc, link);
    if (!needs()) return undefined;
    // The view may move the link away while its heads are asked for: the synchronization then
    // adopts nothing, and a 404 from here would not be the group's answer (torture partition seed
    // 4004: a read parked through a partition answered absent as the healed view moved its link).
    const selector = svc.def.nodeSelector;
    const owned = this.d.selectors.ownedHere(selector, link);
    return this.synchOnDemand(svc, link, needs).then(() => {
      if (owned && !this.d.index.latest(link) && !this.d.selectors.ownedHere(selector, link))
        throw new KryptonError('STALE_VIEW', `${link} moved to another owner while this host asked its peers for it`);
    });
  }

  /**
   * On demand, short of the heads or promises of a quorum: a replica that did not answer may be
   * dead before membership noticed, or the group lacks its quorum (a write would be parked): tried
   * again once the view changes, until the operation deadline. With the group's quorum and no
   * change within limits.forwardOwnerViewWaitMicros it fails as before (503).
   */
  private async synchOnDemand(svc: RegisteredService, link: Link, needs: () => boolean): Promise<void> {
    const { clock, selectors } = this.d;
    const deadline = clock.nowMicros() + this.d.operationTimeoutMicros;
    const hold = this.passes.holdMicros();
    if (hold > 0) await new Promise((r) => setTimeout(r, msFromMicros(hold)));
    for (;;) {
      const generation = this.passes.generation;
      try {
        return await this.synchOnce(svc, link, needs);
      } catch (e) {
        const left = deadline - clock.nowMicros();
        if (!isKryptonError(e) || e.code !== 'QUORUM_UNAVAILABLE' || left <= 0) throw e;
        const wait = selectors.available ? Math.min(left, limits.forwardOwnerViewWaitMicros) : left;
        if (this.passes.generation === generation) await selectors.membershipChange(msFromMicros(wait));
        if (this.passes.generation === generation && selectors.available) throw e;
      }
    }
  }

  /**
   * One on-demand synchronization of `link`, or the one running. After a running one, `needs` (the
   * caller's own test) decides whether to go again: a pass's slice may have gathered its heads
   * before a peer created the link, and a read that needs the link to exist must then ask again
   * rather than answer 404 for a document the peers hold.
   */
  private async synchOnce(svc: RegisteredService, link: Link, needs: () => boolean): Promise<void> {
    const running = this.links.running(link);
    if (running) {
      // A pass's slice never rejects; another caller's on-demand failure is shared, as before.
      await running;
      if (!needs()) return;
    }
    return this.links.onDemand(svc, link, this.passes.generation, () => this.passes.feed({ type: 'rechecked', link }));
  }

  /**
   * Whether some link this host owns may still need synchronizing before it is served: a pass is
   * owed since the last membership change, or links wait for a recheck (those are started here,
   * since a recheck otherwise waits for the link's next request). A linearizable query
   * (server/documents/linearizable.ts) answers nothing from this host meanwhile.
   */
  unsynchronized(): boolean {
    if (this.passes.passPending()) return true;
    const rechecks = this.passes.rechecks();
    for (const link of rechecks) {
      const svc = this.d.registry.forChild(link);
      if (svc && !this.links.running(link)) void this.ensure(svc, link)?.catch(() => undefined);
    }
    return rechecks.size > 0;
  }

  /**
   * An operator's SynchronizeWithPeersRequest (`PATCH /core/management`): a full pass over every
   * replicated factory, as after a membership change (links not yet covered synchronize on demand).
   */
  requestPass(): void {
    this.passes.feed({ type: 'membershipChanged' });
  }

  /**
   * Called when a replica refused this host's record of `link` for its epoch (it promised a higher
   * one to another host): the next write of the link synchronizes it first, taking it over again
   * if this host still owns it.
   */
  staleEpoch(link: Link): void {
    this.passes.feed({ type: 'staleEpoch', link });
  }

  /** The owner's own fence on a write planned on `base` at `epoch` (server/synch/fencing.ts); throws STALE_EPOCH. */
  checkEpoch(svc: RegisteredService, link: Link, epoch: Epoch, base: ServiceDocument | undefined): void {
    this.fencing.checkEpoch(svc, link, epoch, base);
  }

  /** The epoch this host prepared for a link nobody holds, which a creation of it is stamped with. */
  preparedEpoch(link: Link): Epoch | undefined {
    return this.fencing.preparedEpoch(link);
  }

  stop(): Promise<void> | undefined {
    this.lease.stop();
    return this.passes.stop();
  }
}
