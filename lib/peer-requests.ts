/**
 * Which requests only members of the node group may make, as pure functions over the method,
 * the path, the pragmas and (for the node-group service) the body. Peer traffic is log shipping
 * (`POST /core/node-selectors/<sel>/replication`), synchronization
 * (`POST /core/node-selectors/<sel>/synch`), batched forwarding (`POST …/<sel>/forwarded`), a host's part of a query across
 * hosts (`POST …/<sel>/query`), anything carrying a replication or synchronization
 * pragma, a host's gossip (`PATCH /core/node-groups/<name>` with a NodeGroupState) and its
 * insert-self (`POST /core/node-groups/<name>` with a NodeState). A JoinPeerRequest, an
 * UpdateQuorumRequest and a config PATCH are client requests.
 */

import { KINDS } from './document.js';

/** Pragmas that only hosts put on requests (Xenon's replication and synchronization directives). */
export const PEER_PRAGMAS: ReadonlySet<string> = new Set(['xn-rpl', 'xn-synch-peer', 'xn-synch-owner']);

/** `pragma` header directives, split the way the routes split them. */
export function pragmasOf(header: string | undefined): Set<string> {
  return new Set(header ? header.split(/[;,\s]+/).filter(Boolean) : []);
}

/** `peer`: members only. `client`: anyone. `group-body`: a node-group POST/PATCH, decided by its body. */
export type RequestClass = 'peer' | 'client' | 'group-body';

const SELECTOR_PEER_PATH = /^\/core\/node-selectors\/[^/]+\/(replication|synch|forwarded|query)$/;
const GROUP_PATH = /^\/core\/node-groups\/[^/]+$/;

export function classifyRequest(method: string, path: string, pragmas: ReadonlySet<string>): RequestClass {
  for (const p of pragmas) if (PEER_PRAGMAS.has(p)) return 'peer';
  const m = method.toUpperCase();
  if (m === 'POST' && SELECTOR_PEER_PATH.test(path)) return 'peer';
  if ((m === 'POST' || m === 'PATCH') && GROUP_PATH.test(path)) return 'group-body';
  return 'client';
}

/**
 * A node-group body: `join` for a client's JoinPeerRequest, `client` for an UpdateQuorumRequest or
 * a config PATCH, `peer` for everything else (gossip, insert-self, and bodies that are neither,
 * which the route refuses anyway). Mirrors classifyGroupPost/classifyGroupPatch in lib/group.
 */
export function classifyGroupBody(method: string, body: unknown): 'peer' | 'client' | 'join' {
  const o = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  if (method.toUpperCase() === 'POST') {
    return o.kind === KINDS.joinPeerRequest || o.memberGroupReference !== undefined ? 'join' : 'peer';
  }
  const kind = o.kind ?? o.documentKind;
  if (kind === KINDS.updateQuorumRequest) return 'client';
  const nodes = o.nodes;
  const noNodes = nodes === undefined || nodes === null || (typeof nodes === 'object' && Object.keys(nodes).length === 0);
  return o.config !== undefined && noNodes ? 'client' : 'peer';
}

/** `/core/node-selectors/<sel>/forwarding`, whose `path` query parameter names the real target. */
export function isForwardingPath(path: string): boolean {
  return /^\/core\/node-selectors\/[^/]+\/forwarding$/.test(path);
}
