import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { startHost, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

interface Results {
  documentLinks: string[];
  documents?: Record<string, Record<string, unknown>>;
  documentCount: number;
  nextPageLink?: string;
  prevPageLink?: string;
}
interface Task {
  taskInfo: { stage: string; isDirect: boolean };
  results: Results;
  documentSelfLink: string;
}

const t = suite<{ h: TestHost }>('query tasks over HTTP');
const kindQuery = { term: { propertyName: 'documentKind', matchValue: KINDS.example } };

t.before(async (ctx) => {
  ctx.h = await startHost();
  for (let i = 0; i < 25; i++) {
    await ctx.h.client.post('/core/examples', {
      documentSelfLink: `q${String(i).padStart(2, '0')}`,
      name: `name-${i}`,
      counter: i,
      keyValues: { parity: i % 2 ? 'odd' : 'even' },
      tags: [`t${i % 3}`],
    });
  }
  await ctx.h.client.delete('/core/examples/q00');
});
t.after(async (ctx) => {
  await ctx.h.close();
});

const direct = (querySpec: unknown) => ({ taskInfo: { isDirect: true }, querySpec });

t('direct term query with EXPAND_CONTENT', async ({ h }) => {
  const r = await h.client.post<Task>(
    '/core/query-tasks',
    direct({ options: ['EXPAND_CONTENT'], query: { term: { propertyName: 'name', matchValue: 'name-7' } } }),
  );
  assert.is(r.status, 200);
  assert.equal(r.body.results.documentLinks, ['/core/examples/q07']);
  assert.is(r.body.results.documents!['/core/examples/q07']!.counter, 7);
});

t('nested names, booleans, ranges, COUNT, deleted excluded unless INCLUDE_DELETED', async ({ h }) => {
  const odd = await h.client.post<Task>(
    '/core/local-query-tasks',
    direct({
      options: ['COUNT'],
      query: {
        booleanClauses: [
          { occurance: 'MUST_OCCUR', term: { propertyName: 'keyValues.parity', matchValue: 'odd' } },
          { occurance: 'MUST_NOT_OCCUR', term: { propertyName: 'tags.item', matchValue: 't0' } },
        ],
      },
    }),
  );
  assert.is(odd.status, 200);
  const expected = Array.from({ length: 25 }, (_, i) => i).filter((i) => i % 2 === 1 && i % 3 !== 0).length;
  assert.is(odd.body.results.documentCount, expected);
  assert.equal(odd.body.results.documentLinks, []);
  const range = await h.client.post<Task>(
    '/core/query-tasks',
    direct({
      query: { term: { propertyName: 'counter', range: { type: 'LONG', min: 0, max: 3, isMinInclusive: true, isMaxInclusive: false } } },
    }),
  );
  assert.equal([...range.body.results.documentLinks].sort(), ['/core/examples/q01', '/core/examples/q02']);
  const withDeleted = await h.client.post<Task>(
    '/core/query-tasks',
    direct({ options: ['INCLUDE_DELETED'], query: { term: { propertyName: 'documentSelfLink', matchValue: '/core/examples/q00' } } }),
  );
  assert.equal(withDeleted.body.results.documentLinks, ['/core/examples/q00']);
  const without = await h.client.post<Task>(
    '/core/query-tasks',
    direct({ query: { term: { propertyName: 'documentSelfLink', matchValue: '/core/examples/q00' } } }),
  );
  assert.equal(without.body.results.documentLinks, []);
});

t('SORT and TOP_RESULTS', async ({ h }) => {
  const r = await h.client.post<Task>(
    '/core/query-tasks',
    direct({
      options: ['SORT', 'TOP_RESULTS'],
      resultLimit: 3,
      sortOrder: 'DESC',
      sortTerm: { propertyName: 'counter', propertyType: 'LONG' },
      query: kindQuery,
    }),
  );
  assert.equal(r.body.results.documentLinks, ['/core/examples/q24', '/core/examples/q23', '/core/examples/q22']);
  assert.is(r.body.results.nextPageLink, undefined);
});

t('resultLimit pages through nextPageLink and prevPageLink over a stable snapshot', async ({ h }) => {
  const r = await h.client.post<Task>(
    '/core/query-tasks',
    direct({ options: ['SORT'], resultLimit: 10, sortTerm: { propertyName: 'name', propertyType: 'STRING' }, query: kindQuery }),
  );
  assert.equal(r.body.results.documentLinks, []);
  assert.is(r.body.results.documentCount, 0);
  assert.match(r.body.results.nextPageLink!, /^\/core\/query-page-forwarding\?peer=/);
  // A write after the query does not change its pages.
  await h.client.post('/core/examples', { documentSelfLink: 'late', name: 'aaa-late' });
  const seen: string[] = [];
  let next: string | undefined = r.body.results.nextPageLink;
  let pages = 0;
  let prev: string | undefined;
  while (next) {
    const page = await h.client.get<Task>(next);
    assert.is(page.status, 200);
    assert.is(page.body.results.documentCount, page.body.results.documentLinks.length);
    seen.push(...page.body.results.documentLinks);
    if (pages === 1) prev = page.body.results.prevPageLink;
    next = page.body.results.nextPageLink;
    pages++;
  }
  assert.is(pages, 3);
  assert.is(seen.length, 24);
  assert.not.ok(seen.includes('/core/examples/late'));
  const byName = Array.from({ length: 24 }, (_, i) => i + 1)
    .sort((a, b) => (`name-${a}` < `name-${b}` ? -1 : 1))
    .map((i) => `/core/examples/q${String(i).padStart(2, '0')}`);
  assert.equal(seen, byName);
  const back = await h.client.get<Task>(prev!);
  assert.equal(back.body.results.documentLinks, seen.slice(0, 10));
  assert.is((await h.client.get('/core/query-page-forwarding?peer=someone-else&path=1-0')).status, 404);
});

t('non-direct tasks answer 202 CREATED and are polled to FINISHED', async ({ h }) => {
  const r = await h.client.post<Task>('/core/query-tasks', {
    querySpec: { query: { term: { propertyName: 'name', matchValue: 'name-3' } } },
  });
  assert.is(r.status, 202);
  assert.is(r.body.taskInfo.stage, 'CREATED');
  const done = await waitFor('task finished', async () => {
    const g = await h.client.get<Task>(r.body.documentSelfLink);
    return g.body.taskInfo.stage === 'FINISHED' ? g.body : undefined;
  });
  assert.equal(done.results.documentLinks, ['/core/examples/q03']);
  const list = await h.client.get<{ documentLinks: string[] }>('/core/query-tasks');
  assert.ok(list.body.documentLinks.includes(r.body.documentSelfLink));
});

t('invalid specs are 400', async ({ h }) => {
  const cases = [
    { query: {} },
    { query: { term: { propertyName: 'name', matchValue: 'x' }, booleanClauses: [] } },
    { options: ['EXPAND_CONTENT', 'COUNT'], query: kindQuery },
    { query: { term: { propertyName: 'counter', range: { type: 'LONG', min: 5, max: 1 } } } },
    { query: { term: { propertyName: 'name', matchValue: 'x', matchType: 'FUZZY' } } },
    {},
  ];
  for (const querySpec of cases) {
    const r = await h.client.post('/core/query-tasks', direct(querySpec));
    assert.is(r.status, 400, JSON.stringify(querySpec));
  }
});

t('TIME_SNAPSHOT answers as the index stood at a time the documents themselves show', async ({ h }) => {
  interface Doc {
    documentUpdateTimeMicros: number;
    name: string;
  }
  const v0 = await h.client.post<Doc>('/core/examples', { documentSelfLink: 'ts', name: 'ts-before' });
  const v1 = await h.client.patch<Doc>('/core/examples/ts', { name: 'ts-after' });
  const gone = await h.client.delete<Doc>('/core/examples/ts');
  const at = (boundary: number) =>
    h.client.post<Task>(
      '/core/query-tasks',
      direct({
        options: ['TIME_SNAPSHOT', 'EXPAND_CONTENT'],
        timeSnapshotBoundaryMicros: boundary,
        query: { term: { propertyName: 'documentSelfLink', matchValue: '/core/examples/ts' } },
      }),
    );
  assert.equal((await at(v0.body.documentUpdateTimeMicros - 1)).body.results.documentLinks, []);
  const before = await at(v0.body.documentUpdateTimeMicros);
  assert.is(before.body.results.documents!['/core/examples/ts']!.name, 'ts-before');
  const after = await at(v1.body.documentUpdateTimeMicros);
  assert.is(after.body.results.documents!['/core/examples/ts']!.name, 'ts-after');
  assert.equal((await at(gone.body.documentUpdateTimeMicros)).body.results.documentLinks, []);
  // The boundary is echoed, and TIME_SNAPSHOT without it is a 400 naming it.
  assert.is(
    (after.body as unknown as { querySpec: { timeSnapshotBoundaryMicros: number } }).querySpec.timeSnapshotBoundaryMicros,
    v1.body.documentUpdateTimeMicros,
  );
  const bad = await h.client.post('/core/query-tasks', direct({ options: ['TIME_SNAPSHOT'], query: kindQuery }));
  assert.is(bad.status, 400);
  assert.match(bad.text, /timeSnapshotBoundaryMicros/);
});

t('EXPAND_BUILTIN_CONTENT_ONLY: documents with the built-in fields alone', async ({ h }) => {
  const r = await h.client.post<Task>(
    '/core/query-tasks',
    direct({ options: ['EXPAND_BUILTIN_CONTENT_ONLY'], query: { term: { propertyName: 'name', matchValue: 'name-7' } } }),
  );
  const d = r.body.results.documents!['/core/examples/q07']!;
  assert.is(d.documentSelfLink, '/core/examples/q07');
  assert.is(d.counter, undefined);
  assert.is(d.name, undefined);
  assert.ok(Object.keys(d).every((k) => k.startsWith('document')));
});

t('FORWARD_ONLY pages carry no prevPageLink', async ({ h }) => {
  const r = await h.client.post<Task>('/core/query-tasks', direct({ options: ['FORWARD_ONLY'], resultLimit: 10, query: kindQuery }));
  let next = r.body.results.nextPageLink;
  let pages = 0;
  while (next) {
    const page = await h.client.get<Task>(next);
    assert.is(page.body.results.prevPageLink, undefined);
    next = page.body.results.nextPageLink;
    pages++;
  }
  assert.ok(pages >= 3);
});

t('GROUP_BY: a page link per group, groups in order, groupResultLimit pages the groups', async ({ h }) => {
  interface GroupResults extends Results {
    nextPageLinksPerGroup: Record<string, string>;
  }
  const spec = {
    options: ['GROUP_BY', 'SORT', 'EXPAND_CONTENT'],
    query: { term: { propertyName: 'documentSelfLink', matchValue: '/core/examples/q*', matchType: 'WILDCARD' } },
    sortTerm: { propertyName: 'counter', propertyType: 'LONG' },
    sortOrder: 'DESC',
    groupByTerm: { propertyName: 'keyValues.parity', propertyType: 'STRING' },
    groupSortOrder: 'DESC',
    resultLimit: 5,
  };
  const r = await h.client.post<{ results: GroupResults }>('/core/query-tasks', direct(spec));
  assert.is(r.status, 200, r.text);
  assert.equal(r.body.results.documentLinks, []);
  assert.equal(Object.keys(r.body.results.nextPageLinksPerGroup), ['odd', 'even']);
  const odd = await h.client.get<Task>(r.body.results.nextPageLinksPerGroup.odd!);
  assert.equal(
    odd.body.results.documentLinks,
    [23, 21, 19, 17, 15].map((i) => `/core/examples/q${i}`),
  );
  const rest: string[] = [];
  let next = odd.body.results.nextPageLink;
  while (next) {
    const p = await h.client.get<Task>(next);
    rest.push(...p.body.results.documentLinks);
    next = p.body.results.nextPageLink;
  }
  assert.equal(
    rest,
    [13, 11, 9, 7, 5, 3, 1].map((i) => `/core/examples/q${String(i).padStart(2, '0')}`),
  );
  // One group per answer: the second group comes through nextPageLink.
  const one = await h.client.post<{ results: GroupResults }>('/core/query-tasks', direct({ ...spec, groupResultLimit: 1 }));
  assert.equal(Object.keys(one.body.results.nextPageLinksPerGroup), ['odd']);
  const second = await h.client.get<{ results: GroupResults }>(one.body.results.nextPageLink!);
  assert.equal(Object.keys(second.body.results.nextPageLinksPerGroup), ['even']);
  assert.is(second.body.results.nextPageLink, undefined);
  const even = await h.client.get<Task>(second.body.results.nextPageLinksPerGroup.even!);
  // q00 is deleted: the even group starts at q24 and has 12 members.
  assert.equal(even.body.results.documentLinks[0], '/core/examples/q24');
});

t('SELECT_LINKS, EXPAND_LINKS and EXPAND_SELECTED_FIELDS', async ({ h }) => {
  await h.client.post('/core/examples', { documentSelfLink: 'parent', name: 'the-parent' });
  await h.client.post('/core/examples', {
    documentSelfLink: 'child1',
    name: 'child',
    id: '/core/examples/parent',
    tags: ['/core/examples/q01', '/core/examples/gone'],
  });
  const r = await h.client.post<{ results: Results & Record<string, unknown> }>(
    '/core/query-tasks',
    direct({
      options: ['SELECT_LINKS', 'EXPAND_LINKS', 'EXPAND_SELECTED_FIELDS'],
      query: { term: { propertyName: 'name', matchValue: 'child' } },
      linkTerms: [{ propertyName: 'id' }, { propertyName: 'tags' }],
      selectTerms: [{ propertyName: 'name' }, { propertyName: 'id' }],
    }),
  );
  assert.is(r.status, 200, r.text);
  const res = r.body.results;
  assert.equal(res.documents, { '/core/examples/child1': { name: 'child', id: '/core/examples/parent' } });
  assert.equal(res.selectedLinksPerDocument, {
    '/core/examples/child1': { id: '/core/examples/parent', 'tags.item.0': '/core/examples/q01', 'tags.item.1': '/core/examples/gone' },
  });
  assert.equal(res.selectedLinks, ['/core/examples/parent', '/core/examples/q01', '/core/examples/gone']);
  const sel = res.selectedDocuments as Record<string, { name?: string; statusCode?: number }>;
  assert.is(sel['/core/examples/parent']!.name, 'the-parent');
  assert.is(sel['/core/examples/q01']!.name, 'name-1');
  assert.is(sel['/core/examples/gone']!.statusCode, 404);
});

t('expectedResultCount: the task waits until that many match, or fails when it expires', async ({ h }) => {
  const q = { query: { term: { propertyName: 'name', matchValue: 'awaited' } }, expectedResultCount: 2 };
  const pending = h.client.post<Task>('/core/query-tasks', direct(q));
  await h.client.post('/core/examples', { documentSelfLink: 'aw1', name: 'awaited' });
  await h.client.post('/core/examples', { documentSelfLink: 'aw2', name: 'awaited' });
  const done = await pending;
  assert.is(done.status, 200, done.text);
  assert.equal([...done.body.results.documentLinks].sort(), ['/core/examples/aw1', '/core/examples/aw2']);
  // The task expires in 0.6 s (the host runs on the system clock).
  const soon = Date.now() * 1000 + 600_000;
  const never = await h.client.post('/core/query-tasks', {
    ...direct({ ...q, expectedResultCount: 3 }),
    documentExpirationTimeMicros: soon,
  });
  assert.is(never.status, 408, never.text);
  assert.match(never.text, /expectedResultCount 3 not reached: 2 documents matched/);
});

t.run();
