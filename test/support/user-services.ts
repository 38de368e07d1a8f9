/**
 * A user's service module for tests, loaded with `--services` (config.services) as a user's
 * would be. Notes whose handlers record the host they ran on, and ask for effects: every PATCH
 * with `text` adds one to a singleton counter and continues on its answer (`countedAt`); every
 * create makes an audit document; a PATCH with `remindInMicros` schedules one maintenance run.
 * A stateless service answers the counter's value through whichever host it is asked.
 */

import {
  defineService,
  defineStatelessService,
  KryptonError,
  Type,
  type JsonObject,
  type StatelessResult,
  withEffects,
} from '../../lib/service-api.js';

export interface Note extends JsonObject {
  text?: string;
  ranOn?: string[];
  countedAt?: number;
  remindInMicros?: number;
  reminded?: boolean;
}

export const notes = defineService<Note>({
  factoryLink: '/app/notes',
  kind: 'test:Note',
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 100,
  bodySchema: Type.Object({
    text: Type.Optional(Type.String()),
    countedAt: Type.Optional(Type.Integer()),
    remindInMicros: Type.Optional(Type.Integer({ minimum: 0 })),
    reminded: Type.Optional(Type.Boolean()),
    documentSelfLink: Type.Optional(Type.String()),
  }),
  create(body, ctx) {
    if (body.text === undefined) throw new KryptonError('INVALID_BODY', 'text is required');
    const id = String(body.documentSelfLink ?? '').replace(/^.*\//, '');
    return withEffects(
      { text: body.text, ranOn: [ctx.hostId] },
      { type: 'create', factoryLink: '/app/audit', body: { documentSelfLink: id, note: `/app/notes/${id}` } },
    );
  },
  put(current, body, ctx) {
    return { text: body.text ?? current.text, ranOn: [...(current.ranOn ?? []), ctx.hostId] };
  },
  patch(current, body, ctx) {
    const next: Note = { ...current, ranOn: [...(current.ranOn ?? []), ctx.hostId] };
    if (body.countedAt !== undefined) return { ...next, countedAt: body.countedAt };
    if (body.reminded !== undefined) return { ...next, reminded: body.reminded };
    if (body.remindInMicros !== undefined) return withEffects(next, { type: 'maintenance', afterMicros: body.remindInMicros });
    if (body.text === undefined) return next;
    return withEffects<Note>(
      { ...next, text: body.text },
      {
        type: 'request',
        method: 'PATCH',
        link: '/app/counters/total',
        body: { add: 1 },
        onAnswer: (answer) => (answer.status === 200 ? { countedAt: Number(answer.body?.count) } : undefined),
      },
    );
  },
  handleMaintenance() {
    return { reminded: true };
  },
});

export interface Counter extends JsonObject {
  count?: number;
  add?: number;
  ranOn?: string[];
}

export const counters = defineService<Counter>({
  factoryLink: '/app/counters',
  kind: 'test:Counter',
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 1000,
  bodySchema: Type.Object({
    count: Type.Optional(Type.Integer()),
    add: Type.Optional(Type.Integer()),
    documentSelfLink: Type.Optional(Type.String()),
  }),
  singleton: { id: 'total', initial: { count: 0 } },
  create: (body) => ({ count: body.count ?? 0, ranOn: [] }),
  put: (_current, body) => ({ count: body.count ?? 0 }),
  patch: (current, body, ctx) => ({ count: (current.count ?? 0) + (body.add ?? 0), ranOn: [...(current.ranOn ?? []), ctx.hostId] }),
});

export const audit = defineService<JsonObject>({
  factoryLink: '/app/audit',
  kind: 'test:Audit',
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 10,
  bodySchema: Type.Object({ note: Type.Optional(Type.String()), documentSelfLink: Type.Optional(Type.String()) }),
  create: (body) => ({ note: body.note ?? null }),
  put: (_c, body) => ({ note: body.note ?? null }),
  patch: (c) => ({ note: c.note ?? null }),
});

export const stats = defineStatelessService({
  link: '/app/stats',
  get(_req, ctx): StatelessResult {
    return {
      request: { method: 'GET', link: '/app/counters/total' },
      onAnswer: (answer) => ({ body: { count: Number(answer.body?.count ?? -1), answeredBy: ctx.hostId } }),
    };
  },
});
