import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { JsonValue } from '../../lib/document.js';
import { isKryptonError } from '../../lib/errors.js';
import { parseOData, type ODataQuery } from '../../lib/query/odata.js';
import { parseQuerySpec } from '../../lib/query/spec.js';
import { DocumentIndex } from '../../index/views.js';
import { doc, rec } from './support.js';

/**
 * Random `$filter` expressions against a model: every filter the translation accepts, run on the
 * index as a query task's querySpec, selects exactly the documents a direct evaluation of the
 * expression selects (negations, De Morgan, `any`/`all` and the string functions included).
 */

interface Fields {
  name?: string;
  counter?: number;
  tags?: string[];
  flag?: boolean;
}

const NAMES = ['a', 'b', "o'q", 'a b', 'x*y'];
const TAGS = ['x', 'y', 'z'];

const DOCS: { link: string; f: Fields }[] = Array.from({ length: 48 }, (_, i) => {
  const f: Fields = {};
  if (i % 7 !== 0) f.name = NAMES[i % NAMES.length]!;
  if (i % 5 !== 0) f.counter = i % 10;
  if (i % 3 !== 0) f.tags = TAGS.filter((_, k) => ((i >> k) & 1) === 1);
  if (i % 4 !== 0) f.flag = i % 2 === 0;
  return { link: `/core/examples/m${i}`, f };
});

const index = new DocumentIndex({ retentionFor: () => 10 });
for (const d of DOCS) index.apply(rec(doc(d.link, 0, d.f as Record<string, JsonValue>)));

type Node =
  | { op: 'and' | 'or'; items: Node[] }
  | { op: 'not'; item: Node }
  | { op: 'str'; field: 'name'; verb: 'eq' | 'ne'; value: string }
  | { op: 'num'; verb: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge'; value: number }
  | { op: 'bool'; verb: 'eq' | 'ne'; value: boolean }
  | { op: 'coll'; field: 'tags' | 'name'; verb: 'any' | 'all'; items: string[] }
  | { op: 'text'; fn: 'startswith' | 'endswith' | 'contains' | 'substringof'; value: string };

const leaf: fc.Arbitrary<Node> = fc.oneof(
  fc.record({
    op: fc.constant('text' as const),
    fn: fc.constantFrom('startswith' as const, 'endswith' as const, 'contains' as const, 'substringof' as const),
    value: fc.constantFrom('a', 'b', "o'", "'q", ' b', 'z', '*', 'a b'),
  }),
  fc.record({
    op: fc.constant('str' as const),
    field: fc.constant('name' as const),
    verb: fc.constantFrom('eq' as const, 'ne' as const),
    value: fc.constantFrom(...NAMES, 'zz'),
  }),
  fc.record({
    op: fc.constant('num' as const),
    verb: fc.constantFrom('eq' as const, 'ne' as const, 'lt' as const, 'le' as const, 'gt' as const, 'ge' as const),
    value: fc.integer({ min: -1, max: 10 }),
  }),
  fc.record({ op: fc.constant('bool' as const), verb: fc.constantFrom('eq' as const, 'ne' as const), value: fc.boolean() }),
  fc.record({
    op: fc.constant('coll' as const),
    field: fc.constantFrom('tags' as const, 'name' as const),
    verb: fc.constantFrom('any' as const, 'all' as const),
    items: fc.uniqueArray(fc.constantFrom(...TAGS, 'a', 'b'), { minLength: 1, maxLength: 3 }),
  }),
);

const nodeArb: fc.Arbitrary<Node> = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({ op: fc.constant('not' as const), item: tie('node') }),
    fc.record({ op: fc.constantFrom('and' as const, 'or' as const), items: fc.array(tie('node'), { minLength: 2, maxLength: 3 }) }),
  ),
})).node;

function quote(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

function render(n: Node): string {
  switch (n.op) {
    case 'and':
    case 'or':
      return `(${n.items.map(render).join(` ${n.op} `)})`;
    case 'not':
      return `not (${render(n.item)})`;
    case 'str':
      return `${n.field} ${n.verb} ${quote(n.value)}`;
    case 'num':
      return `counter ${n.verb} ${n.value}`;
    case 'bool':
      return `flag ${n.verb} ${n.value}`;
    case 'coll':
      return `${n.field} ${n.verb} ${quote(n.items.join(';'))}`;
    case 'text':
      return n.fn === 'substringof' ? `substringof(${quote(n.value)},name)` : `${n.fn}(name,${quote(n.value)})`;
  }
}

/** What the expression means, evaluated on a document's fields directly. */
function holds(n: Node, f: Fields): boolean {
  switch (n.op) {
    case 'and':
      return n.items.every((i) => holds(i, f));
    case 'or':
      return n.items.some((i) => holds(i, f));
    case 'not':
      return !holds(n.item, f);
    case 'str':
      return (f.name === n.value) === (n.verb === 'eq');
    case 'num': {
      const c = f.counter;
      if (n.verb === 'ne') return c !== n.value;
      if (c === undefined) return false;
      return { eq: c === n.value, lt: c < n.value, le: c <= n.value, gt: c > n.value, ge: c >= n.value }[n.verb];
    }
    case 'bool':
      return (f.flag === n.value) === (n.verb === 'eq');
    case 'coll': {
      const values = n.field === 'tags' ? (f.tags ?? []) : f.name === undefined ? [] : [f.name];
      return n.verb === 'any' ? n.items.some((i) => values.includes(i)) : n.items.every((i) => values.includes(i));
    }
    case 'text': {
      const v = f.name;
      if (v === undefined) return false;
      return n.fn === 'startswith' ? v.startsWith(n.value) : n.fn === 'endswith' ? v.endsWith(n.value) : v.includes(n.value);
    }
  }
}

function run(filter: string): string[] {
  const req = parseOData([['$filter', filter]], { target: { kind: 'queries' } }) as ODataQuery;
  return index
    .query(parseQuerySpec(req.querySpec), 10_000)
    .map((h) => h.link)
    .sort();
}

test('every random filter selects what evaluating it directly selects', () => {
  fc.assert(
    fc.property(nodeArb, (n) => {
      const filter = render(n);
      let got: string[];
      try {
        got = run(filter);
      } catch (e) {
        // Only the documented bounds may refuse a well-formed filter.
        if (isKryptonError(e) && /nested deeper|more than \d+ clauses/.test(e.message)) return;
        throw e;
      }
      const want = DOCS.filter((d) => holds(n, d.f))
        .map((d) => d.link)
        .sort();
      assert.equal(got, want, filter);
    }),
    { numRuns: 400 },
  );
});

test('arbitrary text as $filter is answered or refused with INVALID_QUERY, never a crash', () => {
  const piece = fc.constantFrom(
    'name',
    'eq',
    'ne',
    'and',
    'or',
    'not',
    '(',
    ')',
    "'a'",
    "'",
    '1',
    '-2.5',
    'any',
    "'x;y'",
    'true',
    'null',
    ',',
    'f(',
    ' ',
    '/',
    '*',
  );
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.array(piece, { maxLength: 12 }).map((a) => a.join(' ')),
      ),
      (s) => {
        try {
          const req = parseOData([['$filter', s]], { target: { kind: 'queries' } }) as ODataQuery;
          parseQuerySpec(req.querySpec);
        } catch (e) {
          assert.ok(isKryptonError(e) && e.code === 'INVALID_QUERY', `${JSON.stringify(s)}: ${String(e)}`);
        }
      },
    ),
    { numRuns: 2000 },
  );
});

test.run();
