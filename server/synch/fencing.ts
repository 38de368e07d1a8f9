/**
 * The owner's fence on the write path (the rules are lib/synch/fence.ts): whether an owner must
 * synchronize a link before it acts on it, the epoch a creation of a link nobody holds is stamped
 * with, and the check of a planned write's epoch before it is logged. DocumentStore calls these
 * (through Synchronizer) before every owner write, so the cheap checks come first.
 */

import type { ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Epoch, Link } from '../../lib/ids.js';
import type { RegisteredService } from '../../lib/service.js';
import { mustSynch, preparedEpoch, refuseOwnerWrite, type OwnerLink } from '../../lib/synch/fence.js';
import type { SynchDeps } from './deps.js';

export class Fencing {
  constructor(
    private readonly d: Pick<SynchDeps, 'hostId' | 'index' | 'promises' | 'enabled' | 'selectors'>,
    /** Other members to synchronize with; asked last, only when it matters. */
    private readonly hasPeers: () => boolean,
    /** The schedule's part (schedule.ts linkPending), with the replication factor of the link's selector. */
    private readonly pending: (link: Link, factor: number | undefined) => boolean,
    /** A write of `link` was refused for its epoch: synchronize it again before the next one. */
    private readonly stale: (link: Link) => void,
  ) {}

  /** What this host knows of `link` with `doc` its copy; `peers` is read only when a rule needs it. */
  private owner(link: Link, doc: ServiceDocument | undefined): OwnerLink {
    const { enabled } = this.d;
    const hasPeers = this.hasPeers;
    return {
      selfId: this.d.hostId,
      held: doc ? { epoch: doc.documentEpoch ?? 0, owner: doc.documentOwner } : undefined,
      promised: this.d.promises.get(link),
      get peers() {
        return enabled && hasPeers();
      },
    };
  }

  /**
   * Whether `link` is brought up to date before its owner acts on it: while a pass has not covered
   * it since the last membership change, while this host is bound to a later epoch for it than the
   * one it holds, or when its latest state was stamped by another owner.
   */
  needsSynch(svc: RegisteredService, link: Link): boolean {
    if (!this.d.enabled || !svc.has('REPLICATION')) return false;
    const factor = this.d.selectors.spec(svc.def.nodeSelector)?.replicationFactor;
    return mustSynch(this.owner(link, this.d.index.latest(link)), this.pending(link, factor));
  }

  /**
   * needsSynch for a read or an update: also for a link this host holds no copy of, so a 404 from
   * an owner is the group's answer, not this host's. Views differ for a moment after a partition
   * heals or a host is written off: another host that had just written this one off (the mark not
   * yet arrived here) may have created the link with the third as its quorum while this host still
   * trusts its ownership (torture seed 2002: a read of a register answered 404 while the partition
   * healed; set adds were answered 404 and one was found applied; limiting this to the time a pass
   * is owed left most of them). The price is one round of heads per 404. Creates keep needsSynch:
   * otherwise every create would cost that round.
   */
  needsSynchExisting(svc: RegisteredService, link: Link): boolean {
    if (this.needsSynch(svc, link)) return true;
    return this.d.enabled && svc.has('REPLICATION') && !this.d.index.latest(link) && this.hasPeers();
  }

  /**
   * The epoch this host prepared for a link nobody holds (its own promise, nothing taken over):
   * a creation of the link is stamped with it (CreateOptions.epochFloor).
   */
  preparedEpoch(link: Link): Epoch | undefined {
    return preparedEpoch(this.owner(link, this.d.index.latest(link)));
  }

  /**
   * The owner's own fence, checked after a write is planned on `base` and before it is logged.
   * Once this host promised a later epoch for the link (to another host, or to its own takeover
   * in progress), a write at an older epoch would be overwritten by that takeover; and an epoch
   * another owner won (base stamped by it) is not this host's to write in: another host may write
   * the same version in it. Either way the write is refused (409) and the link is synchronized
   * again before the next one. (ensure() normally takes the link over first; this catches a
   * record or promise that arrived in between.)
   */
  checkEpoch(svc: RegisteredService, link: Link, epoch: Epoch, base: ServiceDocument | undefined): void {
    if (!svc.has('REPLICATION')) return;
    const refusal = refuseOwnerWrite(this.owner(link, base), epoch);
    if (!refusal) return;
    this.stale(link);
    if (refusal.reason === 'promised') throw new KryptonError('STALE_EPOCH', `Expected epoch: ${refusal.fence}, in update: ${epoch}`);
    throw new KryptonError('STALE_EPOCH', `epoch ${epoch} of ${link} was taken by ${refusal.owner ?? 'another host'}; try again`);
  }
}
