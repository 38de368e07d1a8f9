import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { isKryptonError } from '../../../lib/errors.js';
import { limits } from '../../../lib/limits.js';
import { parseQuerySpec, querySpecToJson, type QueryPlan } from '../../../lib/query/spec.js';

const kindTerm = { term: { propertyName: 'documentKind', matchValue: 'k' } };

function rejects(spec: unknown, message: string | RegExp): void {
  try {
    parseQuerySpec(spec);
  } catch (e) {
    assert.ok(isKryptonError(e), `expected a KryptonError, got ${String(e)}`);
    assert.is(e.code, 'INVALID_QUERY');
    if (typeof message === 'string') assert.is(e.message, message);
    else assert.match(e.message, message);
    return;
  }
  assert.unreachable(`accepted ${JSON.stringify(spec)}`);
}

test('the echo fills occurance, matchType and resultLimit', () => {
  const plan = parseQuerySpec({
    options: ['INCLUDE_ALL_VERSIONS'],
    query: {
      term: { matchValue: 'com:vmware:xenon:services:common:ExampleTaskService:ExampleTaskServiceState', propertyName: 'documentKind' },
    },
  });
  assert.is(
    JSON.stringify(querySpecToJson(plan)),
    JSON.stringify({
      query: {
        occurance: 'MUST_OCCUR',
        term: {
          propertyName: 'documentKind',
          matchValue: 'com:vmware:xenon:services:common:ExampleTaskService:ExampleTaskServiceState',
          matchType: 'TERM',
        },
      },
      resultLimit: 2147483647,
      options: ['INCLUDE_ALL_VERSIONS'],
    }),
  );
  assert.ok(plan.includeAllVersions);
  assert.not.ok(plan.count);
  assert.is(plan.resultLimit, undefined);
});

test('normalized plan: defaults, flags, option order and duplicates', () => {
  const plan = parseQuerySpec({
    query: { booleanClauses: [kindTerm, { occurance: 'SHOULD_OCCUR', term: { propertyName: 'n', matchValue: 'x', matchType: 'PREFIX' } }] },
    options: ['TOP_RESULTS', 'COUNT', 'DO_NOT_REFRESH', 'COUNT', 'FORWARD_ONLY', 'SINGLE_USE'],
    resultLimit: 5,
  });
  assert.equal(plan.options, ['COUNT', 'DO_NOT_REFRESH', 'TOP_RESULTS', 'SINGLE_USE', 'FORWARD_ONLY']);
  assert.ok(plan.count && plan.topResults);
  assert.not.ok(plan.expandContent || plan.includeDeleted || plan.includeAllVersions);
  assert.is(plan.resultLimit, 5);
  assert.is(plan.sort, undefined);
  assert.equal(plan.query, {
    kind: 'boolean',
    occurance: 'MUST_OCCUR',
    clauses: [
      { kind: 'term', occurance: 'MUST_OCCUR', propertyName: 'documentKind', matchType: 'TERM', matchValue: 'k' },
      { kind: 'term', occurance: 'SHOULD_OCCUR', propertyName: 'n', matchType: 'PREFIX', matchValue: 'x' },
    ],
  });
});

test('ranges: defaults and echo', () => {
  const plan = parseQuerySpec({ query: { term: { propertyName: 'counter', range: { type: 'LONG', min: 1, max: null } } } });
  assert.equal(plan.query, {
    kind: 'range',
    occurance: 'MUST_OCCUR',
    propertyName: 'counter',
    matchType: 'TERM',
    range: { type: 'LONG', min: 1, max: null, isMinInclusive: false, isMaxInclusive: false, precisionStep: 16 },
  });
  assert.equal(querySpecToJson(plan).query, {
    occurance: 'MUST_OCCUR',
    term: {
      propertyName: 'counter',
      matchType: 'TERM',
      range: { type: 'LONG', min: 1, isMinInclusive: false, isMaxInclusive: false, precisionStep: 16 },
    },
  });
});

test('sort: keys, default order ASC, echo with sortOrder', () => {
  const plan = parseQuerySpec({
    query: kindTerm,
    options: ['SORT'],
    sortTerm: { propertyName: 'name', propertyType: 'STRING' },
    additionalSortTerms: [
      { propertyName: 'counter', propertyType: 'LONG', sortOrder: 'DESC' },
      { propertyName: 'x', propertyType: 'DOUBLE' },
    ],
  });
  assert.equal(plan.sort, [
    { propertyName: 'name', propertyType: 'STRING', order: 'ASC' },
    { propertyName: 'counter', propertyType: 'LONG', order: 'DESC' },
    { propertyName: 'x', propertyType: 'DOUBLE', order: 'ASC' },
  ]);
  const echo = querySpecToJson(plan);
  assert.equal(echo.sortTerm, { propertyName: 'name', propertyType: 'STRING', sortOrder: 'ASC' });
  assert.is(echo.sortOrder, 'ASC');
  assert.equal(Object.keys(echo), ['query', 'sortTerm', 'additionalSortTerms', 'sortOrder', 'resultLimit', 'options']);
  const desc = parseQuerySpec({
    query: kindTerm,
    options: ['SORT'],
    sortOrder: 'DESC',
    sortTerm: { propertyName: 'name', propertyType: 'STRING' },
  });
  assert.is(desc.sort?.[0]?.order, 'DESC');
  // A sort term without SORT is echoed but does not sort.
  assert.is(parseQuerySpec({ query: kindTerm, sortTerm: { propertyName: 'name', propertyType: 'STRING' } }).sort, undefined);
  // ...and, as in Xenon, is not checked for a type either.
  assert.equal(parseQuerySpec({ query: kindTerm, sortTerm: { propertyName: 'name' } }).sortTerm, { propertyName: 'name' });
});

test('matchValue numbers and booleans become strings, as Xenon reads them', () => {
  const q = parseQuerySpec({ query: { term: { propertyName: 'b', matchValue: true } } }).query;
  assert.is(q.kind === 'term' && q.matchValue, 'true');
  const n = parseQuerySpec({ query: { term: { propertyName: 'b', matchValue: 5 } } }).query;
  assert.is(n.kind === 'term' && n.matchValue, '5');
});

test('Xenon validation messages', () => {
  rejects(undefined, 'querySpec is required');
  rejects(null, 'querySpec is required');
  rejects({}, 'querySpec.query is required');
  rejects({ query: null }, 'querySpec.query is required');
  rejects({ query: kindTerm, options: ['EXPAND_CONTENT', 'COUNT'] }, 'EXPAND_CONTENT is not compatible with COUNT');
  rejects({ query: { term: kindTerm.term, booleanClauses: [] } }, 'term and booleanClauses are mutually exclusive');
  rejects({ query: {} }, 'One of term, booleanClauses must be provided');
  rejects({ query: { term: { propertyName: 'x' } } }, 'One of term.matchValue, term.range is required');
  rejects(
    { query: { term: { propertyName: 'x', matchValue: 'a', range: { type: 'LONG', min: 1 } } } },
    'term.matchValue and term.range are exclusive of each other',
  );
  rejects({ query: { term: { matchValue: 'a' } } }, 'term.propertyName is required');
  rejects({ query: { term: { propertyName: 'x', range: { type: 'LONG' } } } }, 'max and min can not both be null');
  rejects({ query: { term: { propertyName: 'x', range: { type: 'LONG', min: null, max: null } } } }, 'max and min can not both be null');
  rejects({ query: { term: { propertyName: 'x', range: { type: 'DOUBLE', min: 2, max: 1 } } } }, 'max must be greater than min');
  rejects({ query: { term: { propertyName: 'x', range: { min: 1 } } } }, 'type must be specified');
  rejects({ query: { term: { propertyName: 'x', range: { type: 'STRING', min: 1 } } } }, 'Type is not supported:STRING');
  rejects({ query: kindTerm, options: ['SORT'] }, 'querySpec.sortTerm is required with SORT');
  rejects({ query: kindTerm, options: ['SORT'], sortTerm: { propertyName: 'name' } }, 'term.propertyType is required');
  rejects({ query: kindTerm, options: ['SORT'], sortTerm: { propertyType: 'STRING' } }, 'term.propertyName is required');
  rejects(
    { query: kindTerm, options: ['SORT', 'TOP_RESULTS'], sortTerm: { propertyName: 'n', propertyType: 'STRING' } },
    'resultLimit should be a positive integer less than MAX_VALUE',
  );
});

test('options: unknown, unsupported, ignored', () => {
  rejects({ query: kindTerm, options: ['FROBNICATE'] }, 'unknown query option: FROBNICATE');
  for (const o of ['EXPAND_BINARY_CONTENT']) {
    rejects({ query: kindTerm, options: [o] }, `${o} is not supported`);
  }
  for (const o of [
    'DO_NOT_REFRESH',
    'FORWARD_ONLY',
    'SINGLE_USE',
    'INDEXED_METADATA',
    'TASK',
    'BROADCAST',
    'OWNER_SELECTION',
    'READ_AFTER_WRITE_CONSISTENCY',
    'EXPAND_BUILTIN_CONTENT_ONLY',
  ]) {
    assert.equal(parseQuerySpec({ query: kindTerm, options: [o] }).options, [o]);
  }
});

test('GROUP_BY, SELECT_LINKS, EXPAND_LINKS, EXPAND_SELECTED_FIELDS, expectedResultCount: what each needs', () => {
  const sorted = { query: kindTerm, sortTerm: { propertyName: 'n', propertyType: 'STRING' } };
  const group = { ...sorted, options: ['GROUP_BY', 'SORT'], groupByTerm: { propertyName: 'name', propertyType: 'STRING' } };
  rejects({ ...sorted, options: ['GROUP_BY', 'SORT'] }, 'querySpec.groupByTerm is required with GROUP_BY');
  rejects({ ...group, options: ['GROUP_BY'] }, 'GROUP_BY needs SORT with a sortTerm (the order within each group)');
  rejects({ ...sorted, groupByTerm: { propertyName: 'name' } }, 'querySpec.groupByTerm needs the GROUP_BY option');
  rejects({ ...group, groupSortTerm: { propertyName: 'other' } }, /groupSortTerm must name the groupByTerm property/);
  rejects({ ...group, groupResultLimit: 0 }, 'querySpec.groupResultLimit must be a positive integer');
  const g = parseQuerySpec({ ...group, groupSortOrder: 'DESC', groupResultLimit: 2 });
  assert.equal(g.groupBy, { propertyName: 'name', numeric: false, order: 'DESC', limit: 2 });
  assert.equal(parseQuerySpec(querySpecToJson(g)), g);

  rejects({ query: kindTerm, options: ['SELECT_LINKS'] }, 'querySpec.linkTerms is required with SELECT_LINKS');
  rejects({ query: kindTerm, options: ['SELECT_LINKS'], linkTerms: [] }, 'querySpec.linkTerms must be a non-empty array');
  rejects({ query: kindTerm, options: ['EXPAND_LINKS'] }, 'EXPAND_LINKS needs SELECT_LINKS');
  rejects({ query: kindTerm, linkTerms: [{ propertyName: 'a' }] }, 'querySpec.linkTerms needs the SELECT_LINKS option');
  rejects({ query: kindTerm, options: ['SELECT_LINKS'], linkTerms: [{ propertyName: 'a.b' }] }, /only top-level fields/);
  const l = parseQuerySpec({ query: kindTerm, options: ['SELECT_LINKS', 'EXPAND_LINKS'], linkTerms: [{ propertyName: 'parentLink' }] });
  assert.equal(l.selectLinks, ['parentLink']);
  assert.ok(l.expandLinks);
  assert.equal(parseQuerySpec(querySpecToJson(l)), l);

  rejects({ query: kindTerm, options: ['EXPAND_SELECTED_FIELDS'] }, 'querySpec.selectTerms is required with EXPAND_SELECTED_FIELDS');
  rejects(
    { query: kindTerm, options: ['EXPAND_SELECTED_FIELDS', 'COUNT'], selectTerms: [{ propertyName: 'a' }] },
    /not compatible with COUNT/,
  );
  const f = parseQuerySpec({ query: kindTerm, options: ['EXPAND_SELECTED_FIELDS'], selectTerms: [{ propertyName: 'name' }] });
  assert.equal(f.selectFields, ['name']);
  assert.equal(parseQuerySpec(querySpecToJson(f)), f);

  rejects({ query: kindTerm, expectedResultCount: -1 }, 'querySpec.expectedResultCount must be a non-negative integer');
  rejects({ query: kindTerm, expectedResultCount: '3' }, 'querySpec.expectedResultCount must be a non-negative integer');
  assert.is(parseQuerySpec({ query: kindTerm, expectedResultCount: 3 }).expectedResultCount, 3);
  assert.is(querySpecToJson(parseQuerySpec({ query: kindTerm, expectedResultCount: 3 })).expectedResultCount, 3);
});

test('CONTINUOUS: not with COUNT, GROUP_BY, TIME_SNAPSHOT or expectedResultCount', () => {
  assert.ok(parseQuerySpec({ query: kindTerm, options: ['CONTINUOUS'] }).continuous);
  const stop = parseQuerySpec({ query: kindTerm, options: ['CONTINUOUS_STOP_MATCH'] });
  assert.ok(stop.continuous && stop.stopMatch);
  rejects({ query: kindTerm, options: ['CONTINUOUS', 'COUNT'] }, 'CONTINUOUS is not compatible with COUNT');
  rejects(
    { query: kindTerm, options: ['CONTINUOUS', 'TIME_SNAPSHOT'], timeSnapshotBoundaryMicros: 1 },
    'CONTINUOUS is not compatible with TIME_SNAPSHOT',
  );
  rejects({ query: kindTerm, options: ['CONTINUOUS'], expectedResultCount: 2 }, 'CONTINUOUS is not compatible with expectedResultCount');
});

test('TIME_SNAPSHOT needs timeSnapshotBoundaryMicros, and the boundary needs TIME_SNAPSHOT', () => {
  rejects({ query: kindTerm, options: ['TIME_SNAPSHOT'] }, 'timeSnapshotBoundaryMicros is required with TIME_SNAPSHOT');
  rejects({ query: kindTerm, timeSnapshotBoundaryMicros: 5 }, 'timeSnapshotBoundaryMicros needs the TIME_SNAPSHOT option');
  rejects(
    { query: kindTerm, options: ['TIME_SNAPSHOT'], timeSnapshotBoundaryMicros: -1 },
    'querySpec.timeSnapshotBoundaryMicros must be a non-negative integer',
  );
  rejects(
    { query: kindTerm, options: ['TIME_SNAPSHOT'], timeSnapshotBoundaryMicros: '5' },
    'querySpec.timeSnapshotBoundaryMicros must be a non-negative integer',
  );
  const plan = parseQuerySpec({ query: kindTerm, options: ['TIME_SNAPSHOT'], timeSnapshotBoundaryMicros: 1234 });
  assert.is(plan.timeSnapshotMicros, 1234);
  assert.is(querySpecToJson(plan).timeSnapshotBoundaryMicros, 1234);
  assert.equal(parseQuerySpec(querySpecToJson(plan)), plan);
});

test('unknown enum names', () => {
  rejects({ query: { term: { propertyName: 'x', matchValue: 'a', matchType: 'FUZZY' } } }, 'unknown matchType: FUZZY');
  rejects({ query: { occurance: 'MAYBE', term: { propertyName: 'x', matchValue: 'a' } } }, 'unknown occurance: MAYBE');
  rejects({ query: kindTerm, sortOrder: 'UP' }, 'unknown sortOrder: UP');
  rejects({ query: kindTerm, options: ['SORT'], sortTerm: { propertyName: 'n', propertyType: 'TEXT' } }, 'unknown propertyType: TEXT');
});

test('wrong types anywhere', () => {
  rejects('query', 'querySpec must be an object');
  rejects([kindTerm], 'querySpec must be an object');
  rejects({ query: 'x' }, 'querySpec.query must be an object');
  rejects({ query: kindTerm, options: 'COUNT' }, 'querySpec.options must be an array');
  rejects({ query: kindTerm, options: [1] }, 'querySpec.options must contain strings');
  rejects({ query: { booleanClauses: {} } }, 'querySpec.query.booleanClauses must be an array');
  rejects({ query: { booleanClauses: [kindTerm, 7] } }, 'querySpec.query.booleanClauses[1] must be an object');
  rejects({ query: { term: 'x' } }, 'querySpec.query.term must be an object');
  rejects({ query: { term: { propertyName: 3, matchValue: 'a' } } }, 'querySpec.query.term.propertyName must be a string');
  rejects({ query: { term: { propertyName: 'x', matchValue: { a: 1 } } } }, 'querySpec.query.term.matchValue must be a string');
  rejects({ query: { term: { propertyName: 'x', matchValue: 'a', matchType: 1 } } }, 'querySpec.query.term.matchType must be a string');
  rejects({ query: { term: { propertyName: 'x', range: { type: 'LONG', min: '1' } } } }, 'querySpec.query.term.range.min must be a number');
  rejects({ query: { term: { propertyName: 'x', range: 5 } } }, 'querySpec.query.term.range must be an object');
  rejects(
    { query: { term: { propertyName: 'x', range: { type: 'LONG', min: 1, isMinInclusive: 'yes' } } } },
    'querySpec.query.term.range.isMinInclusive must be a boolean',
  );
  rejects(
    { query: { term: { propertyName: 'x', range: { type: 'LONG', min: 1, precisionStep: 1.5 } } } },
    'querySpec.query.term.range.precisionStep must be an integer',
  );
  rejects({ query: kindTerm, resultLimit: '10' }, 'querySpec.resultLimit must be an integer');
  rejects({ query: kindTerm, resultLimit: 1.5 }, 'querySpec.resultLimit must be an integer');
  rejects({ query: kindTerm, resultLimit: 2147483648 }, 'querySpec.resultLimit must be an integer');
  rejects({ query: kindTerm, additionalSortTerms: {} }, 'querySpec.additionalSortTerms must be an array');
  rejects({ query: kindTerm, sortTerm: [] }, 'querySpec.sortTerm must be an object');
});

test('resultLimit must be positive', () => {
  rejects({ query: kindTerm, resultLimit: 0 }, 'resultLimit should be a positive integer');
  rejects({ query: kindTerm, resultLimit: -3 }, 'resultLimit should be a positive integer');
  assert.is(parseQuerySpec({ query: kindTerm, resultLimit: 2147483646 }).resultLimit, 2147483646);
  assert.is(parseQuerySpec({ query: kindTerm, resultLimit: 2147483647 }).resultLimit, undefined);
});

function nested(depth: number): unknown {
  let q: unknown = kindTerm;
  for (let i = 1; i < depth; i++) q = { booleanClauses: [q] };
  return q;
}

test('limits: nesting depth and clause count', () => {
  parseQuerySpec({ query: nested(limits.queryClauseDepthMax) });
  rejects({ query: nested(limits.queryClauseDepthMax + 1) }, /nested deeper than 32/);
  const wide = (n: number) => ({ booleanClauses: Array.from({ length: n }, () => ({ occurance: 'SHOULD_OCCUR', ...kindTerm })) });
  parseQuerySpec({ query: wide(limits.queryClausesMax - 1) });
  rejects({ query: wide(limits.queryClausesMax) }, /more than 1024 clauses/);
});

// ---- Round trip: parse(echo(plan)) is the same plan ----

const termArb = fc.oneof(
  fc.record(
    {
      propertyName: fc.string({ maxLength: 8 }),
      matchValue: fc.string({ maxLength: 8 }),
      matchType: fc.constantFrom('TERM', 'PHRASE', 'WILDCARD', 'PREFIX'),
    },
    { noNullPrototype: true, requiredKeys: ['propertyName', 'matchValue'] },
  ),
  fc.record(
    {
      propertyName: fc.string({ maxLength: 8 }),
      range: fc.record(
        {
          type: fc.constantFrom('LONG', 'DOUBLE', 'DATE'),
          min: fc.integer({ min: -100, max: 0 }),
          max: fc.integer({ min: 0, max: 100 }),
          isMinInclusive: fc.boolean(),
          isMaxInclusive: fc.boolean(),
        },
        { noNullPrototype: true, requiredKeys: ['type', 'min'] },
      ),
    },
    { noNullPrototype: true },
  ),
);
const occuranceArb = fc.constantFrom('MUST_OCCUR', 'MUST_NOT_OCCUR', 'SHOULD_OCCUR');
const { query: queryArb } = fc.letrec<{ query: unknown }>((tie) => ({
  query: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ occurance: occuranceArb, term: termArb }, { noNullPrototype: true, requiredKeys: ['term'] }),
    fc.record(
      { occurance: occuranceArb, booleanClauses: fc.array(tie('query'), { maxLength: 4 }) },
      { noNullPrototype: true, requiredKeys: ['booleanClauses'] },
    ),
  ),
}));
const specArb = fc.record(
  {
    query: queryArb,
    options: fc.uniqueArray(fc.constantFrom('EXPAND_CONTENT', 'INCLUDE_ALL_VERSIONS', 'INCLUDE_DELETED', 'SORT', 'DO_NOT_REFRESH')),
    resultLimit: fc.integer({ min: 1, max: 1000 }),
    sortTerm: fc.record(
      { propertyName: fc.string({ maxLength: 5 }), propertyType: fc.constantFrom('STRING', 'LONG') },
      { noNullPrototype: true },
    ),
    sortOrder: fc.constantFrom('ASC', 'DESC'),
  },
  { noNullPrototype: true, requiredKeys: ['query', 'sortTerm'] },
);

test('property: parsing the echo gives back the same plan', () => {
  fc.assert(
    fc.property(specArb, (spec) => {
      const plan: QueryPlan = parseQuerySpec(spec);
      const echo = JSON.parse(JSON.stringify(querySpecToJson(plan)));
      assert.equal(parseQuerySpec(echo), plan);
    }),
    { numRuns: 300 },
  );
});

test('offset: a non-negative integer, echoed when above 0; COUNT ignores it (query-tasks)', () => {
  const plan = parseQuerySpec({ query: kindTerm, offset: 2 });
  assert.is(plan.offset, 2);
  assert.is(querySpecToJson(plan).offset, 2);
  assert.is(parseQuerySpec({ query: kindTerm }).offset, 0);
  assert.is(querySpecToJson(parseQuerySpec({ query: kindTerm, offset: 0 })).offset, undefined);
  rejects({ query: kindTerm, offset: -1 }, 'querySpec.offset must be a non-negative integer');
  rejects({ query: kindTerm, offset: 1.5 }, 'querySpec.offset must be a non-negative integer');
  rejects({ query: kindTerm, offset: limits.odataSkipMax + 1 }, `querySpec.offset must be at most ${limits.odataSkipMax}`);
});

test.run();
