/**
 * Node selectors (docs/xenon-compatibility.md) on top of the default node group: who owns a key, the selector
 * state, and the gate every owner-selected request passes: while the group has fewer AVAILABLE
 * members than the quorum requests are parked in a bounded queue and released in order as soon as
 * it has them again; a parked request that reaches its deadline fails with 408, and past
 * limits.pendingRequestsMax new ones get 503. Unlike Xenon the gate does not wait for membership
 * to settle: availability is per link (lib/group/availability.ts), decided on the link's owner,
 * where only links that moved or must be reconciled wait for their synchronization. The selector's
 * status and `/available` say the same as this gate.
 * Once stopped it parks nothing: requests still arriving on open connections fail at once.
 */

import { KryptonError } from '../../lib/errors.js';
import type { Micros } from '../../lib/ids.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import {
  nodeSelectorState,
  ownerOf,
  selectOwner,
  type NodeSelectorState,
  type SelectOwnerResponse,
  type SelectorSpec,
} from '../../lib/group/selector.js';
import type { Clock } from '../base/clock.js';
import type { GroupRuntime } from './groups.js';

export const SELECTOR_SPECS: readonly SelectorSpec[] = [
  { selectorLink: '/core/node-selectors/default' },
  { selectorLink: '/core/node-selectors/default-1x', replicationFactor: 1 },
  { selectorLink: '/core/node-selectors/default-3x', replicationFactor: 3 },
];

interface Parked {
  resolve(): void;
  reject(e: unknown): void;
  timer: NodeJS.Timeout;
}

export class Selectors {
  private readonly parked: Parked[] = [];
  private readonly notified = new Map<string, number>();
  /** Callers waiting for the next membership change (membershipChange). */
  private changeWaiters: (() => void)[] = [];

  constructor(
    private readonly group: GroupRuntime,
    private readonly clock: Clock,
    private readonly pendingMax: number = limits.pendingRequestsMax,
  ) {
    group.onServing((serving) => serving && this.release());
    group.onChanged(() => {
      const waiting = this.changeWaiters;
      this.changeWaiters = [];
      for (const w of waiting) w();
    });
    // A safety net: the group's tick also re-checks.
    const t = setInterval(() => this.group.hasQuorum() && this.release(), msFromMicros(limits.maintenanceIntervalMicros));
    t.unref();
    this.timer = t;
  }

  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  spec(link: string): SelectorSpec | undefined {
    return SELECTOR_SPECS.find((s) => s.selectorLink === link);
  }

  state(link: string): NodeSelectorState {
    const spec = this.spec(link);
    if (!spec) throw new KryptonError('NOT_FOUND', `Service not found: ${link}`);
    const q = this.notified.get(link);
    return nodeSelectorState(q === undefined ? spec : { ...spec, notifiedMembershipQuorum: q }, this.group.group);
  }

  /** Records a quorum change the way Xenon's selectors learn of it (UpdateQuorumRequest notifications). */
  quorumNotified(quorum: number): void {
    for (const s of SELECTOR_SPECS) this.notified.set(s.selectorLink, quorum);
  }

  select(link: string, key: string): SelectOwnerResponse {
    const spec = this.spec(link);
    if (!spec) throw new KryptonError('NOT_FOUND', `Service not found: ${link}`);
    return selectOwner(this.group.group, key, spec.replicationFactor);
  }

  /** The owner of `key` under selector `link`, for routing. */
  owner(link: string, key: string): { id: string; groupReference: string } {
    const spec = this.spec(link);
    if (!spec) throw new KryptonError('NOT_FOUND', `Service not found: ${link}`);
    return ownerOf(this.group.group, key, spec.replicationFactor);
  }

  /**
   * Whether this host owns `key` under the selector now; false when no owner can be chosen.
   * The synchronizer, owner hooks and task driver all ask this before acting as owner.
   */
  ownedHere(selectorLink: string, key: string): boolean {
    try {
      return this.owner(selectorLink, key).id === this.group.group.documentOwner;
    } catch {
      return false;
    }
  }

  get groupState() {
    return this.group.group;
  }

  /** Whether owner-selected requests are served now (the group has its quorum), per link on their owners. */
  get available(): boolean {
    return this.group.hasQuorum();
  }

  get parkedCount(): number {
    return this.parked.length;
  }

  /** Whether a request may go on now without waiting: the group has its quorum and nothing is parked before it. */
  get passable(): boolean {
    return this.parked.length === 0 && this.group.hasQuorum();
  }

  /** Resolves when the group has its quorum, at once if it has; fails at `deadlineMicros`. */
  whenAvailable(deadlineMicros: Micros): Promise<void> {
    // A stopping host has left its group, so it is unavailable for good; a request parked now
    // would hold its deadline timer (and the process) for up to the operation timeout after
    // the host has stopped, since nothing releases or rejects it any more.
    if (this.stopped) return Promise.reject(new KryptonError('SHUTTING_DOWN', 'host is stopping'));
    if (this.parked.length === 0 && this.group.hasQuorum()) return Promise.resolve();
    const now = this.clock.nowMicros();
    if (deadlineMicros <= now) return Promise.reject(new KryptonError('TIMEOUT', 'Operation already expired, will not queue'));
    if (this.parked.length >= this.pendingMax) {
      return Promise.reject(
        new KryptonError('LIMIT_EXCEEDED', `pending request queue limit exceeded: ${this.pendingMax} requests wait for the node group`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const p: Parked = {
        resolve,
        reject,
        timer: setTimeout(
          () => {
            const i = this.parked.indexOf(p);
            if (i >= 0) this.parked.splice(i, 1);
            reject(
              new KryptonError(
                'TIMEOUT',
                `Request timed out: the node group was not available (quorum ${this.group.group.nodes[this.group.group.documentOwner ?? '']?.membershipQuorum ?? '?'}) within the operation timeout`,
              ),
            );
          },
          Math.ceil((deadlineMicros - now) / 1000),
        ),
      };
      this.parked.push(p);
    });
  }

  /**
   * Resolves at the next membership change, or after `ms` without one (routing waits so after a
   * failed hop, and an owner for a view that names it owner, rather than for a fixed interval).
   */
  membershipChange(ms: number): Promise<void> {
    if (this.stopped || ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.changeWaiters = this.changeWaiters.filter((w) => w !== waiter);
        resolve();
      }, ms);
      timer.unref();
      this.changeWaiters.push(waiter);
    });
  }

  private release(): void {
    const waiting = this.parked.splice(0);
    for (const p of waiting) {
      clearTimeout(p.timer);
      p.resolve();
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const w of this.changeWaiters.splice(0)) w();
    for (const p of this.parked.splice(0)) {
      clearTimeout(p.timer);
      p.reject(new KryptonError('SHUTTING_DOWN', 'host is stopping'));
    }
  }
}
