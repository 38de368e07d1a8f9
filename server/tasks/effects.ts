/**
 * Carries out the effects a service's handler returned with its next state (lib/service.ts,
 * Effect), on the owner, after the update is durable under its quorum: requests to other
 * services (continued on their answer with a PATCH of the document), creates, and a later
 * maintenance run of the document. Each request and create carries an Idempotency-Key made
 * from the update and the effect's place in it, and is retried with backoff on failures whose
 * outcome is unknown until the operation timeout, so it is applied once. Effects run as the
 * system user, like a task's steps. What a dying owner had not yet performed is not performed.
 */

import type { Logger } from 'pino';
import type { JsonObject, ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { fnv64, hex64 } from '../../lib/hash.js';
import type { Link, NodeId } from '../../lib/ids.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import type { Effect, EffectAnswer, RegisteredService, ServiceContext, Stored } from '../../lib/service.js';
import type { Clock } from '../base/clock.js';
import type { PeerClient } from '../net/peers.js';
import type { DocumentStore } from '../documents/documents.js';
import type { Selectors } from '../membership/selectors.js';
import type { DocumentIndex } from '../../index/views.js';

export interface EffectStats {
  performed: number;
  failed: number;
  dropped: number;
}

export interface EffectDeps {
  store: DocumentStore;
  index: DocumentIndex;
  selectors: Selectors;
  peers: PeerClient;
  selfUri: () => string;
  hostId: NodeId;
  clock: Clock;
  logger: Logger;
  operationTimeoutMicros: number;
  /** This document's maintenance, run once (OwnerHooks.maintainOne). */
  maintain(svc: RegisteredService, link: Link): Promise<void>;
}

const RETRY_STATUSES = new Set([408, 502, 503, 504]);

export class EffectRunner {
  readonly stats: EffectStats = { performed: 0, failed: 0, dropped: 0 };
  private inFlight = 0;
  /** Maintenance effects waiting for their time: stop() ends the wait. */
  private readonly timers = new Map<NodeJS.Timeout, () => void>();
  private stopped = false;

  constructor(private readonly d: EffectDeps) {}

  private ctx(): ServiceContext {
    return { nowMicros: this.d.clock.nowMicros(), hostId: this.d.hostId };
  }

  /** The effects of the update that made `state`, each started now. */
  perform(svc: RegisteredService, state: ServiceDocument, effects: readonly Effect[]): void {
    effects.forEach((e, i) => {
      if (this.stopped) return;
      if (this.inFlight >= limits.effectsInFlightMax) {
        this.stats.dropped++;
        this.d.logger.warn(
          { link: state.documentSelfLink, effect: e.type },
          `effect dropped: ${limits.effectsInFlightMax} effects in flight`,
        );
        return;
      }
      this.inFlight++;
      void this.one(svc, state, e, i)
        .then(
          () => void this.stats.performed++,
          (err: unknown) => {
            this.stats.failed++;
            this.d.logger.warn({ link: state.documentSelfLink, effect: e.type, err: (err as Error).message }, 'effect failed');
          },
        )
        .finally(() => this.inFlight--);
    });
  }

  private async one(svc: RegisteredService, state: ServiceDocument, e: Effect, index: number): Promise<void> {
    const link = state.documentSelfLink;
    // Unique per update (a new epoch restarts versions only after a takeover) and per effect.
    const key = `fx-${hex64(fnv64(link))}-${state.documentEpoch ?? 0}-${state.documentVersion}-${index}`;
    switch (e.type) {
      case 'maintenance': {
        const delayMs = msFromMicros(Math.min(Math.max(0, e.afterMicros), limits.effectMaintenanceDelayMaxMicros));
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            this.timers.delete(t);
            resolve();
          }, delayMs);
          t.unref();
          this.timers.set(t, resolve);
        });
        if (!this.stopped) await this.d.maintain(svc, link);
        return;
      }
      case 'create': {
        await this.send('POST', e.factoryLink, e.body, key);
        return;
      }
      case 'request': {
        const answer = await this.send(e.method, e.link, e.body, e.method === 'GET' ? undefined : key);
        if (!e.onAnswer || this.stopped) return;
        // The continuation runs on the owner with the latest state; ownership may have moved meanwhile.
        if (!this.d.selectors.ownedHere(svc.def.nodeSelector, link)) return;
        const latest = this.d.index.latest(link);
        if (!latest || latest.documentUpdateAction === 'DELETE') return;
        const body = e.onAnswer(answer, latest as Stored<JsonObject>, this.ctx());
        if (body !== undefined) await this.d.store.update(svc, 'PATCH', link, body, { requestId: `${key}-then` });
        return;
      }
    }
  }

  /** A request through this host (routed to the target's owner), retried under its key while the outcome is unknown. */
  private async send(method: string, link: Link, body: JsonObject | undefined, key: string | undefined): Promise<EffectAnswer> {
    const deadline = this.d.clock.nowMicros() + this.d.operationTimeoutMicros;
    const headers: Record<string, string> = key === undefined ? {} : { 'idempotency-key': key };
    for (let attempt = 0; ; attempt++) {
      const left = msFromMicros(deadline - this.d.clock.nowMicros());
      let retry: string;
      try {
        const r = await this.d.peers.json(`${this.d.selfUri()}${link}`, { method, body, headers, timeoutMs: Math.max(1, left) });
        const answer = { status: r.status, body: isObject(r.body) ? r.body : undefined };
        if (!RETRY_STATUSES.has(r.status)) return answer;
        retry = `status ${r.status}`;
      } catch (err) {
        retry = (err as Error).message;
      }
      const wait = Math.min(1000, 20 * 2 ** attempt);
      if (this.stopped || msFromMicros(deadline - this.d.clock.nowMicros()) <= wait) {
        throw new KryptonError('TIMEOUT', `${method} ${link} did not complete within the operation timeout (${retry})`);
      }
      await new Promise((r) => setTimeout(r, wait).unref());
    }
  }

  stop(): void {
    this.stopped = true;
    for (const [t, resolve] of this.timers) {
      clearTimeout(t);
      resolve();
    }
    this.timers.clear();
  }
}

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
