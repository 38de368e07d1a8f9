/**
 * The requests every factory and child document answers (POST to a factory, GET/PUT/PATCH/DELETE
 * of a child, a factory GET), in three steps read top to bottom:
 *  1. decode: the entry host turns the plain request into a DocumentOp, validating it once (the
 *     body against the service's schema, the child link a create gets, the query and headers);
 *  2. route: an owner-selected op whose owner is another host is forwarded there with its checked
 *     body (routing/routing.ts) and the owner's answer comes back as `relayed`, unchanged;
 *  3. run: the op is applied to the document store and answered as a status and a body.
 * The koa app and the document endpoint call handleDocumentRequest (all three steps). The batched
 * forwarding endpoint (peer-endpoints.ts), which only members reach once peer auth is on and
 * which only owner routing sends to, calls handleForwarded: the owner decodes what its entry host
 * already checked without checking it again (a body must still be a JSON object, and a create
 * must name its child), then runs it. A forward that travels as its own HTTP request (authorization
 * on) enters the owner's koa app and is checked there like a client's request: koa cannot tell it
 * from what the forwarding helper (cluster-routes.ts) relays for a client, also a member's
 * request marked `xn-fwd` but never checked.
 */

import type { ReadScope } from '../../lib/authz.js';
import { checkRequestId } from '../../lib/dedup.js';
import type { JsonObject } from '../../lib/document.js';
import { KryptonError, isKryptonError } from '../../lib/errors.js';
import type { Link } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import type { RegisteredService, ServiceRegistry } from '../../lib/service.js';
import type { DocumentStore } from '../documents/documents.js';
import { notAllowed } from '../net/http-errors.js';
import type { PeerReply } from '../net/peers.js';
import type { ForwardItem } from '../routing/forwarder.js';
import { IDEMPOTENCY_HEADER, OWNER_ENTRY_HEADER, OwnerRouting, RETRY_PRAGMA } from '../routing/routing.js';
import { isODataRequest } from '../../lib/query/odata.js';
import { TaskDriver } from '../tasks/tasks.js';
import { factoryOData, queryParams, type ODataDeps } from './odata.js';
import type { ServiceCounters } from './utility.js';

export interface DocumentRequest {
  method: string;
  /** The path without its query, a trailing slash removed. */
  path: string;
  /** Path and query exactly as the client sent them (what a forward sends on). */
  url: string;
  /** The query string without `?`. */
  querystring: string;
  /** Request header by lower-case name; '' when absent. */
  header(name: string): string;
  /** `x-xenon-*` headers, forwarded with the request so the owner honours them too. */
  xenonHeaders(): Record<string, string>;
  /** Reads and parses the body once (JSON, bounded); undefined when empty. */
  readBody(): Promise<unknown>;
  arrivalMicros: number;
  /** With authorization on: which documents the caller may read, for factory lists. */
  mayRead?: (link: string) => boolean;
  /** With authorization on: the caller's read scope, for OData queries and their pages. */
  scope?: ReadScope;
}

export type DocumentAnswer = { status: number; body: unknown } | { relayed: PeerReply };

export interface DocumentRequestDeps extends ODataDeps {
  registry: ServiceRegistry;
  store: DocumentStore;
  routing: OwnerRouting;
  tasks: TaskDriver;
  /** Requests run here per link, for `<link>/stats`. */
  counters: ServiceCounters;
}

type Quorum = number | 'all' | undefined;

/** A decoded, checked request: what the owner runs. */
export type DocumentOp =
  | { kind: 'list'; factoryLink: Link; expand: boolean; mayRead?: (link: Link) => boolean }
  | { kind: 'odata'; svc: RegisteredService; params: [string, string][]; scope: ReadScope }
  | {
      kind: 'create';
      svc: RegisteredService;
      link: Link;
      body: JsonObject;
      forceIndexUpdate: boolean;
      quorum: Quorum;
      requestId: string | undefined;
      /** On a forward: the owner entry version the entry host chose this host by (routing.ts). */
      ownerEntry?: number;
      /** A retry of a forward (a later hop, or run here after a hop failed). */
      retry?: boolean;
    }
  | { kind: 'read'; svc: RegisteredService; link: Link; version: number | undefined; viaOwner: boolean }
  | {
      kind: 'update';
      svc: RegisteredService;
      action: 'PUT' | 'PATCH' | 'DELETE';
      link: Link;
      body: JsonObject | undefined;
      quorum: Quorum;
      /** The write's request id (lib/dedup.ts): the client's Idempotency-Key, or its entry host's. */
      requestId: string | undefined;
      ownerEntry?: number;
      retry?: boolean;
    };

const CHILD_METHODS = new Set(['GET', 'PUT', 'PATCH', 'DELETE']);

export function pragmasOf(raw: string): Set<string> {
  return new Set(raw ? raw.split(/[;,\s]+/).filter(Boolean) : []);
}

/** `x-xenon-rpl-quorum`: a number of successes, or `x-xenon-all` for every replica. */
function requestedQuorum(header: (name: string) => string): Quorum {
  const raw = header('x-xenon-rpl-quorum');
  if (!raw) return undefined;
  if (raw === 'x-xenon-all') return 'all';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new KryptonError('INVALID_ARGUMENT', `x-xenon-rpl-quorum must be a positive integer or x-xenon-all, not '${raw}'`);
  return n;
}

/** `?documentVersion=N` of a child GET. */
function requestedVersion(querystring: string): number | undefined {
  const v = new URLSearchParams(querystring).getAll('documentVersion');
  if (v.length === 0) return undefined;
  if (v.length > 1 || !/^\d+$/.test(v[0]!)) throw new KryptonError('INVALID_ARGUMENT', 'documentVersion must be a non-negative integer');
  return Number(v[0]);
}

/** `Idempotency-Key`: the client's name for a write and its retries, checked; undefined when absent. */
function requestIdOf(header: (name: string) => string): string | undefined {
  const raw = header(IDEMPOTENCY_HEADER);
  return raw === '' ? undefined : checkRequestId(raw);
}

/** A forward's owner entry version (OWNER_ENTRY_HEADER), checked, and whether it is a retry; nothing on a client's own request. */
function ownerEntryOf(header: (name: string) => string, pragmas: ReadonlySet<string>): { ownerEntry?: number; retry?: boolean } {
  if (!pragmas.has('xn-fwd')) return {};
  const retry = pragmas.has(RETRY_PRAGMA) ? { retry: true } : {};
  const raw = header(OWNER_ENTRY_HEADER);
  if (raw === '') return retry;
  if (!/^\d{1,15}$/.test(raw)) throw new KryptonError('INVALID_ARGUMENT', `${OWNER_ENTRY_HEADER} must be a non-negative integer`);
  return { ownerEntry: Number(raw), ...retry };
}

/** A direct task's create: the owner answers only once the task ends. */
function isDirect(op: DocumentOp): boolean {
  return op.kind === 'create' && TaskDriver.isTask(op.svc) && (op.body.taskInfo as { isDirect?: unknown } | undefined)?.isDirect === true;
}

/**
 * Answers a factory or child request; undefined when `req.path` is neither (the caller tries its
 * other routes). Failures are thrown as KryptonErrors for the caller's error mapping.
 */
export async function handleDocumentRequest(d: DocumentRequestDeps, req: DocumentRequest): Promise<DocumentAnswer | undefined> {
  const svc = d.registry.factory(req.path) ?? d.registry.forChild(req.path);
  if (!svc) return undefined;
  const pragmas = pragmasOf(req.header('pragma'));
  const routed = svc.has('OWNER_SELECTION') && !OwnerRouting.isLocalOnly(pragmas);
  const op = await decode(d, req, svc, pragmas, routed);
  if (routed && op.kind !== 'list' && op.kind !== 'odata') return routeAndRun(d, req, svc, pragmas, op);
  if (op.kind !== 'list' && op.kind !== 'odata' && svc.has('OWNER_SELECTION') && pragmas.has('xn-fwd')) {
    // A forward with authorization on (koa): the owner's view may lag the entry host's.
    await d.routing.untilOwner(svc.def.nodeSelector, op.link);
  }
  return run(d, op);
}

/**
 * Step 2 at the entry host: the op to its owner, or run here when this host owns it. A read run
 * here whose link moved to another owner while it was synchronized (STALE_VIEW) is routed again,
 * until the operation deadline.
 */
async function routeAndRun(
  d: DocumentRequestDeps,
  req: DocumentRequest,
  svc: RegisteredService,
  pragmas: ReadonlySet<string>,
  op: Exclude<DocumentOp, { kind: 'list' } | { kind: 'odata' }>,
): Promise<DocumentAnswer> {
  for (;;) {
    const decision = await d.routing.route(
      {
        method: req.method,
        url: req.url,
        body: op.kind === 'read' ? undefined : op.body,
        pragmas,
        arrivalMicros: req.arrivalMicros,
        xenonHeaders: req.xenonHeaders(),
        requestId: op.kind === 'read' ? undefined : op.requestId,
        // The owner holds a direct task's POST until the task ends: the hop waits as long.
        ...(isDirect(op) ? { hopTimeoutMs: limits.directTaskHoldMaxMicros / 1000 + 5_000 } : {}),
      },
      svc.def.nodeSelector,
      op.link,
    );
    if (!decision.local) return { relayed: decision.reply };
    if (decision.requestId !== undefined && op.kind !== 'read') op.requestId = decision.requestId;
    if (decision.retry && (op.kind === 'create' || op.kind === 'update')) op.retry = true;
    if (op.kind !== 'read') return run(d, op);
    try {
      return await run(d, op);
    } catch (e) {
      if (!isKryptonError(e) || e.code !== 'STALE_VIEW' || d.routing.expired(req.arrivalMicros)) throw e;
    }
  }
}

/** Step 1 at the entry host: the request as an op, its body checked against the service's schema. */
async function decode(
  d: DocumentRequestDeps,
  req: DocumentRequest,
  svc: RegisteredService,
  pragmas: ReadonlySet<string>,
  routed: boolean,
): Promise<DocumentOp> {
  const { method, path } = req;
  if (path === svc.def.factoryLink) {
    if (method === 'GET') {
      const params = req.querystring === '' ? [] : queryParams(req.querystring);
      if (isODataRequest(params)) return { kind: 'odata', svc, params, scope: req.scope ?? {} };
      return { kind: 'list', factoryLink: path, expand: req.querystring.includes('expand'), mayRead: req.mayRead };
    }
    if (method !== 'POST') notAllowed(method);
    // The entry host fixes the link (one it owns, when it generates the id): the owner of that
    // link runs the create.
    const prepared = d.store.prepareCreate(
      svc,
      await req.readBody(),
      routed ? (link) => d.routing.ownedHere(svc.def.nodeSelector, link) : undefined,
    );
    return {
      kind: 'create',
      svc,
      link: prepared.link,
      body: { ...prepared.body, documentSelfLink: prepared.link },
      forceIndexUpdate: pragmas.has('xn-force-index-update'),
      quorum: requestedQuorum(req.header),
      requestId: requestIdOf(req.header),
      ...ownerEntryOf(req.header, pragmas),
    };
  }
  if (!CHILD_METHODS.has(method)) notAllowed(method);
  if (method === 'GET') {
    return { kind: 'read', svc, link: path, version: requestedVersion(req.querystring), viaOwner: viaOwner(svc, pragmas) };
  }
  const action = method as 'PUT' | 'PATCH' | 'DELETE';
  const body = d.store.prepareUpdate(svc, action, await req.readBody());
  const quorum = requestedQuorum(req.header);
  return {
    kind: 'update',
    svc,
    action,
    link: path,
    body,
    quorum,
    requestId: requestIdOf(req.header),
    ...ownerEntryOf(req.header, pragmas),
  };
}

/** A child GET on the owner path is brought up to date first (DocumentStore.read); `xn-no-fwd` reads the local copy. */
function viaOwner(svc: RegisteredService, pragmas: ReadonlySet<string>): boolean {
  return svc.has('OWNER_SELECTION') && !pragmas.has('xn-no-fwd');
}

/**
 * A request another host forwarded here in a batch (`body`: its JSON body, parsed), run as its
 * entry host decoded and checked it: no schema check again. Members only send what they checked;
 * the structure the store relies on is still checked, so a broken sender gets a 400, not a crash.
 */
export async function handleForwarded(d: DocumentRequestDeps, item: ForwardItem, body: unknown): Promise<DocumentAnswer> {
  const q = item.url.indexOf('?');
  const rawPath = q < 0 ? item.url : item.url.slice(0, q);
  const path = rawPath.length > 1 && rawPath.endsWith('/') ? rawPath.slice(0, -1) : rawPath;
  const svc = d.registry.factory(path) ?? d.registry.forChild(path);
  if (!svc) throw new KryptonError('NOT_FOUND', `Service not found: ${item.url}`);
  const header = (name: string) => (name === 'pragma' ? item.pragma : (item.xenonHeaders[name] ?? ''));
  const pragmas = pragmasOf(item.pragma);
  // The entry host chose this host by its view; ours may not have caught up with it yet.
  const owned = (link: string) => (svc.has('OWNER_SELECTION') ? d.routing.untilOwner(svc.def.nodeSelector, link) : undefined);
  const object = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as JsonObject) : undefined;
  if (body !== undefined && !object) throw new KryptonError('INVALID_BODY', 'body must be a JSON object');
  if (path === svc.def.factoryLink) {
    const link = object?.documentSelfLink;
    if (item.method !== 'POST' || typeof link !== 'string' || d.registry.forChild(link) !== svc)
      throw new KryptonError('INVALID_BODY', `a forwarded ${item.method} of ${path} must be a create naming its child`);
    const forceIndexUpdate = pragmas.has('xn-force-index-update');
    const requestId = item.requestId;
    await owned(link);
    return run(d, {
      kind: 'create',
      svc,
      link,
      body: object!,
      forceIndexUpdate,
      quorum: requestedQuorum(header),
      requestId,
      ...forwardedWrite(item, pragmas),
    });
  }
  if (!CHILD_METHODS.has(item.method)) notAllowed(item.method);
  await owned(path);
  if (item.method === 'GET') {
    const version = requestedVersion(q < 0 ? '' : item.url.slice(q + 1));
    return run(d, { kind: 'read', svc, link: path, version, viaOwner: viaOwner(svc, pragmas) });
  }
  const action = item.method as 'PUT' | 'PATCH' | 'DELETE';
  if (!object && action !== 'DELETE') throw new KryptonError('INVALID_BODY', `${action} body is required`);
  return run(d, {
    kind: 'update',
    svc,
    action,
    link: path,
    body: object,
    quorum: requestedQuorum(header),
    requestId: item.requestId,
    ...forwardedWrite(item, pragmas),
  });
}

/** A batch item's owner entry version and retry mark, as a write op carries them (routing.ts). */
function forwardedWrite(item: ForwardItem, pragmas: ReadonlySet<string>): { ownerEntry?: number; retry?: boolean } {
  return {
    ...(item.ownerEntry === undefined ? {} : { ownerEntry: item.ownerEntry }),
    ...(pragmas.has(RETRY_PRAGMA) ? { retry: true } : {}),
  };
}

/** Step 3, on the owner (or wherever the op is local): the op applied to the store, and counted. */
async function run(d: DocumentRequestDeps, op: DocumentOp): Promise<DocumentAnswer> {
  const link = op.kind === 'list' ? op.factoryLink : op.kind === 'odata' || op.kind === 'create' ? op.svc.def.factoryLink : op.link;
  d.counters.count(link, 'requestCount');
  try {
    const answer = await apply(d, op);
    if (op.kind === 'create') d.counters.count(link, 'createCount');
    return answer;
  } catch (e) {
    d.counters.count(link, 'failureCount');
    throw e;
  }
}

async function apply(d: DocumentRequestDeps, op: DocumentOp): Promise<DocumentAnswer> {
  switch (op.kind) {
    case 'list':
      return { status: 200, body: d.store.list(op.factoryLink, op.expand, op.mayRead) };
    case 'odata':
      return { status: 200, body: await factoryOData(d, op.svc, op.params, op.scope) };
    case 'create': {
      const opts = { forceIndexUpdate: op.forceIndexUpdate, quorum: op.quorum, requestId: op.requestId, ...fenceOf(d, op) };
      const state = await d.store.create(op.svc, op, opts);
      if (isDirect(op)) return { status: 200, body: await d.tasks.awaitTerminal(op.link) };
      // A task's create only starts the work: Xenon answers 202 Accepted.
      return { status: TaskDriver.isTask(op.svc) && state.documentUpdateAction === 'POST' ? 202 : 200, body: state };
    }
    case 'read':
      return { status: 200, body: op.viaOwner ? await d.store.read(op.svc, op.link, op.version) : d.store.get(op.link, op.version) };
    case 'update': {
      const opts = { quorum: op.quorum, requestId: op.requestId, ...fenceOf(d, op) };
      const state = await d.store.applyUpdate(op.svc, op.action, op.link, op.body, opts);
      return { status: 200, body: state ?? {} };
    }
  }
}

/**
 * A forwarded write is applied only while this host's own entry is the one its entry host chose it
 * by (routing.ts), and a retry only when the dedup window cannot have forgotten its original.
 */
function fenceOf(d: DocumentRequestDeps, op: { ownerEntry?: number; retry?: boolean }): { fence?: () => void; retry?: boolean } {
  const { ownerEntry, retry } = op;
  return { ...(ownerEntry === undefined ? {} : { fence: () => d.routing.checkForward(ownerEntry) }), ...(retry ? { retry } : {}) };
}
