/**
 * The rules every stateful service shares, as pure functions: where a POST puts its child (suffix
 * or generated link, id validation), what happens when the link is taken or tombstoned (409s,
 * IDEMPOTENT_POST, xn-force-index-update), what PUT/PATCH/DELETE do to a missing, deleted or
 * expired document, and how the runtime stamps version, epoch, owner, time and action onto the
 * state a handler returns. Each plan is a NewLogRecord the server appends, or an error.
 */

import { invariant, KryptonError, XENON_ERROR_CODES } from './errors.js';
import { generateDocumentId } from './hash.js';
import { limits } from './limits.js';
import type { Epoch, Link, Micros } from './ids.js';
import type { JsonObject, NewLogRecord, ServiceDocument, UpdateAction } from './document.js';
import { type Effect, type Next, type RegisteredService, type ServiceContext, type Stored, unwrapNext } from './service.js';

const ID_CHARS = /^[0-9a-zA-Z\-_.~?#[\]@!$&'()*+,;=:]+$/;

/** Utility paths Krypton serves under a factory or a document (server/http/utility.ts). */
export const UTILITY_SUFFIXES = ['/available', '/stats', '/config', '/template'] as const;

/**
 * Ids a child may not have: `<factory>/<id>` would be the factory's utility path (Xenon's
 * suffixes, served or not: a document there could never be read back once they are).
 */
export const RESERVED_IDS: ReadonlySet<string> = new Set([
  'available',
  'stats',
  'config',
  'template',
  'subscriptions',
  'ui',
  'synchronization',
  'replication',
]);

/** Xenon's UriUtils.isValidDocumentId, plus a length bound. */
export function isValidDocumentId(id: string): boolean {
  return id.length > 0 && id.length <= limits.documentIdCharsMax && ID_CHARS.test(id);
}

/**
 * The child link a factory POST creates: the body's documentSelfLink as a suffix (`foo` or
 * `/foo`), used as-is when it already starts with the factory path, else a generated id.
 */
export function childLinkFor(factoryLink: Link, requested: unknown, ctx: ServiceContext): Link {
  if (requested === undefined || requested === null || requested === '') {
    return `${factoryLink}/${generateDocumentId(ctx.hostId, ctx.nowMicros)}`;
  }
  if (typeof requested !== 'string') {
    throw new KryptonError('INVALID_BODY', 'documentSelfLink must be a string');
  }
  let suffix = requested.startsWith(factoryLink + '/') ? requested.slice(factoryLink.length + 1) : requested;
  if (suffix.startsWith('/')) suffix = suffix.slice(1);
  if (!isValidDocumentId(suffix)) {
    throw new KryptonError('INVALID_ID', `${suffix} is an invalid id`);
  }
  if (RESERVED_IDS.has(suffix)) {
    throw new KryptonError('INVALID_ID', `${suffix} is an invalid id: ${factoryLink}/${suffix} is a utility path`);
  }
  return `${factoryLink}/${suffix}`;
}

export function isExpired(doc: ServiceDocument, nowMicros: Micros): boolean {
  const exp = doc.documentExpirationTimeMicros;
  return exp > 0 && exp <= nowMicros;
}

/** The state a client may act on: absent when never created, purged or expired. */
function live(doc: ServiceDocument | undefined, nowMicros: Micros): ServiceDocument | undefined {
  return doc && !isExpired(doc, nowMicros) ? doc : undefined;
}

export function notFound(link: Link): KryptonError {
  return new KryptonError('NOT_FOUND', `Service not found: ${link}`);
}

export function markedDeletedNotFound(link: Link): KryptonError {
  return new KryptonError('NOT_FOUND', `Service not found: ${link}`, {
    xenonErrorCode: XENON_ERROR_CODES.STATE_MARKED_DELETED,
  });
}

export interface StampArgs {
  link: Link;
  kind: string;
  action: UpdateAction;
  version: number;
  epoch: Epoch;
  expirationMicros: Micros;
  ctx: ServiceContext;
  resetHistory?: boolean;
}

/**
 * Builds the record for a new state: own fields first (common fields a handler echoed back are
 * dropped: the runtime owns them), then the common fields in Xenon's order. Written as a loop
 * rather than spreads because it runs on every write.
 */
export function stamp(fields: JsonObject, a: StampArgs): NewLogRecord {
  const state: JsonObject = {};
  for (const k in fields) {
    const v = fields[k];
    if (v === undefined || v === null || k === 'kind' || k.startsWith('document')) continue;
    state[k] = v;
  }
  state.documentVersion = a.version;
  state.documentEpoch = a.epoch;
  state.documentKind = a.kind;
  state.documentSelfLink = a.link;
  state.documentUpdateTimeMicros = a.ctx.nowMicros;
  state.documentUpdateAction = a.action;
  state.documentExpirationTimeMicros = a.expirationMicros;
  state.documentOwner = a.ctx.hostId;
  const rec: NewLogRecord = {
    link: a.link,
    action: a.action,
    version: a.version,
    epoch: a.epoch,
    timeMicros: a.ctx.nowMicros,
    state: state as ServiceDocument,
  };
  if (a.resetHistory) rec.resetHistory = true;
  return rec;
}

function bodyNumber(body: JsonObject, field: string): number | undefined {
  const v = body[field];
  return typeof v === 'number' ? v : undefined;
}

export interface CreateOptions {
  /** Pragma xn-force-index-update: re-create over a tombstone, dropping the old history. */
  forceIndexUpdate: boolean;
  /**
   * The lowest epoch to create a link nobody holds in: the epoch its owner was promised for it
   * (lib/synch/promise.ts), which replicas refuse anything older than.
   */
  epochFloor?: Epoch;
}

/**
 * A singleton's document before it ever existed: its initial state at version -1, so the first
 * update makes version 0 of it (lib/service.ts, `singleton`). Undefined for any other link.
 */
function singletonStart(def: RegisteredService['def'], link: Link, ctx: ServiceContext): ServiceDocument | undefined {
  const s = def.singleton;
  if (!s || link !== `${def.factoryLink}/${s.id}`) return undefined;
  return {
    ...(s.initial as JsonObject),
    documentSelfLink: link,
    documentKind: def.kind,
    documentVersion: -1,
    documentEpoch: 0,
    documentUpdateTimeMicros: ctx.nowMicros,
    documentUpdateAction: 'POST',
    documentExpirationTimeMicros: 0,
  } as ServiceDocument;
}

/** The record carrying the write's request id, so every host that holds it recognizes a retry. */
export function withRequestId(rec: NewLogRecord, requestId: string | undefined): NewLogRecord {
  return requestId === undefined ? rec : { ...rec, requestId };
}

/** A handler's next state; its effects, if any, go to `into` (the record carries them to the owner's commit, never to the log). */
function taken(r: JsonObject | Next<JsonObject>, into: Effect[]): JsonObject {
  const { state, effects } = unwrapNext(r);
  if (effects.length > limits.effectsPerUpdateMax) {
    throw new KryptonError(
      'INVALID_BODY',
      `the handler asked for ${effects.length} effects; at most ${limits.effectsPerUpdateMax} per update`,
    );
  }
  into.push(...effects);
  return state;
}

/**
 * Plans a factory POST for `link`, given whatever the index holds for it. Returns the record to
 * append (a POST, or a PUT for IDEMPOTENT_POST services) or throws the conflict Xenon answers.
 */
export function planCreate(
  svc: RegisteredService,
  link: Link,
  body: JsonObject,
  existing: ServiceDocument | undefined,
  opts: CreateOptions,
  ctx: ServiceContext,
): NewLogRecord {
  const { def } = svc;
  if (def.singleton && link !== `${def.factoryLink}/${def.singleton.id}`) {
    throw new KryptonError('INVALID_ID', `${def.factoryLink} is a singleton: its one document is ${def.factoryLink}/${def.singleton.id}`);
  }
  const current = live(existing, ctx.nowMicros);
  const requestedVersion = bodyNumber(body, 'documentVersion');
  let version = Math.max(0, requestedVersion ?? 0);
  let resetHistory = existing !== undefined && current === undefined; // expired: a fresh history

  if (current && current.documentUpdateAction !== 'DELETE') {
    if (svc.has('IDEMPOTENT_POST')) {
      const put = planUpdate(svc, 'PUT', link, current, body, ctx);
      invariant(put, 'a PUT on a live document always plans a record');
      return put;
    }
    throw new KryptonError('ALREADY_EXISTS', `Service already started: ${link}`);
  }
  if (current) {
    if (opts.forceIndexUpdate) {
      version = current.documentVersion + 1;
      resetHistory = true;
    } else if (requestedVersion !== undefined && requestedVersion > current.documentVersion) {
      version = requestedVersion;
    } else {
      throw new KryptonError('MARKED_DELETED', `Service marked deleted: ${link}`);
    }
  }
  const effects: Effect[] = [];
  const fields = taken(def.create(body, ctx), effects);
  const expirationMicros = def.expiration ? def.expiration(undefined, body, ctx) : (bodyNumber(body, 'documentExpirationTimeMicros') ?? 0);
  const rec = stamp(fields, {
    link,
    kind: def.kind,
    action: 'POST',
    version,
    // A re-create continues the link's epoch: replicas that saw a takeover refuse an older one.
    epoch: Math.max(existing?.documentEpoch ?? 0, opts.epochFloor ?? 0),
    expirationMicros,
    ctx,
    resetHistory,
  });
  return effects.length > 0 ? { ...rec, effects } : rec;
}

/**
 * Plans a PUT, PATCH or DELETE on a child. DELETE of a missing or already deleted document is a
 * no-op answered 200 (Xenon swallows that 404): it returns null and nothing is logged.
 */
export function planUpdate(
  svc: RegisteredService,
  action: 'PUT' | 'PATCH' | 'DELETE',
  link: Link,
  existing: ServiceDocument | undefined,
  body: JsonObject | undefined,
  ctx: ServiceContext,
): NewLogRecord | null {
  const { def } = svc;
  const current = (live(existing, ctx.nowMicros) ?? (action === 'DELETE' ? undefined : singletonStart(def, link, ctx))) as
    | Stored<JsonObject>
    | undefined;
  const deleted = current?.documentUpdateAction === 'DELETE';
  if (action === 'DELETE') {
    if (!current || deleted) return null;
  } else {
    if (!current) throw notFound(link);
    if (deleted) throw markedDeletedNotFound(link);
    if (svc.has('IMMUTABLE')) throw new KryptonError('METHOD_NOT_ALLOWED', `Action not supported: ${action}`);
  }
  const b = body ?? {};
  if (action !== 'DELETE' && svc.has('STRICT_UPDATE_CHECKING')) {
    const v = bodyNumber(b, 'documentVersion');
    if (v !== current.documentVersion) {
      throw new KryptonError(
        'VERSION_CONFLICT',
        `current version ${current.documentVersion}, update time ${current.documentUpdateTimeMicros}. Request version ${v ?? 'null'}`,
      );
    }
  }
  let fields: JsonObject;
  let expirationMicros: Micros;
  const effects: Effect[] = [];
  if (action === 'DELETE') {
    fields = def.delete ? taken(def.delete(current, body, ctx), effects) : current;
    const requested = bodyNumber(b, 'documentExpirationTimeMicros') ?? 0;
    expirationMicros = requested > 0 ? requested : current.documentExpirationTimeMicros;
  } else if (action === 'PUT') {
    fields = taken(def.put(current, b, ctx), effects);
    expirationMicros = def.expiration ? def.expiration(current, b, ctx) : (bodyNumber(b, 'documentExpirationTimeMicros') ?? 0);
  } else {
    fields = taken(def.patch(current, b, ctx), effects);
    const requested = bodyNumber(b, 'documentExpirationTimeMicros') ?? 0;
    expirationMicros = def.expiration
      ? def.expiration(current, b, ctx)
      : requested !== 0
        ? requested
        : current.documentExpirationTimeMicros;
  }
  const rec = stamp(fields, {
    link,
    kind: def.kind,
    action,
    version: current.documentVersion + 1,
    epoch: current.documentEpoch ?? 0,
    expirationMicros,
    ctx,
  });
  return effects.length > 0 ? { ...rec, effects } : rec;
}
