/**
 * When synchronization runs on one host: a pure machine,
 * `step(state, input, ctx)` returning the next state and the effects to carry out, as
 * lib/group/membership.ts is for membership. The server (server/synch/passes.ts) runs its passes
 * and its retry timer; the simulations (test/support/sim-schedule.ts, for sim-replication.ts) drive
 * the same machine on their manual clock. It reads no clock: `ctx` brings the time and the group's state.
 *
 * - A membership change starts a generation: every link needs synchronizing again (none is done),
 *   the retry backoff starts over, and a settled pass runs once the group is available.
 * - One pass at a time: a pass asked for while one runs (a change, or the group becoming
 *   available) runs when that one ends (rerun).
 * - While the group settles (a quorum, not yet available) an early pass runs, once per
 *   generation; the settled pass waits for it to end, and then skips the links it did.
 * - A settled pass that ends with links deferred, or fails, runs again after a backoff of
 *   limits.synchRetryDelayMinMicros, doubling per failed pass up to synchRetryDelayMaxMicros; one
 *   that ends complete for the current generation completes it and resets the backoff. A pass
 *   that ends after the membership changed again decides nothing (its rerun covers the change).
 * - Links done this generation (by a pass, an early pass or on demand) are skipped by later passes,
 *   which still cover every other link the host owns (a restarted replica is caught up by them).
 * - Serving is per link (lib/group/availability.ts): until the generation is complete, an owner
 *   synchronizes a link before acting on it (linkPending) unless it was done this generation, or
 *   it has owned it in every view since the generation its copy was last synchronized in (a link
 *   done then, or any link it owned when a pass last completed). So a membership change makes
 *   only the links that moved here (or whose replica set changed) wait; the rest are served with
 *   no added wait. A change that overrules this host's own entry (a peer marked it UNAVAILABLE)
 *   breaks that trust for every link: others may have taken any of them over meanwhile.
 * - recheck: links whose owner saw its write refused for their epoch, synchronized again before its
 *   next write and forgotten once that succeeds; at most recheckMax, the oldest forgotten.
 *
 * The link sets are the state's own and a step updates them in place (copying the 100 000 links
 * of a pass at every step would make it quadratic): keep only the latest state.
 */

import { emptyHistory, ownedThroughout, since, withView, type OwnershipHistory } from '../group/availability.js';
import type { Link, Micros, NodeId } from '../ids.js';
import { limits } from '../limits.js';

export interface ScheduleState {
  readonly enabled: boolean;
  readonly stopped: boolean;
  /** Membership changes seen. */
  readonly generation: number;
  /** The latest generation a settled pass completed. */
  readonly completedGeneration: number;
  /** Links synchronized since the membership change. */
  readonly done: ReadonlySet<Link>;
  /** This host, whose ownership the history tells; undefined: no link is trusted across a change. */
  readonly selfId: NodeId | undefined;
  /** Links synchronized in an earlier generation than this one, since the last complete pass: that generation. */
  readonly confirmed: ReadonlyMap<Link, number>;
  /** The views since the last complete pass (lib/group/availability.ts). */
  readonly history: OwnershipHistory;
  /**
   * Until when this host starts no takeover on demand: set for one gossip round after a peer
   * overruled its entry (a pause, a partition), while the others still see it gone and serve its
   * links; taking them back before its word reaches them would have two hosts take each link
   * from each other in turn.
   */
  readonly holdUntilMicros: Micros;
  /** The generation of the settled pass running, if one is. */
  readonly passing: number | undefined;
  readonly rerun: boolean;
  /** The generation of the early pass running, if one is. */
  readonly early: number | undefined;
  readonly earlyRerun: boolean;
  /** The latest generation an early pass started for. */
  readonly earlyGeneration: number;
  readonly recheck: ReadonlySet<Link>;
  readonly recheckMax: number;
  /** Failed passes since the last complete one or membership change: the backoff's exponent. */
  readonly retryFailures: number;
  /** When the retry armed is due; undefined: none armed. */
  readonly retryDueMicros: Micros | undefined;
}

export interface ScheduleContext {
  nowMicros: Micros;
  /** The group is available (settled, with a quorum): settled passes may run. */
  available: boolean;
  /** The group has a quorum, settled or not: an early pass may run. */
  hasQuorum: boolean;
}

export type ScheduleInput =
  /**
   * The view changed: `eligible` are the members that may own links now (undefined: unknown, no
   * link is trusted across this change), `disowned` when a peer overruled this host's own entry,
   * `quorate: false` when this host does not see its group's quorum (no link is trusted across it).
   */
  | { type: 'membershipChanged'; eligible?: readonly NodeId[]; disowned?: boolean; quorate?: boolean }
  /** The group became available. */
  | { type: 'available' }
  /** The settled pass ended: `complete` when it left no link deferred and did not fail. */
  | { type: 'passEnded'; complete: boolean }
  | { type: 'earlyEnded' }
  /** Links synchronized by work that started in `generation`. */
  | { type: 'linksDone'; generation: number; links: Iterable<Link> }
  /** A replica refused this host's record of `link` for its epoch, or promised it to another host (lease.ts). */
  | { type: 'staleEpoch'; link: Link }
  /**
   * Any link may have been taken over by another host unseen (a lease grantor could not list what
   * it promised, server/synch/lease.ts): nothing trusted is trusted any more.
   */
  | { type: 'distrustAll' }
  /** An on-demand synchronization of `link` succeeded. */
  | { type: 'rechecked'; link: Link }
  | { type: 'retryDue' }
  | { type: 'stop' };

export type ScheduleEffect =
  | { type: 'runPass'; generation: number }
  | { type: 'runEarlyPass'; generation: number }
  /** Feed retryDue after `delayMicros` (at `dueMicros`). */
  | { type: 'armRetry'; dueMicros: Micros; delayMicros: Micros }
  | { type: 'cancelRetry' };

export interface ScheduleResult {
  state: ScheduleState;
  effects: ScheduleEffect[];
}

/**
 * `selfId` turns availability per link on (without it no link is trusted across a change);
 * `synchronizedView`, the members of a group this host starts in already synchronized (a
 * simulation's seeded group), counts as generation 0 completed in that view. A host never starts
 * so: it has not synchronized anything before its first membership change.
 */
export function createSchedule(
  opts: { enabled?: boolean; recheckMax?: number; selfId?: NodeId; synchronizedView?: readonly NodeId[] } = {},
): ScheduleState {
  return {
    enabled: opts.enabled ?? true,
    stopped: false,
    generation: 0,
    completedGeneration: 0,
    done: new Set(),
    selfId: opts.selfId,
    confirmed: new Map(),
    holdUntilMicros: 0,
    history:
      opts.synchronizedView && opts.selfId !== undefined
        ? withView(emptyHistory(), { generation: 0, eligible: opts.synchronizedView })
        : emptyHistory(),
    passing: undefined,
    rerun: false,
    early: undefined,
    earlyRerun: false,
    earlyGeneration: -1,
    recheck: new Set(),
    recheckMax: opts.recheckMax ?? limits.synchRecheckLinksMax,
    retryFailures: 0,
    retryDueMicros: undefined,
  };
}

/** The wait before the retry after `failures` failed passes in a row. */
export function retryDelayMicros(failures: number): Micros {
  return Math.min(limits.synchRetryDelayMaxMicros, limits.synchRetryDelayMinMicros * 2 ** Math.min(Math.max(failures, 1) - 1, 30));
}

/** How long an on-demand takeover waits before it starts (holdUntilMicros), 0 for none. */
export function takeoverHoldMicros(s: ScheduleState, nowMicros: Micros): Micros {
  return Math.max(0, s.holdUntilMicros - nowMicros);
}

/** Whether work that started in `generation` is stale: the membership changed since, or the host stops. */
export function stale(s: ScheduleState, generation: number): boolean {
  return s.stopped || s.generation !== generation;
}

/**
 * Whether an owner synchronizes `link` before acting on it, as far as the schedule knows
 * (lib/synch/fence.ts adds the rest): a write of it was refused for its epoch, or the generation
 * is not complete and the link was neither done in it nor owned here throughout since it was last
 * synchronized (`factor`: the selector's replication factor, whose replica set must not change either).
 */
export function linkPending(s: ScheduleState, link: Link, factor?: number): boolean {
  if (s.recheck.has(link)) return true;
  if (s.completedGeneration >= s.generation || s.done.has(link)) return false;
  if (s.selfId === undefined) return true;
  const from = Math.max(s.confirmed.get(link) ?? 0, s.completedGeneration);
  return !ownedThroughout(s.history, s.selfId, link, from, factor);
}

type Draft = { -readonly [K in keyof ScheduleState]: ScheduleState[K] } & {
  done: Set<Link>;
  recheck: Set<Link>;
  confirmed: Map<Link, number>;
};

class Run {
  readonly effects: ScheduleEffect[] = [];

  constructor(
    readonly s: Draft,
    readonly ctx: ScheduleContext,
  ) {}

  /** A settled pass, if the generation needs one and the group is available; after the one running. */
  pass(): void {
    const s = this.s;
    if (!s.enabled || s.stopped || !this.ctx.available || s.completedGeneration >= s.generation) return;
    // The settled pass starts once the early one ends: it then skips what that one pushed.
    if (s.passing !== undefined || s.early !== undefined) {
      s.rerun = true;
      return;
    }
    s.passing = s.generation;
    this.effects.push({ type: 'runPass', generation: s.generation });
  }

  /** An early pass for this generation while the group settles, once per generation. */
  early(): void {
    const s = this.s;
    if (!s.enabled || s.stopped || this.ctx.available || s.earlyGeneration >= s.generation || !this.ctx.hasQuorum) return;
    if (s.early !== undefined || s.passing !== undefined) {
      s.earlyRerun = true;
      return;
    }
    s.earlyGeneration = s.generation;
    s.early = s.generation;
    this.effects.push({ type: 'runEarlyPass', generation: s.generation });
  }

  /** Arms the retry after a failed pass, unless one is armed already. */
  retry(): void {
    const s = this.s;
    if (s.stopped || s.retryDueMicros !== undefined) return;
    s.retryFailures++;
    const delayMicros = retryDelayMicros(s.retryFailures);
    s.retryDueMicros = this.ctx.nowMicros + delayMicros;
    this.effects.push({ type: 'armRetry', dueMicros: s.retryDueMicros, delayMicros });
  }

  cancelRetry(): void {
    if (this.s.retryDueMicros === undefined) return;
    this.s.retryDueMicros = undefined;
    this.effects.push({ type: 'cancelRetry' });
  }

  passEnded(complete: boolean): void {
    const s = this.s;
    const generation = s.passing;
    if (generation === undefined) return;
    s.passing = undefined;
    if (generation === s.generation) {
      if (complete) {
        s.completedGeneration = generation;
        // Every link owned now is trusted from this generation: older dates and views say nothing more.
        s.confirmed = new Map();
        s.history = since(s.history, generation);
        s.retryFailures = 0;
        this.cancelRetry();
      } else {
        // Links deferred, or a peer left mid-pass (the membership change that follows runs
        // another pass) or keeps failing: again after a backoff, not in a tight loop.
        this.retry();
      }
    }
    if (s.rerun) {
      s.rerun = false;
      this.pass();
    }
  }

  earlyEnded(): void {
    const s = this.s;
    if (s.early === undefined) return;
    s.early = undefined;
    if (s.earlyRerun) {
      s.earlyRerun = false;
      this.early();
    }
    this.pass();
  }

  staleEpoch(link: Link): void {
    const r = this.s.recheck;
    // Forgetting one would serve it unchecked: past the bound every link is checked again instead.
    if (!r.has(link) && r.size >= this.s.recheckMax) this.distrustAll();
    else r.add(link);
  }

  /** A new generation that trusts nothing from earlier ones, unless nothing is trusted or running yet. */
  distrustAll(): void {
    const s = this.s;
    // A view of generation 0 is a seeded group's (createSchedule synchronizedView): trusted too.
    const seeded = s.history.views.some((v) => v.generation === 0);
    const trusting = s.completedGeneration > 0 || s.done.size > 0 || s.confirmed.size > 0 || seeded;
    if (!trusting && s.passing === undefined && s.early === undefined) return;
    s.recheck = new Set();
    s.confirmed = new Map();
    s.history = emptyHistory();
    this.newGeneration();
  }

  /** Starts the next generation: nothing is done in it yet, and its passes start. */
  newGeneration(): void {
    const s = this.s;
    s.generation++;
    s.done = new Set();
    s.retryFailures = 0;
    this.cancelRetry();
    this.pass();
    this.early();
  }
}

export function step(state: ScheduleState, input: ScheduleInput, ctx: ScheduleContext): ScheduleResult {
  const run = new Run({ ...state } as Draft, ctx);
  const s = run.s;
  switch (input.type) {
    case 'membershipChanged':
      if (input.disowned) {
        // Written off by a peer: any link may have been taken over meanwhile.
        s.confirmed = new Map();
        s.history = emptyHistory();
        s.holdUntilMicros = ctx.nowMicros + limits.maintenanceIntervalMicros;
      } else if (s.selfId !== undefined) {
        for (const l of s.done) s.confirmed.set(l, s.generation);
      }
      // A view without the group's quorum is recorded as unknown: it breaks every link's trust (lib/group/availability.ts).
      if (s.selfId !== undefined)
        s.history = withView(s.history, { generation: s.generation + 1, eligible: input.quorate === false ? undefined : input.eligible });
      run.newGeneration();
      break;
    case 'available':
      run.pass();
      break;
    case 'passEnded':
      run.passEnded(input.complete);
      break;
    case 'earlyEnded':
      run.earlyEnded();
      break;
    case 'linksDone':
      if (input.generation === s.generation) for (const l of input.links) s.done.add(l);
      break;
    case 'staleEpoch':
      run.staleEpoch(input.link);
      break;
    case 'distrustAll':
      run.distrustAll();
      break;
    case 'rechecked':
      s.recheck.delete(input.link);
      break;
    case 'retryDue':
      s.retryDueMicros = undefined;
      run.pass();
      break;
    case 'stop':
      s.stopped = true;
      run.cancelRetry();
      break;
  }
  return { state: s, effects: run.effects };
}
