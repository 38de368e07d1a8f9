/**
 * The I/O of a takeover's prepare phase (the decisions are lib/synch/promise.ts and takeover.ts).
 * As a replica, this host answers promise requests (`POST <selector>/synch` with kind `promise`):
 * each link's promise is decided and its head read inside that link's update queue, so no record
 * or local write slips between the two, and the reply leaves only once the new promises are on
 * disk (server/synch/promises.ts). As a new owner, it runs a prepare round: it asks every replica of the
 * links it takes over, itself first, in pages of limits.synchPromiseLinksMax per request, and
 * reports which links a quorum promised (with the heads returned) and which must wait.
 */

import type { ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Link, NodeId } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import type { RegisteredService, ServiceRegistry } from '../../lib/service.js';
import { headOfDoc } from '../../lib/synch/plan.js';
import { decidePromise, headFields, parsePromiseAnswers, type PromiseAnswer, type PromiseAsk } from '../../lib/synch/promise.js';
import { TakeoverRound, type TakeoverEffect, type TakeoverTarget } from '../../lib/synch/takeover.js';
import type { DocumentIndex } from '../../index/views.js';
import type { DocumentStore } from '../documents/documents.js';
import type { PeerClient } from '../net/peers.js';
import type { OwnerLease } from './lease.js';
import type { PromiseStore } from './promises.js';

export type ReadyTakeover = Extract<TakeoverEffect, { type: 'ready' }>;
export type DeferredTakeover = Extract<TakeoverEffect, { type: 'deferred' }>;

/** A promise request as it arrives, checked. */
export interface PromiseRequest {
  from: NodeId;
  factoryLink: Link;
  asks: PromiseAsk[];
}

/** Checks a promise request body; anything wrong is a 400 naming the field. */
export function parsePromiseRequest(raw: Record<string, unknown>, registry: ServiceRegistry): PromiseRequest {
  const bad = (why: string) => new KryptonError('INVALID_BODY', `promise request: ${why}`);
  const { from, factoryLink, asks } = raw;
  if (typeof from !== 'string' || from === '' || from.length > limits.documentIdCharsMax) throw bad('from must name the asking host');
  if (typeof factoryLink !== 'string' || !registry.factory(factoryLink)?.has('REPLICATION'))
    throw bad('factoryLink must name a replicated factory');
  if (!Array.isArray(asks) || asks.length === 0 || asks.length > limits.synchPromiseLinksMax) {
    throw bad(`asks must be an array of 1 to ${limits.synchPromiseLinksMax} [link, epoch] pairs`);
  }
  const seen = new Set<string>();
  const prefix = `${factoryLink}/`;
  for (const a of asks as unknown[]) {
    if (!Array.isArray(a) || a.length !== 2) throw bad('each ask must be a [link, epoch] pair');
    const [link, epoch] = a as unknown[];
    if (
      typeof link !== 'string' ||
      !link.startsWith(prefix) ||
      link.length === prefix.length ||
      link.indexOf('/', prefix.length) >= 0 ||
      link.length > prefix.length + limits.documentIdCharsMax
    ) {
      throw bad(`${JSON.stringify(link)} is not a child of ${factoryLink}`);
    }
    if (!Number.isSafeInteger(epoch) || (epoch as number) < 1) throw bad(`the epoch for ${link} must be an integer of at least 1`);
    if (seen.has(link)) throw bad(`${link} is asked twice`);
    seen.add(link);
  }
  return { from, factoryLink, asks: asks as PromiseAsk[] };
}

export class Takeovers {
  constructor(
    private readonly d: {
      hostId: NodeId;
      registry: ServiceRegistry;
      index: DocumentIndex;
      store: DocumentStore;
      promises: PromiseStore;
      peers: PeerClient;
      timeoutMs: number;
      lease: Pick<OwnerLease, 'waitMicros' | 'promised' | 'persisted' | 'sequence' | 'stats'>;
    },
  ) {}

  /** Serves a peer's promise request (already known to be an object of kind `promise`). */
  async serve(raw: Record<string, unknown>): Promise<{ promises: PromiseAnswer[] }> {
    const req = parsePromiseRequest(raw, this.d.registry);
    return { promises: await this.answer(req.from, req.asks) };
  }

  /** The replica's side, for a peer or for this host's own takeover. */
  async answer(by: NodeId, asks: readonly PromiseAsk[]): Promise<PromiseAnswer[]> {
    const { promises, lease } = this.d;
    promises.checkRoom(asks.length);
    // Another owner's lease on these links must run out before they are promised away: until
    // then it may still serve reads of a copy this promise lets the new owner overwrite.
    // Looked at again every leaseWaitPollMicros: a live holder that learns of the new view renews
    // under it, which ends its old grants before they would run out (lib/lease.ts).
    const links = asks.map((a) => a[0]);
    for (let waited = 0; waited < limits.leaseWaitMicrosMax; ) {
      const wait = Math.min(lease.waitMicros(by, links), limits.leaseWaitPollMicros);
      if (wait === 0) break;
      await new Promise((r) => setTimeout(r, Math.ceil(wait / 1000)).unref());
      waited += wait;
      lease.stats.promiseWaitMicros += wait;
    }
    const fresh: PromiseAsk[] = [];
    const again: Promise<void>[] = [];
    let persisted!: { resolve(): void; reject(e: unknown): void };
    const durable = new Promise<void>((resolve, reject) => (persisted = { resolve, reject }));
    durable.catch(() => undefined);
    const answers = await Promise.all(
      asks.map(([link, epoch]) =>
        this.d.store.serialized(link, async (): Promise<PromiseAnswer> => {
          const doc: ServiceDocument | undefined = this.d.index.latest(link);
          const held = doc ? headOfDoc(doc) : undefined;
          // The holder renewed meanwhile (the views disagree on the owner): refused, and the
          // takeover backs off as for any refusal.
          if (lease.waitMicros(by, [link]) > 0) return [link, epoch, 0, 0, held ? headFields(held) : null];
          const decision = decidePromise(held?.epoch, promises.get(link), { epoch, by });
          if (!decision.granted) return [link, epoch, 0, decision.fence, held ? headFields(held) : null];
          if (decision.record) {
            promises.hold(link, { epoch, by }, durable);
            // In the decision's own step, so every renewal answered after it reports the link.
            lease.promised(by, [link]);
            fresh.push([link, epoch]);
          } else {
            again.push(promises.durable(link));
          }
          return [link, epoch, 1, epoch, held ? headFields(held) : null];
        }),
      ),
    );
    const seq = lease.sequence;
    // The line's seq is on disk once this resolves (with no line, nothing is).
    promises.write(by, fresh, seq).then(() => {
      if (fresh.length > 0) lease.persisted(seq);
      persisted.resolve();
    }, persisted.reject);
    await Promise.all([durable, ...again]);
    return answers;
  }

  /**
   * The new owner's prepare round over `targets` (links of `svc`); `urls` maps each peer to its
   * selector's `/synch` URL. Resolves once every link is ready or deferred.
   */
  async prepare(
    svc: RegisteredService,
    targets: readonly TakeoverTarget[],
    urls: ReadonlyMap<NodeId, string>,
  ): Promise<{ ready: ReadyTakeover[]; deferred: DeferredTakeover[] }> {
    const round = new TakeoverRound(this.d.hostId, targets);
    const ready: ReadyTakeover[] = [];
    const deferred: DeferredTakeover[] = [];
    await new Promise<void>((resolve) => {
      const run = (effects: TakeoverEffect[]): void => {
        for (const e of effects) {
          if (e.type === 'ready') ready.push(e);
          else if (e.type === 'deferred') deferred.push(e);
          else {
            for (const page of pages(e.asks)) {
              void this.ask(svc, e.to, page, urls).then((answers) =>
                run(answers ? round.answered(e.to, answers) : round.failed(e.to, page)),
              );
            }
          }
        }
        if (round.done) resolve();
      };
      run(round.start());
    });
    return { ready, deferred };
  }

  private async ask(
    svc: RegisteredService,
    to: NodeId,
    asks: PromiseAsk[],
    urls: ReadonlyMap<NodeId, string>,
  ): Promise<PromiseAnswer[] | undefined> {
    if (to === this.d.hostId) return this.answer(to, asks).catch(() => undefined);
    const url = urls.get(to);
    if (!url) return undefined;
    const body = { kind: 'promise', from: this.d.hostId, factoryLink: svc.def.factoryLink, asks };
    const r = await this.d.peers.json(url, { method: 'POST', body, timeoutMs: this.d.timeoutMs }).catch(() => undefined);
    return r?.status === 200 ? parsePromiseAnswers(r.body) : undefined;
  }
}

/** Splits asks into requests of at most limits.synchPromiseLinksMax links and half the body limit. */
function pages(asks: readonly PromiseAsk[]): PromiseAsk[][] {
  const out: PromiseAsk[][] = [];
  let page: PromiseAsk[] = [];
  let bytes = 0;
  for (const a of asks) {
    const size = a[0].length + 24;
    if (page.length && (page.length >= limits.synchPromiseLinksMax || bytes + size > limits.bodyBytesMax / 2)) {
      out.push(page);
      page = [];
      bytes = 0;
    }
    page.push(a);
    bytes += size;
  }
  if (page.length) out.push(page);
  return out;
}
