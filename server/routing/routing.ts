/**
 * Gets an owner-selected request to its owner. The entry host waits for the node group to be
 * available (parking, see selectors.ts), asks the selector for the owner of the key, and either
 * handles the request itself or forwards it with pragma `xn-fwd` and relays the owner's answer
 * unchanged. The request forwarded is the one the entry host decoded and checked: its body is the
 * checked body, which the owner does not check again. Forwards travel in batches per owner
 * (forwarder.ts; a direct task, which the owner holds open, in a batch of its own); with
 * authorization on each goes as its own HTTP request instead, so the owner's koa app checks the
 * caller's token (and, treating it as a client's request, the body) again. A forward that fails at the network level is retried with a
 * fresh owner choice as soon as the membership changes (the dead owner marked UNAVAILABLE), or
 * after a maintenance interval without a change, until the operation deadline, after which the
 * client gets 408. The entry host does not wait for membership to settle: it parks requests only
 * while the group lacks its quorum; which links must wait (those that moved) is their owner's
 * decision (lib/group/availability.ts). An owner that receives a forward for a link its own view
 * does not give it yet (the entry host noticed a change first) waits for its view to catch up, a
 * bounded while, rather than act on a link it does not own. A hop that timed out may still
 * reach its owner, so a write carries one request id (the client's Idempotency-Key, or one made
 * here) on every try: its owner, or the next one, applies it once and answers the others with
 * its outcome (lib/dedup.ts). A write also carries the version of the owner's membership entry it
 * was chosen by: a hop abandoned at a partition or a pause can still be delivered when the
 * owner is reachable again (the kernel retransmits what it had queued; a paused owner reads what
 * it had received), after the entry host retried elsewhere and answered the client. The owner,
 * written off meanwhile, has moved its own entry past that version by then, and refuses the write
 * (STALE_VIEW) instead of applying it late; a live entry host takes that answer as a failed hop.
 */

import { randomUUID } from 'node:crypto';
import { KRYPTON_ERROR_CODES, KryptonError } from '../../lib/errors.js';
import type { Micros, NodeId } from '../../lib/ids.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import type { Clock } from '../base/clock.js';
import type { ForwardItem, Forwarder } from './forwarder.js';
import { isPeerError, type PeerClient, type PeerReply } from '../net/peers.js';
import type { Selectors } from '../membership/selectors.js';

export interface RoutedRequest {
  method: string;
  /** Path and query exactly as the client sent them. */
  url: string;
  body: unknown;
  pragmas: ReadonlySet<string>;
  arrivalMicros: Micros;
  /** Xenon request headers (`x-xenon-*`, e.g. the replication quorum) the owner must see too. */
  xenonHeaders?: Record<string, string>;
  /** How long one forwarded hop may take, when the owner legitimately holds the request (direct tasks). */
  hopTimeoutMs?: number;
  /** The client's Idempotency-Key; a write without one gets an id here when it is forwarded. */
  requestId?: string;
}

/** The header a client names its own retries with (README, API); forwards carry the same id. */
export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** On a forwarded write: the version of the owner's membership entry the entry host chose it by. */
export const OWNER_ENTRY_HEADER = 'x-krypton-owner-entry';

/** Whether a relayed answer is an owner's STALE_VIEW refusal (its body is all a batch answer carries). */
export function isStaleView(reply: PeerReply): boolean {
  if (reply.status !== 503) return false;
  try {
    return (JSON.parse(reply.body.toString('utf8')) as { errorCode?: unknown }).errorCode === KRYPTON_ERROR_CODES.STALE_VIEW;
  } catch {
    return false;
  }
}

/**
 * Where a request runs: here (with the request id its earlier hops carried, if any, so the write
 * is recognized should one of them have reached the old owner) or relayed.
 */
export type RouteDecision = { local: true; requestId?: string; retry?: true } | { local: false; reply: PeerReply };

/**
 * The pragma of a forward's second and later hops: the owner applies a retry only when its dedup
 * window cannot have forgotten the original (lib/dedup.ts mayHaveForgotten), else it answers
 * outcome unknown.
 */
export const RETRY_PRAGMA = 'kr-retry';

/** Headers of a relayed answer that must not be copied (hop-by-hop, or recomputed by koa). */
export const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date']);

export function originOf(groupReference: string): string {
  return new URL(groupReference).origin;
}

export function withPragma(pragmas: ReadonlySet<string>, add: string): string {
  return [...new Set([...pragmas, add])].join(';');
}

export class OwnerRouting {
  constructor(
    private readonly d: {
      selectors: Selectors;
      peers: PeerClient;
      forwarder?: Forwarder;
      clock: Clock;
      hostId: NodeId;
      operationTimeoutMicros: Micros;
    },
  ) {}

  /** Whether this request skips routing: already forwarded, replicated or explicitly local. */
  static isLocalOnly(pragmas: ReadonlySet<string>): boolean {
    return pragmas.has('xn-fwd') || pragmas.has('xn-no-fwd') || pragmas.has('xn-rpl');
  }

  /** Whether this host would handle `key` itself now (false while the group is unavailable). */
  ownedHere(selectorLink: string, key: string): boolean {
    return this.d.selectors.available && this.d.selectors.ownedHere(selectorLink, key);
  }

  /**
   * On the owner of a forward: waits, at most limits.forwardOwnerViewWaitMicros, until this host's
   * own view names it the owner of `key` and holds the group's quorum. The entry host that
   * forwarded it saw a membership change (a peer gone, or this host back from a partition) that
   * has not reached this host yet; acting before it does would find the link stamped by its old
   * owner and refuse the write (409), or serve a copy a takeover must first check. A host back from
   * a partition still marks its peers UNAVAILABLE for a moment after they see it again: it has no
   * peer to ask, and answered 404 for a document created while it was away (torture partition
   * seeds 2002 and 3003: reads of a register absent for 160 ms after the heal). Past the wait
   * without a quorum the request fails QUORUM_UNAVAILABLE; without the ownership it runs here
   * anyway, as it always did.
   */
  async untilOwner(selectorLink: string, key: string): Promise<void> {
    const deadline = this.d.clock.nowMicros() + limits.forwardOwnerViewWaitMicros;
    for (;;) {
      if (this.d.selectors.available && this.d.selectors.ownedHere(selectorLink, key)) return;
      const ms = msFromMicros(deadline - this.d.clock.nowMicros());
      if (ms <= 0) break;
      await this.d.selectors.membershipChange(ms);
    }
    if (!this.d.selectors.available) throw new KryptonError('QUORUM_UNAVAILABLE', `${this.d.hostId} does not see its group's quorum`);
  }

  /**
   * On the owner, just before a forwarded write is planned: refuses it (STALE_VIEW) when this
   * host's own membership entry moved past `entry`, the version its entry host chose it by. The
   * entry moved because a peer wrote this host off (it bumps its entry once it hears of that) or
   * it changed its own status: either way the entry host may have given up on this hop and
   * answered its client from another owner.
   */
  checkForward(entry: number): void {
    const own = this.d.selectors.groupState.nodes[this.d.hostId]?.documentVersion;
    if (own !== undefined && own > entry)
      throw new KryptonError('STALE_VIEW', `forwarded under version ${entry} of ${this.d.hostId}'s membership entry, now at ${own}`);
  }

  /** Whether a request that arrived at `arrivalMicros` is past its operation deadline. */
  expired(arrivalMicros: Micros): boolean {
    return this.d.clock.nowMicros() >= arrivalMicros + this.d.operationTimeoutMicros;
  }

  async route(req: RoutedRequest, selectorLink: string, key: string): Promise<RouteDecision> {
    if (OwnerRouting.isLocalOnly(req.pragmas)) return { local: true };
    const deadline = req.arrivalMicros + this.d.operationTimeoutMicros;
    // Encoded only once a forward is due: most requests are handled where they arrive.
    let body: string | undefined;
    let requestId = req.requestId;
    let lastError: unknown;
    let hops = 0;
    for (;;) {
      if (!this.d.selectors.passable) await this.d.selectors.whenAvailable(deadline);
      const owner = this.d.selectors.owner(selectorLink, key);
      // This host became the owner after a hop failed: the write runs here as a retry, same id.
      if (owner.id === this.d.hostId) {
        if (requestId === undefined) return { local: true };
        return hops > 0 ? { local: true, requestId, retry: true } : { local: true, requestId };
      }
      if (body === undefined && req.body !== undefined) body = JSON.stringify(req.body);
      // Made once, before the first hop, and kept for every retry: that is what makes them retries.
      if (requestId === undefined && req.method !== 'GET') requestId = randomUUID();
      const remainingMs = msFromMicros(deadline - this.d.clock.nowMicros());
      if (remainingMs <= 0) break;
      const entry = requestId === undefined ? undefined : this.d.selectors.groupState.nodes[owner.id]?.documentVersion;
      try {
        const retry = hops++ > 0;
        const reply = await this.hop(req, body, { requestId, entry, retry }, originOf(owner.groupReference), selectorLink, remainingMs);
        if (!isStaleView(reply)) return { local: false, reply };
        lastError = new KryptonError('STALE_VIEW', `${owner.id} moved past the view this host chose it by`);
      } catch (e) {
        if (!isPeerError(e)) throw e;
        lastError = e;
      }
      const left = deadline - this.d.clock.nowMicros();
      if (left <= 0) break;
      // Already marked meanwhile (the refused connection made this host probe it): go at once.
      if (this.d.selectors.owner(selectorLink, key).id !== owner.id) continue;
      // The dead owner is marked UNAVAILABLE (its refused connection or the probes tell) and the
      // next owner chosen as soon as the view changes; without a change, try again a little later.
      await this.d.selectors.membershipChange(msFromMicros(Math.min(left, limits.forwardRetryWaitMicros)));
    }
    throw new KryptonError('TIMEOUT', `Expired at ${deadline}: ${lastError instanceof Error ? lastError.message : 'owner unreachable'}`);
  }

  /** One forward to the owner at `origin`: in a batch, or (authorization on) as its own HTTP request. */
  private hop(
    req: RoutedRequest,
    body: string | undefined,
    ids: { requestId: string | undefined; entry: number | undefined; retry: boolean },
    origin: string,
    selectorLink: string,
    remainingMs: number,
  ): Promise<PeerReply> {
    const fwd = withPragma(req.pragmas, 'xn-fwd');
    const pragma = ids.retry && ids.requestId !== undefined ? `${fwd};${RETRY_PRAGMA}` : fwd;
    const share = msFromMicros(this.d.operationTimeoutMicros / limits.forwardHopTimeoutDivisor);
    const timeoutMs = req.hopTimeoutMs ?? Math.max(limits.forwardHopTimeoutMinMs, Math.min(remainingMs, share));
    if (this.d.forwarder === undefined) {
      // The owner's koa app reads the id as a client's Idempotency-Key: the same effect.
      const headers: Record<string, string> = { ...req.xenonHeaders, pragma };
      if (ids.requestId !== undefined) headers[IDEMPOTENCY_HEADER] = ids.requestId;
      if (ids.entry !== undefined) headers[OWNER_ENTRY_HEADER] = String(ids.entry);
      return this.d.peers.request(origin + req.url, { method: req.method, body, headers, timeoutMs });
    }
    const item: ForwardItem = { method: req.method, url: req.url, pragma, xenonHeaders: req.xenonHeaders ?? {}, body };
    if (ids.requestId !== undefined) item.requestId = ids.requestId;
    if (ids.entry !== undefined) item.ownerEntry = ids.entry;
    return this.d.forwarder.send(origin, selectorLink, item, timeoutMs, req.hopTimeoutMs !== undefined);
  }
}
