import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { startHost, type TestHost } from '../support/hosts.js';

interface Results {
  documentLinks: string[];
  documents?: Record<string, Record<string, unknown>>;
  documentCount: number;
  totalCount?: number;
  nextPageLink?: string;
  prevPageLink?: string;
}
interface Task {
  taskInfo: { stage: string };
  results: Results;
}
interface Seeded {
  link: string;
  name: string;
  counter: number;
  tags: string[];
  parity: string;
  ratio: number;
}

const t = suite<{ h: TestHost; docs: Seeded[] }>('OData over HTTP, against the same queries as query tasks');
const NAMES = ['alpha', 'beta', 'gamma'];

t.before(async (ctx) => {
  ctx.h = await startHost();
  ctx.docs = [];
  for (let i = 0; i < 30; i++) {
    const d = {
      documentSelfLink: `e${String(i).padStart(2, '0')}`,
      name: NAMES[i % 3]!,
      counter: i,
      tags: [`t${i % 4}`, i % 5 === 0 ? 'five' : 'other'],
      keyValues: { parity: i % 2 ? 'odd' : 'even', ratio: String(i / 4) },
    };
    assert.is((await ctx.h.client.post('/core/examples', d)).status, 200);
    ctx.docs.push({
      link: `/core/examples/${d.documentSelfLink}`,
      name: d.name,
      counter: i,
      tags: d.tags,
      parity: d.keyValues.parity,
      ratio: i / 4,
    });
  }
  // A later version for two of them (the default order is by version), a deleted one, and a
  // document of the same kind under another factory: neither of the last two may show.
  assert.is((await ctx.h.client.patch('/core/examples/e03', { keyValues: { extra: 'x' } })).status, 200);
  assert.is((await ctx.h.client.patch('/core/examples/e07', { keyValues: { extra: 'x' } })).status, 200);
  assert.is((await ctx.h.client.delete('/core/examples/e29')).status, 200);
  ctx.docs = ctx.docs.filter((d) => d.link !== '/core/examples/e29');
  assert.is((await ctx.h.client.post('/core/examples-3x', { documentSelfLink: 'other', name: 'alpha', counter: 1 })).status, 200);
});
t.after(async (ctx) => {
  await ctx.h.close();
});

/** What a factory's OData query stands for: the child kind, the factory prefix, then the client's own clauses. */
function factoryQuery(...clauses: object[]): object {
  return {
    booleanClauses: [
      { occurance: 'MUST_OCCUR', term: { propertyName: 'documentKind', matchValue: KINDS.example } },
      { occurance: 'MUST_OCCUR', term: { propertyName: 'documentSelfLink', matchValue: '/core/examples/', matchType: 'PREFIX' } },
      ...clauses,
    ],
  };
}
const must = (term: object) => ({ occurance: 'MUST_OCCUR', term });
const mustNot = (term: object) => ({ occurance: 'MUST_NOT_OCCUR', term });
const should = (term: object) => ({ occurance: 'SHOULD_OCCUR', term });
const long = (min: number | undefined, max: number | undefined, isMinInclusive: boolean, isMaxInclusive: boolean) => ({
  type: 'LONG',
  ...(min === undefined ? {} : { min }),
  ...(max === undefined ? {} : { max }),
  isMinInclusive,
  isMaxInclusive,
});

async function odata(h: TestHost, qs: string): Promise<Results> {
  const r = await h.client.get<Results>(`/core/examples?${qs}`);
  assert.is(r.status, 200, `${qs}: ${r.text}`);
  return r.body;
}
async function task(h: TestHost, querySpec: object): Promise<Results> {
  const r = await h.client.post<Task>('/core/query-tasks', { taskInfo: { isDirect: true }, querySpec });
  assert.is(r.status, 200, r.text);
  return r.body.results;
}

interface Case {
  qs: string;
  spec: object;
  /** Which seeded documents it selects, said independently of both. */
  expect: (d: Seeded) => boolean;
  /** The order it must list them in, when it sorts. */
  order?: (a: Seeded, b: Seeded) => number;
}

const CASES: Record<string, Case> = {
  eq: {
    qs: "$filter=name eq 'alpha'",
    spec: { options: ['EXPAND_CONTENT'], query: factoryQuery(must({ propertyName: 'name', matchValue: 'alpha' })) },
    expect: (d) => d.name === 'alpha',
  },
  'eq on a nested name (/)': {
    qs: "$filter=keyValues/parity eq 'odd'",
    spec: { options: ['EXPAND_CONTENT'], query: factoryQuery(must({ propertyName: 'keyValues.parity', matchValue: 'odd' })) },
    expect: (d) => d.parity === 'odd',
  },
  'eq with a wildcard': {
    qs: "$filter=name eq 'ga*'",
    spec: { options: ['EXPAND_CONTENT'], query: factoryQuery(must({ propertyName: 'name', matchValue: 'ga*', matchType: 'WILDCARD' })) },
    expect: (d) => d.name === 'gamma',
  },
  'eq on a number': {
    qs: '$filter=counter eq 7',
    spec: { options: ['EXPAND_CONTENT'], query: factoryQuery(must({ propertyName: 'counter', range: long(7, 7, true, true) })) },
    expect: (d) => d.counter === 7,
  },
  ne: {
    qs: "$filter=name ne 'alpha'",
    spec: { options: ['EXPAND_CONTENT'], query: factoryQuery(mustNot({ propertyName: 'name', matchValue: 'alpha' })) },
    expect: (d) => d.name !== 'alpha',
  },
  gt: {
    qs: '$filter=counter gt 20',
    spec: { options: ['EXPAND_CONTENT'], query: factoryQuery(must({ propertyName: 'counter', range: long(20, undefined, false, false) })) },
    expect: (d) => d.counter > 20,
  },
  ge: {
    qs: '$filter=counter ge 20',
    spec: { options: ['EXPAND_CONTENT'], query: factoryQuery(must({ propertyName: 'counter', range: long(20, undefined, true, false) })) },
    expect: (d) => d.counter >= 20,
  },
  lt: {
    qs: '$filter=counter lt 5',
    spec: { options: ['EXPAND_CONTENT'], query: factoryQuery(must({ propertyName: 'counter', range: long(undefined, 5, false, false) })) },
    expect: (d) => d.counter < 5,
  },
  le: {
    qs: '$filter=counter le 5',
    spec: { options: ['EXPAND_CONTENT'], query: factoryQuery(must({ propertyName: 'counter', range: long(undefined, 5, false, true) })) },
    expect: (d) => d.counter <= 5,
  },
  and: {
    qs: "$filter=name eq 'beta' and counter lt 15",
    spec: {
      options: ['EXPAND_CONTENT'],
      query: factoryQuery(
        must({ propertyName: 'name', matchValue: 'beta' }),
        must({ propertyName: 'counter', range: long(undefined, 15, false, false) }),
      ),
    },
    expect: (d) => d.name === 'beta' && d.counter < 15,
  },
  or: {
    qs: "$filter=name eq 'beta' or counter lt 3",
    spec: {
      options: ['EXPAND_CONTENT'],
      query: factoryQuery({
        occurance: 'MUST_OCCUR',
        booleanClauses: [
          should({ propertyName: 'name', matchValue: 'beta' }),
          should({ propertyName: 'counter', range: long(undefined, 3, false, false) }),
        ],
      }),
    },
    expect: (d) => d.name === 'beta' || d.counter < 3,
  },
  not: {
    qs: "$filter=not (name eq 'beta' or counter lt 3)",
    spec: {
      options: ['EXPAND_CONTENT'],
      query: factoryQuery(
        mustNot({ propertyName: 'name', matchValue: 'beta' }),
        mustNot({ propertyName: 'counter', range: long(undefined, 3, false, false) }),
      ),
    },
    expect: (d) => !(d.name === 'beta' || d.counter < 3),
  },
  parentheses: {
    qs: "$filter=(name eq 'alpha' or name eq 'gamma') and (keyValues/parity eq 'even')",
    spec: {
      options: ['EXPAND_CONTENT'],
      query: factoryQuery(
        {
          occurance: 'MUST_OCCUR',
          booleanClauses: [should({ propertyName: 'name', matchValue: 'alpha' }), should({ propertyName: 'name', matchValue: 'gamma' })],
        },
        must({ propertyName: 'keyValues.parity', matchValue: 'even' }),
      ),
    },
    expect: (d) => (d.name === 'alpha' || d.name === 'gamma') && d.parity === 'even',
  },
  'or with a negative side': {
    qs: "$filter=counter lt 2 or name ne 'alpha'",
    spec: {
      options: ['EXPAND_CONTENT'],
      query: factoryQuery({
        occurance: 'MUST_OCCUR',
        booleanClauses: [
          should({ propertyName: 'counter', range: long(undefined, 2, false, false) }),
          {
            occurance: 'SHOULD_OCCUR',
            booleanClauses: [
              must({ propertyName: 'name', matchValue: '*', matchType: 'WILDCARD' }),
              mustNot({ propertyName: 'name', matchValue: 'alpha' }),
            ],
          },
        ],
      }),
    },
    expect: (d) => d.counter < 2 || d.name !== 'alpha',
  },
  any: {
    qs: "$filter=tags any 't1;five'",
    spec: {
      options: ['EXPAND_CONTENT'],
      query: factoryQuery({
        occurance: 'MUST_OCCUR',
        booleanClauses: [
          should({ propertyName: 'tags.item', matchValue: 't1' }),
          should({ propertyName: 'tags.item', matchValue: 'five' }),
        ],
      }),
    },
    expect: (d) => d.tags.includes('t1') || d.tags.includes('five'),
  },
  all: {
    qs: "$filter=tags.item all 't0;five'",
    spec: {
      options: ['EXPAND_CONTENT'],
      query: factoryQuery(must({ propertyName: 'tags.item', matchValue: 't0' }), must({ propertyName: 'tags.item', matchValue: 'five' })),
    },
    expect: (d) => d.tags.includes('t0') && d.tags.includes('five'),
  },
  ALL_FIELDS: {
    qs: "$filter=ALL_FIELDS eq 'five'",
    spec: {
      options: ['EXPAND_CONTENT'],
      query: factoryQuery({
        occurance: 'MUST_OCCUR',
        booleanClauses: ['name', 'tags.item', 'id', 'required'].map((propertyName) => should({ propertyName, matchValue: 'five' })),
      }),
    },
    expect: (d) => d.name === 'five' || d.tags.includes('five'),
  },
  startswith: {
    qs: "$filter=startswith(name,'ga')",
    spec: { options: ['EXPAND_CONTENT'], query: factoryQuery(must({ propertyName: 'name', matchValue: 'ga', matchType: 'PREFIX' })) },
    expect: (d) => d.name.startsWith('ga'),
  },
  endswith: {
    qs: "$filter=endswith(name,'ta')",
    spec: { options: ['EXPAND_CONTENT'], query: factoryQuery(must({ propertyName: 'name', matchValue: '*ta', matchType: 'WILDCARD' })) },
    expect: (d) => d.name.endsWith('ta'),
  },
  contains: {
    qs: "$filter=contains(name,'mm')",
    spec: { options: ['EXPAND_CONTENT'], query: factoryQuery(must({ propertyName: 'name', matchValue: '*mm*', matchType: 'WILDCARD' })) },
    expect: (d) => d.name.includes('mm'),
  },
  'substringof eq false': {
    qs: "$filter=substringof('et',name) eq false",
    spec: {
      options: ['EXPAND_CONTENT'],
      query: factoryQuery(mustNot({ propertyName: 'name', matchValue: '*et*', matchType: 'WILDCARD' })),
    },
    expect: (d) => !d.name.includes('et'),
  },
  '$orderby, several keys': {
    qs: '$filter=counter lt 12&$orderby=name desc,counter asc',
    spec: {
      options: ['EXPAND_CONTENT', 'SORT'],
      query: factoryQuery(must({ propertyName: 'counter', range: long(undefined, 12, false, false) })),
      sortTerm: { propertyName: 'name', propertyType: 'STRING' },
      sortOrder: 'DESC',
      additionalSortTerms: [{ propertyName: 'counter', propertyType: 'LONG', sortOrder: 'ASC' }],
    },
    expect: (d) => d.counter < 12,
    order: (a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : a.counter - b.counter),
  },
  '$orderby desc on a number (type from the service)': {
    qs: "$filter=name ne 'gamma'&$orderby=counter desc",
    spec: {
      options: ['EXPAND_CONTENT', 'SORT'],
      query: factoryQuery(mustNot({ propertyName: 'name', matchValue: 'gamma' })),
      sortTerm: { propertyName: 'counter', propertyType: 'LONG' },
      sortOrder: 'DESC',
    },
    expect: (d) => d.name !== 'gamma',
    order: (a, b) => b.counter - a.counter,
  },
  $top: {
    qs: '$orderby=counter&$top=4',
    spec: {
      options: ['EXPAND_CONTENT', 'SORT', 'TOP_RESULTS'],
      query: factoryQuery(),
      sortTerm: { propertyName: 'counter', propertyType: 'LONG' },
      resultLimit: 4,
    },
    expect: (d) => d.counter < 4,
    order: (a, b) => a.counter - b.counter,
  },
  $skip: {
    qs: '$orderby=counter&$skip=25',
    spec: {
      options: ['EXPAND_CONTENT', 'SORT'],
      query: factoryQuery(),
      sortTerm: { propertyName: 'counter', propertyType: 'LONG' },
      offset: 25,
    },
    expect: (d) => d.counter >= 25,
    order: (a, b) => a.counter - b.counter,
  },
  '$skip with $top': {
    qs: '$orderby=counter&$skip=3&$top=2',
    spec: {
      options: ['EXPAND_CONTENT', 'SORT', 'TOP_RESULTS'],
      query: factoryQuery(),
      sortTerm: { propertyName: 'counter', propertyType: 'LONG' },
      offset: 3,
      resultLimit: 2,
    },
    expect: (d) => d.counter === 3 || d.counter === 4,
    order: (a, b) => a.counter - b.counter,
  },
};

for (const [name, c] of Object.entries(CASES)) {
  t(`${name}: ${c.qs}`, async ({ h, docs }) => {
    const o = await odata(h, c.qs.replaceAll(' ', '%20'));
    const q = await task(h, c.spec);
    const expected = docs.filter(c.expect);
    assert.ok(expected.length > 0 && expected.length < docs.length, 'the case must select some documents, not all');
    if (c.order)
      assert.equal(
        o.documentLinks,
        [...expected].sort(c.order).map((d) => d.link),
      );
    else assert.equal([...o.documentLinks].sort(), expected.map((d) => d.link).sort());
    // Same engine, same order: the lists agree element by element, sorted or not.
    assert.equal(o.documentLinks, q.documentLinks);
    assert.equal(o.documents, q.documents);
    assert.is(o.documentCount, q.documentCount);
    assert.is(o.totalCount, q.documentCount);
  });
}

t('$count: the count alone, as COUNT counts', async ({ h, docs }) => {
  const o = await odata(h, "$filter=name%20eq%20'alpha'&$count=true");
  const q = await task(h, { options: ['COUNT'], query: factoryQuery(must({ propertyName: 'name', matchValue: 'alpha' })) });
  const n = docs.filter((d) => d.name === 'alpha').length;
  assert.is(o.documentCount, n);
  assert.is(q.documentCount, n);
  assert.is(o.totalCount, n);
  assert.equal(o.documentLinks, []);
  assert.is(o.documents, undefined);
});

t('$select keeps only the named fields of each document, on every page, as EXPAND_SELECTED_FIELDS', async ({ h, docs }) => {
  const o = await odata(h, '$filter=counter%20eq%204&$select=name,counter');
  assert.equal(o.documents, { '/core/examples/e04': { name: 'beta', counter: 4 } });
  const q = await task(h, {
    options: ['EXPAND_CONTENT', 'EXPAND_SELECTED_FIELDS'],
    query: factoryQuery(must({ propertyName: 'counter', range: long(4, 4, true, true) })),
    selectTerms: [{ propertyName: 'name' }, { propertyName: 'counter' }],
  });
  assert.equal(o.documents, q.documents);
  // Later pages too.
  let page = await odata(h, '$orderby=counter&$limit=10&$select=counter');
  const seen: Record<string, unknown>[] = [];
  for (;;) {
    seen.push(...Object.values(page.documents ?? {}));
    if (page.nextPageLink === undefined) break;
    page = (await h.client.get<Results>(page.nextPageLink)).body;
  }
  assert.equal(
    seen,
    [...docs].sort((a, b) => a.counter - b.counter).map((d) => ({ counter: d.counter })),
  );
});

t('$limit pages: the first page, then page links through the factory, as a paged query task', async ({ h, docs }) => {
  const first = await odata(h, '$orderby=counter&$limit=8');
  const spec = {
    options: ['EXPAND_CONTENT', 'SORT'],
    query: factoryQuery(),
    sortTerm: { propertyName: 'counter', propertyType: 'LONG' },
    resultLimit: 8,
  };
  const seen: string[] = [];
  let page: Results = first;
  assert.is(page.prevPageLink, undefined);
  for (;;) {
    assert.ok(page.documentLinks.length <= 8);
    seen.push(...page.documentLinks);
    if (page.nextPageLink === undefined) break;
    assert.match(page.nextPageLink, /^\/core\/examples\?path=[^&]+&peer=[^&]+$/);
    const r = await h.client.get<Results>(page.nextPageLink);
    assert.is(r.status, 200, r.text);
    page = r.body;
    assert.match(page.prevPageLink ?? '', /^\/core\/examples\?path=/);
  }
  const byCounter = [...docs].sort((a, b) => a.counter - b.counter).map((d) => d.link);
  assert.equal(seen, byCounter);
  // The same pages through a query task.
  const viaTask: string[] = [];
  let link = (await task(h, spec)).nextPageLink;
  while (link !== undefined) {
    const r = await h.client.get<Task>(link);
    viaTask.push(...r.body.results.documentLinks);
    link = r.body.results.nextPageLink;
  }
  assert.equal(viaTask, byCounter);
});

t('$limit with $count: the first page, and totalCount counts every match', async ({ h, docs }) => {
  const o = await odata(h, "$filter=keyValues/parity%20eq%20'even'&$limit=3&$count=true");
  assert.is(o.documentLinks.length, 3);
  assert.is(o.totalCount, docs.filter((d) => d.parity === 'even').length);
  assert.ok(o.nextPageLink);
});

t('without OData parameters the listing is unchanged; expand adds documents', async ({ h, docs }) => {
  const plain = await odata(h, '');
  assert.equal([...plain.documentLinks].sort(), docs.map((d) => d.link).sort());
  assert.is(plain.documents, undefined);
  const expanded = await odata(h, 'expand');
  assert.is(Object.keys(expanded.documents ?? {}).length, docs.length);
});

t('/core/odata-queries answers the direct QueryTask, over every factory, and $skipto walks its pages', async ({ h }) => {
  const r = await h.client.get<Task & { querySpec: object }>("/core/odata-queries?$filter=name%20eq%20'alpha'");
  assert.is(r.status, 200, r.text);
  assert.is(r.body.taskInfo.stage, 'FINISHED');
  // The examples-3x document is there too: no factory restricts it.
  assert.ok(r.body.results.documentLinks.includes('/core/examples-3x/other'));
  const q = await task(h, {
    options: ['EXPAND_CONTENT'],
    query: { booleanClauses: [must({ propertyName: 'name', matchValue: 'alpha' })] },
  });
  assert.equal(r.body.results.documentLinks, q.documentLinks);

  const paged = await h.client.get<Task>("/core/odata-queries?$filter=name%20eq%20'alpha'&$limit=4&$orderby=counter");
  const next = paged.body.results.nextPageLink!;
  const params = new URLSearchParams(next.slice(next.indexOf('?') + 1));
  const page = await h.client.get<Task>(`/core/odata-queries?$skipto=${params.get('path')}&$nodeid=${params.get('peer')}`);
  assert.is(page.status, 200, page.text);
  assert.is(page.body.results.documentLinks.length, 4);
  assert.equal(page.body.results.documentLinks, (await h.client.get<Task>(next)).body.results.documentLinks);
});

t('every unsupported parameter or construct is a 400 naming it, never an unfiltered 200', async ({ h }) => {
  const bad: [string, RegExp][] = [
    ['$filter=tolower(name)%20eq%20%27a%27', /tolower\(\) is not supported/],
    ['$filter=counter%20add%201%20eq%202', /operator add is not supported/],
    ["$filter=name%20lt%20'b'", /needs a number/],
    ['$filter=name%20eq%20null', /null is not supported/],
    ["$filter=a%20eq%20'b'%20and%20c%20eq%20'd'%20or%20e%20eq%20'f'", /mixes 'and' and 'or'/],
    ['$tenantLinks=/t', /\$tenantLinks is not supported/],
    ['$search=x', /\$search is not supported/],
    ['$top=2&$limit=2', /\$top cannot be used together with \$limit/],
    ['$select=*', /\$select=\* is not supported/],
    ['nonsense=1', /unknown query parameter: nonsense/],
    ['path=x&peer=nobody', /Service not found: \/core\/query-page\/x/],
  ];
  for (const [qs, m] of bad) {
    const r = await h.client.get<{ message: string; statusCode: number }>(`/core/examples?${qs}`);
    assert.is(r.status, qs.startsWith('path=') ? 404 : 400, `${qs}: ${r.text}`);
    assert.match(r.body.message, m);
  }
  const r = await h.client.get<{ message: string }>('/core/odata-queries?$top=2');
  assert.is(r.status, 400);
  assert.match(r.body.message, /\$filter is required/);
  assert.is((await h.client.post('/core/odata-queries', {})).status, 405);
});

t.run();
