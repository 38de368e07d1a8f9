import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fnv64, hex64 } from '../../lib/hash.js';
import { KINDS } from '../../lib/document.js';
import { startHost, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

type Doc = Record<string, unknown> & { documentVersion: number; documentSelfLink: string };
const t = suite<{ h: TestHost }>('examples');
t.before(async (ctx) => {
  ctx.h = await startHost();
});
t.after(async (ctx) => {
  await ctx.h.close();
});

t('POST with a suffix creates version 0 with Xenon fields', async ({ h }) => {
  const r = await h.client.post<Doc>('/core/examples', { documentSelfLink: 'one', name: 'example one' });
  assert.is(r.status, 200);
  assert.equal(r.body.keyValues, {});
  assert.equal(r.body.tags, []);
  assert.is(r.body.name, 'example one');
  assert.is(r.body.isFromMigration, false);
  assert.is(r.body.documentVersion, 0);
  assert.is(r.body.documentEpoch, 0);
  assert.is(r.body.documentKind, KINDS.example);
  assert.is(r.body.documentSelfLink, '/core/examples/one');
  assert.is(r.body.documentUpdateAction, 'POST');
  assert.is(r.body.documentExpirationTimeMicros, 0);
  assert.is(r.body.documentOwner, h.host.id);
  const g = await h.client.get<Doc>('/core/examples/one');
  assert.equal(g.body, r.body);
});

t('POST accepts /suffix and full links, generates ids from the host hash', async ({ h }) => {
  assert.is(
    (await h.client.post<Doc>('/core/examples', { documentSelfLink: '/slash', name: 'a' })).body.documentSelfLink,
    '/core/examples/slash',
  );
  assert.is(
    (await h.client.post<Doc>('/core/examples', { documentSelfLink: '/core/examples/full', name: 'a' })).body.documentSelfLink,
    '/core/examples/full',
  );
  const gen = await h.client.post<Doc>('/core/examples', { name: 'generated' });
  assert.is(gen.status, 200);
  assert.ok(gen.body.documentSelfLink.startsWith('/core/examples/' + hex64(fnv64(h.host.id))), gen.body.documentSelfLink);
});

t('create rules: name required, body required, valid ids, 409 on a live link', async ({ h }) => {
  const noName = await h.client.post('/core/examples', { counter: 1 });
  assert.is(noName.status, 400);
  assert.equal(noName.body, { message: 'name is required', statusCode: 400, documentKind: KINDS.serviceErrorResponse, errorCode: 0 });
  const noBody = await h.client.post('/core/examples');
  assert.is(noBody.status, 400);
  assert.is(noBody.body.message, 'initial state is required');
  const badId = await h.client.post('/core/examples', { documentSelfLink: 'a/b', name: 'x' });
  assert.is(badId.status, 400);
  assert.is(badId.body.message, 'a/b is an invalid id');
  await h.client.post('/core/examples', { documentSelfLink: 'dup', name: 'x' });
  const dup = await h.client.post('/core/examples', { documentSelfLink: 'dup', name: 'y' });
  assert.is(dup.status, 409);
  assert.is(dup.body.errorCode, -2147483645);
  assert.is((await h.client.get<Doc>('/core/examples/dup')).body.name, 'x');
});

t('PATCH merges name, keyValues (null removes), tags (union) and keeps the counter max', async ({ h }) => {
  await h.client.post('/core/examples', { documentSelfLink: 'p', name: 'n0', counter: 5, keyValues: { a: '1', b: '2' }, tags: ['x'] });
  const p1 = await h.client.patch<Doc>('/core/examples/p', { keyValues: { b: null, c: '3' }, tags: ['y', 'x'], counter: 3 });
  assert.is(p1.status, 200);
  assert.equal(p1.body.keyValues, { a: '1', c: '3' });
  assert.equal(p1.body.tags, ['x', 'y']);
  assert.is(p1.body.counter, 5);
  assert.is(p1.body.name, 'n0');
  assert.is(p1.body.documentVersion, 1);
  assert.is(p1.body.documentUpdateAction, 'PATCH');
  const p2 = await h.client.patch<Doc>('/core/examples/p', { name: 'n1', counter: 9 });
  assert.is(p2.body.name, 'n1');
  assert.is(p2.body.counter, 9);
  assert.is(p2.body.documentVersion, 2);
  assert.ok((p2.body.documentUpdateTimeMicros as number) > (p1.body.documentUpdateTimeMicros as number));
});

t('PATCH without an expiration clears it (ExampleService quirk)', async ({ h }) => {
  const far = Date.now() * 1000 + 3_600_000_000;
  await h.client.post('/core/examples', { documentSelfLink: 'exp-clear', name: 'e', documentExpirationTimeMicros: far });
  assert.is((await h.client.get<Doc>('/core/examples/exp-clear')).body.documentExpirationTimeMicros, far);
  const p = await h.client.patch<Doc>('/core/examples/exp-clear', { name: 'e2' });
  assert.is(p.body.documentExpirationTimeMicros, 0);
});

t('PUT replaces the state, requires name and keeps the counter max', async ({ h }) => {
  await h.client.post('/core/examples', { documentSelfLink: 'put', name: 'a', counter: 10, keyValues: { k: 'v' } });
  const noName = await h.client.put('/core/examples/put', { counter: 1 });
  assert.is(noName.status, 400);
  assert.is(noName.body.message, 'name must be set');
  const ok = await h.client.put<Doc>('/core/examples/put', { name: 'b', counter: 2 });
  assert.is(ok.status, 200);
  assert.equal(ok.body.keyValues, {});
  assert.is(ok.body.counter, 10);
  assert.is(ok.body.documentVersion, 1);
  assert.is(ok.body.documentUpdateAction, 'PUT');
});

t('strict update applies name only at the current version', async ({ h }) => {
  await h.client.post('/core/examples', { documentSelfLink: 'strict', name: 'a' });
  await h.client.patch('/core/examples/strict', { name: 'b' });
  const wrong = await h.client.patch('/core/examples/strict', { kind: KINDS.strictUpdateRequest, name: 'c', documentVersion: 0 });
  assert.is(wrong.status, 400);
  assert.is(wrong.body.message, 'Current version 1. Request version 0');
  const right = await h.client.patch<Doc>('/core/examples/strict', { kind: KINDS.strictUpdateRequest, name: 'c', documentVersion: 1 });
  assert.is(right.status, 200);
  assert.is(right.body.name, 'c');
  assert.is(right.body.documentVersion, 2);
});

t('DELETE tombstones; GET 404; re-POST 409 unless xn-force-index-update', async ({ h }) => {
  await h.client.post('/core/examples', { documentSelfLink: 'del', name: 'a' });
  await h.client.patch('/core/examples/del', { name: 'b' });
  const d = await h.client.delete<Doc>('/core/examples/del');
  assert.is(d.status, 200);
  assert.is(d.body.documentVersion, 2);
  assert.is(d.body.documentUpdateAction, 'DELETE');
  const g = await h.client.get('/core/examples/del');
  assert.is(g.status, 404);
  assert.is(g.body.errorCode, -2147483646);
  assert.not.ok((await h.client.get<{ documentLinks: string[] }>('/core/examples')).body.documentLinks.includes('/core/examples/del'));
  const again = await h.client.post('/core/examples', { documentSelfLink: 'del', name: 'c' });
  assert.is(again.status, 409);
  assert.is(again.body.errorCode, -2147483646);
  assert.is(again.body.message, 'Service marked deleted: /core/examples/del');
  const forced = await h.client.post<Doc>('/core/examples', { documentSelfLink: 'del', name: 'c' }, { pragma: 'xn-force-index-update' });
  assert.is(forced.status, 200);
  assert.is(forced.body.documentVersion, 3);
  assert.is(forced.body.documentUpdateAction, 'POST');
  // The forced re-create starts a new history: the old versions left the index.
  assert.is((await h.client.get('/core/examples/del?documentVersion=1')).status, 404);
  assert.is((await h.client.delete('/core/examples/never-was')).status, 200);
  assert.is((await h.client.delete('/core/examples/del')).status, 200);
  assert.is((await h.client.delete('/core/examples/del')).status, 200);
});

t('PATCH and PUT on missing or deleted documents are 404', async ({ h }) => {
  assert.is((await h.client.patch('/core/examples/missing', { name: 'x' })).status, 404);
  assert.is((await h.client.put('/core/examples/missing', { name: 'x' })).status, 404);
  await h.client.post('/core/examples', { documentSelfLink: 'gone', name: 'a' });
  await h.client.delete('/core/examples/gone');
  const p = await h.client.patch('/core/examples/gone', { name: 'x' });
  assert.is(p.status, 404);
  assert.is(p.body.errorCode, -2147483646);
});

t('GET ?documentVersion=N returns that version', async ({ h }) => {
  await h.client.post('/core/examples', { documentSelfLink: 'ver', name: 'v0' });
  await h.client.patch('/core/examples/ver', { name: 'v1' });
  assert.is((await h.client.get<Doc>('/core/examples/ver?documentVersion=0')).body.name, 'v0');
  assert.is((await h.client.get<Doc>('/core/examples/ver?documentVersion=1')).body.name, 'v1');
  assert.is((await h.client.get('/core/examples/ver?documentVersion=7')).status, 404);
  assert.is((await h.client.get('/core/examples/ver?documentVersion=x')).status, 400);
});

t('factory GET lists children; ?expand adds documents', async ({ h }) => {
  const list = await h.client.get<{
    documentLinks: string[];
    documentCount: number;
    documentOwner: string;
    documents?: Record<string, Doc>;
  }>('/core/examples');
  assert.ok(list.body.documentLinks.includes('/core/examples/one'));
  assert.is(list.body.documentCount, list.body.documentLinks.length);
  assert.is(list.body.documentOwner, h.host.id);
  assert.is(list.body.documents, undefined);
  const ex = await h.client.get<{ documents: Record<string, Doc> }>('/core/examples?expand');
  assert.is(ex.body.documents['/core/examples/one']!.name, 'example one');
  assert.is((await h.client.get('/core/examples/?$expand=true')).status, 200);
});

t('an expired document disappears from GET and the factory list', async ({ h }) => {
  const soon = Date.now() * 1000 + 300_000;
  const r = await h.client.post('/core/examples', { documentSelfLink: 'ephemeral', name: 'e', documentExpirationTimeMicros: soon });
  assert.is(r.status, 200);
  await waitFor('expiry', async () => (await h.client.get('/core/examples/ephemeral')).status === 404, 5000);
  const list = await h.client.get<{ documentLinks: string[] }>('/core/examples');
  assert.not.ok(list.body.documentLinks.includes('/core/examples/ephemeral'));
  // After expiry a plain POST creates the link afresh at version 0.
  const again = await h.client.post<Doc>('/core/examples', { documentSelfLink: 'ephemeral', name: 'f' });
  assert.is(again.status, 200);
  assert.is(again.body.documentVersion, 0);
});

t('concurrent PATCHes to one document are serialized: every version exactly once', async ({ h }) => {
  await h.client.post('/core/examples', { documentSelfLink: 'race', name: 'r', counter: 0 });
  const replies = await Promise.all(
    Array.from({ length: 40 }, (_, i) => h.client.patch<Doc>('/core/examples/race', { counter: i + 1, tags: [`t${i}`] })),
  );
  const versions = replies.map((r) => r.body.documentVersion).sort((a, b) => a - b);
  assert.equal(
    versions,
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  const final = await h.client.get<Doc & { tags: string[] }>('/core/examples/race');
  assert.is(final.body.documentVersion, 40);
  assert.is(final.body.counter, 40);
  assert.is(final.body.tags.length, 40);
});

t.run();
