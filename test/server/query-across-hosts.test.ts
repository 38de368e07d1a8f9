/**
 * Queries across a group of five in-process hosts, over `/core/examples-3x` (selector
 * `default-3x`: each document on three of the five): the same query through every host returns
 * every document, with BROADCAST and without it (the entry host gathers by default), with
 * OWNER_SELECTION, counted and sorted; pages made on one host are walked through the others and
 * keep showing the state their query saw; and after one host stops, queries and the pages it made
 * still answer in full through the others.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { closeAll, startGroup, type TestHost } from '../support/hosts.js';

interface Results {
  documentLinks: string[];
  documents?: Record<string, { counter: number }>;
  documentCount: number;
  nextPageLink?: string;
  prevPageLink?: string;
}
interface Task {
  results: Results;
}

const N = 500;
const FACTORY = '/core/examples-3x';
const idOf = (i: number) => `x${String(i).padStart(3, '0')}`;
const all = Array.from({ length: N }, (_, i) => `${FACTORY}/${idOf(i)}`).sort();
const inFactory = { term: { propertyName: 'documentSelfLink', matchValue: `${FACTORY}/`, matchType: 'PREFIX' } };
const direct = (querySpec: unknown) => ({ taskInfo: { isDirect: true }, querySpec });

const t = suite<{ hosts: TestHost[] }>('queries across five hosts');

t.before(async (ctx) => {
  ctx.hosts = await startGroup(5, (i) => ({ id: `qx-${i + 1}`, membershipQuorum: 3 }));
  let next = 0;
  // Twenty writers, each entering a different host in turn.
  await Promise.all(
    Array.from({ length: 20 }, async (_, w) => {
      for (let i = next++; i < N; i = next++) {
        const r = await ctx.hosts[(i + w) % 5]!.client.post(FACTORY, { documentSelfLink: idOf(i), name: `n-${i}`, counter: i });
        if (r.status !== 200) throw new Error(`POST ${idOf(i)}: ${r.status} ${r.text}`);
      }
    }),
  );
});
t.after((ctx) => closeAll(ctx.hosts));

async function query(h: TestHost, querySpec: unknown): Promise<Results> {
  const r = await h.client.post<Task>('/core/query-tasks', direct(querySpec));
  assert.is(r.status, 200, r.text);
  return r.body.results;
}

t('no host holds every document itself', async ({ hosts }) => {
  for (const h of hosts) {
    const local = await h.client.get<{ documentLinks: string[] }>(FACTORY);
    assert.ok(local.body.documentLinks.length < N, `${h.host.uri} lists ${local.body.documentLinks.length} of its own`);
  }
});

t('through every host: BROADCAST, the default, OWNER_SELECTION and COUNT each see all 500', async ({ hosts }) => {
  for (const h of hosts) {
    const b = await query(h, { query: inFactory, options: ['BROADCAST'] });
    // Merged answers come in self link order, without duplicates.
    assert.equal(b.documentLinks, all);
    assert.is(b.documentCount, N);
    const d = await query(h, { query: inFactory });
    assert.equal([...d.documentLinks].sort(), all);
    const owners = await query(h, { query: inFactory, options: ['BROADCAST', 'OWNER_SELECTION'] });
    assert.equal(owners.documentLinks, all);
    const c = await query(h, { query: inFactory, options: ['COUNT'] });
    assert.is(c.documentCount, N);
    const raw = await query(h, { query: inFactory, options: ['READ_AFTER_WRITE_CONSISTENCY'] });
    assert.equal(raw.documentLinks, all);
  }
});

t('SORT, TOP_RESULTS and EXPAND_CONTENT apply after the merge', async ({ hosts }) => {
  const r = await query(hosts[2]!, {
    query: inFactory,
    options: ['BROADCAST', 'SORT', 'TOP_RESULTS', 'EXPAND_CONTENT'],
    sortTerm: { propertyName: 'counter', propertyType: 'LONG' },
    sortOrder: 'DESC',
    resultLimit: 5,
  });
  assert.equal(
    r.documentLinks,
    [499, 498, 497, 496, 495].map((i) => `${FACTORY}/${idOf(i)}`),
  );
  assert.is(r.documents![`${FACTORY}/${idOf(497)}`]!.counter, 497);
});

async function walk(hosts: TestHost[], first: string | undefined, from: number): Promise<{ links: string[]; pages: string[] }> {
  const links: string[] = [];
  const pages: string[] = [];
  let next = first;
  let k = from;
  while (next) {
    pages.push(next);
    const page = await hosts[k++ % hosts.length]!.client.get<Task>(next);
    assert.is(page.status, 200, page.text);
    links.push(...page.body.results.documentLinks);
    next = page.body.results.nextPageLink;
  }
  return { links, pages };
}

t('pages made on one host are walked through the others and keep their state', async ({ hosts }) => {
  const sorted = await hosts[0]!.client.post<Task>(
    '/core/query-tasks',
    direct({ query: inFactory, options: ['SORT'], sortTerm: { propertyName: 'counter', propertyType: 'LONG' }, resultLimit: 60 }),
  );
  const plain = await hosts[0]!.client.post<Task>('/core/query-tasks', direct({ query: inFactory, resultLimit: 70 }));
  // A write after the queries ran is not in their pages.
  assert.is((await hosts[3]!.client.post(FACTORY, { documentSelfLink: 'late', name: 'late', counter: -1 })).status, 200);
  const s = await walk(hosts, sorted.body.results.nextPageLink, 1);
  assert.is(s.pages.length, Math.ceil(N / 60));
  assert.equal(
    s.links,
    Array.from({ length: N }, (_, i) => `${FACTORY}/${idOf(i)}`),
  );
  const p = await walk(hosts, plain.body.results.nextPageLink, 2);
  assert.equal(p.links, all);
  // prevPageLink, through yet another host, shows the page before.
  const third = await hosts[4]!.client.get<Task>(s.pages[2]!);
  const back = await hosts[3]!.client.get<Task>(third.body.results.prevPageLink!);
  assert.equal(back.body.results.documentLinks, s.links.slice(60, 120));
  assert.is((await hosts[1]!.client.delete(`${FACTORY}/late`)).status, 200);
});

t('with one host stopped, queries and the pages it made still answer in full', async ({ hosts }) => {
  const made = await hosts[4]!.client.post<Task>(
    '/core/query-tasks',
    direct({ query: inFactory, options: ['BROADCAST'], resultLimit: 100 }),
  );
  const first = made.body.results.nextPageLink;
  await hosts[4]!.close();
  const rest = hosts.slice(0, 4);
  hosts.splice(4, 1);
  // No waiting for the group to notice: a stopped host's documents have two more copies.
  for (const h of rest) {
    assert.equal((await query(h, { query: inFactory, options: ['BROADCAST'] })).documentLinks, all);
    assert.equal([...(await query(h, { query: inFactory })).documentLinks].sort(), all);
  }
  assert.equal((await walk(rest, first, 0)).links, all);
});

t.run();
