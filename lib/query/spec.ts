/**
 * Xenon's QueryTask `querySpec`: the JSON shapes clients send, the validation that turns untrusted
 * JSON into a typed, normalized QueryPlan (or a KryptonError INVALID_QUERY with Xenon's message
 * where Xenon has one), and the echo of a plan back into the querySpec JSON Xenon returns, with
 * `occurance`, `matchType` and `resultLimit` filled (docs/xenon-compatibility.md, Queries). Matching itself
 * lives in `index/`; this module only says what a query means.
 */

import { KryptonError } from '../errors.js';
import { limits } from '../limits.js';

export type Occurance = 'MUST_OCCUR' | 'MUST_NOT_OCCUR' | 'SHOULD_OCCUR';
export type MatchType = 'TERM' | 'PHRASE' | 'WILDCARD' | 'PREFIX';
export type RangeType = 'LONG' | 'DOUBLE' | 'DATE';
export type SortOrder = 'ASC' | 'DESC';
/** Xenon's ServiceDocumentDescription.TypeName, as accepted in `propertyType`. */
export type PropertyType =
  | 'LONG'
  | 'STRING'
  | 'BYTES'
  | 'PODO'
  | 'COLLECTION'
  | 'MAP'
  | 'BOOLEAN'
  | 'DOUBLE'
  | 'InternetAddressV4'
  | 'InternetAddressV6'
  | 'DATE'
  | 'URI'
  | 'ENUM';

/**
 * Every QueryOption name Xenon 1.7 knows, in its enum (ordinal) order: Xenon serializes the
 * options EnumSet in this order, so the echo uses it too. The tail after TIME_SNAPSHOT was added
 * late and its relative order is not confirmed.
 */
export const XENON_QUERY_OPTIONS = [
  'CONTINUOUS',
  'COUNT',
  'DO_NOT_REFRESH',
  'TOP_RESULTS',
  'EXPAND_CONTENT',
  'EXPAND_BINARY_CONTENT',
  'EXPAND_BUILTIN_CONTENT_ONLY',
  'EXPAND_LINKS',
  'INCLUDE_ALL_VERSIONS',
  'INCLUDE_DELETED',
  'SORT',
  'TASK',
  'BROADCAST',
  'OWNER_SELECTION',
  'SELECT_LINKS',
  'GROUP_BY',
  'TIME_SNAPSHOT',
  'EXPAND_SELECTED_FIELDS',
  'READ_AFTER_WRITE_CONSISTENCY',
  'CONTINUOUS_STOP_MATCH',
  'SINGLE_USE',
  'FORWARD_ONLY',
  'INDEXED_METADATA',
] as const;
export type XenonQueryOption = (typeof XENON_QUERY_OPTIONS)[number];

/** Options Krypton implements. */
export const SUPPORTED_QUERY_OPTIONS = [
  'EXPAND_CONTENT',
  'COUNT',
  'INCLUDE_ALL_VERSIONS',
  'INCLUDE_DELETED',
  'SORT',
  'TOP_RESULTS',
  'BROADCAST',
  'OWNER_SELECTION',
  'TIME_SNAPSHOT',
  'FORWARD_ONLY',
  'GROUP_BY',
  'SELECT_LINKS',
  'EXPAND_LINKS',
  'EXPAND_SELECTED_FIELDS',
  'CONTINUOUS',
  'CONTINUOUS_STOP_MATCH',
  'READ_AFTER_WRITE_CONSISTENCY',
  'EXPAND_BUILTIN_CONTENT_ONLY',
] as const satisfies readonly XenonQueryOption[];

/**
 * Options accepted and echoed but without effect: they only tune Xenon's Lucene searchers
 * (refresh, single-use paging cursors, metadata indexing) or are internal markers, and Krypton's
 * in-memory index gives the same answers without them.
 */
export const IGNORED_QUERY_OPTIONS = [
  'DO_NOT_REFRESH',
  'SINGLE_USE',
  'INDEXED_METADATA',
  'TASK',
] as const satisfies readonly XenonQueryOption[];

export type QueryOptionName = (typeof SUPPORTED_QUERY_OPTIONS)[number] | (typeof IGNORED_QUERY_OPTIONS)[number];

/** Xenon's Integer.MAX_VALUE, the resultLimit it reports when a client gives none. */
export const RESULT_LIMIT_NONE = limits.queryResultLimitDefault;

// ---- JSON shapes (what clients send and what the echo returns) ----

export interface NumericRangeJson {
  type?: RangeType;
  min?: number | null;
  max?: number | null;
  isMinInclusive?: boolean;
  isMaxInclusive?: boolean;
  precisionStep?: number;
}

export interface QueryTermJson {
  propertyName?: string;
  propertyType?: PropertyType;
  matchValue?: string;
  matchType?: MatchType;
  range?: NumericRangeJson;
  sortOrder?: SortOrder;
}

export interface QueryJson {
  occurance?: Occurance;
  term?: QueryTermJson;
  booleanClauses?: QueryJson[];
}

export interface QuerySpecJson {
  query: QueryJson;
  sortTerm?: QueryTermJson;
  additionalSortTerms?: QueryTermJson[];
  sortOrder?: SortOrder;
  resultLimit: number;
  /** Results skipped before the first one returned (Xenon's QuerySpecification.offset). */
  offset?: number;
  timeSnapshotBoundaryMicros?: number;
  groupByTerm?: QueryTermJson;
  groupSortTerm?: QueryTermJson;
  groupSortOrder?: SortOrder;
  groupResultLimit?: number;
  linkTerms?: QueryTermJson[];
  selectTerms?: QueryTermJson[];
  expectedResultCount?: number;
  options: string[];
}

// ---- The normalized plan ----

export interface NumericRange {
  type: RangeType;
  min: number | null;
  max: number | null;
  isMinInclusive: boolean;
  isMaxInclusive: boolean;
  precisionStep: number;
}

export interface TermQuery {
  kind: 'term';
  occurance: Occurance;
  propertyName: string;
  propertyType?: PropertyType;
  matchType: MatchType;
  matchValue: string;
}

export interface RangeQuery {
  kind: 'range';
  occurance: Occurance;
  propertyName: string;
  propertyType?: PropertyType;
  /** Xenon fills TERM here too; kept only for the echo. */
  matchType: MatchType;
  range: NumericRange;
}

export interface BooleanQuery {
  kind: 'boolean';
  occurance: Occurance;
  clauses: PlanQuery[];
}

export type PlanQuery = TermQuery | RangeQuery | BooleanQuery;

export interface SortTerm {
  propertyName: string;
  propertyType: PropertyType;
  order: SortOrder;
}

export interface QueryPlan {
  query: PlanQuery;
  /** Accepted options (supported and ignored), deduplicated, in Xenon's order. */
  options: readonly QueryOptionName[];
  expandContent: boolean;
  count: boolean;
  includeAllVersions: boolean;
  includeDeleted: boolean;
  topResults: boolean;
  /** Results skipped before the first one returned or paged; COUNT counts every match regardless. */
  offset: number;
  /** As given; undefined when the client sent none or 2147483647 (no paging; the echo says 2147483647). */
  resultLimit: number | undefined;
  /** BROADCAST: every host of the group runs the query and the entry host merges the answers. */
  broadcast: boolean;
  /** OWNER_SELECTION: each host that runs the query keeps only the documents it owns. */
  ownerSelection: boolean;
  /** TIME_SNAPSHOT: the index as it stood at this time (microseconds), within the versions kept. */
  timeSnapshotMicros: number | undefined;
  /** FORWARD_ONLY: pages carry no prevPageLink. */
  forwardOnly: boolean;
  /** READ_AFTER_WRITE_CONSISTENCY: gathered from every host, a majority of them answering. */
  readAfterWrite: boolean;
  /**
   * READ_AFTER_WRITE_CONSISTENCY with OWNER_SELECTION: linearizable per document (Krypton's
   * meaning). Each owner answers its documents as a GET routed to it would, committed and under its
   * lease, every owner of one view answering (server/tasks/query-gather.ts); one page, no TIME_SNAPSHOT.
   */
  linearizable: boolean;
  /** EXPAND_BUILTIN_CONTENT_ONLY: `documents` with only the built-in `document*` fields. */
  builtinOnly: boolean;
  /** GROUP_BY: the field whose values make the groups, the groups' order and how many one answer lists. */
  groupBy: GroupBy | undefined;
  /** SELECT_LINKS: the top-level fields whose link values are collected. */
  selectLinks: readonly string[] | undefined;
  /** EXPAND_LINKS: the linked documents' states too. */
  expandLinks: boolean;
  /** EXPAND_SELECTED_FIELDS: `documents` holds only these top-level fields. */
  selectFields: readonly string[] | undefined;
  /** CONTINUOUS (or CONTINUOUS_STOP_MATCH): later matches are delivered to the task's subscribers. */
  continuous: boolean;
  /** CONTINUOUS_STOP_MATCH: a document that stops matching is delivered too. */
  stopMatch: boolean;
  /** The task waits until at least this many documents match (or it expires). */
  expectedResultCount: number | undefined;
  /** The extra fields as given, normalized, for the echo. */
  extrasJson: QueryExtrasJson;
  /** Sort keys, primary first, present only with SORT. */
  sort: readonly SortTerm[] | undefined;
  /** The sort fields as given, normalized, for the echo. */
  sortTerm: QueryTermJson | undefined;
  additionalSortTerms: QueryTermJson[] | undefined;
  sortOrder: SortOrder | undefined;
}

export interface GroupBy {
  propertyName: string;
  /** LONG, DOUBLE or DATE: groups by numeric value; else by string value. */
  numeric: boolean;
  order: SortOrder;
  /** groupResultLimit: groups per answer (the rest through nextPageLink). */
  limit: number | undefined;
}

export type QueryExtrasJson = Pick<
  QuerySpecJson,
  'groupByTerm' | 'groupSortTerm' | 'groupSortOrder' | 'groupResultLimit' | 'linkTerms' | 'selectTerms' | 'expectedResultCount'
>;

// ---- Validation ----

const OCCURANCES: readonly Occurance[] = ['MUST_OCCUR', 'MUST_NOT_OCCUR', 'SHOULD_OCCUR'];
const MATCH_TYPES: readonly MatchType[] = ['TERM', 'PHRASE', 'WILDCARD', 'PREFIX'];
const RANGE_TYPES: readonly RangeType[] = ['LONG', 'DOUBLE', 'DATE'];
const SORT_ORDERS: readonly SortOrder[] = ['ASC', 'DESC'];
/** Every property type a query term or sort term may name (OData's `$orderbytype` takes the same). */
export const PROPERTY_TYPES: readonly PropertyType[] = [
  'LONG',
  'STRING',
  'BYTES',
  'PODO',
  'COLLECTION',
  'MAP',
  'BOOLEAN',
  'DOUBLE',
  'InternetAddressV4',
  'InternetAddressV6',
  'DATE',
  'URI',
  'ENUM',
];
const INT_MAX = 2147483647;

type Obj = { readonly [key: string]: unknown };

function fail(message: string): never {
  throw new KryptonError('INVALID_QUERY', message);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Null and absent are the same to Xenon's JSON reader. */
function present(v: unknown): boolean {
  return v !== undefined && v !== null;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], what: string): T {
  if (typeof v !== 'string') fail(`${what} must be a string`);
  if (!(allowed as readonly string[]).includes(v)) fail(`unknown ${what.split('.').pop()}: ${v}`);
  return v as T;
}

function optBool(v: unknown, what: string): boolean {
  if (!present(v)) return false;
  if (typeof v !== 'boolean') fail(`${what} must be a boolean`);
  return v;
}

function optNumber(v: unknown, what: string): number | null {
  if (!present(v)) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${what} must be a number`);
  return v;
}

/** Validates untrusted `querySpec` JSON; throws KryptonError('INVALID_QUERY') on any fault. */
export function parseQuerySpec(raw: unknown): QueryPlan {
  if (!present(raw)) fail('querySpec is required');
  if (!isObj(raw)) fail('querySpec must be an object');
  if (!present(raw.query)) fail('querySpec.query is required');

  const options = parseOptions(raw.options);
  const has = (o: QueryOptionName): boolean => options.includes(o);
  checkExpandOptions(has);

  let timeSnapshotMicros: number | undefined;
  const boundary = raw.timeSnapshotBoundaryMicros;
  if (has('TIME_SNAPSHOT')) {
    if (!present(boundary)) fail('timeSnapshotBoundaryMicros is required with TIME_SNAPSHOT');
    if (typeof boundary !== 'number' || !Number.isSafeInteger(boundary) || boundary < 0) {
      fail('querySpec.timeSnapshotBoundaryMicros must be a non-negative integer');
    }
    timeSnapshotMicros = boundary;
  } else if (present(boundary) && boundary !== 0) {
    fail('timeSnapshotBoundaryMicros needs the TIME_SNAPSHOT option');
  }

  const counter = { clauses: 0 };
  const query = parseQuery(raw.query, 'querySpec.query', 1, counter);

  let resultLimit: number | undefined;
  if (present(raw.resultLimit)) {
    const r = raw.resultLimit;
    if (typeof r !== 'number' || !Number.isInteger(r) || r > INT_MAX) fail('querySpec.resultLimit must be an integer');
    if (r <= 0) fail('resultLimit should be a positive integer');
    // Xenon treats Integer.MAX_VALUE as "no limit" (no paging), exactly like an absent limit.
    resultLimit = r === INT_MAX ? undefined : r;
  }

  let offset = 0;
  if (present(raw.offset)) {
    const o = raw.offset;
    if (typeof o !== 'number' || !Number.isInteger(o) || o < 0) fail('querySpec.offset must be a non-negative integer');
    if (o > limits.odataSkipMax) fail(`querySpec.offset must be at most ${limits.odataSkipMax}`);
    offset = o;
  }

  let sortOrder: SortOrder | undefined;
  if (present(raw.sortOrder)) sortOrder = oneOf(raw.sortOrder, SORT_ORDERS, 'querySpec.sortOrder');
  // Xenon looks at sort terms only with SORT, so only then are their name and type required.
  const sorting = has('SORT');
  const sortTerm = present(raw.sortTerm) ? parseSortTerm(raw.sortTerm, 'querySpec.sortTerm', sorting) : undefined;
  let additionalSortTerms: QueryTermJson[] | undefined;
  if (present(raw.additionalSortTerms)) {
    if (!Array.isArray(raw.additionalSortTerms)) fail('querySpec.additionalSortTerms must be an array');
    additionalSortTerms = raw.additionalSortTerms.map((t, i) => parseSortTerm(t, `querySpec.additionalSortTerms[${i}]`, sorting));
  }

  let sort: SortTerm[] | undefined;
  if (sorting) {
    if (sortTerm === undefined) fail('querySpec.sortTerm is required with SORT');
    sortOrder ??= 'ASC';
    sortTerm.sortOrder = sortOrder;
    for (const t of additionalSortTerms ?? []) t.sortOrder ??= 'ASC';
    sort = [sortTerm, ...(additionalSortTerms ?? [])].map((t) => ({
      // parseSortTerm required both when sorting.
      propertyName: t.propertyName ?? '',
      propertyType: t.propertyType ?? 'STRING',
      order: t.sortOrder ?? 'ASC',
    }));
    if (has('TOP_RESULTS') && resultLimit === undefined) {
      fail('resultLimit should be a positive integer less than MAX_VALUE');
    }
  }

  return {
    query,
    options,
    ...parseExtras(raw, has, sort !== undefined, resultLimit),
    expandContent: has('EXPAND_CONTENT'),
    count: has('COUNT'),
    includeAllVersions: has('INCLUDE_ALL_VERSIONS'),
    includeDeleted: has('INCLUDE_DELETED'),
    topResults: has('TOP_RESULTS'),
    offset,
    broadcast: has('BROADCAST'),
    ownerSelection: has('OWNER_SELECTION'),
    timeSnapshotMicros,
    forwardOnly: has('FORWARD_ONLY'),
    ...consistency(has, resultLimit),
    builtinOnly: has('EXPAND_BUILTIN_CONTENT_ONLY'),
    resultLimit,
    sort,
    sortTerm,
    additionalSortTerms,
    sortOrder,
  };
}

/** READ_AFTER_WRITE_CONSISTENCY, alone or with OWNER_SELECTION (linearizable), and what that cannot be combined with. */
function consistency(
  has: (o: QueryOptionName) => boolean,
  resultLimit: number | undefined,
): Pick<QueryPlan, 'readAfterWrite' | 'linearizable'> {
  const readAfterWrite = has('READ_AFTER_WRITE_CONSISTENCY');
  if (!readAfterWrite || !has('OWNER_SELECTION')) return { readAfterWrite, linearizable: false };
  const what = 'READ_AFTER_WRITE_CONSISTENCY with OWNER_SELECTION (a linearizable query)';
  for (const o of ['TIME_SNAPSHOT', 'CONTINUOUS', 'CONTINUOUS_STOP_MATCH'] as const)
    if (has(o)) fail(`${what} is not compatible with ${o}`);
  if (resultLimit !== undefined && !has('TOP_RESULTS') && !has('COUNT') && !has('GROUP_BY'))
    fail(`${what} answers in one page: resultLimit needs TOP_RESULTS`);
  return { readAfterWrite, linearizable: true };
}

/** The options that fill `documents` against COUNT and each other. */
function checkExpandOptions(has: (o: QueryOptionName) => boolean): void {
  if (has('EXPAND_CONTENT') && has('COUNT')) fail('EXPAND_CONTENT is not compatible with COUNT');
  if (has('EXPAND_BUILTIN_CONTENT_ONLY') && has('COUNT')) fail('EXPAND_BUILTIN_CONTENT_ONLY is not compatible with COUNT');
  if (has('EXPAND_BUILTIN_CONTENT_ONLY') && has('EXPAND_SELECTED_FIELDS')) {
    fail('EXPAND_BUILTIN_CONTENT_ONLY is not compatible with EXPAND_SELECTED_FIELDS');
  }
}

type Extras = Pick<
  QueryPlan,
  'groupBy' | 'selectLinks' | 'expandLinks' | 'selectFields' | 'expectedResultCount' | 'extrasJson' | 'continuous' | 'stopMatch'
>;

const NUMERIC_TYPES: readonly PropertyType[] = ['LONG', 'DOUBLE', 'DATE'];

/** GROUP_BY, SELECT_LINKS, EXPAND_LINKS, EXPAND_SELECTED_FIELDS and expectedResultCount. */
function parseExtras(raw: Obj, has: (o: QueryOptionName) => boolean, sorted: boolean, resultLimit: number | undefined): Extras {
  const json: QueryExtrasJson = {};
  const needs = (field: string, option: QueryOptionName) => {
    if (present(raw[field]) && !has(option)) fail(`querySpec.${field} needs the ${option} option`);
  };
  let groupBy: GroupBy | undefined;
  for (const f of ['groupByTerm', 'groupSortTerm', 'groupSortOrder', 'groupResultLimit']) needs(f, 'GROUP_BY');
  if (has('GROUP_BY')) {
    if (!present(raw.groupByTerm)) fail('querySpec.groupByTerm is required with GROUP_BY');
    if (!sorted) fail('GROUP_BY needs SORT with a sortTerm (the order within each group)');
    if (has('COUNT')) fail('GROUP_BY is not compatible with COUNT');
    const by = parseSortTerm(raw.groupByTerm, 'querySpec.groupByTerm', false);
    if (by.propertyName === undefined) fail('querySpec.groupByTerm.propertyName is required');
    json.groupByTerm = by;
    let order: SortOrder = 'ASC';
    if (present(raw.groupSortTerm)) {
      const gs = parseSortTerm(raw.groupSortTerm, 'querySpec.groupSortTerm', false);
      if (gs.propertyName !== by.propertyName)
        fail('querySpec.groupSortTerm must name the groupByTerm property: groups are ordered by their value');
      json.groupSortTerm = gs;
      if (gs.sortOrder !== undefined) order = gs.sortOrder;
    }
    if (present(raw.groupSortOrder)) order = json.groupSortOrder = oneOf(raw.groupSortOrder, SORT_ORDERS, 'querySpec.groupSortOrder');
    let limit: number | undefined;
    if (present(raw.groupResultLimit)) {
      const g = raw.groupResultLimit;
      if (typeof g !== 'number' || !Number.isInteger(g) || g <= 0 || g > INT_MAX)
        fail('querySpec.groupResultLimit must be a positive integer');
      json.groupResultLimit = g;
      limit = g === INT_MAX ? undefined : g;
    }
    const numeric = by.propertyType !== undefined && NUMERIC_TYPES.includes(by.propertyType);
    groupBy = { propertyName: by.propertyName, numeric, order, limit };
  }
  if (has('GROUP_BY') && has('TOP_RESULTS') && resultLimit === undefined)
    fail('resultLimit should be a positive integer less than MAX_VALUE');

  needs('linkTerms', 'SELECT_LINKS');
  if (has('EXPAND_LINKS') && !has('SELECT_LINKS')) fail('EXPAND_LINKS needs SELECT_LINKS');
  const selectLinks = has('SELECT_LINKS') ? fieldTerms(raw.linkTerms, 'linkTerms', 'SELECT_LINKS') : undefined;
  if (selectLinks !== undefined) json.linkTerms = selectLinks.map((propertyName) => ({ propertyName }));

  needs('selectTerms', 'EXPAND_SELECTED_FIELDS');
  if (has('EXPAND_SELECTED_FIELDS') && has('COUNT')) fail('EXPAND_SELECTED_FIELDS is not compatible with COUNT');
  const selectFields = has('EXPAND_SELECTED_FIELDS') ? fieldTerms(raw.selectTerms, 'selectTerms', 'EXPAND_SELECTED_FIELDS') : undefined;
  if (selectFields !== undefined) json.selectTerms = selectFields.map((propertyName) => ({ propertyName }));

  let expectedResultCount: number | undefined;
  if (present(raw.expectedResultCount) && raw.expectedResultCount !== 0) {
    const e = raw.expectedResultCount;
    if (typeof e !== 'number' || !Number.isSafeInteger(e) || e < 0) fail('querySpec.expectedResultCount must be a non-negative integer');
    expectedResultCount = json.expectedResultCount = e;
  }
  const continuous = has('CONTINUOUS') || has('CONTINUOUS_STOP_MATCH');
  if (continuous) {
    for (const o of ['COUNT', 'GROUP_BY', 'TIME_SNAPSHOT'] as const) if (has(o)) fail(`CONTINUOUS is not compatible with ${o}`);
    if (expectedResultCount !== undefined) fail('CONTINUOUS is not compatible with expectedResultCount');
  }
  return {
    groupBy,
    selectLinks,
    expandLinks: has('EXPAND_LINKS'),
    selectFields,
    expectedResultCount,
    extrasJson: json,
    continuous,
    stopMatch: has('CONTINUOUS_STOP_MATCH'),
  };
}

/** linkTerms and selectTerms: a non-empty list of top-level property names. */
function fieldTerms(raw: unknown, field: string, option: string): string[] {
  if (!present(raw)) fail(`querySpec.${field} is required with ${option}`);
  if (!Array.isArray(raw) || raw.length === 0) fail(`querySpec.${field} must be a non-empty array`);
  return raw.map((t, i) => {
    const path = `querySpec.${field}[${i}]`;
    if (!isObj(t)) fail(`${path} must be an object`);
    if (typeof t.propertyName !== 'string' || t.propertyName === '') fail(`${path}.propertyName is required`);
    if (t.propertyName.includes('.')) fail(`${path}.propertyName ${t.propertyName}: only top-level fields can be selected`);
    return t.propertyName;
  });
}

function parseOptions(raw: unknown): QueryOptionName[] {
  if (!present(raw)) return [];
  if (!Array.isArray(raw)) fail('querySpec.options must be an array');
  const seen = new Set<string>();
  for (const o of raw) {
    if (typeof o !== 'string') fail('querySpec.options must contain strings');
    if (!(XENON_QUERY_OPTIONS as readonly string[]).includes(o)) fail(`unknown query option: ${o}`);
    const accepted = (SUPPORTED_QUERY_OPTIONS as readonly string[]).includes(o) || (IGNORED_QUERY_OPTIONS as readonly string[]).includes(o);
    if (!accepted) fail(`${o} is not supported`);
    seen.add(o);
  }
  return XENON_QUERY_OPTIONS.filter((o) => seen.has(o)) as QueryOptionName[];
}

function parseQuery(raw: unknown, path: string, depth: number, counter: { clauses: number }): PlanQuery {
  if (depth > limits.queryClauseDepthMax) fail(`query is nested deeper than ${limits.queryClauseDepthMax} levels`);
  if (++counter.clauses > limits.queryClausesMax) fail(`query has more than ${limits.queryClausesMax} clauses`);
  if (!isObj(raw)) fail(`${path} must be an object`);
  const occurance = present(raw.occurance) ? oneOf(raw.occurance, OCCURANCES, `${path}.occurance`) : 'MUST_OCCUR';

  if (present(raw.booleanClauses)) {
    if (present(raw.term)) fail('term and booleanClauses are mutually exclusive');
    if (!Array.isArray(raw.booleanClauses)) fail(`${path}.booleanClauses must be an array`);
    const clauses = raw.booleanClauses.map((c, i) => parseQuery(c, `${path}.booleanClauses[${i}]`, depth + 1, counter));
    return { kind: 'boolean', occurance, clauses };
  }
  if (!present(raw.term)) fail('One of term, booleanClauses must be provided');
  return parseTerm(raw.term, `${path}.term`, occurance);
}

function parseTerm(raw: unknown, path: string, occurance: Occurance): TermQuery | RangeQuery {
  if (!isObj(raw)) fail(`${path} must be an object`);
  const hasValue = present(raw.matchValue);
  const hasRange = present(raw.range);
  // Same checks, same order and words as Xenon's LuceneQueryConverter.validateTerm.
  if (!hasValue && !hasRange) fail('One of term.matchValue, term.range is required');
  if (hasValue && hasRange) fail('term.matchValue and term.range are exclusive of each other');
  if (!present(raw.propertyName)) fail('term.propertyName is required');
  if (typeof raw.propertyName !== 'string') fail(`${path}.propertyName must be a string`);
  const propertyName = raw.propertyName;
  const propertyType = present(raw.propertyType) ? oneOf(raw.propertyType, PROPERTY_TYPES, `${path}.propertyType`) : undefined;
  const matchType = present(raw.matchType) ? oneOf(raw.matchType, MATCH_TYPES, `${path}.matchType`) : 'TERM';
  const typed = propertyType === undefined ? {} : { propertyType };

  if (hasRange) return { kind: 'range', occurance, propertyName, ...typed, matchType, range: parseRange(raw.range, `${path}.range`) };

  const v = raw.matchValue;
  // Xenon's JSON reader turns numbers and booleans into strings for a String field.
  if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') fail(`${path}.matchValue must be a string`);
  return { kind: 'term', occurance, propertyName, ...typed, matchType, matchValue: String(v) };
}

function parseRange(raw: unknown, path: string): NumericRange {
  if (!isObj(raw)) fail(`${path} must be an object`);
  const min = optNumber(raw.min, `${path}.min`);
  const max = optNumber(raw.max, `${path}.max`);
  // Order and words of Xenon's NumericRange.validate.
  if (min === null && max === null) fail('max and min can not both be null');
  if (min !== null && max !== null && max < min) fail('max must be greater than min');
  if (!present(raw.type)) fail('type must be specified');
  if (typeof raw.type !== 'string') fail(`${path}.type must be a string`);
  if (!(RANGE_TYPES as readonly string[]).includes(raw.type)) fail(`Type is not supported:${raw.type}`);
  let precisionStep = 16;
  if (present(raw.precisionStep)) {
    if (typeof raw.precisionStep !== 'number' || !Number.isInteger(raw.precisionStep)) fail(`${path}.precisionStep must be an integer`);
    precisionStep = raw.precisionStep;
  }
  return {
    type: raw.type as RangeType,
    min,
    max,
    isMinInclusive: optBool(raw.isMinInclusive, `${path}.isMinInclusive`),
    isMaxInclusive: optBool(raw.isMaxInclusive, `${path}.isMaxInclusive`),
    precisionStep,
  };
}

function parseSortTerm(raw: unknown, path: string, required: boolean): QueryTermJson {
  if (!isObj(raw)) fail(`${path} must be an object`);
  // Words of Xenon's LuceneQueryConverter.validateSortTerm (type is checked first there too).
  if (required && !present(raw.propertyType)) fail('term.propertyType is required');
  if (required && !present(raw.propertyName)) fail('term.propertyName is required');
  const out: QueryTermJson = {};
  if (present(raw.propertyName)) {
    if (typeof raw.propertyName !== 'string') fail(`${path}.propertyName must be a string`);
    out.propertyName = raw.propertyName;
  }
  if (present(raw.propertyType)) out.propertyType = oneOf(raw.propertyType, PROPERTY_TYPES, `${path}.propertyType`);
  if (present(raw.sortOrder)) out.sortOrder = oneOf(raw.sortOrder, SORT_ORDERS, `${path}.sortOrder`);
  return out;
}

// ---- Echo ----

/** The querySpec JSON Xenon returns for this plan (field order as Xenon serializes it). */
export function querySpecToJson(plan: QueryPlan): QuerySpecJson {
  const out: Partial<QuerySpecJson> = { query: queryToJson(plan.query) };
  if (plan.sortTerm !== undefined) out.sortTerm = { ...plan.sortTerm };
  if (plan.additionalSortTerms !== undefined) out.additionalSortTerms = plan.additionalSortTerms.map((t) => ({ ...t }));
  if (plan.sortOrder !== undefined) out.sortOrder = plan.sortOrder;
  out.resultLimit = plan.resultLimit ?? RESULT_LIMIT_NONE;
  if (plan.offset > 0) out.offset = plan.offset;
  if (plan.timeSnapshotMicros !== undefined) out.timeSnapshotBoundaryMicros = plan.timeSnapshotMicros;
  for (const [k, v] of Object.entries(plan.extrasJson)) if (v !== undefined) (out as Record<string, unknown>)[k] = structuredClone(v);
  out.options = [...plan.options];
  return out as QuerySpecJson;
}

function queryToJson(q: PlanQuery): QueryJson {
  if (q.kind === 'boolean') return { occurance: q.occurance, booleanClauses: q.clauses.map(queryToJson) };
  const term: QueryTermJson = { propertyName: q.propertyName };
  if (q.propertyType !== undefined) term.propertyType = q.propertyType;
  if (q.kind === 'term') term.matchValue = q.matchValue;
  term.matchType = q.matchType;
  if (q.kind === 'range') {
    const r: NumericRangeJson = { type: q.range.type };
    if (q.range.min !== null) r.min = q.range.min;
    if (q.range.max !== null) r.max = q.range.max;
    r.isMinInclusive = q.range.isMinInclusive;
    r.isMaxInclusive = q.range.isMaxInclusive;
    r.precisionStep = q.range.precisionStep;
    term.range = r;
  }
  return { occurance: q.occurance, term };
}
