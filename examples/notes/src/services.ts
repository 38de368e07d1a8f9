/**
 * The example's services, loaded by `krypton host --services=./dist/services.js`: notes (a
 * document service whose PATCH with new tags asks for an effect, an increment of the tag
 * counter), the tag counter itself (a singleton: one document per group), and a stateless
 * search (GET /app/notes-search?tag=t) that runs a query task and answers the titles.
 */

import { defineService, defineStatelessService, KryptonError, type StatelessResult, Type, withEffects } from 'krypton/service';

export interface Note {
  [field: string]: string | string[] | number | undefined;
  title?: string;
  body?: string;
  tags?: string[];
}

export const NOTE_KIND = 'example:Note';

export const notes = defineService<Note>({
  factoryLink: '/app/notes',
  kind: NOTE_KIND,
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 100,
  bodySchema: Type.Object({
    title: Type.Optional(Type.String({ minLength: 1 })),
    body: Type.Optional(Type.String()),
    tags: Type.Optional(Type.Array(Type.String())),
    documentSelfLink: Type.Optional(Type.String()),
  }),
  create(body) {
    if (body.title === undefined) throw new KryptonError('INVALID_BODY', 'title is required');
    return { title: body.title, body: body.body ?? '', tags: [...new Set(body.tags ?? [])] };
  },
  put(_current, body) {
    if (body.title === undefined) throw new KryptonError('INVALID_BODY', 'title is required');
    return { title: body.title, body: body.body ?? '', tags: [...new Set(body.tags ?? [])] };
  },
  patch(current, body) {
    const before = new Set(current.tags ?? []);
    const added = (body.tags ?? []).filter((t) => !before.has(t));
    const next: Note = {
      title: body.title ?? current.title,
      body: body.body ?? current.body,
      tags: [...before, ...new Set(added)],
    };
    if (added.length === 0) return next;
    // Pure: the handler only says what should happen; the owner does it once the PATCH is durable.
    return withEffects(next, { type: 'request', method: 'PATCH', link: '/app/tag-counts/all', body: { add: added.length } });
  },
});

export interface TagCount {
  [field: string]: number | undefined;
  tags?: number;
  add?: number;
}

export const tagCounts = defineService<TagCount>({
  factoryLink: '/app/tag-counts',
  kind: 'example:TagCount',
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 10,
  bodySchema: Type.Object({
    tags: Type.Optional(Type.Integer()),
    add: Type.Optional(Type.Integer()),
    documentSelfLink: Type.Optional(Type.String()),
  }),
  singleton: { id: 'all', initial: { tags: 0 } },
  create: (body) => ({ tags: body.tags ?? 0 }),
  put: (_current, body) => ({ tags: body.tags ?? 0 }),
  patch: (current, body) => ({ tags: (current.tags ?? 0) + (body.add ?? 0) }),
});

export const search = defineStatelessService({
  link: '/app/notes-search',
  get(req): StatelessResult {
    const tag = req.query.tag;
    if (!tag) return { status: 400, body: { message: 'tag is required', statusCode: 400 } };
    return {
      request: {
        method: 'POST',
        link: '/core/query-tasks',
        body: {
          taskInfo: { isDirect: true },
          querySpec: {
            options: ['EXPAND_CONTENT', 'SORT'],
            sortTerm: { propertyName: 'title', propertyType: 'STRING' },
            sortOrder: 'ASC',
            query: {
              booleanClauses: [
                { occurance: 'MUST_OCCUR', term: { propertyName: 'documentKind', matchValue: NOTE_KIND } },
                { occurance: 'MUST_OCCUR', term: { propertyName: 'tags.item', matchValue: tag } },
              ],
            },
          },
        },
      },
      onAnswer(answer) {
        const results = (answer.body?.results ?? {}) as { documentLinks?: string[]; documents?: Record<string, { title?: string }> };
        const titles = (results.documentLinks ?? []).map((l) => results.documents?.[l]?.title ?? l);
        return { body: { tag, titles } };
      },
    };
  },
});
