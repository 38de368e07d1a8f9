/**
 * ExampleService (`/core/examples`), written on the public programming model exactly as a service
 * author would write one. Its rules are Xenon's (docs/xenon-compatibility.md, Example and task services): `name` required on
 * create and kept by PUT, `counter` never goes down, PATCH merges `name`, `keyValues` (a null
 * value removes the key) and `tags` (set union), a StrictUpdateRequest PATCH applies `name` only
 * at the expected version, and a PATCH that omits the expiration clears it.
 */

import Type from 'typebox';
import { KryptonError } from '../errors.js';
import { KINDS, type JsonObject } from '../document.js';
import { defineService, type ServiceContext, type Stored } from '../service.js';

export interface ExampleState extends JsonObject {
  keyValues?: Record<string, string | null>;
  counter?: number | null;
  sortedCounter?: number | null;
  name?: string | null;
  tags?: string[];
  id?: string | null;
  required?: string | null;
  isFromMigration?: boolean;
  /** Only on a StrictUpdateRequest PATCH body. */
  kind?: string;
  documentVersion?: number;
  documentExpirationTimeMicros?: number;
}

const nullable = <T extends Type.TSchema>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));

export const exampleBodySchema = Type.Object({
  keyValues: nullable(Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()]))),
  counter: nullable(Type.Integer()),
  sortedCounter: nullable(Type.Integer()),
  name: nullable(Type.String()),
  tags: nullable(Type.Array(Type.String())),
  id: nullable(Type.String()),
  required: nullable(Type.String()),
  isFromMigration: nullable(Type.Boolean()),
  kind: nullable(Type.String()),
  documentSelfLink: nullable(Type.String()),
  documentVersion: nullable(Type.Integer({ minimum: 0 })),
  documentExpirationTimeMicros: nullable(Type.Integer({ minimum: 0 })),
});

function maxCounter(a: number | null | undefined, b: number | null | undefined): number | undefined {
  if (a == null) return b ?? undefined;
  if (b == null) return a;
  return Math.max(a, b);
}

function withoutNulls(kv: Record<string, string | null> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(kv ?? {})) if (v !== null) out[k] = v;
  return out;
}

function union(a: readonly string[] | undefined, b: readonly string[] | null | undefined): string[] {
  return [...new Set([...(a ?? []), ...(b ?? [])])];
}

/** Own fields in the order Xenon serializes ExampleServiceState. */
function shape(s: ExampleState): ExampleState {
  const out: ExampleState = { keyValues: withoutNulls(s.keyValues) };
  if (s.counter != null) out.counter = s.counter;
  if (s.sortedCounter != null) out.sortedCounter = s.sortedCounter;
  if (s.name != null) out.name = s.name;
  out.tags = union([], s.tags);
  if (s.id != null) out.id = s.id;
  if (s.required != null) out.required = s.required;
  out.isFromMigration = s.isFromMigration ?? false;
  return out;
}

export const exampleService = defineService<ExampleState>({
  factoryLink: '/core/examples',
  kind: KINDS.example,
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION', 'INSTRUMENTATION'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 100,
  bodySchema: exampleBodySchema,

  create(body) {
    if (body.name == null) throw new KryptonError('INVALID_BODY', 'name is required');
    return shape({ ...body, isFromMigration: false });
  },

  put(current, body) {
    if (body.name == null && current.name != null) throw new KryptonError('INVALID_BODY', 'name must be set');
    return shape({ ...body, counter: maxCounter(body.counter, current.counter), isFromMigration: current.isFromMigration });
  },

  patch(current: Stored<ExampleState>, body: ExampleState, _ctx: ServiceContext) {
    if (body.kind === KINDS.strictUpdateRequest) {
      if (body.documentVersion !== current.documentVersion) {
        throw new KryptonError(
          'VERSION_CONFLICT',
          `Current version ${current.documentVersion}. Request version ${body.documentVersion ?? 'null'}`,
        );
      }
      return shape({ ...current, name: body.name ?? current.name });
    }
    const keyValues: Record<string, string | null> = { ...current.keyValues };
    for (const [k, v] of Object.entries(body.keyValues ?? {})) {
      if (v === null) delete keyValues[k];
      else keyValues[k] = v;
    }
    return shape({
      ...current,
      name: body.name ?? current.name,
      keyValues,
      tags: union(current.tags, body.tags),
      counter: maxCounter(body.counter, current.counter),
    });
  },

  // Xenon's ExampleService sets the expiration to the body's value on every update, so a PATCH
  // that omits it clears it; a create takes the body's value.
  expiration(_current, body) {
    return body.documentExpirationTimeMicros ?? 0;
  },
});

/**
 * The same service on the `default-3x` selector (Xenon's LimitedReplicationExampleService): each
 * document is replicated to the 3 hosts closest to its link instead of every host.
 */
export const example3xService = defineService<ExampleState>({
  ...exampleService,
  factoryLink: '/core/examples-3x',
  nodeSelector: '/core/node-selectors/default-3x',
});
