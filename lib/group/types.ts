/**
 * Node-group shapes as Xenon puts them on the wire (docs/xenon-compatibility.md, Node groups): NodeState, NodeGroupState and
 * the requests a client sends to a group (JoinPeerRequest, UpdateQuorumRequest), the defaults of
 * Xenon, and the validators that turn untrusted JSON into these types. Bad input is a
 * KryptonError INVALID_BODY. Nothing here keeps state; the rules live in rules.ts and the state
 * machine in membership.ts.
 */

import { KINDS, type JsonObject } from '../document.js';
import { KryptonError } from '../errors.js';
import type { Link, Micros, NodeId, Version } from '../ids.js';

export const NODE_STATUSES = ['UNKNOWN', 'UNAVAILABLE', 'AVAILABLE', 'SYNCHRONIZING', 'REPLACED'] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];

export const NODE_OPTIONS = ['PEER', 'OBSERVER'] as const;
export type NodeOption = (typeof NODE_OPTIONS)[number];

export const NODE_GROUP_CHANGES = [
  'SELF_CHANGE',
  'QUORUM_CHANGED',
  'PEER_ADDED',
  'PEER_STATUS_CHANGE',
  'PEER_UNAVAILABLE',
  'PEER_EXPIRED',
] as const;
export type NodeGroupChange = (typeof NODE_GROUP_CHANGES)[number];

export const NODE_GROUPS_FACTORY_LINK: Link = '/core/node-groups';
export const DEFAULT_GROUP_LINK: Link = '/core/node-groups/default';

/** Xenon's timing defaults (Appendix A) and Krypton's bounds on a group. */
export const GROUP_DEFAULTS = {
  /** Host maintenance interval: one gossip round and one tick of the machine. */
  maintenanceIntervalMicros: 1_000_000,
  /** How long an UNAVAILABLE (or REPLACED) entry is kept before it is dropped. */
  nodeRemovalDelayMicros: 300_000_000,
  /** The stability window is this many maintenance intervals after the last local change. */
  stableGroupMaintenanceIntervalCount: 5,
  /** Timeout of one gossip PATCH (operation timeout / 3). */
  peerRequestTimeoutMicros: 20_000_000,
  /** A join keeps retrying its GET of the peer's group for this long (max(1 s, opTimeout / 10)). */
  joinRetryWindowMicros: 6_000_000,
  /** Peers probed per round: Xenon's min(n - 1, max(log10(n - 1), 10)). */
  gossipPeersMax: 10,
  /** Entries one group may hold; a gossip body with more is refused, extra adds are ignored. */
  groupNodesMax: 1000,
} as const;

export interface NodeGroupConfig extends JsonObject {
  nodeRemovalDelayMicros: Micros;
  stableGroupMaintenanceIntervalCount: number;
  peerRequestTimeoutMicros: Micros;
}

export function defaultGroupConfig(): NodeGroupConfig {
  return {
    nodeRemovalDelayMicros: GROUP_DEFAULTS.nodeRemovalDelayMicros,
    stableGroupMaintenanceIntervalCount: GROUP_DEFAULTS.stableGroupMaintenanceIntervalCount,
    peerRequestTimeoutMicros: GROUP_DEFAULTS.peerRequestTimeoutMicros,
  };
}

/** One member as every host sees it. `documentVersion` is the per-entry version that decides merges. */
export interface NodeState extends JsonObject {
  id: NodeId;
  /** Public URI of that node's group service, e.g. `http://127.0.0.1:8000/core/node-groups/default`. */
  groupReference: string;
  status: NodeStatus;
  /** Exactly one of PEER or OBSERVER. */
  options: NodeOption[];
  membershipQuorum: number;
  locationQuorum: number;
  customProperties?: Record<string, string>;
  documentVersion: Version;
  documentKind: string;
  /** `<group link>/<id>`. */
  documentSelfLink: Link;
  /** The writer's clock when it wrote this version; shown, never compared across hosts. */
  documentUpdateTimeMicros: Micros;
  /** Local removal deadline of an UNAVAILABLE or REPLACED entry, on the local clock; 0 otherwise. */
  documentExpirationTimeMicros: Micros;
}

export interface NodeGroupState extends JsonObject {
  config: NodeGroupConfig;
  nodes: Record<NodeId, NodeState>;
  lastChanges?: NodeGroupChange[];
  /**
   * Krypton: a logical membership clock, not a wall time (see rules.ts). Equal on every host once
   * the group has converged; never decreases.
   */
  membershipUpdateTimeMicros: number;
  /** Local clock time of the last local membership change; drives the stability window. */
  localMembershipUpdateTimeMicros: Micros;
  documentVersion: Version;
  documentKind: string;
  documentSelfLink: Link;
  documentOwner: NodeId;
  documentUpdateTimeMicros: Micros;
  documentUpdateAction?: 'POST' | 'PATCH';
  documentExpirationTimeMicros: Micros;
}

export interface JoinPeerRequest extends JsonObject {
  kind: string;
  memberGroupReference: string;
  membershipQuorum?: number;
  locationQuorum?: number;
  localNodeOptions?: NodeOption[];
}

export interface UpdateQuorumRequest extends JsonObject {
  kind: string;
  isGroupUpdate: boolean;
  membershipQuorum?: number;
  locationQuorum?: number;
}

/** What `POST /core/node-groups` asks for (a custom group). */
export interface NodeGroupCreateRequest {
  groupLink: Link;
  config: Partial<NodeGroupConfig>;
  /** Options for the creating host's own entry, when the body names it. */
  localNodeOptions?: NodeOption[];
}

/**
 * Xenon's `floor((peers other than self + 1) / 2) + 1` default: a lone node needs 1, a group
 * of three needs 2.
 */
export function defaultMembershipQuorum(peersOtherThanSelf: number): number {
  return Math.max(1, Math.floor((Math.max(0, peersOtherThanSelf) + 1) / 2) + 1);
}

/**
 * A group reference in one spelling (lower-case host, default port dropped, no trailing slash),
 * so self-join and same-address checks do not depend on how a user typed a URI.
 */
export function normalizeGroupReference(ref: string): string {
  let u: URL;
  try {
    u = new URL(ref);
  } catch {
    return ref;
  }
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

export function groupReferenceOf(origin: string, groupLink: Link): string {
  return normalizeGroupReference(origin.replace(/\/+$/, '') + groupLink);
}

// ---- validators ----

function bad(msg: string): KryptonError {
  return new KryptonError('INVALID_BODY', msg);
}

function asObject(raw: unknown, what: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(`${what} must be a JSON object`);
  return raw as Record<string, unknown>;
}

function optInt(o: Record<string, unknown>, field: string, min: number): number | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw bad(`${field} must be an integer >= ${min}`);
  return v;
}

function httpUri(v: unknown, field: string): string {
  if (typeof v !== 'string' || v === '') throw bad(`${field} is required`);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw bad(`${field} must be an absolute http(s) URI`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad(`${field} must be an absolute http(s) URI`);
  return v;
}

function checkKind(o: Record<string, unknown>, kind: string): void {
  const k = o.kind ?? o.documentKind;
  if (k !== undefined && k !== null && k !== kind) throw bad(`kind must be ${kind}`);
}

function parseOptions(v: unknown, field: string): NodeOption[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length === 0) throw bad(`${field} must be a non-empty array of PEER or OBSERVER`);
  const set = new Set<NodeOption>();
  for (const x of v) {
    if (x !== 'PEER' && x !== 'OBSERVER') throw bad(`${field} must be a non-empty array of PEER or OBSERVER`);
    set.add(x);
  }
  if (set.size > 1) throw bad(`${field}: PEER and OBSERVER are mutually exclusive`);
  return [...set];
}

export function parseJoinPeerRequest(raw: unknown): JoinPeerRequest {
  const o = asObject(raw, 'JoinPeerRequest');
  checkKind(o, KINDS.joinPeerRequest);
  const req: JoinPeerRequest = {
    kind: KINDS.joinPeerRequest,
    memberGroupReference: httpUri(o.memberGroupReference, 'memberGroupReference'),
  };
  const q = optInt(o, 'membershipQuorum', 1);
  if (q !== undefined) req.membershipQuorum = q;
  const lq = optInt(o, 'locationQuorum', 1);
  if (lq !== undefined) req.locationQuorum = lq;
  const opts = parseOptions(o.localNodeOptions, 'localNodeOptions');
  if (opts) req.localNodeOptions = opts;
  return req;
}

export function parseUpdateQuorumRequest(raw: unknown): UpdateQuorumRequest {
  const o = asObject(raw, 'UpdateQuorumRequest');
  checkKind(o, KINDS.updateQuorumRequest);
  const g = o.isGroupUpdate;
  if (g !== undefined && g !== null && typeof g !== 'boolean') throw bad('isGroupUpdate must be a boolean');
  // Xenon clamps to max(1, value), so any integer is accepted; only a missing pair is meaningless.
  const q = optInt(o, 'membershipQuorum', Number.MIN_SAFE_INTEGER);
  const lq = optInt(o, 'locationQuorum', Number.MIN_SAFE_INTEGER);
  if (q === undefined && lq === undefined) throw bad('membershipQuorum or locationQuorum is required');
  const req: UpdateQuorumRequest = { kind: KINDS.updateQuorumRequest, isGroupUpdate: g === true };
  if (q !== undefined) req.membershipQuorum = q;
  if (lq !== undefined) req.locationQuorum = lq;
  return req;
}

/**
 * A NodeState from a peer or a client. `id` and `groupReference` are required; everything else
 * takes NodeState's defaults. `documentSelfLink` is set from `groupLink` when given, because the
 * receiver, not the sender, decides where its entries live.
 */
export function parseNodeState(raw: unknown, groupLink?: Link): NodeState {
  const o = asObject(raw, 'NodeState');
  if (typeof o.id !== 'string' || o.id === '') throw bad('NodeState id is required');
  const groupReference = httpUri(o.groupReference, 'groupReference');
  const status = o.status ?? 'UNKNOWN';
  if (!NODE_STATUSES.includes(status as NodeStatus)) throw bad(`status must be one of ${NODE_STATUSES.join(', ')}`);
  const n: NodeState = {
    id: o.id,
    groupReference,
    status: status as NodeStatus,
    options: parseOptions(o.options, 'options') ?? ['PEER'],
    membershipQuorum: optInt(o, 'membershipQuorum', 1) ?? 1,
    locationQuorum: optInt(o, 'locationQuorum', 1) ?? 1,
    documentVersion: optInt(o, 'documentVersion', 0) ?? 0,
    documentKind: KINDS.nodeState,
    documentSelfLink: groupLink !== undefined ? `${groupLink}/${o.id}` : typeof o.documentSelfLink === 'string' ? o.documentSelfLink : '',
    documentUpdateTimeMicros: optInt(o, 'documentUpdateTimeMicros', 0) ?? 0,
    documentExpirationTimeMicros: optInt(o, 'documentExpirationTimeMicros', 0) ?? 0,
  };
  if (o.customProperties !== undefined && o.customProperties !== null) {
    const cp = asObject(o.customProperties, 'customProperties');
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(cp)) {
      if (typeof v !== 'string') throw bad('customProperties values must be strings');
      out[k] = v;
    }
    n.customProperties = out;
  }
  return n;
}

function parseConfigPatch(raw: unknown): Partial<NodeGroupConfig> {
  if (raw === undefined || raw === null) return {};
  const o = asObject(raw, 'config');
  const c: Partial<NodeGroupConfig> = {};
  const delay = optInt(o, 'nodeRemovalDelayMicros', 0);
  if (delay !== undefined) c.nodeRemovalDelayMicros = delay;
  const count = optInt(o, 'stableGroupMaintenanceIntervalCount', 0);
  if (count !== undefined) c.stableGroupMaintenanceIntervalCount = count;
  const timeout = optInt(o, 'peerRequestTimeoutMicros', 1);
  if (timeout !== undefined) c.peerRequestTimeoutMicros = timeout;
  return c;
}

function parseNodes(raw: unknown, groupLink: Link | undefined): Record<NodeId, NodeState> {
  if (raw === undefined || raw === null) return {};
  const o = asObject(raw, 'nodes');
  const keys = Object.keys(o);
  if (keys.length > GROUP_DEFAULTS.groupNodesMax) throw bad(`nodes may hold at most ${GROUP_DEFAULTS.groupNodesMax} entries`);
  const nodes: Record<NodeId, NodeState> = {};
  for (const k of keys) {
    const n = parseNodeState(o[k], groupLink);
    if (n.id !== k) throw bad(`nodes key ${k} does not match its id ${n.id}`);
    nodes[k] = n;
  }
  return nodes;
}

/** A peer's NodeGroupState, as a gossip PATCH body, a gossip reply or a join GET answer. */
export function parseNodeGroupState(raw: unknown, groupLink?: Link): NodeGroupState {
  const o = asObject(raw, 'NodeGroupState');
  if (typeof o.documentOwner !== 'string' || o.documentOwner === '') throw bad('NodeGroupState documentOwner is required');
  const g = optInt(o, 'membershipUpdateTimeMicros', 0) ?? 0;
  return {
    config: { ...defaultGroupConfig(), ...parseConfigPatch(o.config) },
    nodes: parseNodes(o.nodes, groupLink),
    membershipUpdateTimeMicros: g,
    localMembershipUpdateTimeMicros: 0,
    documentVersion: optInt(o, 'documentVersion', 0) ?? 0,
    documentKind: KINDS.nodeGroupState,
    documentSelfLink: groupLink ?? (typeof o.documentSelfLink === 'string' ? o.documentSelfLink : ''),
    documentOwner: o.documentOwner,
    documentUpdateTimeMicros: optInt(o, 'documentUpdateTimeMicros', 0) ?? 0,
    documentExpirationTimeMicros: 0,
  };
}

export type GroupPost = { type: 'join'; request: JoinPeerRequest } | { type: 'nodeState'; node: NodeState };

/** A POST to a group is a JoinPeerRequest (by kind or by its field) or a NodeState insert. */
export function classifyGroupPost(raw: unknown, groupLink?: Link): GroupPost {
  const o = asObject(raw, 'body');
  if (o.kind === KINDS.joinPeerRequest || o.memberGroupReference !== undefined) {
    return { type: 'join', request: parseJoinPeerRequest(o) };
  }
  return { type: 'nodeState', node: parseNodeState(o, groupLink) };
}

export type GroupPatch =
  | { type: 'quorum'; request: UpdateQuorumRequest }
  | { type: 'config'; config: Partial<NodeGroupConfig> }
  | { type: 'gossip'; state: NodeGroupState };

/**
 * A PATCH to a group is an UpdateQuorumRequest (by kind), a config replacement (`config` with an
 * empty or absent `nodes`) or a peer's gossip (a NodeGroupState).
 */
export function classifyGroupPatch(raw: unknown, groupLink?: Link): GroupPatch {
  const o = asObject(raw, 'body');
  const kind = o.kind ?? o.documentKind;
  if (kind === KINDS.updateQuorumRequest) return { type: 'quorum', request: parseUpdateQuorumRequest(o) };
  const nodes = o.nodes;
  const noNodes = nodes === undefined || nodes === null || (typeof nodes === 'object' && Object.keys(nodes).length === 0);
  if (o.config !== undefined && noNodes) return { type: 'config', config: parseConfigPatch(o.config) };
  return { type: 'gossip', state: parseNodeGroupState(o, groupLink) };
}

/** The body of `POST /core/node-groups`: a link (bare name or full path), config, own entry options. */
export function parseNodeGroupCreateRequest(raw: unknown, selfId: NodeId): NodeGroupCreateRequest {
  const o = asObject(raw, 'NodeGroupState');
  const link = o.documentSelfLink;
  if (typeof link !== 'string' || link === '') throw bad('documentSelfLink is required');
  const name = link.startsWith(NODE_GROUPS_FACTORY_LINK + '/') ? link.slice(NODE_GROUPS_FACTORY_LINK.length + 1) : link.replace(/^\/+/, '');
  if (!/^[0-9A-Za-z\-_.~]+$/.test(name)) throw bad(`invalid group name '${name}'`);
  const req: NodeGroupCreateRequest = { groupLink: `${NODE_GROUPS_FACTORY_LINK}/${name}`, config: parseConfigPatch(o.config) };
  if (o.nodes !== undefined && o.nodes !== null) {
    const own = asObject(o.nodes, 'nodes')[selfId];
    if (own !== undefined) {
      const opts = parseOptions(asObject(own, 'NodeState').options, 'options');
      if (opts) req.localNodeOptions = opts;
    }
  }
  return req;
}
