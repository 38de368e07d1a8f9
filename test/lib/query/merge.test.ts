import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { covered, mayMatchFactory, mergeGathered, orderHits, pageWindow, type GatheredHit } from '../../../lib/query/merge.js';
import { pageTokenJson, parsePageToken, type PageToken } from '../../../lib/query/pages.js';
import { parseQuerySpec } from '../../../lib/query/spec.js';

const h = (link: string, version: number, keys?: (string | number | null)[]): GatheredHit =>
  keys ? { link, version, keys } : { link, version };

test('merge keeps one hit per link, the highest version, the first copy on ties', () => {
  const a = [h('/x/1', 3), h('/x/2', 1)];
  const b = [h('/x/1', 4), h('/x/3', 0)];
  const c = [{ ...h('/x/2', 1), doc: { from: 'c' } }];
  const merged = mergeGathered([a, b, c], false);
  assert.equal(
    orderHits(merged, undefined, 'link').map((x) => [x.link, x.version]),
    [
      ['/x/1', 4],
      ['/x/2', 1],
      ['/x/3', 0],
    ],
  );
  assert.is(merged.find((x) => x.link === '/x/2')!.doc, undefined);
  // With every version asked for, one hit per link and version.
  assert.is(mergeGathered([a, b, [h('/x/1', 3)]], true).length, 4);
});

test('order: sort keys first (missing last either way), then the tie order', () => {
  const sort = parseQuerySpec({
    query: { term: { propertyName: 'a', matchValue: 'b' } },
    options: ['SORT'],
    sortTerm: { propertyName: 'n', propertyType: 'LONG' },
    sortOrder: 'DESC',
  }).sort;
  const hits = [h('/b', 1, [2]), h('/a', 1, [2]), h('/c', 1, [null]), h('/d', 1, [9])];
  assert.equal(
    orderHits(hits, sort, 'link').map((x) => x.link),
    ['/d', '/a', '/b', '/c'],
  );
  const byVersion = [h('/b', 1), h('/a', 1), h('/c', 5)];
  assert.equal(
    orderHits(byVersion, undefined, 'version').map((x) => x.link),
    ['/c', '/a', '/b'],
  );
});

test('page windows: next and prev offsets, none past the ends, no prev with FORWARD_ONLY', () => {
  assert.equal(pageWindow(25, 0, 10, false), { start: 0, end: 10, next: 10 });
  assert.equal(pageWindow(25, 10, 10, false), { start: 10, end: 20, next: 20, prev: 0 });
  assert.equal(pageWindow(25, 20, 10, false), { start: 20, end: 25, prev: 10 });
  assert.equal(pageWindow(25, 20, 10, true), { start: 20, end: 25 });
  assert.equal(pageWindow(3, 7, 10, false), { start: 3, end: 3, prev: 0 });
});

test('coverage: a factor of N survives N-1 missing hosts; OWNER_SELECTION none', () => {
  assert.ok(covered({ members: 5, answered: 3, minFactor: 3, ownerSelection: false }));
  assert.not.ok(covered({ members: 5, answered: 2, minFactor: 3, ownerSelection: false }));
  assert.ok(covered({ members: 5, answered: 1, minFactor: undefined, ownerSelection: false }));
  assert.not.ok(covered({ members: 5, answered: 4, minFactor: 3, ownerSelection: true }));
  assert.ok(covered({ members: 5, answered: 5, minFactor: 3, ownerSelection: true }));
  assert.not.ok(covered({ members: 1, answered: 0, minFactor: undefined, ownerSelection: false }));
  // READ_AFTER_WRITE_CONSISTENCY: a majority, even where one host would hold everything.
  assert.not.ok(covered({ members: 5, answered: 2, minFactor: undefined, ownerSelection: false, majority: true }));
  assert.ok(covered({ members: 5, answered: 3, minFactor: undefined, ownerSelection: false, majority: true }));
  assert.not.ok(covered({ members: 4, answered: 2, minFactor: undefined, ownerSelection: false, majority: true }));
});

test('which factories a query can match', () => {
  const q = (query: unknown) => parseQuerySpec({ query }).query;
  const kind = 'K';
  const other = { term: { propertyName: 'documentKind', matchValue: 'L' } };
  assert.not.ok(mayMatchFactory(q(other), '/f', kind));
  assert.ok(mayMatchFactory(q({ term: { propertyName: 'documentKind', matchValue: 'K' } }), '/f', kind));
  assert.not.ok(mayMatchFactory(q({ term: { propertyName: 'documentSelfLink', matchValue: '/g/1' } }), '/f', kind));
  assert.ok(mayMatchFactory(q({ term: { propertyName: 'documentSelfLink', matchValue: '/f/1' } }), '/f', kind));
  assert.ok(mayMatchFactory(q({ term: { propertyName: 'documentSelfLink', matchValue: '/', matchType: 'PREFIX' } }), '/f', kind));
  assert.not.ok(mayMatchFactory(q({ term: { propertyName: 'documentSelfLink', matchValue: '/fx', matchType: 'PREFIX' } }), '/f', kind));
  assert.not.ok(
    mayMatchFactory(
      q({ booleanClauses: [{ occurance: 'MUST_OCCUR', ...other }, { term: { propertyName: 'n', matchValue: 'v' } }] }),
      '/f',
      kind,
    ),
  );
  // A SHOULD clause on another kind does not rule the factory out.
  assert.ok(
    mayMatchFactory(
      q({ booleanClauses: [{ occurance: 'SHOULD_OCCUR', ...other }, { term: { propertyName: 'n', matchValue: 'v' } }] }),
      '/f',
      kind,
    ),
  );
  assert.ok(mayMatchFactory(q({ term: { propertyName: 'name', matchValue: 'x' } }), '/f', kind));
});

test('page tokens read back as written; anything else is not a token', () => {
  const t: PageToken = {
    spec: { query: { term: { propertyName: 'a', matchValue: 'b' } }, resultLimit: 5, options: [] },
    asOf: 123,
    offset: 10,
    gather: true,
    expires: 999,
    host: 'h1',
    owner: '/core/authz/users/u',
  };
  assert.equal(parsePageToken(pageTokenJson(t)), t);
  const { owner: _, ...noOwner } = t;
  assert.equal(parsePageToken(pageTokenJson(noOwner)), noOwner);
  for (const bad of ['', 'x', '[]', '{}', '{"s":{},"t":1,"o":-1,"g":0,"e":1,"h":"h"}', '{"s":{},"t":1.5,"o":0,"g":0,"e":1,"h":"h"}']) {
    assert.is(parsePageToken(bad), undefined, bad);
  }
});

test.run();
