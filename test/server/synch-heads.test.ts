/**
 * Heads pages (`POST <selector>/synch {kind: 'heads'}`), which a synchronization pass reads from
 * every peer: every link under a factory once, in sorted order, tombstones included, and links
 * added while a peer pages through still show up after its cursor (the sorted list a host keeps
 * between pages is rebuilt when its links change).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startHost } from '../support/hosts.js';

type Page = { heads: [string, number, number, number, string][]; next?: string };

test('heads pages cover every link once, in order, and see links added meanwhile', async () => {
  const h = await startHost({ id: 'solo' });
  try {
    const create = async (id: string) => assert.is((await h.client.post('/core/examples', { documentSelfLink: id, name: id })).status, 200);
    for (let i = 10; i < 35; i++) await create(`m${i}`);
    assert.is((await h.client.delete('/core/examples/m12')).status, 200);
    const page = async (after?: string) => {
      const r = await h.client.post<Page>('/core/node-selectors/default/synch', {
        kind: 'heads',
        factoryLink: '/core/examples',
        limit: 10,
        after,
      });
      assert.is(r.status, 200);
      return r.body;
    };
    const seen: string[] = [];
    let p = await page();
    seen.push(...p.heads.map((t) => t[0]));
    // Added between pages: one sorting before the cursor (a later pass finds it), one after it.
    await create('a00');
    await create('z99');
    while (p.next) {
      p = await page(p.next);
      seen.push(...p.heads.map((t) => t[0]));
    }
    const expected = [...Array.from({ length: 25 }, (_, i) => `/core/examples/m${i + 10}`), '/core/examples/z99'];
    assert.equal(seen, expected);
    const tomb = (await page('/core/examples/m11')).heads[0]!;
    assert.equal(tomb.slice(0, 4), ['/core/examples/m12', 0, 1, 1], 'a deleted link is listed, marked deleted');
    const all = await page();
    assert.is(all.heads[0]![0], '/core/examples/a00', 'a fresh read sees the link added before the cursor');
  } finally {
    await h.close();
  }
});

test.run();
