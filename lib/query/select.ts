/**
 * The pure parts of GROUP_BY and SELECT_LINKS (docs/xenon-compatibility.md, Queries): the links a
 * document names in its link fields, in Xenon's `selectedLinksPerDocument` shape; the order of
 * groups; and the query a group's page runs, which is the task's query with one more MUST clause
 * naming the group's value and GROUP_BY taken off, so a group page is an ordinary page.
 */

import { compareSortKeys, type SortKey } from './merge.js';
import type { GroupBy, QueryJson, QuerySpecJson } from './spec.js';

/**
 * For each named top-level field of `doc`: a string value under the field's name, and each string
 * of an array under `<field>.item.<i>`, as Xenon lists a collection of links.
 */
export function selectedLinksOf(doc: Record<string, unknown>, fields: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fields) {
    const v = doc[f];
    if (typeof v === 'string') out[f] = v;
    else if (Array.isArray(v)) {
      for (const [i, e] of v.entries()) if (typeof e === 'string') out[`${f}.item.${i}`] = e;
    }
  }
  return out;
}

/** Distinct group values in the group order. */
export function orderGroups(values: Iterable<SortKey>, g: GroupBy): SortKey[] {
  const distinct = [...new Set(values)].filter((v) => v !== null);
  return distinct.sort((a, b) => compareSortKeys(a, b, g.order === 'DESC'));
}

/** The name a group goes by in `nextPageLinksPerGroup`. */
export function groupName(value: SortKey): string {
  return String(value);
}

/** The spec of one group's pages: the query AND the group's value, without GROUP_BY. */
export function groupPageSpec(spec: QuerySpecJson, g: GroupBy, value: SortKey, pageSize: number): QuerySpecJson {
  const clause: QueryJson =
    typeof value === 'number'
      ? {
          occurance: 'MUST_OCCUR',
          term: {
            propertyName: g.propertyName,
            range: { type: 'DOUBLE', min: value, max: value, isMinInclusive: true, isMaxInclusive: true },
          },
        }
      : { occurance: 'MUST_OCCUR', term: { propertyName: g.propertyName, matchValue: String(value), matchType: 'TERM' } };
  const { groupByTerm: _a, groupSortTerm: _b, groupSortOrder: _c, groupResultLimit: _d, ...rest } = spec;
  return {
    ...rest,
    query: { occurance: 'MUST_OCCUR', booleanClauses: [{ ...spec.query, occurance: 'MUST_OCCUR' }, clause] },
    resultLimit: pageSize,
    options: spec.options.filter((o) => o !== 'GROUP_BY'),
  };
}
