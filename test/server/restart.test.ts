import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startHost, tempDir } from '../support/hosts.js';

test('a graceful restart keeps the id, every document, every version and every deletion', async () => {
  const dir = await tempDir();
  let h = await startHost({}, dir.path);
  try {
    const id = h.host.id;
    for (let i = 0; i < 20; i++) await h.client.post('/core/examples', { documentSelfLink: `d${i}`, name: `n${i}`, counter: i });
    for (let i = 0; i < 20; i += 2) await h.client.patch(`/core/examples/d${i}`, { keyValues: { round: '1' } });
    for (let i = 0; i < 20; i += 5) await h.client.delete(`/core/examples/d${i}`);
    const before = await h.client.get<{ documents: Record<string, unknown> }>('/core/examples?expand');

    h = await h.restart();
    assert.is(h.host.id, id);
    const after = await h.client.get<{ documents: Record<string, unknown> }>('/core/examples?expand');
    assert.equal(after.body.documents, before.body.documents);
    assert.is((await h.client.get('/core/examples/d0')).status, 404);
    assert.is((await h.client.get('/core/examples/d2?documentVersion=0')).body.name, 'n2');
    const p = await h.client.patch<{ documentVersion: number; documentUpdateTimeMicros: number }>('/core/examples/d2', { name: 'again' });
    assert.is(p.body.documentVersion, 2);
  } finally {
    await h.close();
    await dir.remove();
  }
});

test('--id on the command line overrides and replaces the saved id', async () => {
  const dir = await tempDir();
  const a = await startHost({}, dir.path);
  const generated = a.host.id;
  await a.close();
  const b = await startHost({ id: 'hostAtPort8000' }, dir.path);
  assert.is(b.host.id, 'hostAtPort8000');
  assert.is.not(generated, 'hostAtPort8000');
  await b.close();
  const c = await startHost({}, dir.path);
  assert.is(c.host.id, 'hostAtPort8000');
  await c.close();
  await dir.remove();
});

test('a second host on the same sandbox folder is refused', async () => {
  const dir = await tempDir();
  const a = await startHost({}, dir.path);
  try {
    let err: unknown;
    try {
      const b = await startHost({}, dir.path);
      await b.close();
    } catch (e) {
      err = e;
    }
    assert.match(String((err as Error)?.message), /already open|in use/);
  } finally {
    await a.close();
    await dir.remove();
  }
});

test.run();
