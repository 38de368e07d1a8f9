/**
 * Xenon's per-service utility paths and the index and management requests a Xenon operator
 * sends: `<link>/available`, `<link>/stats`, `<link>/config`, `<factory>/template` (and a
 * child's `/template`), `GET /core/document-index?documentSelfLink=…`, and the kinds of
 * `PATCH /core/management`. Also the counters `/stats` shows, kept per link by this host for the
 * requests it runs (ServiceCounters). Every answer is this host's own, never forwarded: Xenon's
 * stats and availability are per service instance too.
 */

import type Koa from 'koa';
import type Router from '@koa/router';
import type { ReadScope } from '../../lib/authz.js';
import { describeProperties } from '../../lib/describe.js';
import type { JsonObject, ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Link } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import type { RegisteredService, ServiceRegistry } from '../../lib/service.js';
import { UTILITY_SUFFIXES } from '../../lib/verbs.js';
import type { DocumentIndex } from '../../index/views.js';
import type { DocumentStore } from '../documents/documents.js';
import type { Selectors } from '../membership/selectors.js';
import { notAllowed } from '../net/http-errors.js';
import type { Synchronizer } from '../synch/synchronizer.js';
import { backupRequest } from './backup-routes.js';

const STAT_KIND = 'com:vmware:xenon:common:ServiceStats:ServiceStat';
const STATS_KIND = 'com:vmware:xenon:common:ServiceStats';
const CONFIG_KIND = 'com:vmware:xenon:common:ServiceConfiguration';
const FACTORY_CONFIG_KIND = 'com:vmware:xenon:common:FactoryService:FactoryServiceConfiguration';
const MANAGEMENT_KIND = 'com:vmware:xenon:services:common:ServiceHostManagementService';
export const DOCUMENT_INDEX_PATH = '/core/document-index';

interface Counter {
  value: number;
  lastUpdateMicros: number;
}

/** Xenon's stat names (Service.STAT_NAME_*) for what Krypton counts. */
type CounterName = 'requestCount' | 'failureCount' | 'createCount';

/**
 * Requests run on this host per link (a factory's own: its GETs and creates; a child's: reads
 * and updates), bounded at limits.serviceStatsLinksMax links, the oldest dropped first.
 */
export class ServiceCounters {
  private readonly byLink = new Map<Link, Map<CounterName, Counter>>();

  constructor(private readonly nowMicros: () => number) {}

  count(link: Link, name: CounterName): void {
    let m = this.byLink.get(link);
    if (m === undefined) {
      if (this.byLink.size >= limits.serviceStatsLinksMax) this.byLink.delete(this.byLink.keys().next().value!);
      m = new Map();
      this.byLink.set(link, m);
    }
    const c = m.get(name);
    const now = this.nowMicros();
    if (c === undefined) m.set(name, { value: 1, lastUpdateMicros: now });
    else {
      c.value++;
      c.lastUpdateMicros = now;
    }
  }

  of(link: Link): ReadonlyMap<CounterName, Counter> {
    return this.byLink.get(link) ?? new Map();
  }
}

export interface UtilityDeps {
  registry: ServiceRegistry;
  store: DocumentStore;
  index: DocumentIndex;
  selectors: Selectors;
  synchronizer: Synchronizer;
  counters: ServiceCounters;
  hostId: string;
  nowMicros(): number;
}

interface UtilityTarget {
  link: Link;
  svc: RegisteredService;
  factory: boolean;
  suffix: (typeof UTILITY_SUFFIXES)[number];
}

/** A utility path of a factory or a child document, or undefined. */
export function utilityTarget(registry: ServiceRegistry, path: string): UtilityTarget | undefined {
  const slash = path.lastIndexOf('/');
  if (slash <= 0) return undefined;
  const suffix = path.slice(slash) as UtilityTarget['suffix'];
  if (!UTILITY_SUFFIXES.includes(suffix)) return undefined;
  const link = path.slice(0, slash);
  const factory = registry.factory(link);
  if (factory) return { link, svc: factory, factory: true, suffix };
  const child = registry.forChild(link);
  return child ? { link, svc: child, factory: false, suffix } : undefined;
}

function stat(name: string, c: { value: number; lastUpdateMicros: number }): JsonObject {
  return {
    name,
    latestValue: c.value,
    accumulatedValue: c.value,
    version: c.value,
    lastUpdateMicrosUtc: c.lastUpdateMicros,
    kind: STAT_KIND,
  };
}

/** Whether requests for this service's documents can run now: its selector's group is available. */
function available(d: UtilityDeps, svc: RegisteredService): boolean {
  return !(svc.has('OWNER_SELECTION') || svc.has('REPLICATION')) || d.selectors.available;
}

/** The child template a factory's `/template` answers: the state's fields, with their description. */
function template(d: UtilityDeps, svc: RegisteredService): JsonObject {
  return {
    documentDescription: {
      propertyDescriptions: describeProperties(svc.def) as unknown as JsonObject,
      serviceCapabilities: [...svc.def.options],
      versionRetentionLimit: svc.def.versionRetention,
      versionRetentionFloor: Math.min(svc.def.versionRetention, limits.versionRetentionFloor),
    },
    documentVersion: 0,
    documentKind: svc.def.kind,
    documentSelfLink: `${svc.def.factoryLink}/child-template`,
    documentUpdateTimeMicros: 0,
    documentExpirationTimeMicros: 0,
    documentOwner: d.hostId,
  };
}

function config(d: UtilityDeps, t: UtilityTarget, doc: ServiceDocument | undefined): JsonObject {
  const { def } = t.svc;
  const base: JsonObject = {
    maintenanceIntervalMicros: limits.maintenanceIntervalMicros,
    operationQueueLimit: limits.documentQueueMax,
    epoch: doc?.documentEpoch ?? 0,
    version: doc?.documentVersion ?? 0,
    versionRetentionLimit: def.versionRetention,
    versionRetentionFloor: Math.min(def.versionRetention, limits.versionRetentionFloor),
  };
  if (t.factory) {
    const options = ['FACTORY', ...def.options.filter((o) => o === 'REPLICATION' || o === 'IDEMPOTENT_POST')];
    return {
      ...base,
      options,
      childOptions: [...def.options],
      peerNodeSelectorPath: def.nodeSelector,
      documentIndexPath: DOCUMENT_INDEX_PATH,
      documentKind: FACTORY_CONFIG_KIND,
      documentSelfLink: `${t.link}/config`,
      documentOwner: d.hostId,
    };
  }
  return {
    ...base,
    options: [...def.options, 'FACTORY_ITEM'],
    peerNodeSelectorPath: def.nodeSelector,
    documentIndexPath: DOCUMENT_INDEX_PATH,
    documentKind: CONFIG_KIND,
    documentSelfLink: `${t.link}/config`,
    documentOwner: d.hostId,
  };
}

function stats(d: UtilityDeps, t: UtilityTarget): JsonObject {
  const entries: Record<string, JsonObject> = {};
  const now = d.nowMicros();
  const counted = d.counters.of(t.link);
  const all: [string, { value: number; lastUpdateMicros: number }][] = [...counted];
  if (t.factory) all.push(['isAvailable', { value: available(d, t.svc) ? 1 : 0, lastUpdateMicros: now }]);
  // Xenon lists entries by name.
  all.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, c] of all) entries[name] = stat(name, c);
  return {
    kind: STATS_KIND,
    entries,
    documentVersion: 0,
    documentKind: STATS_KIND,
    documentSelfLink: `${t.link}/stats`,
    documentUpdateTimeMicros: now,
    documentExpirationTimeMicros: 0,
    documentOwner: d.hostId,
  };
}

function noQuery(querystring: string, what: string): void {
  if (querystring !== '')
    throw new KryptonError('INVALID_ARGUMENT', `${what} takes no query parameters (OData on ${what} is not supported)`);
}

/** Answers a utility path (utilityTarget found one). Throws KryptonErrors for the error body. */
export function serveUtility(d: UtilityDeps, t: UtilityTarget, method: string, querystring: string): { status: number; body: JsonObject } {
  // A child's utility paths exist while the child does (Xenon: while its service runs).
  const doc = t.factory ? undefined : d.store.get(t.link);
  switch (t.suffix) {
    case '/available':
      if (method !== 'GET') {
        if (method === 'PATCH' || method === 'PUT')
          throw new KryptonError(
            'METHOD_NOT_ALLOWED',
            `${method} ${t.link}/available is not supported: availability follows the node group`,
          );
        notAllowed(method);
      }
      noQuery(querystring, '/available');
      if (!available(d, t.svc))
        throw new KryptonError('QUORUM_UNAVAILABLE', `${t.link} is not available: its node group has no quorum or is settling`);
      return { status: 200, body: {} };
    case '/stats':
      if (method !== 'GET') {
        if (method === 'PUT' || method === 'POST' || method === 'PATCH')
          throw new KryptonError('METHOD_NOT_ALLOWED', `${method} ${t.link}/stats is not supported: the counters are the host's own`);
        notAllowed(method);
      }
      noQuery(querystring, '/stats');
      return { status: 200, body: stats(d, t) };
    case '/config':
      if (method !== 'GET') {
        if (method === 'PATCH' || method === 'PUT')
          throw new KryptonError(
            'METHOD_NOT_ALLOWED',
            `${method} ${t.link}/config is not supported: a service's configuration is fixed in its code`,
          );
        notAllowed(method);
      }
      noQuery(querystring, '/config');
      return { status: 200, body: config(d, t, doc) };
    case '/template': {
      if (method !== 'GET') notAllowed(method);
      noQuery(querystring, '/template');
      const child = template(d, t.svc);
      if (!t.factory) return { status: 200, body: child };
      const link = child.documentSelfLink as string;
      return {
        status: 200,
        body: {
          documentLinks: [link],
          documents: { [link]: child },
          documentCount: 1,
          queryTimeMicros: 1,
          documentVersion: 0,
          documentUpdateTimeMicros: 0,
          documentExpirationTimeMicros: 0,
          documentOwner: d.hostId,
        },
      };
    }
  }
}

/** koa middleware for the utility paths, before the factory and child routes would take them. */
export function utilityMiddleware(d: UtilityDeps): Koa.Middleware {
  return async (ctx, next) => {
    const path = ctx.path.length > 1 && ctx.path.endsWith('/') ? ctx.path.slice(0, -1) : ctx.path;
    const t = utilityTarget(d.registry, path);
    if (t === undefined) return next();
    const { status, body } = serveUtility(d, t, ctx.method, ctx.querystring);
    ctx.status = status;
    ctx.body = body;
  };
}

// ---- /core/document-index ----

const INDEX_PARAMS = new Set(['documentSelfLink', 'documentVersion', 'includeDeleted', 'capability']);

/**
 * `GET /core/document-index?documentSelfLink=<link>[&documentVersion=N][&includeDeleted=true]`:
 * a document as this host's index holds it (a replica's copy on a non-owner), latest or any
 * retained version, a tombstone only with includeDeleted. Xenon answers an empty 200 for a
 * missing document; Krypton answers 404 naming it.
 */
function documentIndexGet(d: UtilityDeps, querystring: string, scope: ReadScope): ServiceDocument {
  const p = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(querystring)) {
    if (!INDEX_PARAMS.has(k)) throw new KryptonError('INVALID_ARGUMENT', `${DOCUMENT_INDEX_PATH} does not take ${k}`);
    if (p.has(k)) throw new KryptonError('INVALID_ARGUMENT', `${k} is given more than once`);
    p.set(k, v);
  }
  const link = p.get('documentSelfLink');
  if (!link) throw new KryptonError('INVALID_ARGUMENT', 'documentSelfLink is required');
  if (link.endsWith('*')) {
    throw new KryptonError(
      'INVALID_ARGUMENT',
      `listing ${DOCUMENT_INDEX_PATH} by a wildcard is not supported: GET the factory or send a query task`,
    );
  }
  const includeDeleted = p.get('includeDeleted');
  if (includeDeleted !== undefined && includeDeleted !== 'true' && includeDeleted !== 'false') {
    throw new KryptonError('INVALID_ARGUMENT', 'includeDeleted must be true or false');
  }
  const capability = p.get('capability');
  // Every document Krypton stores is persisted and indexed, so these name the same index.
  if (capability !== undefined && capability !== 'PERSISTENCE' && capability !== 'INDEXED_METADATA') {
    throw new KryptonError('INVALID_ARGUMENT', `capability ${capability} is not supported (PERSISTENCE is)`);
  }
  if (scope.mayRead && !scope.mayRead(link)) throw new KryptonError('FORBIDDEN', `forbidden: ${link}`);
  const rawVersion = p.get('documentVersion');
  let doc: ServiceDocument | undefined;
  if (rawVersion !== undefined) {
    if (!/^\d+$/.test(rawVersion)) throw new KryptonError('INVALID_ARGUMENT', 'documentVersion must be a non-negative integer');
    doc = d.index.version(link, Number(rawVersion));
    if (doc === undefined)
      throw new KryptonError('NOT_FOUND', `Service not found: ${link}?documentVersion=${rawVersion} (not in this host's index)`);
    return doc;
  }
  doc = d.index.latest(link);
  const expired = doc !== undefined && doc.documentExpirationTimeMicros > 0 && doc.documentExpirationTimeMicros <= d.nowMicros();
  if (doc === undefined || expired) throw new KryptonError('NOT_FOUND', `Service not found: ${link} (not in this host's index)`);
  if (doc.documentUpdateAction === 'DELETE' && includeDeleted !== 'true') {
    throw new KryptonError('NOT_FOUND', `Service not found: ${link} is deleted (add includeDeleted=true for its tombstone)`);
  }
  return doc;
}

// ---- PATCH /core/management ----

/** What `PATCH /core/management` does with each request kind Xenon's management service takes. */
async function managementPatch(d: UtilityDeps, body: unknown): Promise<JsonObject> {
  const kind = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as JsonObject).kind : undefined;
  if (kind === undefined || kind === null) throw new KryptonError('INVALID_BODY', 'kind is required');
  switch (kind) {
    case `${MANAGEMENT_KIND}:SynchronizeWithPeersRequest`: {
      const selector = (body as JsonObject).nodeSelectorPath;
      if (typeof selector !== 'string' || selector === '') throw new KryptonError('INVALID_BODY', 'nodeSelectorPath is required');
      if (d.selectors.spec(selector) === undefined) throw new KryptonError('NOT_FOUND', `Service not found: ${selector}`);
      // One pass covers every replicated factory, whatever selector it uses.
      d.synchronizer.requestPass();
      return {};
    }
    case `${MANAGEMENT_KIND}:BackupRequest`:
    case `${MANAGEMENT_KIND}:RestoreRequest`:
    case `${MANAGEMENT_KIND}:AutoBackupConfiguration`:
      return backupRequest(d, String(kind).slice(MANAGEMENT_KIND.length + 1), body as JsonObject);
    case `${MANAGEMENT_KIND}:ConfigureOperationTracingRequest`:
      throw new KryptonError(
        'INVALID_BODY',
        'ConfigureOperationTracingRequest is not supported: Krypton has no operation tracing; use --logLevel=debug',
      );
    default:
      throw new KryptonError('INVALID_BODY', 'unknown request');
  }
}

/** `/core/document-index` on the router; `patchManagement` serves `PATCH /core/management`. */
export function indexRoutes(router: Router, d: UtilityDeps, scopeOf: (ctx: Koa.Context) => ReadScope): void {
  router.get(DOCUMENT_INDEX_PATH, (ctx) => {
    ctx.body = documentIndexGet(d, ctx.querystring, scopeOf(ctx));
  });
  router.all(DOCUMENT_INDEX_PATH, (ctx) => notAllowed(ctx.method));
}

export function patchManagement(d: UtilityDeps, body: unknown): Promise<JsonObject> {
  return managementPatch(d, body);
}

export const MANAGEMENT_SYNCH_PATH = '/core/management/synch';
const SYNCHRONIZATION_REQUEST_KIND = 'com:vmware:xenon:services:common:SynchronizationRequest';

/**
 * `PATCH /core/management/synch` with a SynchronizationRequest naming a factory: Xenon
 * synchronizes that factory's children; Krypton's pass covers every replicated factory at once,
 * so it runs one (a factory that does not replicate has nothing to synchronize: 400).
 */
export function patchManagementSynch(d: UtilityDeps, body: unknown): JsonObject {
  const o = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as JsonObject) : undefined;
  if (o === undefined) throw new KryptonError('INVALID_BODY', 'body is required');
  if (o.kind !== SYNCHRONIZATION_REQUEST_KIND) throw new KryptonError('INVALID_BODY', "Invalid 'kind' in the request body");
  const link = o.documentSelfLink;
  if (typeof link !== 'string' || link === '') throw new KryptonError('INVALID_BODY', 'documentSelfLink is required');
  const svc = d.registry.factory(link);
  if (svc === undefined) throw new KryptonError('NOT_FOUND', `Service not found: ${link}`);
  if (!svc.has('REPLICATION')) throw new KryptonError('INVALID_BODY', `Nothing to synchronize: ${link} is not replicated`);
  d.synchronizer.requestPass();
  return {};
}
