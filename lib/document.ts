/**
 * Documents and log records: the common ServiceDocument fields Xenon puts on every state, the kind
 * strings Krypton shares with Xenon, and the LogRecord that the write-ahead log stores and the
 * index is built from. A LogRecord is the unit of history: one per applied update.
 */

import type { Effect } from './service.js';
import type { Epoch, Link, Micros, NodeId, Seq, Version } from './ids.js';

export type UpdateAction = 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export const UPDATE_ACTIONS: readonly UpdateAction[] = ['POST', 'PUT', 'PATCH', 'DELETE'];

/** JSON values as they arrive from clients and are stored in documents. */
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue | undefined;
}

/** The fields Xenon sets on every stored document (docs/xenon-compatibility.md, Document fields). */
export interface ServiceDocument extends JsonObject {
  documentSelfLink: Link;
  documentKind: string;
  documentVersion: Version;
  documentEpoch?: Epoch;
  documentOwner?: NodeId;
  documentUpdateTimeMicros: Micros;
  documentUpdateAction: UpdateAction;
  documentExpirationTimeMicros: Micros;
  documentAuthPrincipalLink?: string;
}

/** The common fields, in the order Krypton writes them after a service's own fields. */
export const COMMON_FIELDS = [
  'documentVersion',
  'documentEpoch',
  'documentKind',
  'documentSelfLink',
  'documentUpdateTimeMicros',
  'documentUpdateAction',
  'documentExpirationTimeMicros',
  'documentOwner',
] as const;

/** Built-in kind strings, equal to Xenon's (Java class names with `.` and `$` as `:`). */
export const KINDS = {
  example: 'com:vmware:xenon:services:common:ExampleService:ExampleServiceState',
  exampleTask: 'com:vmware:xenon:services:common:ExampleTaskService:ExampleTaskServiceState',
  strictUpdateRequest: 'com:vmware:xenon:services:common:ExampleService:StrictUpdateRequest',
  queryTask: 'com:vmware:xenon:services:common:QueryTask',
  nodeState: 'com:vmware:xenon:services:common:NodeState',
  nodeGroupState: 'com:vmware:xenon:services:common:NodeGroupService:NodeGroupState',
  joinPeerRequest: 'com:vmware:xenon:services:common:NodeGroupService:JoinPeerRequest',
  updateQuorumRequest: 'com:vmware:xenon:services:common:NodeGroupService:UpdateQuorumRequest',
  nodeSelectorState: 'com:vmware:xenon:common:NodeSelectorState',
  serviceErrorResponse: 'com:vmware:xenon:common:ServiceErrorResponse',
  queryResult: 'com:vmware:xenon:common:ServiceDocumentQueryResult',
  serviceHostState: 'com:vmware:xenon:common:ServiceHost:ServiceHostState',
} as const;

/**
 * One applied update, as the log stores it and the index consumes it. `state` is the full new
 * state (for DELETE, the tombstone), already stamped with version, epoch, owner, time and action.
 * The scalar fields repeat what is in `state` so tools can read a record without knowing kinds.
 */
export interface LogRecord {
  seq: Seq;
  link: Link;
  action: UpdateAction;
  version: Version;
  epoch: Epoch;
  timeMicros: Micros;
  /**
   * POST records that replace an existing history (re-create after delete with
   * xn-force-index-update, or after expiry) set this: the index drops every earlier version of the
   * link when it applies the record.
   */
  resetHistory?: boolean;
  /**
   * The request id of the write that made this record (its entry host's, or the client's
   * Idempotency-Key), when it had one: a host that replays or receives the record recognizes a
   * retry of that write (lib/dedup.ts). Format v2 (docs/log-format.md).
   */
  requestId?: string;
  state: ServiceDocument;
}

/** A record before the log gives it a sequence number. */
export type NewLogRecord = Omit<LogRecord, 'seq'> & {
  /** What the handler asked for besides the state (lib/service.ts): the owner's, never logged or shipped. */
  effects?: readonly Effect[];
};

export function isTombstone(doc: ServiceDocument): boolean {
  return doc.documentUpdateAction === 'DELETE';
}

/** The factory link of a child link: `/core/examples/one` → `/core/examples`. */
export function parentLink(link: Link): Link {
  const i = link.lastIndexOf('/');
  return i <= 0 ? '/' : link.slice(0, i);
}

/** Xenon's ServiceDocumentQueryResult for a list of links: factory GETs and other listings. */
export interface LinkList extends JsonObject {
  documentLinks: string[];
  documents?: Record<string, ServiceDocument>;
  documentCount: number;
  queryTimeMicros: number;
  documentVersion: number;
  documentUpdateTimeMicros: number;
  documentExpirationTimeMicros: number;
  documentOwner: string;
}

export function linkList(links: string[], owner: string, queryTimeMicros = 1): LinkList {
  return {
    documentLinks: links,
    documentCount: links.length,
    queryTimeMicros,
    documentVersion: 0,
    documentUpdateTimeMicros: 0,
    documentExpirationTimeMicros: 0,
    documentOwner: owner,
  };
}
