/**
 * The programming model for service authors: a ServiceDefinition names a factory, its document
 * kind, its options and node selector, a typebox schema for the state's own fields, and pure
 * handlers that turn (current state, request body) into the next state. The runtime
 * (lib/verbs.ts for the rules, server/ for I/O) validates bodies against the schema, calls the
 * handlers and stamps the common document fields; handlers never see the clock except through
 * the context they are given.
 */

import Schema from 'typebox/schema';
import type { TSchema } from 'typebox';
import { invariant, KryptonError } from './errors.js';
import type { JsonObject, ServiceDocument } from './document.js';
import type { Link, Micros, NodeId } from './ids.js';
import type { TaskIO } from './task.js';

export type ServiceOption =
  | 'PERSISTENCE'
  | 'REPLICATION'
  | 'OWNER_SELECTION'
  | 'IDEMPOTENT_POST'
  | 'STRICT_UPDATE_CHECKING'
  | 'IMMUTABLE'
  | 'INSTRUMENTATION'
  | 'PERIODIC_MAINTENANCE';

/** What a handler may know about the world: given, never read. */
export interface ServiceContext {
  nowMicros: Micros;
  hostId: NodeId;
}

/**
 * A stored state: the service's own fields plus the common document fields. Handlers receive
 * and return the service's own fields; the common ones are the runtime's.
 */
export type Stored<S> = S & ServiceDocument;

export interface ServiceDefinition<S extends JsonObject = JsonObject> {
  /** Factory path, e.g. `/core/examples`. Children live at `<factoryLink>/<id>`. */
  readonly factoryLink: Link;
  /** documentKind of the children, equal to Xenon's for built-in services. */
  readonly kind: string;
  readonly options: readonly ServiceOption[];
  /** Node selector that picks owners and replicas, e.g. `/core/node-selectors/default`. */
  readonly nodeSelector: string;
  /** Versions the index keeps per child (older ones stay in the log). */
  readonly versionRetention: number;
  /** Schema of a request body: the service's own fields, all optional, plus any common field a client may send. */
  readonly bodySchema: TSchema;
  /**
   * Initial state's own fields from a create body; throw KryptonError('INVALID_BODY') to refuse.
   * Any of the four update handlers may return `withEffects(state, ...effects)` instead: the
   * owner performs the effects once the update is durable under its quorum (see Effect).
   */
  create(body: S, ctx: ServiceContext): S | Next<S>;
  /** Next state's own fields for a PUT. */
  put(current: Stored<S>, body: S, ctx: ServiceContext): S | Next<S>;
  /** Next state's own fields for a PATCH. */
  patch(current: Stored<S>, body: S, ctx: ServiceContext): S | Next<S>;
  /** Tombstone's own fields for a DELETE; the default keeps the current fields. */
  delete?(current: Stored<S>, body: S | undefined, ctx: ServiceContext): S | Next<S>;
  /**
   * One document per group at `<factoryLink>/<id>`: creates of any other child are refused, and
   * the link's owner creates it with `initial` once the group is available, if it never existed.
   */
  readonly singleton?: { readonly id: string; readonly initial: S };
  /**
   * Runs on the owner only, after the response to a create, and again on whichever host becomes
   * the owner of an existing document after a membership change. Returns a PATCH body the owner
   * applies to the document, or undefined. It may therefore run more than once per document; a
   * handler must tolerate that (a stage that already moved on is simply not moved again).
   */
  handleStart?(state: Stored<S>, ctx: ServiceContext): S | undefined;
  /**
   * With the PERIODIC_MAINTENANCE option: runs every maintenance interval on the owner of each
   * live child, and only while the node group is available. Returns a PATCH body or undefined.
   */
  handleMaintenance?(state: Stored<S>, ctx: ServiceContext): S | undefined;
  /**
   * Task services (lib/task.ts): the work of the state's current stage, run on the owner after
   * each durable step until the stage is terminal. Returns the next self-PATCH, or undefined to
   * stall (the owner retries on its next maintenance round). A stage may run again after a
   * crash or an owner change, so its work must be safe to repeat.
   */
  runStage?(state: Stored<S>, io: TaskIO, ctx: ServiceContext): Promise<S | undefined>;
  /** Expiration a create or update should carry; the default takes the body's value. */
  expiration?(current: Stored<S> | undefined, body: S, ctx: ServiceContext): Micros;
}

/** What a request effect's continuation is told: the status and JSON body the target answered. */
export interface EffectAnswer {
  status: number;
  body: JsonObject | undefined;
}

/**
 * Work a handler asks for besides its next state, performed by the runtime on the owner, once the
 * update that asked for it is durable under its quorum; a retry answered from the dedup window
 * performs nothing. Requests and creates carry an Idempotency-Key made from the update (link,
 * epoch, version, effect index), so the runtime's own retries of them are applied once. An owner
 * that dies between the update and its effects does not perform them (at most once): work that
 * must happen belongs in a task (lib/task.ts).
 */
export type Effect<S extends JsonObject = JsonObject> =
  | {
      /** A request to any service of the group (routed to its owner as a client's would be). */
      type: 'request';
      method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
      link: Link;
      body?: JsonObject;
      /** Runs on the owner with the answer and the document's latest state; returns a PATCH body for this document, or undefined. */
      onAnswer?(answer: EffectAnswer, state: Stored<S>, ctx: ServiceContext): S | undefined;
    }
  /** A create in any factory; name its `documentSelfLink` so that a retry is recognized. */
  | { type: 'create'; factoryLink: Link; body: JsonObject }
  /** This document's handleMaintenance once, after `afterMicros`, on its owner then. */
  | { type: 'maintenance'; afterMicros: Micros };

const NEXT = Symbol.for('krypton.next');

/** A next state with effects; made by withEffects, taken apart by the runtime. */
export interface Next<S extends JsonObject> {
  readonly [NEXT]: true;
  readonly state: S;
  readonly effects: readonly Effect<S>[];
}

/** A handler's answer that carries effects besides the next state. */
export function withEffects<S extends JsonObject>(state: S, ...effects: Effect<S>[]): Next<S> {
  return { [NEXT]: true, state, effects };
}

/** The state and effects of a handler's answer, whether it carried effects or not. */
export function unwrapNext<S extends JsonObject>(r: S | Next<S>): { state: S; effects: readonly Effect<S>[] } {
  if ((r as Partial<Next<S>>)[NEXT] === true) {
    const n = r as Next<S>;
    return { state: n.state, effects: n.effects };
  }
  return { state: r as S, effects: [] };
}

/** What a stateless service's handler is given: the request as the client sent it. */
export interface StatelessRequest {
  method: 'GET' | 'POST';
  /** The path below the service's link ('' for the link itself). */
  subPath: string;
  query: Record<string, string>;
  body: JsonObject | undefined;
}

/** A stateless handler's answer: a reply, or a request to a service whose answer it continues on. */
export type StatelessResult =
  | { status?: number; body: JsonObject }
  | {
      request: { method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'; link: Link; body?: JsonObject };
      onAnswer(answer: EffectAnswer, ctx: ServiceContext): StatelessResult;
    };

/**
 * A service without documents at `link` (and below it): custom GET and POST handlers, pure like
 * the others, run on whichever host the request enters. A handler that needs data asks for it
 * with a request and continues on the answer.
 */
export interface StatelessServiceDefinition {
  readonly stateless: true;
  readonly link: Link;
  get?(req: StatelessRequest, ctx: ServiceContext): StatelessResult;
  post?(req: StatelessRequest, ctx: ServiceContext): StatelessResult;
}

export function defineStatelessService(def: Omit<StatelessServiceDefinition, 'stateless'>): StatelessServiceDefinition {
  return { stateless: true, ...def };
}

/** A definition with its compiled body validator; what the registry hands out. */
export interface RegisteredService<S extends JsonObject = JsonObject> {
  readonly def: ServiceDefinition<S>;
  /** Validates an untrusted body; throws KryptonError('INVALID_BODY') naming the first bad field. */
  parseBody(raw: unknown): S;
  has(option: ServiceOption): boolean;
}

export function defineService<S extends JsonObject>(def: ServiceDefinition<S>): ServiceDefinition<S> {
  return def;
}

/** Compiles a definition's schema once, so each request pays only for the check. */
export function registerService<S extends JsonObject>(def: ServiceDefinition<S>): RegisteredService<S> {
  const validator = Schema.Compile(def.bodySchema);
  const options = new Set(def.options);
  return {
    def,
    has: (o) => options.has(o),
    parseBody(raw: unknown): S {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        throw new KryptonError('INVALID_BODY', 'body must be a JSON object');
      }
      if (!validator.Check(raw)) {
        const [, errors] = validator.Errors(raw);
        const first = errors[0];
        const where = first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : 'body';
        throw new KryptonError('INVALID_BODY', `invalid body: ${where} ${first?.message ?? 'is invalid'}`);
      }
      return raw as S;
    },
  };
}

/** The services one host runs, looked up by factory link or by child link. */
export class ServiceRegistry {
  private readonly byFactory = new Map<Link, RegisteredService>();

  add<S extends JsonObject>(def: ServiceDefinition<S>): void {
    // Services are registered once at start, from code: a second one at a link is a bug, not input.
    invariant(!this.byFactory.has(def.factoryLink), `a service is already registered at ${def.factoryLink}`);
    // The registry stores services type-erased; parseBody re-establishes S at each call site.
    this.byFactory.set(def.factoryLink, registerService(def) as unknown as RegisteredService);
  }

  factory(link: Link): RegisteredService | undefined {
    return this.byFactory.get(link);
  }

  /** The service owning a child link, e.g. `/core/examples/one` → the examples service. */
  forChild(link: Link): RegisteredService | undefined {
    const i = link.lastIndexOf('/');
    return i > 0 ? this.byFactory.get(link.slice(0, i)) : undefined;
  }

  factoryLinks(): Link[] {
    return [...this.byFactory.keys()];
  }

  retentionFor(link: Link): number | undefined {
    return this.forChild(link)?.def.versionRetention;
  }
}
