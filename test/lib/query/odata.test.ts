import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isKryptonError } from '../../../lib/errors.js';
import { limits } from '../../../lib/limits.js';
import { isODataRequest, parseFilter, parseOData, type ODataContext, type ODataQuery } from '../../../lib/query/odata.js';
import { parseQuerySpec } from '../../../lib/query/spec.js';

const factory: ODataContext = {
  target: { kind: 'factory', factoryLink: '/core/examples', documentKind: 'K' },
  propertyType: (n) => (n === 'counter' ? 'LONG' : undefined),
};
const queries: ODataContext = { target: { kind: 'queries' } };

function params(qs: string): [string, string][] {
  return [...new URLSearchParams(qs)];
}

function query(qs: string, ctx: ODataContext = factory): ODataQuery {
  const r = parseOData(params(qs), ctx);
  assert.is(r.kind, 'query');
  // Whatever the translation makes must be a querySpec the query tasks accept.
  parseQuerySpec((r as ODataQuery).querySpec);
  return r as ODataQuery;
}

/** The filter's own clauses (after the factory's kind and prefix clauses). */
function filterOf(qs: string): unknown[] {
  return query(qs).querySpec.query.booleanClauses!.slice(2);
}

function rejects(qs: string, message: string | RegExp, ctx: ODataContext = factory): void {
  try {
    parseOData(params(qs), ctx);
  } catch (e) {
    assert.ok(isKryptonError(e), `expected a KryptonError, got ${String(e)}`);
    assert.is(e.code, 'INVALID_QUERY');
    if (typeof message === 'string') assert.is(e.message, message);
    else assert.match(e.message, message);
    return;
  }
  assert.unreachable(`accepted ${qs}`);
}

const term = (propertyName: string, matchValue: string, matchType = 'TERM', occurance = 'MUST_OCCUR') => ({
  occurance,
  term: { propertyName, matchValue, matchType },
});

test('a factory query is restricted to the child kind and the factory prefix, with EXPAND_CONTENT', () => {
  const q = query("$filter=name eq 'alpha'");
  assert.equal(q.querySpec.options, ['EXPAND_CONTENT']);
  assert.equal(q.querySpec.query.booleanClauses!.slice(0, 2), [
    { occurance: 'MUST_OCCUR', term: { propertyName: 'documentKind', matchValue: 'K' } },
    term('documentSelfLink', '/core/examples/', 'PREFIX'),
  ]);
  assert.equal(filterOf("$filter=name eq 'alpha'"), [term('name', 'alpha')]);
});

test('eq: quoted or bare strings, booleans, a * makes a wildcard, nested names with / or .', () => {
  assert.equal(filterOf('$filter=name eq alpha'), [term('name', 'alpha')]);
  assert.equal(filterOf("$filter=name eq 'it''s'"), [term('name', "it's")]);
  assert.equal(filterOf("$filter=name eq '123'"), [term('name', '123')]);
  assert.equal(filterOf('$filter=flag eq true'), [term('flag', 'true')]);
  assert.equal(filterOf("$filter=name eq 'al*'"), [term('name', 'al*', 'WILDCARD')]);
  assert.equal(filterOf("$filter=keyValues/k eq 'v'"), [term('keyValues.k', 'v')]);
  assert.equal(filterOf("$filter=keyValues.k eq 'v'"), [term('keyValues.k', 'v')]);
});

test('numbers compare as ranges: integers LONG, decimals DOUBLE', () => {
  const range = (r: object) => [{ occurance: 'MUST_OCCUR', term: { propertyName: 'counter', range: r } }];
  assert.equal(filterOf('$filter=counter eq 5'), range({ type: 'LONG', min: 5, max: 5, isMinInclusive: true, isMaxInclusive: true }));
  assert.equal(filterOf('$filter=counter lt 5'), range({ type: 'LONG', max: 5, isMinInclusive: false, isMaxInclusive: false }));
  assert.equal(filterOf('$filter=counter le 5'), range({ type: 'LONG', max: 5, isMinInclusive: false, isMaxInclusive: true }));
  assert.equal(filterOf('$filter=counter gt -5'), range({ type: 'LONG', min: -5, isMinInclusive: false, isMaxInclusive: false }));
  assert.equal(filterOf('$filter=counter ge 2.5'), range({ type: 'DOUBLE', min: 2.5, isMinInclusive: true, isMaxInclusive: false }));
});

test('ne and not become MUST_NOT beside the factory clauses', () => {
  assert.equal(filterOf("$filter=name ne 'a'"), [term('name', 'a', 'TERM', 'MUST_NOT_OCCUR')]);
  assert.equal(filterOf("$filter=not name eq 'a'"), [term('name', 'a', 'TERM', 'MUST_NOT_OCCUR')]);
  assert.equal(filterOf("$filter=not (name ne 'a')"), [term('name', 'a')]);
});

test('a negative filter at /core/odata-queries gets a match-all clause beside it', () => {
  const q = query("$filter=name ne 'a'", queries);
  assert.equal(q.querySpec.query.booleanClauses, [term('documentSelfLink', '*', 'WILDCARD'), term('name', 'a', 'TERM', 'MUST_NOT_OCCUR')]);
});

test('and, or, parentheses and De Morgan for all-negative groups', () => {
  assert.equal(filterOf("$filter=name eq 'a' and counter eq 1")[0], {
    occurance: 'MUST_OCCUR',
    booleanClauses: [
      term('name', 'a'),
      {
        occurance: 'MUST_OCCUR',
        term: { propertyName: 'counter', range: { type: 'LONG', min: 1, max: 1, isMinInclusive: true, isMaxInclusive: true } },
      },
    ],
  });
  assert.equal(filterOf("$filter=name eq 'a' or name eq 'b'")[0], {
    occurance: 'MUST_OCCUR',
    booleanClauses: [term('name', 'a', 'TERM', 'SHOULD_OCCUR'), term('name', 'b', 'TERM', 'SHOULD_OCCUR')],
  });
  // not a or not b = not (a and b)
  assert.equal(filterOf("$filter=name ne 'a' or name ne 'b'"), [
    { occurance: 'MUST_NOT_OCCUR', booleanClauses: [term('name', 'a'), term('name', 'b')] },
  ]);
  // a mixed or keeps the negative side matchable on its own
  const mixed = filterOf("$filter=name eq 'a' or name ne 'b'") as { booleanClauses: unknown[] }[];
  assert.equal(mixed[0]!.booleanClauses[1], {
    occurance: 'SHOULD_OCCUR',
    booleanClauses: [term('documentSelfLink', '*', 'WILDCARD'), term('name', 'b', 'TERM', 'MUST_NOT_OCCUR')],
  });
  // parentheses group
  const grouped = filterOf("$filter=(name eq 'a' or name eq 'b') and counter gt 1") as {
    booleanClauses: { booleanClauses?: unknown[] }[];
  }[];
  assert.is(grouped[0]!.booleanClauses[0]!.booleanClauses!.length, 2);
});

test('string functions: startswith is a PREFIX, endswith and contains escaped WILDCARD patterns', () => {
  assert.equal(filterOf("$filter=startswith(name,'ab')"), [term('name', 'ab', 'PREFIX')]);
  assert.equal(filterOf("$filter=endswith(name,'a*?b')"), [term('name', '*a\\*\\?b', 'WILDCARD')]);
  assert.equal(filterOf("$filter=contains(keyValues/k,'x')"), [term('keyValues.k', '*x*', 'WILDCARD')]);
  assert.equal(filterOf("$filter=substringof('x',name) eq true"), [term('name', '*x*', 'WILDCARD')]);
  assert.equal(filterOf("$filter=startswith(name,'a') eq false"), [term('name', 'a', 'PREFIX', 'MUST_NOT_OCCUR')]);
  assert.equal(filterOf("$filter=startswith(name,'a') ne false"), [term('name', 'a', 'PREFIX')]);
});

test('any and all on collections: one clause per item, the field or its items', () => {
  const item = (v: string, occurance: string) => ({
    occurance,
    booleanClauses: [term('tags', v, 'TERM', 'SHOULD_OCCUR'), term('tags.item', v, 'TERM', 'SHOULD_OCCUR')],
  });
  assert.equal(filterOf("$filter=tags any 'a;b'"), [
    { occurance: 'MUST_OCCUR', booleanClauses: [item('a', 'SHOULD_OCCUR'), item('b', 'SHOULD_OCCUR')] },
  ]);
  assert.equal(filterOf("$filter=tags all 'a; b;'"), [
    { occurance: 'MUST_OCCUR', booleanClauses: [item('a', 'MUST_OCCUR'), item('b', 'MUST_OCCUR')] },
  ]);
  assert.equal(filterOf("$filter=tags.item any 'a'"), [
    { occurance: 'MUST_OCCUR', booleanClauses: [term('tags.item', 'a', 'TERM', 'SHOULD_OCCUR')] },
  ]);
});

test("ALL_FIELDS unfolds over the factory's text fields: some field matches, ne none does", () => {
  const ctx: ODataContext = { ...factory, allFields: ['name', 'tags.item'] };
  const clauses = (f: string) => query(`$filter=${encodeURIComponent(f)}`, ctx).querySpec.query.booleanClauses!.slice(2);
  const either = {
    occurance: 'MUST_OCCUR',
    booleanClauses: [term('name', 'x', 'TERM', 'SHOULD_OCCUR'), term('tags.item', 'x', 'TERM', 'SHOULD_OCCUR')],
  };
  assert.equal(clauses("ALL_FIELDS eq 'x'"), [either]);
  assert.equal(clauses("ALL_FIELDS ne 'x'"), [{ ...either, occurance: 'MUST_NOT_OCCUR' }]);
  assert.is((clauses("ALL_FIELDS any 'x;y'")[0] as { booleanClauses: unknown[] }).booleanClauses.length, 2);
  rejects('$filter=ALL_FIELDS%20gt%201', '$filter ALL_FIELDS compares strings only, with eq, ne, any or all', ctx);
  rejects('$filter=ALL_FIELDS%20eq%201', '$filter ALL_FIELDS compares strings only, with eq, ne, any or all', ctx);
  rejects(
    "$filter=ALL_FIELDS%20eq%20'x'",
    "$filter ALL_FIELDS needs a factory's fields: it is not supported at /core/odata-queries",
    queries,
  );
});

test('$orderby: several keys, asc by default, types from $orderbytype or the service', () => {
  const q = query('$orderby=counter desc,name,other asc&$orderbytype=LONG');
  assert.equal(q.querySpec.options, ['EXPAND_CONTENT', 'SORT']);
  assert.equal(q.querySpec.sortTerm, { propertyName: 'counter', propertyType: 'LONG', sortOrder: 'DESC' });
  assert.is(q.querySpec.sortOrder, 'DESC');
  assert.equal(q.querySpec.additionalSortTerms, [
    { propertyName: 'name', propertyType: 'STRING', sortOrder: 'ASC' },
    { propertyName: 'other', propertyType: 'STRING', sortOrder: 'ASC' },
  ]);
  assert.equal(query('$orderby=counter').querySpec.sortTerm, { propertyName: 'counter', propertyType: 'LONG', sortOrder: 'ASC' });
});

test('$top, $limit, $skip, $count, $select', () => {
  const top = query('$top=3');
  assert.equal(top.querySpec.options, ['EXPAND_CONTENT', 'TOP_RESULTS']);
  assert.is(top.querySpec.resultLimit, 3);
  assert.is(top.top, 3);
  const limit = query('$limit=4');
  assert.equal(limit.querySpec.options, ['EXPAND_CONTENT']);
  assert.is(limit.querySpec.resultLimit, 4);
  assert.is(limit.limit, 4);
  assert.is(query('$skip=2').querySpec.offset, 2);
  assert.is(query('$skip=0').querySpec.offset, undefined);
  assert.equal(query('$count=true').querySpec.options, ['COUNT']);
  assert.ok(query('$count=true').count);
  assert.not.ok(query('$count=false').count);
  const select = query('$select=name,counter');
  assert.equal(select.select, ['name', 'counter']);
  assert.equal(select.querySpec.options, ['EXPAND_CONTENT', 'EXPAND_SELECTED_FIELDS']);
  assert.equal(select.querySpec.selectTerms, [{ propertyName: 'name' }, { propertyName: 'counter' }]);
});

test('expand alone keeps the plain listing; any other parameter is OData', () => {
  assert.not.ok(isODataRequest(params('expand')));
  assert.not.ok(isODataRequest(params('$expand=true')));
  assert.not.ok(isODataRequest([]));
  assert.ok(isODataRequest(params('expand&$top=1')));
  assert.ok(isODataRequest(params('x=1')));
});

test('navigation: $skipto with $nodeid, or a factory page link', () => {
  assert.equal(parseOData(params('$skipto=p-1&$nodeid=h'), queries), { kind: 'navigate', pageId: 'p-1', peer: 'h' });
  assert.equal(parseOData(params('path=p-1&peer=h'), factory), { kind: 'navigate', pageId: 'p-1', peer: 'h' });
  rejects('$skipto=p-1', 'When using $skipto, $nodeid must be supplied', queries);
  rejects('$nodeid=h', '$nodeid is only meaningful with $skipto', queries);
  rejects('path=p-1', 'a page link needs both path and peer');
  rejects('path=p&peer=h&$top=1', 'a page link (path and peer) takes no other parameter');
  rejects('path=p&peer=h', 'unknown query parameter: path', queries);
});

test('unsupported parameters and combinations are refused, each named', () => {
  rejects('$tenantLinks=/t', '$tenantLinks is not supported: Krypton has no tenants');
  rejects('$search=x', '$search is not supported');
  rejects('$format=json', '$format is not supported');
  rejects('foo=1', 'unknown query parameter: foo');
  rejects('$top=1&$top=2', '$top is given more than once');
  rejects('$top=1&$limit=2', '$top cannot be used together with $limit');
  rejects('$count=true&$top=1', '$count cannot be used together with $top');
  rejects('$count=true&$skip=1', '$count cannot be used together with $skip');
  rejects('$count=true&$select=name', '$count cannot be used together with $select');
  rejects("$count=true&$orderby=name&$filter=a eq 'b'", '$count cannot be used together with $orderby', queries);
  rejects("$count=true&$limit=2&$filter=a eq 'b'", '$count cannot be used together with $limit', queries);
  rejects('$top=0', '$top must be at least 1');
  rejects('$top=-1', "$top must be an integer, not '-1'");
  rejects(`$top=${limits.odataTopMax + 1}`, `$top must be at most ${limits.odataTopMax}`);
  rejects(`$limit=${limits.odataTopMax + 1}`, `$limit must be at most ${limits.odataTopMax}`);
  rejects(`$skip=${limits.odataSkipMax + 1}`, `$skip must be at most ${limits.odataSkipMax}`);
  rejects('$count=maybe', "$count must be true or false, not 'maybe'");
  rejects('$orderby=name sideways', "$orderby direction must be asc or desc, not 'sideways'");
  rejects('$orderby=name&$orderbytype=TEXT', 'Type name TEXT is not supported for $orderbytype');
  rejects('$orderby=a,b&$orderbytype=STRING,LONG,LONG', '$orderbytype names more types than $orderby has keys');
  rejects('$orderbytype=LONG', '$orderbytype is only meaningful with $orderby');
  rejects(
    `$orderby=${Array.from({ length: limits.odataOrderByKeysMax + 1 }, (_, i) => `f${i}`).join(',')}`,
    `$orderby has more than ${limits.odataOrderByKeysMax} keys`,
  );
  rejects('$select=*', '$select=* is not supported: leave $select out for every field');
  rejects('$select=keyValues/k', '$select field keyValues/k: only top-level fields can be selected');
  rejects('$top=1', '$filter is required', queries);
});

test('unsupported filter constructs are refused, each named', () => {
  const bad = (f: string, m: string | RegExp) => rejects(`$filter=${encodeURIComponent(f)}`, m);
  bad(
    "tolower(name) eq 'a'",
    /function tolower\(\) is not supported \(the functions are startswith\(\), endswith\(\), contains\(\), substringof\(\)\)/,
  );
  bad("startswith(name 'a')", "$filter startswith() expects ',' or ')' at 16");
  bad("startswith(name,'a'", '$filter startswith( is not closed');
  bad("startswith(name,'a','b')", '$filter startswith() takes two arguments, a property name and a quoted string');
  bad('startswith(name,3)', "$filter startswith() needs a quoted string, not '3'");
  bad("startswith('a',name)", '$filter startswith() needs a property name, not a string');
  bad("startswith(name,'')", '$filter startswith() needs a non-empty string');
  bad("startswith(name,'a') eq 1", '$filter startswith() compares with true or false only');
  bad('counter add 1 eq 2', '$filter operator add is not supported');
  bad('counter mod 2 eq 0', '$filter operator mod is not supported');
  bad("name in ('a','b')", '$filter operator in is not supported');
  bad("name has 'a'", '$filter operator has is not supported');
  bad("name like 'a'", "$filter has an unknown operator 'like' at 5");
  bad("name lt 'b'", '$filter name lt needs a number: strings and booleans compare with eq and ne only');
  bad('flag gt true', '$filter flag gt needs a number: strings and booleans compare with eq and ne only');
  bad('name eq null', '$filter null is not supported: a missing field cannot be matched');
  bad('tags any 3', "$filter tags any needs a quoted list of items separated by ';'");
  bad("tags all ';'", '$filter tags all has no items');
  bad("ALL_FIELDS eq 'x'", /ALL_FIELDS needs a factory's fields/);
  bad("na*me eq 'x'", /wildcards in property names are not supported/);
  bad("name eq 'a' and b eq 'c' or d eq 'e'", /mixes 'and' and 'or' without parentheses/);
  bad("name eq 'a", /unterminated string/);
  bad("(name eq 'a'", /unclosed '\('/);
  bad("name eq 'a')", /unexpected '\)'/);
  bad('name eq', '$filter ends after name eq');
  bad('name', '$filter ends after the property name name');
  bad("name eq 'a' and", '$filter ends where an operand was expected');
  bad('', '$filter is empty');
  bad("name # 'a'", "$filter has an unexpected character '#' at 5");
  bad('counter eq 99999999999999999999', /beyond 2\^53/);
  bad("eq eq 'a'", "$filter expects a property name, not the operator 'eq'");
});

test('bounds: filter length and nesting depth', () => {
  assert.throws(() => parseFilter(`name eq '${'a'.repeat(limits.odataFilterCharsMax)}'`), /longer than/);
  const deep = (n: number) => `${'('.repeat(n)}name eq 'a'${')'.repeat(n)}`;
  parseFilter(deep(limits.odataFilterDepthMax - 1));
  assert.throws(() => parseFilter(deep(limits.odataFilterDepthMax)), /nested deeper than/);
  assert.throws(() => parseFilter(`${'not '.repeat(limits.odataFilterDepthMax)}name eq 'a'`), /nested deeper than/);
  // The deepest filter allowed still fits the query tasks' own depth limit.
  const deepest = Array.from({ length: limits.odataFilterDepthMax - 1 }).reduce<string>(
    (f, _, i) => `a${i} ne 'x' ${i % 2 ? 'and' : 'or'} (${f})`,
    "name ne 'a' or tags any 'a;b'",
  );
  query(`$filter=${encodeURIComponent(deepest)}`);
});

test.run();
