/**
 * The nemesis: faults applied to the group on a seeded schedule, one at a time. Each round waits
 * a quiet spell, applies one fault to a random host for a hold time, heals it, and waits (with a
 * deadline) until the group has converged again. The faults:
 *
 * - kill: SIGKILL, restarted with the same sandbox and id at the heal;
 * - pause: SIGSTOP, SIGCONT at the heal (a hung host);
 * - stop: SIGTERM (graceful), started again at the heal;
 * - partition: the host's links to every other host dropped by nftables in its namespace
 *   (clients still reach every host), restored at the heal.
 *
 * Every fault is a window with its start, heal and convergence times, so availability can be
 * told per fault from the clients' journal.
 */

import { type Group, STOP_DEADLINE_MS } from './group.js';
import { cut, healAll, type Namespaces } from './netns.js';
import type { Rng } from './random.js';

export type FaultKind = 'kill' | 'pause' | 'stop' | 'partition';
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'pause', 'stop', 'partition'];

export interface FaultWindow {
  kind: FaultKind;
  host: number;
  start: number;
  healed?: number;
  /**
   * pause and partition: whether, just before the heal, every other host listed the target as
   * not AVAILABLE (failure detection saw the fault within its hold).
   */
  noticed?: boolean;
  /** Something the target did while the fault was applied (a graceful stop that did not end). */
  note?: string;
  /** Milliseconds from the heal until the group converged; absent when it did not within the deadline. */
  convergedMs?: number;
  error?: string;
}

export interface NemesisOptions {
  faults: FaultKind[];
  holdMs: [number, number];
  quietMs: [number, number];
  convergeDeadlineMs: number;
}

export class Nemesis {
  readonly windows: FaultWindow[] = [];
  private stopping = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly group: Group,
    private readonly ns: Namespaces | undefined,
    private readonly rng: Rng,
    private readonly opts: NemesisOptions,
  ) {}

  /** Waits `ms`, or less when the run is stopping: the schedule's own pacing, not a settle. */
  private pause(ms: number): Promise<void> {
    return new Promise((r) => {
      const t = setTimeout(r, ms);
      this.wake = () => {
        clearTimeout(t);
        r();
      };
    });
  }

  /** Runs rounds until `stop()`; the fault in progress is always healed before this returns. */
  async run(): Promise<void> {
    if (!this.opts.faults.length) return;
    while (!this.stopping) {
      await this.pause(this.rng.int(...this.opts.quietMs));
      if (this.stopping) break;
      const kind = this.draw();
      const host = this.rng.int(0, this.group.hosts.length - 1);
      const w: FaultWindow = { kind, host, start: performance.now() };
      this.windows.push(w);
      try {
        w.note = await this.apply(kind, host);
        await this.pause(this.rng.int(...this.opts.holdMs));
      } catch (e) {
        w.error = (e as Error).message;
      }
      if (kind === 'pause' || kind === 'partition') w.noticed = await this.group.seenDown(host);
      try {
        await this.heal(kind, host);
      } catch (e) {
        w.error = `${w.error ?? ''} heal: ${(e as Error).message}`;
      }
      w.healed = performance.now();
      const ms = await this.group.waitConverged(this.opts.convergeDeadlineMs);
      if (ms !== undefined) w.convergedMs = Math.round(ms);
    }
  }

  private deck: FaultKind[] = [];

  /** Each kind once per shuffled round, so a short run still applies every kind it was given. */
  private draw(): FaultKind {
    if (!this.deck.length) {
      this.deck = [...this.opts.faults];
      for (let i = this.deck.length - 1; i > 0; i--) {
        const j = this.rng.int(0, i);
        [this.deck[i], this.deck[j]] = [this.deck[j]!, this.deck[i]!];
      }
    }
    return this.deck.pop()!;
  }

  stop(): void {
    this.stopping = true;
    this.wake?.();
  }

  /** Applies the fault; answers a note when the system behaved worth mentioning while it did. */
  private async apply(kind: FaultKind, i: number): Promise<string | undefined> {
    const h = this.group.hosts[i]!;
    if (kind === 'kill') await h.kill();
    else if (kind === 'pause') h.pause();
    else if (kind === 'stop') {
      if (!(await h.stop())) return `did not exit within ${STOP_DEADLINE_MS / 1000} s of SIGTERM: killed`;
    } else if (kind === 'partition') {
      if (!this.ns) throw new Error('partition needs network namespaces');
      const others = this.group.hosts.map((x) => x.index).filter((x) => x !== i);
      cut(this.ns, i, others);
      for (const o of others) cut(this.ns, o, [i]);
    }
    return undefined;
  }

  private async heal(kind: FaultKind, i: number): Promise<void> {
    const h = this.group.hosts[i]!;
    if (kind === 'kill' || kind === 'stop') {
      if (h.state === 'down') await h.start();
    } else if (kind === 'pause') h.resume();
    else if (kind === 'partition' && this.ns) healAll(this.ns);
  }

  /** Heals everything (used on the way out, whatever state a failure left). */
  async healEverything(): Promise<void> {
    if (this.ns) healAll(this.ns);
    for (const h of this.group.hosts) {
      if (h.state === 'paused') h.resume();
      if (h.state === 'down') await h.start();
    }
  }
}
