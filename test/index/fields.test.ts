import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { JsonObject, JsonValue } from '../../lib/document.js';
import { firstValueAt, forEachIndexedField, someValueAt, type IndexedValue } from '../../index/fields.js';

function flatten(doc: JsonObject): Array<[string, IndexedValue]> {
  const out: Array<[string, IndexedValue]> = [];
  forEachIndexedField(doc, (n, v) => out.push([n, v]));
  return out;
}

function valuesAt(doc: JsonObject, name: string): IndexedValue[] {
  const out: IndexedValue[] = [];
  someValueAt(doc, name, (v) => {
    out.push(v);
    return false;
  });
  return out;
}

test('Xenon property names: scalars, maps, collections, nested objects', () => {
  const doc: JsonObject = {
    name: 'foo',
    counter: 5,
    isFromMigration: false,
    keyValues: { key1: 'v1', 'dotted.key': 'v2' },
    tags: ['a', 'b'],
    taskInfo: { stage: 'STARTED', isDirect: true },
    items: [{ sub: 'x', n: 1 }, [1, 'y']],
    nothing: null,
  };
  assert.equal(flatten(doc), [
    ['name', 'foo'],
    ['counter', 5],
    ['isFromMigration', 'false'],
    ['keyValues.key1', 'v1'],
    ['keyValues.dotted.key', 'v2'],
    ['tags.item', 'a'],
    ['tags.item', 'b'],
    ['taskInfo.stage', 'STARTED'],
    ['taskInfo.isDirect', 'true'],
    ['items.item.sub', 'x'],
    ['items.item.n', 1],
    ['items.item.item', 1],
    ['items.item.item', 'y'],
  ]);
  assert.equal(valuesAt(doc, 'keyValues.dotted.key'), ['v2']);
  assert.equal(valuesAt(doc, 'tags.item'), ['a', 'b']);
  assert.equal(valuesAt(doc, 'tags'), []);
  assert.equal(valuesAt(doc, 'keyValues'), []);
  assert.equal(valuesAt(doc, 'taskInfo.isDirect'), ['true']);
  assert.equal(valuesAt(doc, 'items.item.item'), [1, 'y']);
  assert.is(firstValueAt(doc, 'counter', true), 5);
  assert.is(firstValueAt(doc, 'counter', false), undefined);
  assert.is(firstValueAt(doc, 'items.item.item', false), 'y');
});

const keyArb = fc.constantFrom('a', 'b', 'item', 'a.b', 'b.', '', 'x.item');
const { value: valueArb } = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom<JsonValue>('s', 't', true, false, 0, 1.5, null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(keyArb, tie('value'), { maxKeys: 3, noNullPrototype: true }),
  ),
}));
const docArb = fc.dictionary(keyArb, valueArb, { maxKeys: 4, noNullPrototype: true }) as fc.Arbitrary<JsonObject>;

test('property: reading a name back finds exactly the values flattening gave it', () => {
  fc.assert(
    fc.property(docArb, (doc) => {
      const byName = new Map<string, IndexedValue[]>();
      for (const [n, v] of flatten(doc)) byName.set(n, [...(byName.get(n) ?? []), v]);
      for (const [n, vs] of byName) {
        const sort = (xs: IndexedValue[]) => xs.map((x) => JSON.stringify(x)).sort();
        assert.equal(sort(valuesAt(doc, n)), sort(vs), `values at ${JSON.stringify(n)}`);
      }
    }),
    { numRuns: 500 },
  );
});

test.run();
