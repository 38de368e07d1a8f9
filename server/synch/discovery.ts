/**
 * What synchronization reads from the peers (the requests server/synch/serve.ts answers): every
 * head of a replicated factory, in pages, with the epochs peers promised above their copies; the
 * full latest states of chosen links; and, for one link synchronized on demand, every peer's copy
 * and fence at once. Then one link's heads as a pass plans with them (assemble).
 */

import type { ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { NodeState } from '../../lib/group/types.js';
import type { Link, NodeId } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import { successThreshold } from '../../lib/replication/quorum.js';
import type { RegisteredService } from '../../lib/service.js';
import { headOf, headOfDoc, type Head, type HeadTuple } from '../../lib/synch/plan.js';
import type { ReplicaSet } from '../replication/replicator.js';
import { originOf } from '../routing/routing.js';
import { peerTimeoutMs, type SynchDeps } from './deps.js';

/** Peer heads of one factory's links, and the highest epoch any peer promised above its copy. */
export interface Discovered {
  heads: Map<Link, Map<NodeId, Head | undefined>>;
  fences: Map<Link, number>;
}

/** One link's heads as a pass plans with them (Discovery.assemble). */
export interface Assembled {
  heads: Map<NodeId, Head | undefined>;
  set: ReplicaSet;
  /** The ids of set.targets. */
  targets: NodeId[];
  fences: number[];
  /** The write quorum of the link's replica set. */
  needed: number;
}

export class Discovery {
  constructor(private readonly d: SynchDeps) {}

  /** Peers to ask: every member that may hold copies and can answer. */
  peers(): NodeState[] {
    return Object.values(this.d.group.group.nodes).filter(
      (n) => n.id !== this.d.hostId && !n.options.includes('OBSERVER') && n.status !== 'UNAVAILABLE' && n.status !== 'REPLACED',
    );
  }

  synchUrl(n: NodeState, svc: RegisteredService): string {
    return `${originOf(n.groupReference)}${svc.def.nodeSelector}/synch`;
  }

  /** Every peer's heads of `svc`'s links, and every link this host holds; throws when a peer does not answer. */
  async factoryHeads(svc: RegisteredService, peers: readonly NodeState[]): Promise<Discovered> {
    const out: Discovered = { heads: new Map(), fences: new Map() };
    await Promise.all(peers.map((n) => this.fetchHeads(n, svc, out)));
    for (const l of this.d.index.linksUnder(svc.def.factoryLink)) if (!out.heads.has(l)) out.heads.set(l, new Map());
    return out;
  }

  private async fetchHeads(n: NodeState, svc: RegisteredService, out: Discovered): Promise<void> {
    let after: string | undefined;
    for (;;) {
      const r = await this.d.peers.json(this.synchUrl(n, svc), {
        method: 'POST',
        body: { kind: 'heads', factoryLink: svc.def.factoryLink, after },
        timeoutMs: peerTimeoutMs(this.d),
      });
      if (r.status !== 200) throw new KryptonError('PEER_UNAVAILABLE', `heads from ${n.id}: status ${r.status}`);
      const page = r.body as { heads: HeadTuple[]; next?: string };
      for (const t of page.heads) {
        let m = out.heads.get(t[0]);
        if (!m) {
          m = new Map();
          out.heads.set(t[0], m);
        }
        m.set(n.id, headOf(t));
        if (typeof t[5] === 'number') out.fences.set(t[0], Math.max(t[5], out.fences.get(t[0]) ?? 0));
      }
      if (!page.next) return;
      after = page.next;
    }
  }

  /**
   * One link's copies and fences from every peer at once, for an on-demand synchronization; a
   * peer that does not answer is left out (neither a source nor a target this time), and
   * `answered` names those that did.
   */
  async linkHeads(svc: RegisteredService, link: Link): Promise<{ discovered: Discovered; answered: Set<NodeId> }> {
    const m = new Map<NodeId, Head | undefined>();
    const discovered: Discovered = { heads: new Map([[link, m]]), fences: new Map() };
    const answered = new Set<NodeId>();
    await Promise.all(
      this.peers().map(async (n) => {
        const r = await this.d.peers
          .json(this.synchUrl(n, svc), { method: 'POST', body: { kind: 'fetch', links: [link] }, timeoutMs: peerTimeoutMs(this.d) })
          .catch(() => undefined);
        if (r?.status !== 200) return;
        answered.add(n.id);
        const body = r.body as {
          states?: Record<string, ServiceDocument>;
          fences?: Record<string, unknown>;
          digests?: Record<string, unknown>;
        };
        const doc = body.states?.[link];
        const digest = body.digests?.[link];
        m.set(n.id, doc ? (typeof digest === 'number' ? { ...headOfDoc(doc), history: digest } : headOfDoc(doc)) : undefined);
        const fence = body.fences?.[link];
        if (typeof fence === 'number') discovered.fences.set(link, Math.max(fence, discovered.fences.get(link) ?? 0));
      }),
    );
    return { discovered, answered };
  }

  /** Full latest states of `links` from one peer, with the request ids of the writes that made them; its pages fetched at once. */
  async fetchStates(
    n: NodeState,
    svc: RegisteredService,
    links: Link[],
  ): Promise<{ states: Record<string, ServiceDocument>; requestIds: Record<string, string> }> {
    const pages: Link[][] = [];
    for (let i = 0; i < links.length; i += limits.synchPageLinksMax) pages.push(links.slice(i, i + limits.synchPageLinksMax));
    const answers = await Promise.all(
      pages.map(async (page) => {
        const r = await this.d.peers.json(this.synchUrl(n, svc), {
          method: 'POST',
          body: { kind: 'fetch', links: page },
          timeoutMs: peerTimeoutMs(this.d),
        });
        if (r.status !== 200) throw new KryptonError('PEER_UNAVAILABLE', `fetch from ${n.id}: status ${r.status}`);
        return r.body as { states: Record<string, ServiceDocument>; requestIds?: Record<string, unknown> };
      }),
    );
    const states: Record<string, ServiceDocument> = {};
    const requestIds: Record<string, string> = {};
    for (const a of answers) {
      Object.assign(states, a.states);
      for (const [l, id] of Object.entries(a.requestIds ?? {})) if (typeof id === 'string') requestIds[l] = id;
    }
    return { states, requestIds };
  }

  /**
   * One link's heads as a pass plans with them: the peers' heads, an empty head for each replica
   * that answered without the link, and ours; the fences known for it; its replica set and quorum.
   */
  assemble(svc: RegisteredService, l: Link, discovered: Discovered, heardFrom: ReadonlySet<NodeId>): Assembled {
    const heads = new Map<NodeId, Head | undefined>(discovered.heads.get(l));
    const set = this.d.replicator.replicaSet(svc.def.nodeSelector, l);
    const targets = set.targets.map((n) => n.id);
    for (const id of targets) if (!heads.has(id) && heardFrom.has(id)) heads.set(id, undefined);
    heads.set(this.d.hostId, this.localHead(l));
    const fences: number[] = [];
    const peerFence = discovered.fences.get(l);
    if (peerFence !== undefined) fences.push(peerFence);
    const own = this.d.promises.get(l);
    if (own) fences.push(own.epoch);
    const needed = successThreshold({ eligible: set.eligible, membershipQuorum: set.membershipQuorum, action: 'PUT' });
    return { heads, set, targets, fences, needed };
  }

  localHead(link: Link): Head | undefined {
    const doc = this.d.index.latest(link);
    return doc ? headOfDoc(doc) : undefined;
  }

  owns(svc: RegisteredService, link: Link): boolean {
    return this.d.selectors.ownedHere(svc.def.nodeSelector, link);
  }

  ownerOf(svc: RegisteredService, link: Link): NodeId | undefined {
    try {
      return this.d.selectors.owner(svc.def.nodeSelector, link).id;
    } catch {
      return undefined;
    }
  }
}
