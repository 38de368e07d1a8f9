import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { wildcardMatcher } from '../../index/match.js';
import { DocumentIndex } from '../../index/views.js';
import { links, put, run, term } from './support.js';

const EX = '/core/examples';

function sample(): DocumentIndex {
  const idx = new DocumentIndex({ retentionFor: () => 100 });
  put(idx, `${EX}/a`, 0, { name: 'Alpha one', counter: 1, price: 1.5, keyValues: { k: 'v1' }, tags: ['red', 'blue'], enabled: true });
  put(idx, `${EX}/b`, 0, { name: 'alpha-two', counter: 2, price: 2.5, keyValues: { k: 'v2' }, tags: ['red'], enabled: false });
  put(idx, `${EX}/c`, 0, {
    name: 'beta',
    counter: 3,
    price: 3.0,
    keyValues: { k: 'v1', other: 'o' },
    tags: [],
    taskInfo: { stage: 'STARTED' },
  });
  put(
    idx,
    '/core/example-tasks/t',
    0,
    { name: 'task', counter: 10, taskInfo: { stage: 'FINISHED', isDirect: false } },
    { kind: 'task-kind' },
  );
  return idx;
}

const q = (query: unknown, extra: Record<string, unknown> = {}) => ({ query, ...extra });

/** The RegExp WILDCARD was compiled to before: fine as a reference on short patterns. */
function wildcardReference(pattern: string): RegExp {
  let src = '';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') src += '[\\s\\S]*';
    else if (c === '?') src += '[\\s\\S]';
    else src += (c === '\\' && i + 1 < chars.length ? chars[++i]! : c).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${src}$`, 'u');
}

test('WILDCARD matching agrees with a RegExp on short patterns, and stays linear on hostile ones', () => {
  const alphabet = ['a', 'b', '*', '?', '\\', '\u{1f600}', '.'];
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const word = (max: number, from: string[]) => Array.from({ length: rnd(max + 1) }, () => from[rnd(from.length)]).join('');
  for (let i = 0; i < 5000; i++) {
    const pattern = word(6, alphabet);
    const value = word(6, ['a', 'b', '*', '\u{1f600}', '.', '\\']);
    assert.is(
      wildcardMatcher(pattern)(value),
      wildcardReference(pattern).test(value),
      `${JSON.stringify(pattern)} on ${JSON.stringify(value)}`,
    );
  }
  // A RegExp backtracks for seconds on the first and cannot be built for the second.
  const t0 = performance.now();
  assert.not.ok(wildcardMatcher(`${'*'.repeat(30)}Q`)('seed fz-1 abcdefghijklmnop'));
  assert.not.ok(wildcardMatcher('*a'.repeat(50) + 'Q')('a'.repeat(200)));
  assert.ok(wildcardMatcher('x'.repeat(60_000))('x'.repeat(60_000)));
  assert.ok(performance.now() - t0 < 1000);
});

test('TERM: exact and case-sensitive; numbers are not terms; booleans are', () => {
  const idx = sample();
  assert.equal(links(run(idx, q(term('name', 'beta')))), [`${EX}/c`]);
  assert.equal(links(run(idx, q(term('name', 'Beta')))), []);
  assert.equal(links(run(idx, q(term('name', 'Alpha')))), []);
  assert.equal(links(run(idx, q(term('counter', '1')))), []);
  assert.equal(links(run(idx, q(term('enabled', 'true')))), [`${EX}/a`]);
  assert.equal(links(run(idx, q(term('enabled', 'false')))), [`${EX}/b`]);
  assert.equal(links(run(idx, q(term('documentKind', 'task-kind')))), ['/core/example-tasks/t']);
  assert.equal(links(run(idx, q(term('documentSelfLink', `${EX}/b`)))), [`${EX}/b`]);
});

test('PREFIX, WILDCARD, PHRASE', () => {
  const idx = sample();
  assert.equal(links(run(idx, q(term('name', 'alpha', 'PREFIX')))), [`${EX}/b`]);
  assert.equal(links(run(idx, q(term('documentSelfLink', '/', 'PREFIX')))).length, 4);
  assert.equal(links(run(idx, q(term('documentSelfLink', `${EX}/`, 'PREFIX')))), [`${EX}/a`, `${EX}/b`, `${EX}/c`]);
  assert.equal(links(run(idx, q(term('documentSelfLink', '*', 'WILDCARD')))).length, 4);
  assert.equal(links(run(idx, q(term('name', '?lpha*', 'WILDCARD')))), [`${EX}/a`, `${EX}/b`]);
  assert.equal(links(run(idx, q(term('name', '*o', 'WILDCARD')))), [`${EX}/b`]);
  assert.equal(links(run(idx, q(term('name', 'b?ta', 'WILDCARD')))), [`${EX}/c`]);
  assert.equal(links(run(idx, q(term('name', 'alpha\\-two', 'WILDCARD')))), [`${EX}/b`]);
  assert.equal(links(run(idx, q(term('name', 'a.*', 'WILDCARD')))), [], 'regex characters are literal');
  assert.equal(links(run(idx, q(term('name', 'Alpha one', 'PHRASE')))), [`${EX}/a`]);
  assert.equal(links(run(idx, q(term('name', 'one', 'PHRASE')))), [`${EX}/a`]);
  assert.equal(links(run(idx, q(term('name', 'alpha two', 'PHRASE')))), [`${EX}/b`]);
  assert.equal(links(run(idx, q(term('name', 'two alpha', 'PHRASE')))), []);
});

const range = (propertyName: string, r: Record<string, unknown>) => ({ term: { propertyName, range: r } });

test('ranges: LONG and DOUBLE, inclusive and exclusive, open ends, truncated LONG bounds', () => {
  const idx = sample();
  const r = (name: string, spec: Record<string, unknown>) => links(run(idx, q(range(name, spec))));
  assert.equal(r('counter', { type: 'LONG', min: 1, max: 3, isMinInclusive: true, isMaxInclusive: true }), [
    `${EX}/a`,
    `${EX}/b`,
    `${EX}/c`,
  ]);
  assert.equal(r('counter', { type: 'LONG', min: 1, max: 3 }), [`${EX}/b`]);
  assert.equal(r('counter', { type: 'LONG', min: 3, isMinInclusive: true }), [`${EX}/c`, '/core/example-tasks/t']);
  assert.equal(r('counter', { type: 'LONG', max: 2, isMaxInclusive: true }), [`${EX}/a`, `${EX}/b`]);
  assert.equal(
    r('counter', { type: 'LONG', min: 1.9, max: 2.1, isMinInclusive: true, isMaxInclusive: true }),
    [`${EX}/a`, `${EX}/b`],
    'bounds become 1 and 2',
  );
  assert.equal(r('price', { type: 'DOUBLE', min: 1.5, max: 3.0 }), [`${EX}/b`]);
  assert.equal(r('price', { type: 'DOUBLE', min: 1.5, max: 3.0, isMinInclusive: true, isMaxInclusive: true }), [
    `${EX}/a`,
    `${EX}/b`,
    `${EX}/c`,
  ]);
  assert.equal(r('price', { type: 'DOUBLE', min: 2.4, max: 2.6 }), [`${EX}/b`]);
  assert.equal(r('documentUpdateTimeMicros', { type: 'DATE', min: 1000, max: 1000, isMinInclusive: true, isMaxInclusive: true }).length, 4);
  assert.equal(r('name', { type: 'LONG', min: 0 }), [], 'strings are not in numeric ranges');
});

test('nested names: keyValues.k, tags.item, taskInfo.stage', () => {
  const idx = sample();
  assert.equal(links(run(idx, q(term('keyValues.k', 'v1')))), [`${EX}/a`, `${EX}/c`]);
  assert.equal(links(run(idx, q(term('keyValues.other', 'o')))), [`${EX}/c`]);
  assert.equal(links(run(idx, q(term('tags.item', 'red')))), [`${EX}/a`, `${EX}/b`]);
  assert.equal(links(run(idx, q(term('tags.item', 'blue')))), [`${EX}/a`]);
  assert.equal(links(run(idx, q(term('taskInfo.stage', 'FINISHED')))), ['/core/example-tasks/t']);
  assert.equal(links(run(idx, q(term('taskInfo.isDirect', 'false')))), ['/core/example-tasks/t']);
});

test('booleans: MUST, MUST_NOT, SHOULD and nesting', () => {
  const idx = sample();
  const b = (clauses: unknown[], occurance?: string) => ({ ...(occurance ? { occurance } : {}), booleanClauses: clauses });
  const r = (query: unknown) => links(run(idx, q(query)));
  const red = term('tags.item', 'red');
  const v1 = term('keyValues.k', 'v1');
  assert.equal(r(b([red, v1])), [`${EX}/a`]);
  assert.equal(r(b([red, term('keyValues.k', 'v1', undefined, 'MUST_NOT_OCCUR')])), [`${EX}/b`]);
  assert.equal(
    r(b([red, term('name', 'nomatch', undefined, 'SHOULD_OCCUR')])),
    [`${EX}/a`, `${EX}/b`],
    'SHOULD is optional next to a MUST',
  );
  assert.equal(r(b([term('name', 'beta', undefined, 'SHOULD_OCCUR'), term('name', 'task', undefined, 'SHOULD_OCCUR')])), [
    `${EX}/c`,
    '/core/example-tasks/t',
  ]);
  assert.equal(r(b([term('name', 'beta', undefined, 'MUST_NOT_OCCUR')])), [], 'only MUST_NOT matches nothing');
  assert.equal(r(b([])), []);
  assert.equal(r(b([b([red, v1], 'SHOULD_OCCUR'), b([term('name', 'task')], 'SHOULD_OCCUR')])), [`${EX}/a`, '/core/example-tasks/t']);
  assert.equal(r(b([term('documentSelfLink', `${EX}/`, 'PREFIX'), b([red, v1], 'MUST_NOT_OCCUR')])), [`${EX}/b`, `${EX}/c`]);
  assert.equal(
    r(b([range('counter', { type: 'LONG', min: 2, isMinInclusive: true }), term('tags.item', 'red', undefined, 'MUST_NOT_OCCUR')])),
    [`${EX}/c`, '/core/example-tasks/t'],
  );
  // At the top Xenon ignores a term's occurance but honours a boolean's.
  assert.equal(r(term('name', 'beta', undefined, 'MUST_NOT_OCCUR')), [`${EX}/c`]);
  assert.equal(r(b([red], 'MUST_NOT_OCCUR')), []);
  assert.equal(r(b([red], 'SHOULD_OCCUR')), [`${EX}/a`, `${EX}/b`]);
});

test("INCLUDE_ALL_VERSIONS: newest version first, ties in indexing order, tombstones included (Xenon's order)", () => {
  const idx = new DocumentIndex({ retentionFor: () => 100 });
  const t1 = '/core/example-tasks/97b2';
  const t2 = '/core/example-tasks/538d';
  for (let v = 0; v < 4; v++) for (const t of [t1, t2]) put(idx, t, v, { stage: `s${v}` }, { kind: 'task' });
  put(idx, t1, 4, {}, { kind: 'task', action: 'DELETE' });
  const all = { query: term('documentKind', 'task'), options: ['INCLUDE_ALL_VERSIONS'] };
  assert.equal(links(run(idx, all), true), [
    `${t1}?documentVersion=4`,
    `${t1}?documentVersion=3`,
    `${t2}?documentVersion=3`,
    `${t1}?documentVersion=2`,
    `${t2}?documentVersion=2`,
    `${t1}?documentVersion=1`,
    `${t2}?documentVersion=1`,
    `${t1}?documentVersion=0`,
    `${t2}?documentVersion=0`,
  ]);
  const hit = run(idx, all)[1]!;
  assert.is(hit.doc.stage, 's3');
  assert.equal(links(run(idx, { query: term('documentKind', 'task') })), [t2]);
  assert.equal(links(run(idx, { query: term('documentKind', 'task'), options: ['INCLUDE_DELETED'] }), true), [
    `${t1}?documentVersion=4`,
    `${t2}?documentVersion=3`,
  ]);
  // Older versions match on their own fields.
  assert.equal(links(run(idx, { query: term('stage', 's1'), options: ['INCLUDE_ALL_VERSIONS'] }), true), [
    `${t1}?documentVersion=1`,
    `${t2}?documentVersion=1`,
  ]);
  assert.equal(links(run(idx, { query: term('stage', 's1') })), []);
});

test('INCLUDE_DELETED: latest tombstones appear, older live versions never do', () => {
  const idx = new DocumentIndex({ retentionFor: () => 100 });
  put(idx, `${EX}/a`, 0, { name: 'x' });
  put(idx, `${EX}/a`, 1, { name: 'x' }, { action: 'DELETE' });
  put(idx, `${EX}/b`, 0, { name: 'x' });
  assert.equal(links(run(idx, q(term('name', 'x')))), [`${EX}/b`]);
  const withDeleted = run(idx, q(term('name', 'x'), { options: ['INCLUDE_DELETED'] }));
  assert.equal(links(withDeleted, true), [`${EX}/a?documentVersion=1`, `${EX}/b?documentVersion=0`]);
  assert.is(withDeleted[0]!.doc.documentUpdateAction, 'DELETE');
});

test('SORT: strings and numbers, ASC and DESC, several terms, missing values last', () => {
  const idx = new DocumentIndex({ retentionFor: () => 100 });
  put(idx, '/s/1', 0, { name: 'b', n: 2, g: 'x' });
  put(idx, '/s/2', 0, { name: 'a', n: 10, g: 'y' });
  put(idx, '/s/3', 0, { name: 'c', n: 1, g: 'x' });
  put(idx, '/s/4', 0, { n: 5, g: 'y' });
  put(idx, '/s/5', 0, { name: 'B', g: 'x' });
  const sorted = (sortTerm: unknown, extra: Record<string, unknown> = {}) =>
    links(run(idx, { query: term('documentSelfLink', '/s/', 'PREFIX'), options: ['SORT'], sortTerm, ...extra }));
  assert.equal(sorted({ propertyName: 'name', propertyType: 'STRING' }), ['/s/5', '/s/2', '/s/1', '/s/3', '/s/4']);
  assert.equal(sorted({ propertyName: 'name', propertyType: 'STRING' }, { sortOrder: 'DESC' }), ['/s/3', '/s/1', '/s/2', '/s/5', '/s/4']);
  assert.equal(sorted({ propertyName: 'n', propertyType: 'LONG' }), ['/s/3', '/s/1', '/s/4', '/s/2', '/s/5'], 'numeric, not lexicographic');
  assert.equal(sorted({ propertyName: 'n', propertyType: 'LONG' }, { sortOrder: 'DESC' }), ['/s/2', '/s/4', '/s/1', '/s/3', '/s/5']);
  assert.equal(
    sorted(
      { propertyName: 'g', propertyType: 'STRING' },
      { additionalSortTerms: [{ propertyName: 'n', propertyType: 'LONG', sortOrder: 'DESC' }] },
    ),
    ['/s/1', '/s/3', '/s/5', '/s/2', '/s/4'],
  );
  assert.equal(
    sorted({ propertyName: 'g', propertyType: 'STRING' }, { sortOrder: 'DESC' }),
    ['/s/2', '/s/4', '/s/1', '/s/3', '/s/5'],
    'ties in indexing order',
  );
});

test('default order of latest versions: higher version first, then indexing order', () => {
  const idx = new DocumentIndex({ retentionFor: () => 100 });
  put(idx, '/o/a', 0, { k: 'x' });
  put(idx, '/o/b', 0, { k: 'x' });
  put(idx, '/o/b', 1, { k: 'x' });
  put(idx, '/o/c', 0, { k: 'x' });
  assert.equal(links(run(idx, q(term('k', 'x')))), ['/o/b', '/o/a', '/o/c']);
});

test('the term index drives selective queries; scans only when nothing can', () => {
  const idx = new DocumentIndex({ retentionFor: () => 100 });
  for (let i = 0; i < 1000; i++) {
    for (let v = 0; v < 3; v++) put(idx, `${EX}/d${i}`, v, { name: `n${i}`, counter: i, tags: [i % 2 ? 'odd' : 'even'] });
  }
  assert.equal(links(run(idx, q(term('name', 'n42')))), [`${EX}/d42`]);
  assert.equal(idx.lastQueryStats(), { examined: 3, scanned: false }, 'only the posting of name=n42');
  run(idx, { query: term('documentSelfLink', `${EX}/d42`), options: ['INCLUDE_ALL_VERSIONS'] });
  assert.equal(idx.lastQueryStats(), { examined: 3, scanned: false });
  run(idx, q({ booleanClauses: [term('tags.item', 'odd'), term('name', 'n43'), range('counter', { type: 'LONG', min: 0 })] }));
  assert.equal(idx.lastQueryStats(), { examined: 3, scanned: false }, 'the narrowest MUST term wins');
  assert.equal(run(idx, q(term('name', 'n99', 'PREFIX'))).length, 11, 'n99 and n990..n999');
  assert.equal(idx.lastQueryStats(), { examined: 33, scanned: false }, 'a prefix reads matching values only');
  assert.equal(run(idx, q(term('name', 'nope'))).length, 0);
  assert.equal(idx.lastQueryStats(), { examined: 0, scanned: false });
  assert.equal(run(idx, q(range('counter', { type: 'LONG', min: 990 }))).length, 9);
  assert.equal(idx.lastQueryStats(), { examined: 1000, scanned: true }, 'a range alone reads each latest version');
  assert.equal(run(idx, q(term('tags.item', 'odd'))).length, 500);
  assert.equal(idx.lastQueryStats(), { examined: 1000, scanned: true }, 'a posting wider than the links is not worth it');
});

test.run();
