/**
 * Indexed property names (Xenon's, see docs/xenon-compatibility.md, Queries): how a document flattens into (propertyName, value)
 * pairs, and how one property name is read back from a document. Both sides follow the same rules,
 * so a value found by flattening is exactly a value found by `someValueAt`:
 *
 * - a top-level scalar is indexed under its field name;
 * - an object field `f` with key `k` gives `f.k`, recursively (`taskInfo.stage`, `keyValues.key1`);
 * - an array field `f` gives `f.item` for each element; an object element gives `f.item.<sub>`
 *   (Xenon's collection expansion composes the names that way), a nested array `f.item.item`;
 * - strings index as themselves, booleans as "true"/"false" (both term-matchable); finite numbers
 *   are kept as numbers (range-matchable and sortable, never term-matchable, as Lucene points are);
 *   null is skipped.
 *
 * Unlike Xenon, which indexes maps and collections only when a field says EXPAND, Krypton expands
 * every field: it has no per-service descriptions, and expanding more can only make more queries
 * match, never fewer. Xenon's FIXED_ITEM_NAME (a map's name matching any of its keys and values)
 * is not implemented.
 */

import type { JsonObject, JsonValue } from '../lib/document.js';

export type IndexedValue = string | number;

const hasOwn = Object.prototype.hasOwnProperty;

/** Calls `visit` for every indexed (propertyName, value) pair of `doc`, duplicates included. */
export function forEachIndexedField(doc: JsonObject, visit: (name: string, value: IndexedValue) => void): void {
  for (const key in doc) {
    if (!hasOwn.call(doc, key)) continue;
    const v = doc[key];
    if (v !== undefined) visitValue(key, v, visit);
  }
}

function visitValue(name: string, v: JsonValue, visit: (name: string, value: IndexedValue) => void): void {
  switch (typeof v) {
    case 'string':
      visit(name, v);
      return;
    case 'boolean':
      visit(name, v ? 'true' : 'false');
      return;
    case 'number':
      if (Number.isFinite(v)) visit(name, v);
      return;
    default:
      if (v === null) return;
      if (Array.isArray(v)) {
        const itemName = `${name}.item`;
        for (const e of v) visitValue(itemName, e, visit);
        return;
      }
      for (const key in v) {
        if (!hasOwn.call(v, key)) continue;
        const child = v[key];
        if (child !== undefined) visitValue(`${name}.${key}`, child, visit);
      }
  }
}

/** The scalar a value indexes as, or undefined for null, objects, arrays and non-finite numbers. */
export function indexedScalar(v: JsonValue | undefined): IndexedValue | undefined {
  switch (typeof v) {
    case 'string':
      return v;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      return Number.isFinite(v) ? v : undefined;
    default:
      return undefined;
  }
}

/**
 * True when some value indexed under `name` in `doc` satisfies `pred`. Reads only the path, without
 * flattening the document. Keys may contain dots, so every split of the name at a dot is tried:
 * `a.b.c` is key `a.b.c`, or key `a` then `b.c`, or key `a.b` then `c`, exactly as flattening would
 * have produced the name.
 */
export function someValueAt(doc: JsonObject, name: string, pred: (v: IndexedValue) => boolean): boolean {
  return someInObject(doc, name, pred);
}

function someInObject(obj: JsonObject, rest: string, pred: (v: IndexedValue) => boolean): boolean {
  if (hasOwn.call(obj, rest) && someInValue(obj[rest], undefined, pred)) return true;
  for (let i = rest.indexOf('.'); i >= 0; i = rest.indexOf('.', i + 1)) {
    const key = rest.slice(0, i);
    if (hasOwn.call(obj, key) && someInValue(obj[key], rest.slice(i + 1), pred)) return true;
  }
  return false;
}

/** `rest` is what remains of the name after reaching `v`; undefined when the name ends here. */
function someInValue(v: JsonValue | undefined, rest: string | undefined, pred: (v: IndexedValue) => boolean): boolean {
  if (v === undefined || v === null) return false;
  if (rest === undefined) {
    const s = indexedScalar(v);
    return s !== undefined && pred(s);
  }
  if (Array.isArray(v)) {
    let after: string | undefined;
    if (rest === 'item') after = undefined;
    else if (rest.startsWith('item.')) after = rest.slice(5);
    else return false;
    for (const e of v) if (someInValue(e, after, pred)) return true;
    return false;
  }
  if (typeof v === 'object') return someInObject(v, rest, pred);
  return false;
}

/** The first string (or, with `numeric`, number) indexed under `name`, for sorting. */
export function firstValueAt(doc: JsonObject, name: string, numeric: boolean): IndexedValue | undefined {
  let found: IndexedValue | undefined;
  someValueAt(doc, name, (v) => {
    if ((typeof v === 'number') !== numeric) return false;
    found = v;
    return true;
  });
  return found;
}
