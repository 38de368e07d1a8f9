/**
 * When the simulated hosts synchronize: each host runs the server's own schedule
 * (lib/synch/schedule.ts), fed on the simulation's manual clock, as server/synch/passes.ts feeds it
 * on the real one. A view change is a membership change; the machine's `runPass` becomes a pass
 * over the links the host owns and has not synchronized since (atomic or over the network, as the
 * simulation is set), its end goes back in, and so do the links each synchronization settles and
 * the writes a replica refused for their epoch. The machine decides the rest: one pass at a time,
 * the rerun after a change mid-pass, which links are done, the retry backoff.
 *
 * What is the harness's, not the server's: with autoSynch off the passes never run; the retries
 * stop after SimOptions.synchRetries failed passes in a row (the server goes on until the
 * membership changes), so that a run drains; the group is available exactly when it has a quorum,
 * so the early pass (which needs a settling group) never starts.
 */

import type { Link, NodeId } from '../../lib/ids.js';
import { createSchedule, step, type ScheduleEffect, type ScheduleInput, type ScheduleState } from '../../lib/synch/schedule.js';
import type { ReplicationSim } from './sim-replication.js';

/** One host's schedule and what runs it. */
export class HostSchedule {
  state: ScheduleState;
  /** Effects not carried out yet: a pass that ends at once feeds the machine again from inside one. */
  readonly queue: ScheduleEffect[] = [];
  draining = false;
  /** Bumped by cancelRetry: a retry timer armed before it is ignored. */
  retryToken = 0;

  /** `seededView`: the group the host starts in, its seeded links on every host (none after a restart). */
  constructor(selfId: NodeId, seededView?: readonly NodeId[]) {
    this.state = createSchedule({ selfId, synchronizedView: seededView });
  }
}

export class SimSchedules {
  constructor(private readonly sim: ReplicationSim) {}

  /** A fresh schedule: a host restarts with a new Synchronizer. */
  reset(id: NodeId): void {
    this.sim.host(id).schedule = new HostSchedule(id);
  }

  feed(id: NodeId, input: ScheduleInput): void {
    const h = this.sim.host(id);
    const s = h.schedule;
    const available = this.sim.available(h);
    const r = step(s.state, input, { nowMicros: this.sim.nowMs * 1000, available, hasQuorum: available });
    s.state = r.state;
    s.queue.push(...r.effects);
    if (s.draining) return;
    s.draining = true;
    try {
      for (let e = s.queue.shift(); e; e = s.queue.shift()) this.run(id, s, e);
    } finally {
      s.draining = false;
    }
  }

  private run(id: NodeId, s: HostSchedule, e: ScheduleEffect): void {
    const h = this.sim.host(id);
    const inc = h.incarnation;
    switch (e.type) {
      case 'runPass':
        if (this.sim.autoSynch) this.pass(id, e.generation);
        break;
      case 'runEarlyPass':
        this.sim.at(0, () => h.incarnation === inc && this.feed(id, { type: 'earlyEnded' }));
        break;
      case 'armRetry': {
        if (s.state.retryFailures > this.sim.synchRetries) {
          this.sim.log(`synch ${id} gives up after ${s.state.retryFailures} failed passes`);
          break;
        }
        const token = ++s.retryToken;
        this.sim.at(e.delayMicros / 1000, () => {
          if (h.incarnation === inc && h.schedule === s && s.retryToken === token) this.feed(id, { type: 'retryDue' });
        });
        break;
      }
      case 'cancelRetry':
        s.retryToken++;
        break;
    }
  }

  /**
   * A settled pass (server/synch/passes.ts settledPass): it fails, after a request's timeout, when
   * a peer in the host's view does not answer its heads; else every link the host owns among
   * those it and its peers hold, not done this generation, is synchronized, and the pass is
   * complete when every one of them is.
   */
  private pass(id: NodeId, generation: number): void {
    const sim = this.sim;
    const h = sim.host(id);
    const s = h.schedule;
    const inc = h.incarnation;
    const end = (complete: boolean) => {
      if (h.incarnation === inc && h.schedule === s) this.feed(id, { type: 'passEnded', complete });
    };
    const peers = [...h.view].filter((p) => p !== id);
    if (peers.some((p) => !sim.connected(id, p))) {
      sim.log(`pass ${id} failed: a peer in its view does not answer`);
      sim.at(sim.timeoutMs, () => end(false));
      return;
    }
    const links = new Set<Link>();
    for (const p of [id, ...peers]) for (const l of sim.host(p).index.keys()) links.add(l);
    const owned = [...links].sort().filter((l) => sim.ownerAt(h, l) === id && !s.state.done.has(l));
    sim.log(`pass ${id} generation ${generation}: ${owned.join(',')}`);
    sim.runPass(id, owned, end);
  }
}
