/**
 * Complete history in process, three hosts with a write quorum of 2: a host stopped while
 * documents are written comes back holding every version its peers retain, not only the latest,
 * as a replica (the owners ship what it lacks) and as the owner that takes a link back over (it
 * takes what it lacks from the others, request ids included, so a client's retry of a write made
 * while it was away is still answered with that write and not applied again).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startHost, startJoined, tempDir, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

interface Doc {
  documentVersion: number;
  documentEpoch: number;
  name: string;
}

const local = { pragma: 'xn-no-fwd' };

async function ready(hosts: TestHost[]): Promise<void> {
  await waitFor(
    'group ready',
    async () => {
      for (const h of hosts) {
        if ((await h.client.get('/core/node-groups/default/available')).status !== 200) return false;
        const g = await h.client.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default');
        if (Object.values(g.body.nodes).filter((n) => n.status === 'AVAILABLE').length !== hosts.length) return false;
      }
      return true;
    },
    20_000,
  );
}

/** Each retained version of `link` a host holds itself, as "version:epoch:name", through an INCLUDE_ALL_VERSIONS query. */
async function history(h: TestHost, link: string): Promise<string[]> {
  const r = await h.client.post<{ results: { documents?: Record<string, Doc & { documentSelfLink: string }> } }>(
    '/core/local-query-tasks',
    {
      taskInfo: { isDirect: true },
      querySpec: {
        options: ['INCLUDE_ALL_VERSIONS', 'EXPAND_CONTENT'],
        query: { term: { propertyName: 'documentSelfLink', matchValue: link } },
      },
    },
  );
  assert.is(r.status, 200, JSON.stringify(r.body));
  return Object.values(r.body.results.documents ?? {})
    .map((d) => `${d.documentVersion}:${d.documentEpoch}:${d.name}`)
    .sort();
}

async function ownerOf(h: TestHost, link: string): Promise<string> {
  return (await h.client.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key: link })).body.ownerNodeId;
}

test('a host stopped while documents are written gets back every version, and as owner answers a retry of a write made while it was away', async () => {
  const dirs = await Promise.all([0, 1, 2].map(() => tempDir()));
  const base = 25900 + Math.floor(Math.random() * 500) * 3;
  const config = (i: number) => ({ id: `h${i}`, port: base + i, membershipQuorum: 2 });
  const hosts: TestHost[] = [];
  try {
    await startJoined(
      dirs.map((d) => d.path),
      config,
      hosts,
    );
    await ready(hosts);
    const [a, , c] = hosts as [TestHost, TestHost, TestHost];
    // Documents on every owner, h2's among them: h2 takes those back over when it returns.
    const links: string[] = [];
    for (let i = 0; links.length < 6 || !(await Promise.all(links.map((l) => ownerOf(a, l)))).includes('h2'); i++) {
      const r = await a.client.post('/core/examples', { documentSelfLink: `h-${i}`, name: 'v0' });
      assert.is(r.status, 200, r.text);
      links.push(`/core/examples/h-${i}`);
    }
    const h2Link = links[(await Promise.all(links.map((l) => ownerOf(a, l)))).indexOf('h2')]!;

    await c.close();
    hosts.pop();
    await waitFor(
      'h2 seen gone',
      async () => (await a.client.get('/core/node-groups/default/available')).status === 200 && (await ownerOf(a, h2Link)) !== 'h2',
      20_000,
    );
    for (let round = 1; round <= 12; round++) {
      for (const l of links) {
        const r = await a.client.put(l, { name: `v${round}` });
        assert.is(r.status, 200, r.text);
      }
    }
    // A client's write with its own key while h2 is away.
    const keyed = await a.client.send<Doc>('PUT', h2Link, { name: 'keyed' }, { 'idempotency-key': 'history-retry-1' });
    assert.is(keyed.status, 200, keyed.text);

    hosts.push(await startHost(config(2), dirs[2]!.path));
    const back = hosts[2]!;
    await ready(hosts);
    await waitFor('h2 owns its link again', async () => (await ownerOf(a, h2Link)) === 'h2', 20_000);

    // The retry goes through h2, the owner again: answered with the original write, nothing applied.
    const retry = await back.client.send<Doc>('PUT', h2Link, { name: 'keyed' }, { 'idempotency-key': 'history-retry-1' });
    assert.is(retry.status, 200, retry.text);
    assert.is(retry.body.documentVersion, keyed.body.documentVersion, 'the retry was applied again');

    // Every host ends with the same retained history of every link, h2 included.
    for (const l of links) {
      const want = await waitFor(
        `the hosts agree on the history of ${l}`,
        async () => {
          const hs = await Promise.all(hosts.map((h) => history(h, l)));
          return hs.every((x) => x.join() === hs[0]!.join()) ? hs[0] : undefined;
        },
        20_000,
      ).catch(async (e) => {
        for (const h of hosts)
          console.log(
            h.host.id,
            await ownerOf(a, l),
            (await history(h, l)).join(' '),
            JSON.stringify((await h.client.get('/core/node-selectors/default/synch')).body),
          );
        throw e;
      });
      assert.ok(want.length >= 13, `${l}: ${want.join(' ')}`);
      // And h2 answers each of those versions from its own copy.
      for (const entry of want) {
        const v = Number(entry.split(':')[0]);
        const r = await back.client.send<Doc>('GET', `${l}?documentVersion=${v}`, undefined, local);
        assert.is(r.status, 200, `${l}?documentVersion=${v}: ${r.text}`);
      }
    }
  } finally {
    for (const h of hosts) await h.close();
    for (const d of dirs) await d.remove();
  }
});

test.run();
