/**
 * Queries across hosts (docs/xenon-compatibility.md, Queries): which queries must gather, the
 * fan-out to every member of the group, and the peer side that answers one host's part. A query
 * gathers when it says BROADCAST, or when it can match children of a factory whose selector keeps
 * each document on fewer hosts than the group has (`/core/examples-3x` on `default-3x` in a group
 * of five): the entry host then asks every member for its matches (`POST
 * /core/node-selectors/default/query`, members only), merges them without duplicates and orders
 * them the host-independent way (lib/query/merge.ts). A query that gathers fails (503) rather than
 * answer with a subset: when too few members answered to hold every match, when a member's answer
 * is over the limits, or with OWNER_SELECTION when any member did not answer.
 */

import type { ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Micros, NodeId } from '../../lib/ids.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import { eligibleOwners, isEligibleOwner, isPeer } from '../../lib/group/rules.js';
import { covered, mayMatchFactory, mergeGathered, orderHits, type GatheredHit, type SortKey } from '../../lib/query/merge.js';
import { parseQuerySpec, querySpecToJson, type QueryPlan } from '../../lib/query/spec.js';
import type { ServiceRegistry } from '../../lib/service.js';
import { sortKeysOf, type QueryHit } from '../../index/query.js';
import type { DocumentIndex } from '../../index/views.js';
import type { Clock } from '../base/clock.js';
import type { DocumentStore } from '../documents/documents.js';
import { peerError, type PeerClient } from '../net/peers.js';
import type { Selectors } from '../membership/selectors.js';
import { originOf } from '../routing/routing.js';

export const QUERY_PEER_PATH = '/core/node-selectors/default/query';

export interface QueryGatherDeps {
  index: DocumentIndex;
  store: Pick<DocumentStore, 'linearizablePart'>;
  clock: Clock;
  hostId: NodeId;
  registry: ServiceRegistry;
  selectors: Selectors;
  peers: PeerClient;
}

/** Where a query runs: here only, or on every member (and the smallest factor its matches live under). */
export interface QueryScope {
  gather: boolean;
  minFactor: number | undefined;
}

/** One host's matches, and a time no version it held was updated after (a page's "as of"). */
export interface HostAnswer {
  horizon: Micros;
  hits: GatheredHit[];
}

/** A host's part of a linearizable query: its view of the owners, and what it could not answer now. */
interface LinearPart extends HostAnswer {
  view: NodeId[];
  unavailable: number;
  examples: string[];
}

type WireHit = [string, number, SortKey[] | null, ServiceDocument | null];

export class QueryGather {
  constructor(private readonly d: QueryGatherDeps) {}

  scope(plan: QueryPlan): QueryScope {
    const members = Object.values(this.d.selectors.groupState.nodes).filter(isPeer).length;
    let minFactor: number | undefined;
    for (const factoryLink of this.d.registry.factoryLinks()) {
      const def = this.d.registry.factory(factoryLink)!.def;
      const f = this.d.selectors.spec(def.nodeSelector)?.replicationFactor;
      if (f === undefined || f >= members || !mayMatchFactory(plan.query, factoryLink, def.kind)) continue;
      minFactor = minFactor === undefined ? f : Math.min(minFactor, f);
    }
    return { gather: members > 1 && (plan.broadcast || plan.readAfterWrite || minFactor !== undefined), minFactor };
  }

  /** This host's matches, OWNER_SELECTION applied, with sort keys and (with `withDocs`) states. */
  local(plan: QueryPlan, asOf: Micros | undefined, withDocs: boolean): HostAnswer {
    const now = this.d.clock.nowMicros();
    const horizon = Math.max(now, this.d.index.newestTimeMicros());
    const hits: GatheredHit[] = [];
    for (const h of this.d.index.query(plan, now, asOf)) {
      if (plan.ownerSelection && !this.ownsHere(h.link)) continue;
      hits.push(gathered(h, plan, withDocs));
    }
    return { horizon, hits };
  }

  /** This host's part of a linearizable query (DocumentStore.linearizablePart), with its view of the owners. */
  private linearLocal(plan: QueryPlan, withDocs: boolean): LinearPart {
    const horizon = Math.max(this.d.clock.nowMicros(), this.d.index.newestTimeMicros());
    const part = this.d.store.linearizablePart(plan, (link) => this.ownsHere(link));
    const hits = part.hits.map((h) => gathered(h, plan, withDocs));
    return { horizon, hits, view: eligibleOwners(this.d.selectors.groupState), unavailable: part.unavailable, examples: part.examples };
  }

  /**
   * A linearizable query (READ_AFTER_WRITE_CONSISTENCY with OWNER_SELECTION): every owner of this
   * host's view answers its part, each at its own linearization point, so each document is
   * linearizable on its own (not the whole answer at one instant). The parts count only when
   * every owner answered under the same view and none held a link it could not answer then (so
   * every match has exactly one answering owner); otherwise they are asked again, backing off,
   * until limits.linearizableQueryWaitMicros, then 503 naming why.
   */
  async linearizable(plan: QueryPlan, withDocs: boolean): Promise<HostAnswer> {
    const deadline = this.d.clock.nowMicros() + limits.linearizableQueryWaitMicros;
    for (let delayMs: number = limits.linearizableQueryRetryMinMs; ; delayMs = Math.min(delayMs * 2, limits.linearizableQueryRetryMaxMs)) {
      const got = await this.linearOnce(plan, withDocs);
      if (typeof got !== 'string') return got;
      if (this.d.clock.nowMicros() + delayMs * 1000 > deadline)
        throw new KryptonError('QUORUM_UNAVAILABLE', `linearizable query: ${got}; retry later`);
      // A request's wait: it must not keep a stopped host's process alive.
      await new Promise((r) => setTimeout(r, delayMs).unref());
    }
  }

  /** One round of linearizable(): the merged answer, or why it cannot be given now. */
  private async linearOnce(plan: QueryPlan, withDocs: boolean): Promise<HostAnswer | string> {
    const group = this.d.selectors.groupState;
    const view = eligibleOwners(group);
    const key = [...view].sort().join(',');
    if (view.length === 0) return 'no host is an eligible owner now';
    if (view.length > limits.queryFanOutMax) return `the group has more than ${limits.queryFanOutMax} owners`;
    const body = JSON.stringify({ querySpec: querySpecToJson(plan), asOfMicros: null, withDocs });
    const parts = await Promise.all(
      view.map(async (id): Promise<LinearPart | string> => {
        if (id === this.d.hostId) return this.linearLocal(plan, withDocs);
        const n = group.nodes[id]!;
        try {
          return (await this.ask(`${originOf(n.groupReference)}${QUERY_PEER_PATH}`, body)) as LinearPart;
        } catch (e) {
          return `no answer from ${id} (${e instanceof Error ? e.message : String(e)})`;
        }
      }),
    );
    for (const [i, p] of parts.entries()) {
      if (typeof p === 'string') return p;
      if (!Array.isArray(p.view) || [...p.view].sort().join(',') !== key)
        return `${view[i]} sees other owners than this host (the membership is changing)`;
      if (typeof p.unavailable !== 'number') return `${view[i]} answered no linearizable part`;
      if (p.unavailable > 0)
        return `${view[i]} cannot answer ${p.unavailable} of its documents now (${p.examples.join(', ') || 'synchronizing'})`;
    }
    const got = parts as LinearPart[];
    const hits = mergeGathered(
      got.map((a) => a.hits),
      plan.includeAllVersions,
    );
    orderHits(hits, plan.sort, 'link');
    return { horizon: Math.max(...got.map((a) => a.horizon)), hits };
  }

  private ownsHere(link: string): boolean {
    const selector = this.d.registry.forChild(link)?.def.nodeSelector ?? '/core/node-selectors/default';
    return this.d.selectors.ownedHere(selector, link);
  }

  /**
   * Every member's matches merged, in the host-independent order, and the latest horizon among
   * them. Throws PEER_UNAVAILABLE when the members that answered may not hold every match.
   */
  async gather(plan: QueryPlan, scope: QueryScope, asOf: Micros | undefined, withDocs: boolean): Promise<HostAnswer> {
    const nodes = Object.values(this.d.selectors.groupState.nodes).filter(isPeer);
    const others = nodes.filter((n) => n.id !== this.d.hostId && isEligibleOwner(n));
    if (others.length + 1 > limits.queryFanOutMax) {
      throw new KryptonError(
        'LIMIT_EXCEEDED',
        `a query across hosts asks at most ${limits.queryFanOutMax} hosts; the group has ${nodes.length}`,
      );
    }
    const body = JSON.stringify({ querySpec: querySpecToJson(plan), asOfMicros: asOf ?? null, withDocs });
    const failed: string[] = [];
    const answers = await Promise.all(
      others.map(async (n): Promise<HostAnswer | undefined> => {
        try {
          return await this.ask(`${originOf(n.groupReference)}${QUERY_PEER_PATH}`, body);
        } catch (e) {
          failed.push(`${n.id} (${e instanceof Error ? e.message : String(e)})`);
          return undefined;
        }
      }),
    );
    const mine = this.local(plan, asOf, withDocs);
    const got = [mine, ...answers.filter((a): a is HostAnswer => a !== undefined)];
    const ok = covered({
      members: nodes.length,
      answered: got.length,
      minFactor: scope.minFactor,
      ownerSelection: plan.ownerSelection,
      majority: plan.readAfterWrite,
    });
    if (!ok) {
      const absent = nodes.length - got.length - failed.length;
      throw new KryptonError(
        'PEER_UNAVAILABLE',
        `query across hosts: ${got.length} of ${nodes.length} hosts answered, too few to hold every match` +
          (failed.length ? `; no answer from ${failed.join(', ')}` : '') +
          (absent > 0 ? `; ${absent} unavailable` : ''),
      );
    }
    const hits = mergeGathered(
      got.map((a) => a.hits),
      plan.includeAllVersions,
    );
    orderHits(hits, plan.sort, 'link');
    return { horizon: Math.max(...got.map((a) => a.horizon)), hits };
  }

  private async ask(url: string, body: string): Promise<HostAnswer> {
    const reply = await this.d.peers.request(url, { method: 'POST', body, timeoutMs: msFromMicros(limits.queryGatherTimeoutMicros) });
    if (reply.body.length > limits.queryGatherBytesMax) {
      throw new KryptonError('LIMIT_EXCEEDED', `a host's part of a query is over ${limits.queryGatherBytesMax} bytes`);
    }
    const text = reply.body.toString('utf8');
    if (reply.status !== 200) throw peerError(url, `status ${reply.status}: ${text.slice(0, limits.peerReplyQuotedCharsMax)}`);
    const parsed = JSON.parse(text) as { horizon?: unknown; hits?: unknown; view?: unknown; unavailable?: unknown; examples?: unknown };
    if (typeof parsed.horizon !== 'number' || !Array.isArray(parsed.hits)) throw peerError(url, 'malformed query answer');
    if (parsed.hits.length > limits.queryGatherHitsMax) {
      throw new KryptonError('LIMIT_EXCEEDED', `a host's part of a query holds more than ${limits.queryGatherHitsMax} hits`);
    }
    const hits = (parsed.hits as WireHit[]).map(([link, version, keys, doc]) => {
      const g: GatheredHit = { link, version };
      if (keys !== null) g.keys = keys;
      if (doc !== null) g.doc = doc;
      return g;
    });
    const { view, unavailable, examples } = parsed;
    if (view === undefined) return { horizon: parsed.horizon, hits };
    const ex = Array.isArray(examples) ? examples.filter((x): x is string => typeof x === 'string').slice(0, 5) : [];
    return { horizon: parsed.horizon, hits, view, unavailable, examples: ex } as LinearPart;
  }

  /** The peer side: a member's request for this host's part of a query, answered as JSON text. */
  serve(raw: unknown): string {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new KryptonError('INVALID_BODY', 'query request is required');
    const r = raw as { querySpec?: unknown; asOfMicros?: unknown; withDocs?: unknown };
    const plan = parseQuerySpec(r.querySpec);
    const asOf = typeof r.asOfMicros === 'number' ? r.asOfMicros : undefined;
    const part = plan.linearizable ? this.linearLocal(plan, r.withDocs === true) : this.local(plan, asOf, r.withDocs === true);
    const { horizon, hits } = part;
    if (hits.length > limits.queryGatherHitsMax) {
      throw new KryptonError('LIMIT_EXCEEDED', `this host's part of the query holds more than ${limits.queryGatherHitsMax} hits`);
    }
    const wire: WireHit[] = hits.map((h) => [h.link, h.version, h.keys ?? null, (h.doc as ServiceDocument | undefined) ?? null]);
    if (!plan.linearizable) return JSON.stringify({ horizon, hits: wire });
    const { view, unavailable, examples } = part as LinearPart;
    return JSON.stringify({ horizon, hits: wire, view, unavailable, examples });
  }
}

function gathered(h: QueryHit, plan: QueryPlan, withDocs: boolean): GatheredHit {
  const g: GatheredHit = { link: h.link, version: h.version };
  if (plan.sort !== undefined) g.keys = sortKeysOf(h.doc, plan.sort);
  if (withDocs) g.doc = h.doc;
  return g;
}
