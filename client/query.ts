/**
 * A small builder for Xenon query specifications (the `querySpec` of a QueryTask; the shapes
 * are lib/query/spec.ts's): terms, prefixes, wildcards and numeric ranges joined by MUST,
 * MUST_NOT and SHOULD, the kind of document, sorting, expansion, counting and paging. It only
 * builds JSON; the host checks it and refuses what it does not support.
 */

import type { MatchType, QueryJson, QuerySpecJson, SortOrder } from '../lib/query/spec.js';

type Occurance = 'MUST_OCCUR' | 'MUST_NOT_OCCUR' | 'SHOULD_OCCUR';

export interface RangeBounds {
  min?: number;
  max?: number;
  /** Both bounds are inclusive unless said otherwise. */
  minInclusive?: boolean;
  maxInclusive?: boolean;
  type?: 'LONG' | 'DOUBLE' | 'DATE';
}

export class QueryBuilder {
  private readonly clauses: QueryJson[] = [];
  private readonly options = new Set<string>();
  private sort: { propertyName: string; order: SortOrder; propertyType: 'STRING' | 'LONG' | 'DOUBLE' } | undefined;
  private limit: number | undefined;
  private topCount: number | undefined;

  /** documentKind equals `kind`. */
  kind(kind: string): this {
    return this.term('documentKind', kind);
  }

  /** `name` equals `value` (nested names as `keyValues.k`, `tags.item`). */
  eq(name: string, value: string | number | boolean): this {
    return this.term(name, String(value));
  }

  prefix(name: string, value: string): this {
    return this.term(name, value, 'PREFIX');
  }

  /** `*` and `?` wildcards. */
  like(name: string, pattern: string): this {
    return this.term(name, pattern, 'WILDCARD');
  }

  range(name: string, b: RangeBounds, occurance: Occurance = 'MUST_OCCUR'): this {
    this.clauses.push({
      occurance,
      term: {
        propertyName: name,
        range: {
          type: b.type ?? 'LONG',
          min: b.min ?? null,
          max: b.max ?? null,
          isMinInclusive: b.minInclusive ?? true,
          isMaxInclusive: b.maxInclusive ?? true,
        },
      },
    });
    return this;
  }

  /** None of `q`'s clauses as a whole may match. */
  not(q: QueryBuilder): this {
    this.clauses.push({ occurance: 'MUST_NOT_OCCUR', booleanClauses: q.clauses.map((c) => ({ ...c })) });
    return this;
  }

  /** At least one of the alternatives matches (each a builder whose clauses must all match). */
  anyOf(...alternatives: QueryBuilder[]): this {
    this.clauses.push({
      occurance: 'MUST_OCCUR',
      booleanClauses: alternatives.map((a) => ({ occurance: 'SHOULD_OCCUR', booleanClauses: a.clauses.map((c) => ({ ...c })) })),
    });
    return this;
  }

  /** The documents themselves in `results.documents`, not only their links. */
  expand(): this {
    this.options.add('EXPAND_CONTENT');
    return this;
  }

  count(): this {
    this.options.add('COUNT');
    return this;
  }

  sortBy(name: string, order: SortOrder = 'ASC', propertyType: 'STRING' | 'LONG' | 'DOUBLE' = 'STRING'): this {
    this.sort = { propertyName: name, order, propertyType };
    this.options.add('SORT');
    return this;
  }

  /** The first `n` results only. */
  top(n: number): this {
    this.topCount = n;
    this.options.add('TOP_RESULTS');
    return this;
  }

  /** Pages of `n` results, read through `nextPageLink`. */
  pageSize(n: number): this {
    this.limit = n;
    return this;
  }

  toSpec(): Omit<QuerySpecJson, 'resultLimit'> & { resultLimit?: number } {
    const query: QueryJson = this.clauses.length === 1 ? { ...this.clauses[0]! } : { booleanClauses: this.clauses.map((c) => ({ ...c })) };
    const spec: Omit<QuerySpecJson, 'resultLimit'> & { resultLimit?: number } = { query, options: [...this.options] };
    if (this.sort) {
      spec.sortTerm = { propertyName: this.sort.propertyName, propertyType: this.sort.propertyType };
      spec.sortOrder = this.sort.order;
    }
    const limit = this.topCount ?? this.limit;
    if (limit !== undefined) spec.resultLimit = limit;
    return spec;
  }

  private term(name: string, value: string, matchType: MatchType = 'TERM'): this {
    this.clauses.push({ occurance: 'MUST_OCCUR', term: { propertyName: name, matchValue: value, matchType } });
    return this;
  }
}

export function query(): QueryBuilder {
  return new QueryBuilder();
}
