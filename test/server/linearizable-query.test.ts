/**
 * Linearizable queries (READ_AFTER_WRITE_CONSISTENCY with OWNER_SELECTION), three in-process
 * hosts with a write quorum of 2. Through every host the query answers every document as a GET
 * routed to its owner would: a write still in flight (both replicas held back) is not shown while
 * a local query on the owner shows it, and is shown once acknowledged; an owner that cannot renew
 * its lease makes the query fail with 503 rather than answer without its documents, and it answers
 * again once the owner renews; the combinations it cannot serve are refused with 400.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { closeAll, startGroup, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

interface Doc {
  name: string;
  documentVersion: number;
}
interface Results {
  documentLinks: string[];
  documents: Record<string, Doc>;
}

const N = 12;
const FACTORY = '/core/examples';
const PREFIX = 'lin-';
const inFactory = { term: { propertyName: 'documentSelfLink', matchValue: `${FACTORY}/${PREFIX}`, matchType: 'PREFIX' } };
const LINEAR = ['EXPAND_CONTENT', 'READ_AFTER_WRITE_CONSISTENCY', 'OWNER_SELECTION'];
const local = { pragma: 'xn-no-fwd' };

async function query(h: TestHost, options: string[], extra: Record<string, unknown> = {}) {
  return h.client.post<{ results: Results; message?: string }>('/core/query-tasks', {
    taskInfo: { isDirect: true },
    querySpec: { query: inFactory, options, ...extra },
  });
}

async function names(h: TestHost): Promise<Record<string, string>> {
  const r = await query(h, LINEAR);
  assert.is(r.status, 200, r.text);
  return Object.fromEntries(Object.entries(r.body.results.documents).map(([l, d]) => [l, d.name]));
}

const t = suite<{ hosts: TestHost[] }>('linearizable queries');

t.before(async (ctx) => {
  ctx.hosts = await startGroup(3, (i) => ({ id: `lq-${i + 1}`, membershipQuorum: 2 }));
  for (let i = 0; i < N; i++) {
    const r = await ctx.hosts[i % 3]!.client.post(FACTORY, { documentSelfLink: `${PREFIX}${i}`, name: 'v0' });
    assert.is(r.status, 200, r.text);
  }
});
t.after((ctx) => closeAll(ctx.hosts));

t('every host answers every document, each once, as its owner holds it', async ({ hosts }) => {
  for (const h of hosts) {
    const got = await names(h);
    assert.is(Object.keys(got).length, N, JSON.stringify(got));
    assert.ok(
      Object.values(got).every((n) => n === 'v0'),
      JSON.stringify(got),
    );
  }
});

t('a write in flight is not shown until its quorum acknowledged it', async ({ hosts }) => {
  const link = `${FACTORY}/${PREFIX}0`;
  const sel = await hosts[0]!.client.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key: link });
  const owner = hosts.find((h) => h.host.id === sel.body.ownerNodeId)!;
  const others = hosts.filter((h) => h !== owner);
  // Both replicas hold the link's queue: the owner's write is durable there and in flight.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const busy = others.map((r) => r.host.cluster.store.serialized(link, () => held));
  try {
    const write = owner.client.patch<Doc>(link, { name: 'v1' });
    await waitFor('the write in the owner index', async () => {
      const r = await owner.client.send<Doc>('GET', link, undefined, local);
      return r.body.name === 'v1';
    });
    // The owner's own index shows it to a query that is not linearizable.
    const plain = await query(owner, ['EXPAND_CONTENT']);
    assert.is(plain.body.results.documents[link]?.name, 'v1', 'the plain query on the owner sees the write in flight');
    for (const h of hosts) assert.is((await names(h))[link], 'v0', `through ${h.host.id} while the write is in flight`);
    release();
    const w = await write;
    assert.is(w.status, 200, w.text);
    for (const h of hosts) assert.is((await names(h))[link], 'v1', `through ${h.host.id} once acknowledged`);
  } finally {
    release();
    await Promise.all(busy);
  }
});

t('an owner without its lease makes the query fail with 503, not answer without its documents', async ({ hosts }) => {
  const owner = hosts[1]!;
  owner.host.cluster.synchronizer.lease.holdRenewals(true);
  try {
    // Until its lease runs out (0.5 s) the owner still answers; then the query fails.
    let r = await query(hosts[0]!, LINEAR);
    await waitFor(
      'a linearizable query refused',
      async () => {
        r = await query(hosts[0]!, LINEAR);
        return r.status !== 200;
      },
      20_000,
    );
    assert.is(r.status, 503, r.text);
    assert.match(r.body.message ?? '', new RegExp(`${owner.host.id} cannot answer`));
    // A query that is not linearizable still answers from the hosts' own copies.
    assert.is((await query(hosts[0]!, ['EXPAND_CONTENT'])).status, 200);
  } finally {
    owner.host.cluster.synchronizer.lease.holdRenewals(false);
  }
  const got = await names(hosts[0]!);
  assert.is(Object.keys(got).length, N);
});

t('what a linearizable query cannot serve is refused with 400', async ({ hosts }) => {
  const h = hosts[0]!;
  const paged = await query(h, LINEAR, { resultLimit: 5 });
  assert.is(paged.status, 400, paged.text);
  assert.match(paged.body.message ?? '', /one page/);
  const snapshot = await query(h, [...LINEAR, 'TIME_SNAPSHOT'], { timeSnapshotBoundaryMicros: 1 });
  assert.is(snapshot.status, 400, snapshot.text);
  const top = await query(h, [...LINEAR, 'TOP_RESULTS'], { resultLimit: 5 });
  assert.is(top.status, 200, top.text);
  assert.is(top.body.results.documentLinks.length, 5);
});

t.run();
