/**
 * Runs the synchronization schedule (lib/synch/schedule.ts) on this host: membership changes and
 * availability go in, and its effects come out as passes (the settled pass here, the early pass in
 * server/synch/early.ts) and a retry timer. The settled pass, after the membership changed and the
 * group is available again: for each replicated factory it collects every peer's heads (link,
 * epoch, version, and any epoch promised above them) in pages, and synchronizes every link it now
 * owns and that was not synchronized since (server/synch/links.ts). A pass that leaves links
 * deferred, or fails, runs again after the schedule's backoff.
 */

import type { Link } from '../../lib/ids.js';
import {
  createSchedule,
  linkPending,
  stale,
  step,
  takeoverHoldMicros,
  type ScheduleContext,
  type ScheduleEffect,
  type ScheduleInput,
  type ScheduleState,
} from '../../lib/synch/schedule.js';
import type { SynchDeps, SynchStats } from './deps.js';
import type { Discovery } from './discovery.js';
import type { EarlyPass } from './early.js';
import type { LinkSynch } from './links.js';

export class Passes {
  private state: ScheduleState;
  private passRunning: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Set once the parts are wired (Synchronizer), before any input. */
  links!: LinkSynch;
  early!: EarlyPass;

  constructor(
    private readonly d: SynchDeps,
    private readonly discovery: Discovery,
    private readonly stats: SynchStats,
  ) {
    this.state = createSchedule({ enabled: d.enabled, selfId: d.hostId });
  }

  /** Subscribes to the group: from now on its changes start passes. */
  start(): void {
    this.d.group.onChanged((c) =>
      this.feed({ type: 'membershipChanged', eligible: c.eligible, disowned: c.overruled, quorate: c.quorate }),
    );
    this.d.group.onAvailability((available) => available && this.feed({ type: 'available' }));
  }

  get generation(): number {
    return this.state.generation;
  }

  /**
   * Whether an owner synchronizes `link` before acting on it, as far as the schedule knows: per
   * link, so a membership change makes only the links that moved here wait (lib/group/availability.ts).
   */
  pending(link: Link, factor?: number): boolean {
    return linkPending(this.state, link, factor);
  }

  /** Whether a settled pass is still owed for the current membership (SynchStats.passPending). */
  /** Links to synchronize again before they are served (the schedule's recheck set). */
  rechecks(): ReadonlySet<Link> {
    return this.state.recheck;
  }

  passPending(): boolean {
    return this.d.enabled && this.state.completedGeneration < this.state.generation;
  }

  /** How long an on-demand synchronization waits before it starts (schedule.ts takeoverHoldMicros). */
  holdMicros(): number {
    return takeoverHoldMicros(this.state, this.d.clock.nowMicros());
  }

  isDone(link: Link): boolean {
    return this.state.done.has(link);
  }

  stale(generation: number): boolean {
    return stale(this.state, generation);
  }

  done(generation: number, link: Link): void {
    this.feed({ type: 'linksDone', generation, links: [link] });
  }

  feed(input: ScheduleInput): void {
    const { clock, group } = this.d;
    // Read only by the steps that start passes or arm the retry: most inputs are links done.
    const ctx: ScheduleContext = {
      get nowMicros() {
        return clock.nowMicros();
      },
      get available() {
        return group.isAvailable();
      },
      get hasQuorum() {
        return group.hasQuorum();
      },
    };
    const r = step(this.state, input, ctx);
    this.state = r.state;
    for (const e of r.effects) this.run(e);
  }

  private run(e: ScheduleEffect): void {
    switch (e.type) {
      case 'runPass': {
        const p = this.settledPass(e.generation).then((complete) => {
          if (this.passRunning === p) this.passRunning = undefined;
          this.feed({ type: 'passEnded', complete });
        });
        this.passRunning = p;
        break;
      }
      case 'runEarlyPass':
        void this.early.run(e.generation).finally(() => this.feed({ type: 'earlyEnded' }));
        break;
      case 'armRetry':
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(
          () => {
            this.retryTimer = undefined;
            this.feed({ type: 'retryDue' });
          },
          Math.ceil(e.delayMicros / 1000),
        );
        this.retryTimer.unref();
        break;
      case 'cancelRetry':
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        break;
    }
  }

  /** One settled pass; true when it left nothing deferred. */
  private async settledPass(generation: number): Promise<boolean> {
    const started = performance.now();
    this.stats.running = true;
    let deferred = 0;
    try {
      for (const link of this.d.registry.factoryLinks()) {
        const svc = this.d.registry.factory(link)!;
        if (!svc.has('REPLICATION')) continue;
        const found = await this.discovery.factoryHeads(svc, this.discovery.peers());
        // Links already settled since the membership change (on demand, or by an earlier try of this pass) are left alone.
        for (const l of found.heads.keys()) if (this.isDone(l)) found.heads.delete(l);
        deferred += (await this.links.synchLinks(svc, found, generation)).length;
      }
      this.stats.passes++;
      this.stats.lastPassMs = Math.round(performance.now() - started);
      this.d.logger.info(
        { generation, ms: this.stats.lastPassMs, checked: this.stats.linksChecked, pushed: this.stats.pushed, deferred },
        'synchronization pass finished',
      );
      return deferred === 0;
    } catch (e) {
      this.d.logger.warn({ err: String(e) }, 'synchronization pass failed; it runs again after a backoff or the next membership change');
      return false;
    } finally {
      this.stats.running = false;
    }
  }

  /** No pass starts any more; resolves when the one running ends. */
  stop(): Promise<void> | undefined {
    this.feed({ type: 'stop' });
    return this.passRunning;
  }
}
