/**
 * Owner-only work (Xenon's handleStart/handleMaintenance on the owner): a service's start handler runs on the owner after a
 * create and on the new owner after ownership moved; its maintenance handler runs every interval
 * on the owner of each live child while the group is available. Handlers return a PATCH the
 * owner applies through the normal write path (validated, logged, replicated under quorum), so
 * peers see every step and a new owner carries on from the last durable state.
 */

import type { Logger } from 'pino';
import type { JsonObject, ServiceDocument } from '../../lib/document.js';
import { isKryptonError } from '../../lib/errors.js';
import type { Link, NodeId } from '../../lib/ids.js';
import type { Effect, RegisteredService, ServiceRegistry } from '../../lib/service.js';
import { isExpired } from '../../lib/verbs.js';
import type { DocumentIndex } from '../../index/views.js';
import type { Clock } from '../base/clock.js';
import type { DocumentStore } from '../documents/documents.js';
import type { Selectors } from '../membership/selectors.js';
import type { EffectRunner } from './effects.js';
import type { TaskDriver } from './tasks.js';

export class OwnerHooks {
  private maintaining = false;

  constructor(
    private readonly d: {
      registry: ServiceRegistry;
      index: DocumentIndex;
      store: DocumentStore;
      selectors: Selectors;
      hostId: NodeId;
      clock: Clock;
      logger: Logger;
      tasks?: TaskDriver;
      effects?: EffectRunner;
    },
  ) {}

  /** After an update this host made as owner reached its quorum: the effects its handler asked for. */
  effects(svc: RegisteredService, _link: Link, state: ServiceDocument, effects: readonly Effect[]): void {
    this.d.effects?.perform(svc, state, effects);
  }

  /** One document's maintenance now (a maintenance effect), if this host still owns it and it is live. */
  async maintainOne(svc: RegisteredService, link: Link): Promise<void> {
    if (!svc.def.handleMaintenance || !this.owns(svc, link)) return;
    const doc = this.live(link);
    if (!doc) return;
    const body = svc.def.handleMaintenance(doc, { nowMicros: this.d.clock.nowMicros(), hostId: this.d.hostId });
    await this.selfPatch(svc, link, body, 'maintenance effect');
  }

  /**
   * A singleton's one document, created by its owner once the group is available if the link
   * never held one (a deleted singleton stays deleted: someone meant it).
   */
  private async ensureSingleton(svc: RegisteredService): Promise<void> {
    const s = svc.def.singleton;
    if (!s) return;
    const link = `${svc.def.factoryLink}/${s.id}`;
    if (!this.owns(svc, link) || this.d.index.latest(link)) return;
    try {
      const body = { ...(s.initial as JsonObject), documentSelfLink: link };
      await this.d.store.create(svc, { body: svc.parseBody(body), link }, { forceIndexUpdate: false, requestId: 'singleton-create' });
    } catch (e) {
      if (!isKryptonError(e) || (e.code !== 'ALREADY_EXISTS' && e.code !== 'MARKED_DELETED'))
        this.d.logger.warn({ link, err: (e as Error).message }, 'singleton create failed; retried next round');
    }
  }

  private owns(svc: RegisteredService, link: Link): boolean {
    return this.d.selectors.ownedHere(svc.def.nodeSelector, link);
  }

  private live(link: Link): ServiceDocument | undefined {
    const doc = this.d.index.latest(link);
    return doc && doc.documentUpdateAction !== 'DELETE' && !isExpired(doc, this.d.clock.nowMicros()) ? doc : undefined;
  }

  private async selfPatch(svc: RegisteredService, link: Link, body: object | undefined, why: string): Promise<void> {
    if (!body) return;
    try {
      await this.d.store.update(svc, 'PATCH', link, body);
    } catch (e) {
      this.d.logger.warn({ link, err: (e as Error).message }, `${why} self-PATCH failed`);
    }
  }

  /** After a create answered on this host (the owner), or after this host took a document over. */
  started(svc: RegisteredService, link: Link): void {
    this.d.tasks?.drive(svc, link);
    if (!svc.def.handleStart) return;
    setImmediate(() => {
      const doc = this.live(link);
      if (!doc || !this.owns(svc, link)) return;
      const body = svc.def.handleStart!(doc, { nowMicros: this.d.clock.nowMicros(), hostId: this.d.hostId });
      void this.selfPatch(svc, link, body, 'start handler');
    });
  }

  /** One maintenance round; skipped while the group is unavailable or the previous round runs. */
  async maintain(): Promise<void> {
    if (this.maintaining || !this.d.selectors.available) return;
    this.maintaining = true;
    try {
      for (const factory of this.d.registry.factoryLinks()) {
        const svc = this.d.registry.factory(factory)!;
        await this.ensureSingleton(svc);
        if (!svc.has('PERIODIC_MAINTENANCE') || !svc.def.handleMaintenance) continue;
        const now = this.d.clock.nowMicros();
        const work: Promise<void>[] = [];
        for (const link of this.d.index.children(factory, now)) {
          if (!this.owns(svc, link)) continue;
          const doc = this.live(link);
          if (!doc) continue;
          const body = svc.def.handleMaintenance(doc, { nowMicros: now, hostId: this.d.hostId });
          work.push(this.selfPatch(svc, link, body, 'maintenance handler'));
        }
        await Promise.all(work);
      }
    } finally {
      this.maintaining = false;
    }
  }
}
