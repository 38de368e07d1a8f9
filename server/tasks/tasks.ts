/**
 * Runs task services (lib/task.ts) on their owner. After a create, after each durable step, after
 * this host takes a task over, and on every maintenance round for tasks no one here is driving
 * (a restart, a stalled stage, a lost self-PATCH), the owner reads the task (synchronized with
 * its replicas first), runs the author's `runStage` and applies the returned self-PATCH through
 * the normal write path, so every step is replicated under quorum before the next one starts.
 * Delivery rule: a stage runs at least once; one interrupted by a crash or an owner change runs
 * again on the new owner from the last durable step, and the task reaches a terminal stage once.
 * Also holds direct-task POSTs open until their task ends.
 */

import type { Logger } from 'pino';
import type { JsonObject, ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Link, Micros, NodeId } from '../../lib/ids.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import type { RegisteredService, ServiceRegistry } from '../../lib/service.js';
import { isTerminal, taskRetryDelayMicros, type TaskIO, type TaskStage } from '../../lib/task.js';
import { isExpired } from '../../lib/verbs.js';
import type { DocumentIndex } from '../../index/views.js';
import type { ChangeFeed } from '../documents/changes.js';
import type { Clock } from '../base/clock.js';
import type { DocumentStore } from '../documents/documents.js';
import type { PeerClient } from '../net/peers.js';
import type { QueryTasks } from './query-tasks.js';
import type { Selectors } from '../membership/selectors.js';

export interface TaskDriverDeps {
  registry: ServiceRegistry;
  index: DocumentIndex;
  store: DocumentStore;
  selectors: Selectors;
  changes: ChangeFeed;
  queries: QueryTasks;
  peers: PeerClient;
  /** This host's own address: task deletes go through it so they are routed to each owner. */
  selfUri: () => string;
  hostId: NodeId;
  clock: Clock;
  logger: Logger;
  operationTimeoutMicros: Micros;
}

const stageOf = (doc: ServiceDocument): TaskStage | undefined => (doc as { taskInfo?: { stage?: TaskStage } }).taskInfo?.stage;

export class TaskDriver {
  private readonly driving = new Set<Link>();
  private readonly delays = new Set<() => void>();
  /** Tasks whose last step failed: failures in a row, and when the maintenance sweep may run them again. */
  private readonly failing = new Map<Link, { failures: number; retryAtMicros: Micros }>();
  private stopped = false;
  readonly stats = { stagesRun: 0, stageFailures: 0, resumed: 0 };
  private readonly io: TaskIO;

  constructor(private readonly d: TaskDriverDeps) {
    this.io = {
      query: async (task) => {
        const { task: done } = await this.d.queries.create('/core/local-query-tasks', task);
        return done as JsonObject;
      },
      delete: async (link) => {
        const reply = await this.d.peers.request(this.d.selfUri() + link, {
          method: 'DELETE',
          body: '{}',
          timeoutMs: msFromMicros(this.d.operationTimeoutMicros),
        });
        if (reply.status >= 400)
          throw new KryptonError(
            'PEER_UNAVAILABLE',
            `DELETE ${link}: ${reply.status} ${reply.body.toString('utf8').slice(0, limits.peerReplyQuotedCharsMax)}`,
          );
      },
      delay: (ms) =>
        new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(t);
            this.delays.delete(done);
            resolve();
          };
          const t = setTimeout(done, ms);
          this.delays.add(done);
        }),
    };
  }

  static isTask(svc: RegisteredService): boolean {
    return svc.def.runStage !== undefined;
  }

  private owns(svc: RegisteredService, link: Link): boolean {
    return this.d.selectors.ownedHere(svc.def.nodeSelector, link);
  }

  /** Starts driving `link` unless this host already is. */
  drive(svc: RegisteredService, link: Link): void {
    if (!TaskDriver.isTask(svc) || this.stopped || this.driving.has(link)) return;
    this.driving.add(link);
    void this.loop(svc, link).finally(() => this.driving.delete(link));
  }

  private async loop(svc: RegisteredService, link: Link): Promise<void> {
    for (let i = 0; i < limits.taskStepsPerDriveMax; i++) {
      if (this.stopped || !this.d.selectors.available || !this.owns(svc, link)) return;
      let state: ServiceDocument;
      try {
        state = await this.d.store.read(svc, link);
      } catch {
        this.failing.delete(link);
        return; // deleted, expired or unreadable: nothing to drive
      }
      if (isTerminal(stageOf(state))) {
        this.failing.delete(link);
        return;
      }
      let body: JsonObject | undefined;
      try {
        this.stats.stagesRun++;
        body = await svc.def.runStage!(state, this.io, { nowMicros: this.d.clock.nowMicros(), hostId: this.d.hostId });
      } catch (e) {
        this.failed(link, e, 'task stage failed');
        return;
      }
      // The stage's result is only ours to apply while we still own the task; otherwise the new
      // owner repeats the stage from the state it holds.
      if (!body || this.stopped || !this.owns(svc, link)) return;
      try {
        await this.d.store.update(svc, 'PATCH', link, body);
      } catch (e) {
        this.failed(link, e, 'task self-PATCH failed');
        return;
      }
      this.failing.delete(link);
    }
    this.d.logger.warn({ link }, `task took ${limits.taskStepsPerDriveMax} steps in one drive; continuing on the next maintenance round`);
  }

  /** Counts a failed step of `link` and puts its next try off (taskRetryDelayMicros). */
  private failed(link: Link, e: unknown, what: string): void {
    this.stats.stageFailures++;
    const failures = (this.failing.get(link)?.failures ?? 0) + 1;
    const delay = taskRetryDelayMicros(failures);
    // Re-inserted, so the map's first entry is the one that failed longest ago.
    this.failing.delete(link);
    if (this.failing.size >= limits.taskRetriesTrackedMax) this.failing.delete(this.failing.keys().next().value!);
    this.failing.set(link, { failures, retryAtMicros: this.d.clock.nowMicros() + delay });
    this.d.logger.warn(
      { link, err: (e as Error)?.message ?? String(e), failures, retryInMs: Math.round(delay / 1000) },
      `${what}; retried by a maintenance round after the delay`,
    );
  }

  /** Failed steps in a row of a task, and when it may run again; undefined once a step succeeded (for tests). */
  retryOf(link: Link): { failures: number; retryAtMicros: Micros } | undefined {
    const f = this.failing.get(link);
    return f && { ...f };
  }

  /** Every live, unfinished task this host owns and is not yet driving starts (again), unless it failed and its retry is not yet due. */
  sweep(): void {
    if (this.stopped || !this.d.selectors.available) return;
    const now = this.d.clock.nowMicros();
    for (const factory of this.d.registry.factoryLinks()) {
      const svc = this.d.registry.factory(factory)!;
      if (!TaskDriver.isTask(svc)) continue;
      for (const link of this.d.index.children(factory, now)) {
        if (this.driving.has(link)) continue;
        const doc = this.d.index.latest(link);
        if (!doc || isExpired(doc, now) || isTerminal(stageOf(doc))) {
          this.failing.delete(link);
          continue;
        }
        if (!this.owns(svc, link) || (this.failing.get(link)?.retryAtMicros ?? 0) > now) continue;
        this.stats.resumed++;
        this.drive(svc, link);
      }
    }
  }

  /**
   * A direct task's answer: the task's state once its stage is terminal. Fails with 408 when the
   * task expires first, or after the longest hold a request may have.
   */
  awaitTerminal(link: Link): Promise<ServiceDocument> {
    return new Promise<ServiceDocument>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void) => {
        stop();
        if (timer) clearTimeout(timer);
        fn();
      };
      const check = (doc: ServiceDocument | undefined): boolean => {
        if (!doc) return false;
        const now = this.d.clock.nowMicros();
        if (isExpired(doc, now)) {
          finish(() => reject(new KryptonError('TIMEOUT', 'Task expired')));
          return true;
        }
        if (isTerminal(stageOf(doc))) {
          finish(() => resolve(doc));
          return true;
        }
        return false;
      };
      const stop = this.d.changes.onLink(link, (c) => {
        if (c.type === 'expired') finish(() => reject(new KryptonError('TIMEOUT', 'Task expired')));
        else check(c.doc);
      });
      const current = this.d.index.latest(link);
      if (check(current)) return;
      const now = this.d.clock.nowMicros();
      const expiry = current?.documentExpirationTimeMicros ? current.documentExpirationTimeMicros - now : Infinity;
      const holdMicros = Math.min(expiry, limits.directTaskHoldMaxMicros);
      timer = setTimeout(
        () => {
          const msg =
            holdMicros === expiry
              ? 'Task expired'
              : `Direct task still running after ${Math.round(holdMicros / 1e6)} s; GET ${link} for its progress`;
          finish(() => reject(new KryptonError('TIMEOUT', msg)));
        },
        Math.max(0, Math.ceil(holdMicros / 1000)),
      );
    });
  }

  stop(): void {
    this.stopped = true;
    for (const done of [...this.delays]) done();
  }
}
