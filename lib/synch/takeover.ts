/**
 * The new owner's side of a takeover (Krypton's rules; the replica's side is promise.ts). A
 * synchronization first reads every replica's heads and fences (discovery) and decides, per link,
 * whether it only adopts and pushes a copy (planLink) or must write the link again under a new
 * epoch: when ownership moved, when copies diverged, or when some replica promised an epoch above
 * the best copy's (its records would be refused there), or, when nobody holds the link, when some
 * replica is bound to an epoch for it anyway. A takeover then runs a prepare round: it
 * asks the link's replicas, itself included, to promise an epoch above everything discovery saw,
 * and plans only with the heads they return with their promises, read after them. It proceeds with
 * a quorum of promises, its own among them, once every replica asked has answered or failed (the
 * caller adds what discovery read from those that did not promise); replicas that refused because they are bound to a
 * higher epoch make it ask again above that (a bounded number of times); too few answers defer the
 * link to a later retry. Pure: effects say whom to ask; the caller sends and feeds the replies back;
 * a later pass retries a deferred link (schedule.ts).
 */

import type { Epoch, Link, NodeId, Version } from '../ids.js';
import { limits } from '../limits.js';
import { planLink, type Head, type SynchPlan } from './plan.js';
import { headOfFields, type PromiseAnswer, type PromiseAsk } from './promise.js';

export interface SynchDecision {
  plan: SynchPlan | null;
  /** Set when the link must be taken over: the first epoch to ask promises for. */
  takeoverEpoch?: Epoch;
  /** The highest version any discovered copy holds (-1: none): a takeover writes above it. */
  versionFloor: Version;
}

/**
 * Decides one link from discovery: `heads` as planLink takes them, `fences` the epochs replicas
 * (self included) are bound to by promises above the copy they hold.
 */
export function decideSynch(selfId: NodeId, heads: ReadonlyMap<NodeId, Head | undefined>, fences: Iterable<Epoch> = []): SynchDecision {
  const plan = planLink(selfId, heads);
  let maxEpoch = -1;
  let versionFloor = -1;
  for (const h of heads.values()) {
    if (!h) continue;
    maxEpoch = Math.max(maxEpoch, h.epoch);
    versionFloor = Math.max(versionFloor, h.version);
  }
  let maxFence = -1;
  for (const f of fences) maxFence = Math.max(maxFence, f);
  // Nobody holds the link but some replica is bound to an epoch for it (a takeover that never
  // landed, then the copy expired): creating it at epoch 0 would be refused there for good, so
  // this host prepares an epoch above the fence to create it in (CreateOptions.epochFloor).
  if (!plan) return maxFence > 0 ? { plan, takeoverEpoch: maxFence + 1, versionFloor } : { plan, versionFloor };
  const takeover = plan.rewrite !== undefined || maxFence > plan.best.epoch;
  return takeover ? { plan, takeoverEpoch: Math.max(maxEpoch, maxFence) + 1, versionFloor } : { plan, versionFloor };
}

/** Whether `heads` holds a quorum of a link's replica set: this host and the `targets` that answered. */
export function headsQuorum(heads: ReadonlyMap<NodeId, unknown>, targets: readonly NodeId[], needed: number): boolean {
  return heardOf(heads, targets) >= needed;
}

function heardOf(heads: ReadonlyMap<NodeId, unknown>, targets: readonly NodeId[]): number {
  let heard = 1;
  for (const t of targets) if (heads.has(t)) heard++;
  return heard;
}

export type LinkStep =
  /** Take the link over: a prepare round for `target`, then planTakeover above `versionFloor`. */
  | { type: 'takeover'; target: TakeoverTarget; versionFloor: Version }
  /** Carry out `plan` (null: nobody holds the link, nothing to do). */
  | { type: 'plan'; plan: SynchPlan | null }
  /** Heads from fewer than a quorum of the replica set: acting could discard an acknowledged write; later. */
  | { type: 'short'; heard: number; needed: number };

/**
 * What a synchronization does with `link`, which this host owns, from discovery (a pass's, or an on-demand
 * one's): `heads` and `fences` as decideSynch takes them, `targets` the other members of the
 * link's replica set this host can reach and `needed` its write quorum. A takeover gathers its own
 * quorum of heads, read after the promises; anything else is planned only with the heads of a
 * quorum of the replica set, among which a write acknowledged by a quorum then is.
 */
export function decideLink(
  selfId: NodeId,
  link: Link,
  heads: ReadonlyMap<NodeId, Head | undefined>,
  fences: Iterable<Epoch>,
  replicas: { targets: readonly NodeId[]; needed: number },
): LinkStep {
  const decision = decideSynch(selfId, heads, fences);
  const { targets, needed } = replicas;
  if (decision.takeoverEpoch !== undefined) {
    const target = { link, replicas: [selfId, ...targets], needed, epoch: decision.takeoverEpoch };
    return { type: 'takeover', target, versionFloor: decision.versionFloor };
  }
  const heard = heardOf(heads, targets);
  if (heard < needed) return { type: 'short', heard, needed };
  return { type: 'plan', plan: decision.plan };
}

/**
 * The plan of a link an owner may carry out before the group has settled (Synchronizer's early
 * pass), or undefined: only a plain push of this host's own copy, the best there is, at an
 * epoch no replica is fenced above, to replicas that lack it. Such a push cannot replace a newer
 * copy or undo a takeover anywhere (a replica keeps a record only above what it holds, and
 * refuses one below its fence), so a view of the group that later changes makes it at worst
 * useless. Takeovers and adoptions wait for the settled pass.
 */
export function earlyPushPlan(
  selfId: NodeId,
  heads: ReadonlyMap<NodeId, Head | undefined>,
  fences: Iterable<Epoch> = [],
): SynchPlan | undefined {
  const { plan, takeoverEpoch } = decideSynch(selfId, heads, fences);
  if (takeoverEpoch !== undefined || !plan || plan.rewrite || plan.source !== selfId || plan.pushTo.length === 0) return undefined;
  return plan;
}

/**
 * For a link this host no longer owns, during the early pass: the new owner to hand this host's
 * copy to, or undefined. Only when every copy there is agrees with ours (same epoch, version,
 * owner and deletion), this host wrote it (it was the owner, so exactly one host hands it over),
 * no replica is fenced, and the new owner answered without a copy. The new owner's takeover then
 * finds the copy at home instead of fetching it; what it decides is unchanged, since the copy it
 * receives is the one every holder agrees on, and a later write would be a newer head it prefers.
 */
export function earlyHandoffTarget(
  selfId: NodeId,
  ownerId: NodeId,
  heads: ReadonlyMap<NodeId, Head | undefined>,
  fences: Iterable<Epoch> = [],
): NodeId | undefined {
  if (ownerId === selfId || !heads.has(ownerId) || heads.get(ownerId) !== undefined) return undefined;
  for (const _ of fences) return undefined;
  const ours = heads.get(selfId);
  if (!ours || ours.owner !== selfId) return undefined;
  for (const h of heads.values()) {
    if (h && (h.epoch !== ours.epoch || h.version !== ours.version || h.owner !== ours.owner || h.deleted !== ours.deleted))
      return undefined;
  }
  return ownerId;
}

/**
 * The plan of a link whose replicas promised `epoch`: the best copy among the heads they returned
 * (null when none holds it), rewritten at `epoch` with a version above every copy known.
 */
export function planTakeover(
  selfId: NodeId,
  heads: ReadonlyMap<NodeId, Head | undefined>,
  epoch: Epoch,
  versionFloor: Version,
): SynchPlan | null {
  const plan = planLink(selfId, heads);
  if (!plan) return null;
  let maxVersion = versionFloor;
  for (const h of heads.values()) if (h) maxVersion = Math.max(maxVersion, h.version);
  return {
    source: plan.source,
    best: plan.best,
    rewrite: { epoch, version: maxVersion + 1 },
    pushTo: [...heads.keys()].filter((n) => n !== selfId),
  };
}

export interface TakeoverTarget {
  link: Link;
  /** The link's reachable replicas, self included. */
  replicas: readonly NodeId[];
  /** Promises needed, self's included: the write quorum of the link's replica set. */
  needed: number;
  /** First epoch to ask for (decideSynch's takeoverEpoch). */
  epoch: Epoch;
}

export type TakeoverEffect =
  /** Ask `to` to promise these (link, epoch) pairs; the caller pages them and answers with answered() or failed(). */
  | { type: 'ask'; to: NodeId; asks: PromiseAsk[] }
  /**
   * Promised by a quorum: plan with planTakeover over `heads` (the promisers' heads, read after
   * their promises), completed with the discovery heads of the replicas that did not promise.
   */
  | { type: 'ready'; link: Link; epoch: Epoch; heads: Map<NodeId, Head | undefined> }
  /** Not promised by enough replicas: nothing was written; retry later. */
  | { type: 'deferred'; link: Link; reason: string };

interface LinkRound {
  target: TakeoverTarget;
  epoch: Epoch;
  proposals: number;
  waiting: Set<NodeId>;
  grants: Map<NodeId, Head | undefined>;
  refusedFence: Epoch;
  selfRefused: boolean;
  decided: boolean;
}

/** One prepare round over a batch of links of one factory. */
export class TakeoverRound {
  private readonly links = new Map<Link, LinkRound>();
  private open = 0;

  constructor(
    readonly selfId: NodeId,
    targets: readonly TakeoverTarget[],
    private readonly proposalsMax: number = limits.takeoverProposalsMax,
  ) {
    for (const t of targets) {
      if (this.links.has(t.link)) continue;
      this.links.set(t.link, {
        target: t,
        epoch: t.epoch,
        proposals: 0,
        waiting: new Set(),
        grants: new Map(),
        refusedFence: -1,
        selfRefused: false,
        decided: false,
      });
      this.open++;
    }
  }

  /** Every link decided (ready or deferred); later answers change nothing. */
  get done(): boolean {
    return this.open === 0;
  }

  start(): TakeoverEffect[] {
    const effects: TakeoverEffect[] = [];
    const asks = new Map<NodeId, PromiseAsk[]>();
    for (const r of this.links.values()) {
      if (!r.target.replicas.includes(this.selfId)) {
        this.decide(r, effects, { type: 'deferred', link: r.target.link, reason: 'this host is not a replica of the link' });
        continue;
      }
      this.propose(r, asks);
    }
    for (const [to, list] of asks) effects.push({ type: 'ask', to, asks: list });
    return effects;
  }

  private propose(r: LinkRound, asks: Map<NodeId, PromiseAsk[]>): void {
    r.proposals++;
    r.waiting = new Set(r.target.replicas);
    r.grants = new Map();
    r.refusedFence = -1;
    r.selfRefused = false;
    for (const to of r.target.replicas) {
      let list = asks.get(to);
      if (!list) {
        list = [];
        asks.set(to, list);
      }
      list.push([r.target.link, r.epoch]);
    }
  }

  answered(from: NodeId, answers: readonly PromiseAnswer[]): TakeoverEffect[] {
    const effects: TakeoverEffect[] = [];
    const asks = new Map<NodeId, PromiseAsk[]>();
    for (const [link, epoch, granted, fence, head] of answers) {
      const r = this.links.get(link);
      // Answers to an earlier proposal, duplicates and strangers change nothing.
      if (!r || r.decided || epoch !== r.epoch || !r.waiting.has(from)) continue;
      r.waiting.delete(from);
      if (granted === 1) r.grants.set(from, head ? headOfFields(head) : undefined);
      else {
        r.refusedFence = Math.max(r.refusedFence, fence);
        if (from === this.selfId) r.selfRefused = true;
      }
      this.check(r, effects, asks);
    }
    for (const [to, list] of asks) effects.push({ type: 'ask', to, asks: list });
    return effects;
  }

  /** A request to `from` failed (unreachable, timed out, refused whole): no promise for any of its asks. */
  failed(from: NodeId, asks: readonly PromiseAsk[]): TakeoverEffect[] {
    const effects: TakeoverEffect[] = [];
    const again = new Map<NodeId, PromiseAsk[]>();
    for (const [link, epoch] of asks) {
      const r = this.links.get(link);
      if (!r || r.decided || epoch !== r.epoch || !r.waiting.has(from)) continue;
      r.waiting.delete(from);
      if (from === this.selfId) r.selfRefused = true;
      this.check(r, effects, again);
    }
    for (const [to, list] of again) effects.push({ type: 'ask', to, asks: list });
    return effects;
  }

  private check(r: LinkRound, effects: TakeoverEffect[], asks: Map<NodeId, PromiseAsk[]>): void {
    const { needed, link } = r.target;
    const hopeless = r.selfRefused || r.grants.size + r.waiting.size < needed;
    // Ready once every replica answered (or failed): a quorum of promises is what makes it safe,
    // every head beyond it only makes the best copy better informed.
    if (!hopeless && r.waiting.size > 0) return;
    if (!hopeless) {
      this.decide(r, effects, { type: 'ready', link, epoch: r.epoch, heads: r.grants });
      return;
    }
    if (r.refusedFence >= r.epoch && r.proposals < this.proposalsMax) {
      // Someone holds or was promised a higher epoch: ask again above it.
      r.epoch = r.refusedFence + 1;
      this.propose(r, asks);
      return;
    }
    const why = r.refusedFence >= 0 ? `refused up to epoch ${r.refusedFence}` : 'unreachable or not answering';
    this.decide(r, effects, {
      type: 'deferred',
      link,
      reason: `promises for epoch ${r.epoch} from ${r.grants.size} of ${r.target.replicas.length} replicas (${needed} needed, this host's own included); others ${why}`,
    });
  }

  private decide(r: LinkRound, effects: TakeoverEffect[], e: TakeoverEffect): void {
    r.decided = true;
    this.open--;
    effects.push(e);
  }
}
