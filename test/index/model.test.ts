/**
 * Property test: random histories (updates, deletes, resets, expirations, retention) and random
 * queries, run through DocumentIndex and through a brute-force model that keeps plain arrays,
 * flattens every document and evaluates the query by hand. Orders must agree exactly.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { JsonValue, ServiceDocument } from '../../lib/document.js';
import { parseQuerySpec, type PlanQuery } from '../../lib/query/spec.js';
import { forEachIndexedField, type IndexedValue } from '../../index/fields.js';
import { DocumentIndex } from '../../index/views.js';
import { doc, rec } from './support.js';

const RETENTION = 3;
const NOW = 5_000;
const LINKS = ['/f/a', '/f/b', '/f/c', '/f/d', '/g/a'];
const NAMES = ['x', 'y', 'xy', 'z'];
const TAGS = ['r', 'g', 'b'];

interface Op {
  link: number;
  name: string;
  tags: string[];
  k?: string;
  n: number;
  del: boolean;
  reset: boolean;
  expiration: number;
}

const opArb: fc.Arbitrary<Op> = fc.record(
  {
    link: fc.nat({ max: LINKS.length - 1 }),
    name: fc.constantFrom(...NAMES),
    tags: fc.subarray(TAGS),
    k: fc.constantFrom('v1', 'v2'),
    n: fc.integer({ min: 0, max: 9 }),
    del: fc.boolean(),
    reset: fc.boolean(),
    expiration: fc.constantFrom(0, 0, 0, 2_500, 4_000, 6_000),
  },
  { noNullPrototype: true, requiredKeys: ['link', 'name', 'tags', 'n', 'del', 'reset', 'expiration'] },
);

const leafArb = fc.oneof(
  fc.record(
    {
      propertyName: fc.constant('name'),
      matchValue: fc.constantFrom(...NAMES, 'x*', '?', '*y'),
      matchType: fc.constantFrom('TERM', 'PREFIX', 'WILDCARD'),
    },
    { noNullPrototype: true },
  ),
  fc.record({ propertyName: fc.constant('tags.item'), matchValue: fc.constantFrom(...TAGS) }, { noNullPrototype: true }),
  fc.record({ propertyName: fc.constant('kv.k'), matchValue: fc.constantFrom('v1', 'v2') }, { noNullPrototype: true }),
  fc.record(
    {
      propertyName: fc.constant('documentSelfLink'),
      matchValue: fc.constantFrom('/f/', '/g', '/f/a'),
      matchType: fc.constantFrom('PREFIX', 'TERM'),
    },
    { noNullPrototype: true },
  ),
  fc.record(
    {
      propertyName: fc.constant('n'),
      range: fc.record(
        {
          type: fc.constantFrom('LONG', 'DOUBLE'),
          min: fc.integer({ min: 0, max: 9 }),
          max: fc.integer({ min: 9, max: 12 }),
          isMinInclusive: fc.boolean(),
          isMaxInclusive: fc.boolean(),
        },
        { noNullPrototype: true },
      ),
    },
    { noNullPrototype: true },
  ),
);
const occArb = fc.constantFrom('MUST_OCCUR', 'MUST_OCCUR', 'MUST_NOT_OCCUR', 'SHOULD_OCCUR');
const { query: queryArb } = fc.letrec<{ query: unknown }>((tie) => ({
  query: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ occurance: occArb, term: leafArb }, { noNullPrototype: true }),
    fc.record({ occurance: occArb, booleanClauses: fc.array(tie('query'), { maxLength: 4 }) }, { noNullPrototype: true }),
  ),
}));

// ---- The model ----

interface Entry {
  order: number;
  doc: ServiceDocument;
}

function evalQuery(q: PlanQuery, pairs: Array<[string, IndexedValue]>, top: boolean): boolean {
  if (q.kind === 'boolean') {
    if (top && q.occurance === 'MUST_NOT_OCCUR') return false;
    const sub = (o: string) => q.clauses.filter((c) => c.occurance === o).map((c) => evalQuery(c, pairs, false));
    const must = sub('MUST_OCCUR');
    const not = sub('MUST_NOT_OCCUR');
    const should = sub('SHOULD_OCCUR');
    if (must.length === 0 && should.length === 0) return false;
    if (must.includes(false) || not.includes(true)) return false;
    return must.length > 0 || should.includes(true);
  }
  return pairs.some(([n, v]) => {
    if (n !== q.propertyName) return false;
    if (q.kind === 'range') {
      if (typeof v !== 'number') return false;
      const { min, max, isMinInclusive, isMaxInclusive } = q.range;
      return (min === null || (isMinInclusive ? v >= min : v > min)) && (max === null || (isMaxInclusive ? v <= max : v < max));
    }
    if (typeof v !== 'string') return false;
    if (q.matchType === 'TERM') return v === q.matchValue;
    if (q.matchType === 'PREFIX') return v.startsWith(q.matchValue);
    return glob(q.matchValue, v);
  });
}

function glob(p: string, s: string): boolean {
  if (p === '') return s === '';
  if (p[0] === '*') return glob(p.slice(1), s) || (s !== '' && glob(p, s.slice(1)));
  return s !== '' && (p[0] === '?' || p[0] === s[0]) && glob(p.slice(1), s.slice(1));
}

function flatten(d: ServiceDocument): Array<[string, IndexedValue]> {
  const out: Array<[string, IndexedValue]> = [];
  forEachIndexedField(d, (n, v) => out.push([n, v]));
  return out;
}

const expired = (d: ServiceDocument) => d.documentExpirationTimeMicros > 0 && d.documentExpirationTimeMicros <= NOW;

test('property: indexed queries equal a brute-force scan', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 40 }), queryArb, fc.boolean(), fc.boolean(), (ops, rawQuery, allVersions, includeDeleted) => {
      const idx = new DocumentIndex({ retentionFor: () => RETENTION });
      const model = new Map<string, Entry[]>();
      const next = new Map<string, number>();
      let order = 0;
      let time = 1_000;
      for (const op of ops) {
        const link = LINKS[op.link]!;
        time += 400;
        const version = op.reset ? 0 : (next.get(link) ?? 0);
        next.set(link, version + 1);
        const fields: Record<string, JsonValue> = { name: op.name, tags: op.tags, n: op.n };
        if (op.k !== undefined) fields.kv = { k: op.k };
        const state = doc(link, version, fields, {
          action: op.del ? 'DELETE' : version === 0 ? 'POST' : 'PUT',
          expiration: op.expiration,
          time,
        });
        idx.apply(rec(state, { resetHistory: op.reset }));
        let h = model.get(link) ?? [];
        const latest = h[h.length - 1];
        const latestExp = latest?.doc.documentExpirationTimeMicros ?? 0;
        if (op.reset || (latestExp > 0 && latestExp <= time)) h = [];
        h = h.filter((e) => e.doc.documentVersion !== version);
        h.push({ order: order++, doc: state });
        h.sort((a, b) => a.doc.documentVersion - b.doc.documentVersion);
        model.set(link, h.slice(-RETENTION));
      }
      const options = [...(allVersions ? ['INCLUDE_ALL_VERSIONS'] : []), ...(includeDeleted ? ['INCLUDE_DELETED'] : [])];
      let plan: ReturnType<typeof parseQuerySpec>;
      try {
        plan = parseQuerySpec({ query: rawQuery, options });
      } catch {
        return; // an invalid random query (say, a range with max < min) proves nothing here
      }
      const expected: Entry[] = [];
      for (const h of model.values()) {
        const last = h[h.length - 1]!;
        if (expired(last.doc)) continue;
        for (const e of allVersions ? h : [last]) {
          if (!allVersions && !includeDeleted && e.doc.documentUpdateAction === 'DELETE') continue;
          if (expired(e.doc)) continue;
          if (evalQuery(plan.query, flatten(e.doc), true)) expected.push(e);
        }
      }
      expected.sort((a, b) => b.doc.documentVersion - a.doc.documentVersion || a.order - b.order);
      const got = idx.query(plan, NOW).map((h) => `${h.link}@${h.version}`);
      assert.equal(
        got,
        expected.map((e) => `${e.doc.documentSelfLink}@${e.doc.documentVersion}`),
      );
      const count = () => [...model.values()].reduce((n, h) => n + h.length, 0);
      assert.equal(idx.stats(), { links: model.size, versions: count() });
      // Purging changes what is held, never what a query sees.
      const due = [...model.entries()].filter(([, h]) => {
        const exp = h[h.length - 1]!.doc.documentExpirationTimeMicros;
        return exp > 0 && exp < NOW;
      });
      for (const [link] of due) model.delete(link);
      assert.equal(idx.expire(NOW).sort(), due.map(([link]) => link).sort());
      assert.equal(idx.stats(), { links: model.size, versions: count() });
      assert.equal(
        idx.query(plan, NOW).map((h) => `${h.link}@${h.version}`),
        got,
      );
    }),
    { numRuns: 400 },
  );
});

test.run();
