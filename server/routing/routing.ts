/**
 * Gets an owner-selected request to its owner (reference §7.1). The entry host waits for the node
 * group to be available (parking, see selectors.ts), asks the selector for the owner of the key,
 * and either handles the request itself or forwards it with pragma `xn-fwd` and relays the
 * owner's answer unchanged. Forwards travel in batches per owner (forwarder.ts); a request the
 * owner holds open for long (a direct task) goes on its own HTTP request instead, so it never
 * holds a batch. A forward that fails at the network level is retried on the next
 * maintenance interval with a fresh owner choice (the dead owner is marked UNAVAILABLE by then)
 * until the operation deadline, after which the client gets 408.
 */

import { KryptonError } from '../../lib/errors.js';
import type { Micros, NodeId } from '../../lib/ids.js';
import type { Clock } from '../base/clock.js';
import { MAINTENANCE_INTERVAL_MICROS } from '../membership/groups.js';
import type { Forwarder } from './forwarder.js';
import { PeerError, type PeerClient, type PeerReply } from '../net/peers.js';
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
}

export type RouteDecision = { local: true } | { local: false; reply: PeerReply };

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

  async route(req: RoutedRequest, selectorLink: string, key: string): Promise<RouteDecision> {
    if (OwnerRouting.isLocalOnly(req.pragmas)) return { local: true };
    const deadline = req.arrivalMicros + this.d.operationTimeoutMicros;
    // Encoded only once a forward is due: most requests are handled where they arrive.
    let body: string | undefined;
    let lastError: unknown;
    for (;;) {
      if (!this.d.selectors.passable) await this.d.selectors.whenAvailable(deadline);
      const owner = this.d.selectors.owner(selectorLink, key);
      if (owner.id === this.d.hostId) return { local: true };
      if (body === undefined && req.body !== undefined) body = JSON.stringify(req.body);
      const remainingMs = Math.floor((deadline - this.d.clock.nowMicros()) / 1000);
      if (remainingMs <= 0) break;
      const origin = originOf(owner.groupReference);
      const pragma = withPragma(req.pragmas, 'xn-fwd');
      try {
        const reply =
          req.hopTimeoutMs !== undefined || this.d.forwarder === undefined
            ? await this.d.peers.request(origin + req.url, {
                method: req.method,
                body,
                headers: { ...req.xenonHeaders, pragma },
                timeoutMs: req.hopTimeoutMs ?? Math.max(100, Math.min(remainingMs, Math.floor(this.d.operationTimeoutMicros / 10_000))),
              })
            : await this.d.forwarder.send(
                origin,
                selectorLink,
                { method: req.method, url: req.url, pragma, xenonHeaders: req.xenonHeaders ?? {}, body },
                // Xenon gives a forwarded hop a tenth of the operation timeout, then retries.
                Math.max(100, Math.min(remainingMs, Math.floor(this.d.operationTimeoutMicros / 10_000))),
              );
        return { local: false, reply };
      } catch (e) {
        if (!(e instanceof PeerError)) throw e;
        lastError = e;
      }
      if (this.d.clock.nowMicros() + MAINTENANCE_INTERVAL_MICROS >= deadline) break;
      await new Promise((r) => setTimeout(r, MAINTENANCE_INTERVAL_MICROS / 1000));
    }
    throw new KryptonError('TIMEOUT', `Expired at ${deadline}: ${lastError instanceof Error ? lastError.message : 'owner unreachable'}`);
  }
}
