/**
 * Xenon's OData query parameters (`$filter`, `$orderby`, `$top`, `$limit`, `$skip`, `$count`,
 * `$select`, `$expand`, `$skipto`), as a factory GET and `/core/odata-queries` take them: the
 * parser of a `$filter` expression, and the translation of the whole parameter set into the
 * querySpec JSON a query task carries, so that OData runs on the query tasks' own validation and
 * engine (lib/query/spec.ts, index/). Anything it does not support is a KryptonError
 * INVALID_QUERY naming it, never dropped.
 *
 * Where Krypton and Xenon part (docs/xenon-compatibility.md, OData):
 * - Xenon's parser groups `and` and `or` right to left without precedence, so `a and b or c`
 *   means `a and (b or c)` there and `(a and b) or c` in OData. A `$filter` mixing both at one
 *   level without parentheses is refused, so no client gets either answer by surprise.
 * - `not` is Krypton's (Xenon's parser has none); `ne` on a number works (Xenon fails it).
 * - `lt`/`le`/`gt`/`ge` need a number: Xenon turns `name lt 'b'` into `name eq 'b'`.
 * - A quoted `''` is one quote, as OData says (Xenon drops every quote).
 * - `$skip` is supported (Xenon refuses it and points at `$skipto`), as the query's `offset`.
 * - `$orderby` takes several keys, each `asc` (the default) or `desc`.
 * - The string functions `startswith`, `endswith`, `contains` and `substringof` are Krypton's.
 */

import { KryptonError } from '../errors.js';
import { limits } from '../limits.js';
import { PROPERTY_TYPES, type PropertyType, type QueryJson, type QueryTermJson } from './spec.js';

// ---- The filter expression ----

export type ODataVerb = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'any' | 'all';

export type ODataLiteral =
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number; integer: boolean }
  | { kind: 'boolean'; value: boolean };

export type FilterNode =
  | { op: 'and' | 'or'; items: FilterNode[] }
  | { op: 'not'; item: FilterNode }
  | { op: 'cmp'; name: string; verb: ODataVerb; value: ODataLiteral }
  | { op: 'text'; fn: TextFunction; name: string; value: string };

/**
 * OData's string functions Krypton takes (Krypton's: Xenon's parser has no functions), each a
 * pattern on one field: `startswith(name,'ab')`, `endswith(name,'ab')`, `contains(name,'ab')`
 * and OData v2's `substringof('ab',name)`, case-sensitive like every term.
 */
export type TextFunction = 'startswith' | 'endswith' | 'contains';
const TEXT_FUNCTIONS: readonly string[] = ['startswith', 'endswith', 'contains', 'substringof'];

const VERBS: readonly string[] = ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'any', 'all'];
/** Operators OData defines that Krypton (like Xenon) does not. */
const UNSUPPORTED_OPERATORS: readonly string[] = ['add', 'sub', 'mul', 'div', 'divby', 'mod', 'has', 'in'];
/** Collection items in an `any`/`all` value are separated by `;`, as in Xenon. */
const ITEM_SEPARATOR = ';';

function fail(message: string): never {
  throw new KryptonError('INVALID_QUERY', message);
}

type Token = { t: '(' | ')' | ','; at: number } | { t: 'word'; text: string; at: number } | { t: 'string'; text: string; at: number };

/** Characters of an unquoted word: Xenon's literal characters, plus `/` for nested names. */
const WORD_CHAR = /[\p{L}\p{N}\-._~%!$&*+;:@/]/u;

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      out.push({ t: c, at: i++ });
    } else if (c === "'") {
      const at = i++;
      let text = '';
      for (;;) {
        if (i >= s.length) fail(`$filter has an unterminated string starting at ${at}`);
        const d = s[i++]!;
        if (d !== "'") text += d;
        else if (s[i] === "'") {
          text += "'";
          i++;
        } else break;
      }
      out.push({ t: 'string', text, at });
    } else if (WORD_CHAR.test(c)) {
      const at = i;
      while (i < s.length && WORD_CHAR.test(s[i]!)) i++;
      out.push({ t: 'word', text: s.slice(at, i), at });
    } else {
      fail(`$filter has an unexpected character '${c}' at ${i}`);
    }
  }
  return out;
}

const NUMBER = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;

class FilterParser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): FilterNode {
    if (this.tokens.length === 0) fail('$filter is empty');
    const node = this.expr(1);
    const extra = this.tokens[this.pos];
    if (extra !== undefined) fail(`$filter has unexpected ${describe(extra)} at ${extra.at}`);
    return node;
  }

  private peek(): Token | undefined {
    return this.tokens[this.pos];
  }

  private isWord(tok: Token | undefined, text: string): boolean {
    return tok !== undefined && tok.t === 'word' && tok.text === text;
  }

  /** A run of operands joined by `and` or by `or`, not both (see the header). */
  private expr(depth: number): FilterNode {
    if (depth > limits.odataFilterDepthMax) fail(`$filter is nested deeper than ${limits.odataFilterDepthMax} levels`);
    const items = [this.unary(depth)];
    let joiner: 'and' | 'or' | undefined;
    for (;;) {
      const tok = this.peek();
      if (tok === undefined || tok.t !== 'word' || (tok.text !== 'and' && tok.text !== 'or')) break;
      if (joiner !== undefined && joiner !== tok.text) {
        fail(`$filter mixes 'and' and 'or' without parentheses (at ${tok.at}): Xenon and OData group them differently, so add parentheses`);
      }
      joiner = tok.text;
      this.pos++;
      items.push(this.unary(depth));
    }
    return joiner === undefined ? items[0]! : { op: joiner, items };
  }

  private unary(depth: number): FilterNode {
    const tok = this.peek();
    if (tok === undefined) fail('$filter ends where an operand was expected');
    if (this.isWord(tok, 'not')) {
      if (depth >= limits.odataFilterDepthMax) fail(`$filter is nested deeper than ${limits.odataFilterDepthMax} levels`);
      this.pos++;
      return { op: 'not', item: this.unary(depth + 1) };
    }
    if (tok.t === '(') {
      this.pos++;
      const inner = this.expr(depth + 1);
      const close = this.peek();
      if (close === undefined || close.t !== ')') fail(`$filter has an unclosed '(' at ${tok.at}`);
      this.pos++;
      return inner;
    }
    return this.comparison();
  }

  private comparison(): FilterNode {
    const nameTok = this.tokens[this.pos++]!;
    if (nameTok.t !== 'word') fail(`$filter expects a property name at ${nameTok.at}, not ${describe(nameTok)}`);
    const next = this.peek();
    if (next !== undefined && next.t === '(') return this.textFunction(nameTok);
    const name = propertyName(nameTok.text);
    const verbTok = this.tokens[this.pos++];
    if (verbTok === undefined) fail(`$filter ends after the property name ${nameTok.text}`);
    if (verbTok.t !== 'word') fail(`$filter expects an operator after ${nameTok.text} at ${verbTok.at}, not ${describe(verbTok)}`);
    if (UNSUPPORTED_OPERATORS.includes(verbTok.text)) fail(`$filter operator ${verbTok.text} is not supported`);
    if (!VERBS.includes(verbTok.text)) fail(`$filter has an unknown operator '${verbTok.text}' at ${verbTok.at}`);
    const verb = verbTok.text as ODataVerb;
    const valueTok = this.tokens[this.pos++];
    if (valueTok === undefined) fail(`$filter ends after ${nameTok.text} ${verb}`);
    return { op: 'cmp', name, verb, value: literal(valueTok) };
  }

  /** `startswith(name,'ab')` and the others, optionally compared `eq true` / `eq false` (`ne` alike). */
  textFunction(nameTok: Token & { t: 'word' }): FilterNode {
    const fn = nameTok.text;
    if (!TEXT_FUNCTIONS.includes(fn)) {
      fail(`$filter function ${fn}() is not supported (the functions are ${TEXT_FUNCTIONS.map((f) => `${f}()`).join(', ')})`);
    }
    this.pos++; // (
    const args: Token[] = [];
    for (;;) {
      const tok = this.tokens[this.pos++];
      if (tok === undefined) fail(`$filter ${fn}( is not closed`);
      if (tok.t === '(' || tok.t === ')' || tok.t === ',') fail(`$filter ${fn}() has unexpected '${tok.t}' at ${tok.at}`);
      args.push(tok);
      const sep = this.tokens[this.pos++];
      if (sep === undefined) fail(`$filter ${fn}( is not closed`);
      if (sep.t === ')') break;
      if (sep.t !== ',') fail(`$filter ${fn}() expects ',' or ')' at ${sep.at}`);
    }
    if (args.length !== 2) fail(`$filter ${fn}() takes two arguments, a property name and a quoted string`);
    // substringof is OData v2's contains, with its arguments the other way round.
    const [field, text] = fn === 'substringof' ? [args[1]!, args[0]!] : [args[0]!, args[1]!];
    if (field.t !== 'word') fail(`$filter ${fn}() needs a property name, not ${describe(field)}`);
    if (text.t !== 'string') fail(`$filter ${fn}() needs a quoted string, not ${describe(text)}`);
    if (text.text === '') fail(`$filter ${fn}() needs a non-empty string`);
    const node: FilterNode = {
      op: 'text',
      fn: fn === 'substringof' ? 'contains' : (fn as TextFunction),
      name: propertyName(field.text),
      value: text.text,
    };
    // `startswith(name,'a') eq true`, as OData v2 clients write it.
    const verb = this.peek();
    if (verb?.t === 'word' && (verb.text === 'eq' || verb.text === 'ne')) {
      this.pos++;
      const b = this.tokens[this.pos++];
      if (b === undefined || b.t !== 'word' || (b.text !== 'true' && b.text !== 'false'))
        fail(`$filter ${fn}() compares with true or false only`);
      return (b.text === 'true') === (verb.text === 'eq') ? node : { op: 'not', item: node };
    }
    return node;
  }
}

function describe(tok: Token): string {
  return tok.t === 'word' ? `'${tok.text}'` : tok.t === 'string' ? 'a string' : `'${tok.t}'`;
}

/** Nested names may be written with `/` (OData) or `.` (Xenon's indexed names); both mean the same. */
function propertyName(raw: string): string {
  const name = raw.replaceAll('/', '.');
  if (name.includes('*')) fail(`$filter property name ${raw}: wildcards in property names are not supported`);
  if (name.startsWith('.') || name.endsWith('.') || name.includes('..')) fail(`$filter property name ${raw} is malformed`);
  if (['and', 'or', 'not', ...VERBS].includes(name)) fail(`$filter expects a property name, not the operator '${name}'`);
  return name;
}

function literal(tok: Token): ODataLiteral {
  if (tok.t === 'string') return { kind: 'string', value: tok.text };
  if (tok.t !== 'word') fail(`$filter expects a value at ${tok.at}, not ${describe(tok)}`);
  const text = tok.text;
  if (text === 'true' || text === 'false') return { kind: 'boolean', value: text === 'true' };
  if (text === 'null') fail('$filter null is not supported: a missing field cannot be matched');
  if (NUMBER.test(text)) {
    const integer = !/[.eE]/.test(text);
    const value = Number(text);
    if (!Number.isFinite(value)) fail(`$filter number ${text} is out of range`);
    if (integer && !Number.isSafeInteger(value)) fail(`$filter number ${text} is beyond 2^53 and cannot be compared exactly`);
    return { kind: 'number', value, integer };
  }
  // Xenon takes an unquoted word as a string (`name eq foo`).
  return { kind: 'string', value: text };
}

/** Parses a `$filter` expression; throws INVALID_QUERY naming what is wrong or unsupported. */
export function parseFilter(filter: string): FilterNode {
  if (filter.length > limits.odataFilterCharsMax) fail(`$filter is longer than ${limits.odataFilterCharsMax} characters`);
  return new FilterParser(tokenize(filter)).parse();
}

// ---- Translation to query clauses ----

/** Xenon's name for "any of the service's text fields" in a `$filter`. */
export const ALL_FIELDS = 'ALL_FIELDS';

/**
 * `ALL_FIELDS eq 'x'` as Xenon unfolds it: some one of the fields matches (`ne`: none does;
 * `any`/`all`: some one field has any / all of the items). Only a factory knows its fields, and
 * only a string compares against all of them.
 */
function unfoldAllFields(n: FilterNode, fields: readonly string[] | undefined): FilterNode {
  switch (n.op) {
    case 'and':
    case 'or':
      return { op: n.op, items: n.items.map((i) => unfoldAllFields(i, fields)) };
    case 'not':
      return { op: 'not', item: unfoldAllFields(n.item, fields) };
    case 'text':
      if (n.name === ALL_FIELDS) fail(`$filter ${n.fn}() on ${ALL_FIELDS} is not supported`);
      return n;
    case 'cmp': {
      if (n.name !== ALL_FIELDS) return n;
      if (fields === undefined) fail(`$filter ${ALL_FIELDS} needs a factory's fields: it is not supported at /core/odata-queries`);
      if (n.value.kind !== 'string' || n.verb === 'lt' || n.verb === 'le' || n.verb === 'gt' || n.verb === 'ge') {
        fail(`$filter ${ALL_FIELDS} compares strings only, with eq, ne, any or all`);
      }
      if (fields.length === 0) fail(`$filter ${ALL_FIELDS}: this service has no text fields`);
      const verb = n.verb === 'ne' ? 'eq' : n.verb;
      const some: FilterNode = { op: 'or', items: fields.map((name) => ({ op: 'cmp', name, verb, value: n.value })) };
      return n.verb === 'ne' ? { op: 'not', item: some } : some;
    }
  }
}

/**
 * A clause and whether it is negated: `neg` means "matches when `q` does not". Query tasks'
 * boolean clauses cannot stand negative on their own (a boolean with only MUST_NOT clauses matches
 * nothing, as in Lucene), so a negation is carried up until a clause can hold it as MUST_NOT.
 */
interface Translated {
  q: QueryJson;
  neg: boolean;
}

/** A clause every document matches: its self link, which every document has. */
export function matchAllClause(): QueryJson {
  return { occurance: 'MUST_OCCUR', term: { propertyName: 'documentSelfLink', matchValue: '*', matchType: 'WILDCARD' } };
}

function withOccurance(q: QueryJson, occurance: QueryJson['occurance']): QueryJson {
  return { ...q, occurance };
}

function translate(n: FilterNode): Translated {
  switch (n.op) {
    case 'not': {
      const inner = translate(n.item);
      return { q: inner.q, neg: !inner.neg };
    }
    case 'cmp':
      return comparisonClause(n.name, n.verb, n.value);
    case 'text':
      return { q: { occurance: 'MUST_OCCUR', term: textTerm(n.fn, n.name, n.value) }, neg: false };
    case 'and': {
      const parts = n.items.map(translate);
      // not a and not b = not (a or b)
      if (parts.every((p) => p.neg)) {
        return { q: { occurance: 'MUST_OCCUR', booleanClauses: parts.map((p) => withOccurance(p.q, 'SHOULD_OCCUR')) }, neg: true };
      }
      const clauses = parts.map((p) => withOccurance(p.q, p.neg ? 'MUST_NOT_OCCUR' : 'MUST_OCCUR'));
      return { q: { occurance: 'MUST_OCCUR', booleanClauses: clauses }, neg: false };
    }
    case 'or': {
      const parts = n.items.map(translate);
      // not a or not b = not (a and b)
      if (parts.every((p) => p.neg)) {
        return { q: { occurance: 'MUST_OCCUR', booleanClauses: parts.map((p) => withOccurance(p.q, 'MUST_OCCUR')) }, neg: true };
      }
      const clauses = parts.map((p) =>
        p.neg
          ? { occurance: 'SHOULD_OCCUR' as const, booleanClauses: [matchAllClause(), withOccurance(p.q, 'MUST_NOT_OCCUR')] }
          : withOccurance(p.q, 'SHOULD_OCCUR'),
      );
      return { q: { occurance: 'MUST_OCCUR', booleanClauses: clauses }, neg: false };
    }
  }
}

function comparisonClause(name: string, verb: ODataVerb, v: ODataLiteral): Translated {
  if (verb === 'any' || verb === 'all') return collectionClause(name, verb, v);
  if (verb === 'ne') return { q: comparisonClause(name, 'eq', v).q, neg: true };
  if (v.kind === 'number') return { q: { occurance: 'MUST_OCCUR', term: rangeTerm(name, verb, v) }, neg: false };
  if (verb !== 'eq') fail(`$filter ${name} ${verb} needs a number: strings and booleans compare with eq and ne only`);
  const text = v.kind === 'boolean' ? String(v.value) : v.value;
  return { q: { occurance: 'MUST_OCCUR', term: valueTerm(name, text) }, neg: false };
}

/** A string function as a term: PREFIX, or a WILDCARD pattern with the text's own `*`, `?` and `\` escaped. */
function textTerm(fn: TextFunction, name: string, text: string): QueryTermJson {
  if (fn === 'startswith') return { propertyName: name, matchValue: text, matchType: 'PREFIX' };
  const literal = text.replace(/[*?\\]/g, (c) => `\\${c}`);
  return { propertyName: name, matchValue: fn === 'endswith' ? `*${literal}` : `*${literal}*`, matchType: 'WILDCARD' };
}

/** Xenon's rule: a value with `*` is a WILDCARD pattern, any other a TERM. */
function valueTerm(name: string, text: string): QueryTermJson {
  return { propertyName: name, matchValue: text, matchType: text.includes('*') ? 'WILDCARD' : 'TERM' };
}

function rangeTerm(name: string, verb: 'eq' | 'lt' | 'le' | 'gt' | 'ge', v: { value: number; integer: boolean }): QueryTermJson {
  const type = v.integer ? 'LONG' : 'DOUBLE';
  const x = v.value;
  switch (verb) {
    case 'eq':
      return { propertyName: name, range: { type, min: x, max: x, isMinInclusive: true, isMaxInclusive: true } };
    case 'lt':
      return { propertyName: name, range: { type, max: x, isMinInclusive: false, isMaxInclusive: false } };
    case 'le':
      return { propertyName: name, range: { type, max: x, isMinInclusive: false, isMaxInclusive: true } };
    case 'gt':
      return { propertyName: name, range: { type, min: x, isMinInclusive: false, isMaxInclusive: false } };
    case 'ge':
      return { propertyName: name, range: { type, min: x, isMinInclusive: true, isMaxInclusive: false } };
  }
}

/**
 * `tags any 'a;b'`: some item is a or b; `all`: both are items. A name not ending in `.item`
 * matches the field's own value or its collection's items, since the index names array items
 * `<field>.item` and Xenon clients write either.
 */
function collectionClause(name: string, verb: 'any' | 'all', v: ODataLiteral): Translated {
  if (v.kind !== 'string') fail(`$filter ${name} ${verb} needs a quoted list of items separated by ';'`);
  const items = v.value
    .split(ITEM_SEPARATOR)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0) fail(`$filter ${name} ${verb} has no items`);
  const names = name.endsWith('.item') ? [name] : [name, `${name}.item`];
  const itemClause = (item: string): QueryJson =>
    names.length === 1
      ? { occurance: 'MUST_OCCUR', term: valueTerm(names[0]!, item) }
      : { occurance: 'MUST_OCCUR', booleanClauses: names.map((n) => ({ occurance: 'SHOULD_OCCUR' as const, term: valueTerm(n, item) })) };
  const occurance = verb === 'any' ? 'SHOULD_OCCUR' : 'MUST_OCCUR';
  return { q: { occurance: 'MUST_OCCUR', booleanClauses: items.map((i) => withOccurance(itemClause(i), occurance)) }, neg: false };
}

/**
 * The clauses a filter adds to a query, as boolean clauses to put beside the caller's own (the
 * factory's kind and prefix): the filter itself, and a match-all clause when it is negative and
 * nothing else would give the query a positive clause.
 */
export function filterClauses(node: FilterNode, hasPositiveSibling: boolean, allFields?: readonly string[]): QueryJson[] {
  const t = translate(unfoldAllFields(node, allFields));
  if (!t.neg) return [withOccurance(t.q, 'MUST_OCCUR')];
  const negated = withOccurance(t.q, 'MUST_NOT_OCCUR');
  return hasPositiveSibling ? [negated] : [matchAllClause(), negated];
}

// ---- The parameter set ----

/** Where the parameters arrived: a factory GET (kind and prefix added) or `/core/odata-queries`. */
export type ODataTarget = { kind: 'factory'; factoryLink: string; documentKind: string } | { kind: 'queries' };

export interface ODataContext {
  target: ODataTarget;
  /** A property's type as the service declares it, for `$orderby` without `$orderbytype`. */
  propertyType?: (name: string) => PropertyType | undefined;
  /** The indexed names `ALL_FIELDS` stands for (a factory's text fields); absent, it is refused. */
  allFields?: readonly string[];
}

/** A page to return instead of a query: `$skipto`+`$nodeid`, or a factory's `path`+`peer`. */
export interface ODataNavigation {
  kind: 'navigate';
  pageId: string;
  peer: string;
}

export interface ODataQuery {
  kind: 'query';
  /** The querySpec a direct query task runs (lib/query/spec.ts validates it as any other). */
  querySpec: {
    query: QueryJson;
    options: string[];
    resultLimit?: number;
    offset?: number;
    sortTerm?: QueryTermJson;
    additionalSortTerms?: QueryTermJson[];
    sortOrder?: 'ASC' | 'DESC';
    selectTerms?: { propertyName: string }[];
  };
  count: boolean;
  /** `$top`: at most this many results, no paging. */
  top: number | undefined;
  /** `$limit`: the page size; the first page comes back with links to the next. */
  limit: number | undefined;
  /** `$select`: the top-level fields each returned document keeps (as EXPAND_SELECTED_FIELDS). */
  select: string[] | undefined;
}

/** Parameters of a factory GET that are not OData: `expand` alone keeps the plain listing. */
const LISTING_PARAMS = new Set(['expand', '$expand']);
const ODATA_PARAMS = new Set([
  '$filter',
  '$orderby',
  '$orderbytype',
  '$top',
  '$limit',
  '$skip',
  '$count',
  '$select',
  '$expand',
  'expand',
  '$skipto',
  '$nodeid',
]);
/** A factory's page navigation (`<factory>?path=<page>&peer=<host>`, Xenon's rewritten page links). */
const NAVIGATION_PARAMS = new Set(['path', 'peer']);

/** Whether a factory GET's parameters ask for more than the plain listing (`expand` alone does not). */
export function isODataRequest(params: ReadonlyArray<readonly [string, string]>): boolean {
  return params.some(([k]) => !LISTING_PARAMS.has(k));
}

/**
 * Translates a request's parameters (decoded, in order, repeats included) into a query or a page
 * navigation. Throws INVALID_QUERY for an unknown, repeated, malformed or unsupported parameter.
 */
export function parseOData(params: ReadonlyArray<readonly [string, string]>, ctx: ODataContext): ODataQuery | ODataNavigation {
  const factory = ctx.target.kind === 'factory';
  const p = new Map<string, string>();
  for (const [k, v] of params) {
    if (k === '$tenantLinks') fail('$tenantLinks is not supported: Krypton has no tenants');
    const known = ODATA_PARAMS.has(k) || (factory && NAVIGATION_PARAMS.has(k));
    if (!known) fail(k.startsWith('$') ? `${k} is not supported` : `unknown query parameter: ${k}`);
    if (p.has(k)) fail(`${k} is given more than once`);
    p.set(k, v);
  }

  if (factory && (p.has('path') || p.has('peer'))) {
    const pageId = p.get('path');
    const peer = p.get('peer');
    if (!pageId || !peer) fail('a page link needs both path and peer');
    if (p.size > 2) fail('a page link (path and peer) takes no other parameter');
    return { kind: 'navigate', pageId, peer };
  }
  if (p.has('$skipto')) {
    const pageId = p.get('$skipto');
    const peer = p.get('$nodeid');
    if (!pageId) fail('$skipto needs a page id');
    if (!peer) fail('When using $skipto, $nodeid must be supplied');
    const others = [...p.keys()].filter((k) => k !== '$skipto' && k !== '$nodeid');
    if (others.length > 0) fail(`$skipto takes no other parameter than $nodeid, not ${others.join(', ')}`);
    return { kind: 'navigate', pageId, peer };
  }
  if (p.has('$nodeid')) fail('$nodeid is only meaningful with $skipto');

  const count = p.has('$count') ? booleanParam('$count', p.get('$count')!) : false;
  const top = p.has('$top') ? integerParam('$top', p.get('$top')!, 1, limits.odataTopMax) : undefined;
  const limit = p.has('$limit') ? integerParam('$limit', p.get('$limit')!, 1, limits.odataTopMax) : undefined;
  const skip = p.has('$skip') ? integerParam('$skip', p.get('$skip')!, 0, limits.odataSkipMax) : undefined;
  if (top !== undefined && limit !== undefined) fail('$top cannot be used together with $limit');
  if (count && top !== undefined) fail('$count cannot be used together with $top');
  if (count && skip !== undefined) fail('$count cannot be used together with $skip');
  if (count && p.has('$select')) fail('$count cannot be used together with $select');
  if (!factory && count && p.has('$orderby')) fail('$count cannot be used together with $orderby');
  if (!factory && count && limit !== undefined) fail('$count cannot be used together with $limit');

  const clauses: QueryJson[] = [];
  if (ctx.target.kind === 'factory') {
    clauses.push({ occurance: 'MUST_OCCUR', term: { propertyName: 'documentKind', matchValue: ctx.target.documentKind } });
    clauses.push({
      occurance: 'MUST_OCCUR',
      term: { propertyName: 'documentSelfLink', matchValue: `${ctx.target.factoryLink}/`, matchType: 'PREFIX' },
    });
  }
  const filter = p.get('$filter');
  if (filter !== undefined) clauses.push(...filterClauses(parseFilter(filter), clauses.length > 0, ctx.allFields));
  else if (!factory) fail('$filter is required');

  const options: string[] = [count ? 'COUNT' : 'EXPAND_CONTENT'];
  const querySpec: ODataQuery['querySpec'] = { query: { occurance: 'MUST_OCCUR', booleanClauses: clauses }, options };
  const orderBy = p.get('$orderby');
  if (orderBy !== undefined) {
    const terms = sortTerms(orderBy, p.get('$orderbytype'), ctx);
    options.push('SORT');
    querySpec.sortTerm = terms[0]!;
    querySpec.sortOrder = terms[0]!.sortOrder;
    if (terms.length > 1) querySpec.additionalSortTerms = terms.slice(1);
  } else if (p.has('$orderbytype')) fail('$orderbytype is only meaningful with $orderby');
  if (top !== undefined) {
    options.push('TOP_RESULTS');
    querySpec.resultLimit = top;
  }
  if (limit !== undefined) querySpec.resultLimit = limit;
  if (skip !== undefined && skip > 0) querySpec.offset = skip;
  const select = p.has('$select') ? selectList(p.get('$select')!) : undefined;
  if (select !== undefined) {
    // EXPAND_SELECTED_FIELDS travels in the querySpec, so every later page is projected too.
    options.push('EXPAND_SELECTED_FIELDS');
    querySpec.selectTerms = select.map((propertyName) => ({ propertyName }));
  }

  return { kind: 'query', querySpec, count, top, limit, select };
}

function booleanParam(name: string, v: string): boolean {
  if (v === 'true' || v === '') return true;
  if (v === 'false') return false;
  fail(`${name} must be true or false, not '${v}'`);
}

function integerParam(name: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v)) fail(`${name} must be an integer, not '${v}'`);
  const n = Number(v);
  if (n < min) fail(`${name} must be at least ${min}`);
  if (n > max) fail(`${name} must be at most ${max}`);
  return n;
}

/** `$orderby=name desc,counter` with `$orderbytype=STRING,LONG` (by position; Xenon takes one of each). */
function sortTerms(orderBy: string, orderByType: string | undefined, ctx: ODataContext): QueryTermJson[] {
  const keys = orderBy.split(',').map((s) => s.trim());
  if (keys.length > limits.odataOrderByKeysMax) fail(`$orderby has more than ${limits.odataOrderByKeysMax} keys`);
  const types = orderByType === undefined ? [] : orderByType.split(',').map((s) => s.trim());
  if (types.length > keys.length) fail('$orderbytype names more types than $orderby has keys');
  return keys.map((key, i) => {
    const parts = key.split(/\s+/).filter((s) => s.length > 0);
    if (parts.length === 0) fail('$orderby has an empty key');
    if (parts.length > 2) fail(`$orderby key '${key}' must be a property name and asc or desc`);
    const dir = parts[1] ?? 'asc';
    if (dir !== 'asc' && dir !== 'desc') fail(`$orderby direction must be asc or desc, not '${dir}'`);
    const name = parts[0]!.replaceAll('/', '.');
    if (!/^[\p{L}\p{N}_.\-~:@$]+$/u.test(name)) fail(`$orderby property name '${parts[0]}' is malformed`);
    const given = types[i];
    if (given !== undefined && !(PROPERTY_TYPES as readonly string[]).includes(given)) {
      fail(`Type name ${given} is not supported for $orderbytype`);
    }
    const propertyType = (given as PropertyType | undefined) ?? ctx.propertyType?.(name) ?? 'STRING';
    return { propertyName: name, propertyType, sortOrder: dir === 'asc' ? 'ASC' : 'DESC' };
  });
}

function selectList(v: string): string[] {
  const names = v.split(',').map((s) => s.trim());
  for (const n of names) {
    if (n === '') fail('$select has an empty field name');
    if (n === '*') fail('$select=* is not supported: leave $select out for every field');
    if (n.includes('/') || n.includes('.')) fail(`$select field ${n}: only top-level fields can be selected`);
  }
  return names;
}
