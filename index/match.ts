/**
 * Query semantics (docs/xenon-compatibility.md, Queries): compiling a plan's query into a document predicate, and
 * choosing the candidate versions a query can be driven from so that a selective query reads a
 * posting instead of every document.
 *
 * Matching follows Lucene as Xenon builds it (LuceneQueryConverter):
 * - TERM: exact, case-sensitive equality with a string (or "true"/"false") value; numbers never
 *   match a term. PREFIX: string prefix. WILDCARD: `*` any run, `?` one character, `\` escapes.
 * - PHRASE: Krypton has no analyzed TEXT fields, so a phrase matches when its words (split on
 *   non-word characters, as Xenon splits it) appear consecutively among the value's words.
 * - range: numeric values only. LONG and DATE bounds are truncated to integers first, and an
 *   exclusive bound moves by one, as Xenon's LongPoint ranges do; DOUBLE bounds compare as is.
 * - boolean: every MUST clause matches, no MUST_NOT clause matches; SHOULD clauses are optional
 *   when a MUST exists, otherwise at least one must match; no MUST and no SHOULD matches nothing.
 * - at the top, a term's own occurance is ignored, and booleanClauses with occurance
 *   MUST_NOT_OCCUR match nothing (Xenon wraps them in a one-clause boolean query).
 */

import type { JsonObject } from '../lib/document.js';
import type { PlanQuery, RangeQuery, TermQuery } from '../lib/query/spec.js';
import { someValueAt, type IndexedValue } from './fields.js';
import { postingOf, type Posting, type Postings, type VidAlive } from './postings.js';

export type DocPredicate = (doc: JsonObject) => boolean;

export function compileQuery(q: PlanQuery): DocPredicate {
  if (q.kind === 'boolean' && q.occurance === 'MUST_NOT_OCCUR') return () => false;
  return compileNode(q);
}

function compileNode(q: PlanQuery): DocPredicate {
  if (q.kind === 'term' || q.kind === 'range') {
    const name = q.propertyName;
    const pred = q.kind === 'term' ? termPredicate(q) : rangePredicate(q);
    return (doc) => someValueAt(doc, name, pred);
  }
  const must = q.clauses.filter((c) => c.occurance === 'MUST_OCCUR').map(compileNode);
  const mustNot = q.clauses.filter((c) => c.occurance === 'MUST_NOT_OCCUR').map(compileNode);
  const should = q.clauses.filter((c) => c.occurance === 'SHOULD_OCCUR').map(compileNode);
  if (must.length === 0 && should.length === 0) return () => false;
  return (doc) => {
    for (const m of must) if (!m(doc)) return false;
    for (const n of mustNot) if (n(doc)) return false;
    if (must.length > 0) return true;
    for (const s of should) if (s(doc)) return true;
    return false;
  };
}

/** The test one indexed value must pass for a term clause. */
export function termPredicate(q: TermQuery): (v: IndexedValue) => boolean {
  const want = q.matchValue;
  switch (q.matchType) {
    case 'TERM':
      return (v) => v === want;
    case 'PREFIX':
      return (v) => typeof v === 'string' && v.startsWith(want);
    case 'WILDCARD': {
      const matches = wildcardMatcher(want);
      return (v) => typeof v === 'string' && matches(v);
    }
    case 'PHRASE': {
      const phrase = words(want);
      return (v) => typeof v === 'string' && containsRun(words(v), phrase);
    }
  }
}

const ANY_ONE = 1;
const ANY_RUN = 2;

/**
 * A WILDCARD pattern as a matcher over code points: `*` any run, `?` one, `\` escapes the next.
 * Not a RegExp: a backtracking engine takes exponential time on a pattern like `**********x`
 * that fails, blocking the host for as long, and refuses a pattern of tens of thousands of
 * characters outright. This keeps one backtrack point, the last `*`: at most pattern × value steps.
 */
export function wildcardMatcher(pattern: string): (value: string) => boolean {
  const tokens: (string | typeof ANY_ONE | typeof ANY_RUN)[] = [];
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') {
      if (tokens[tokens.length - 1] !== ANY_RUN) tokens.push(ANY_RUN);
    } else if (c === '?') tokens.push(ANY_ONE);
    else if (c === '\\' && i + 1 < chars.length) tokens.push(chars[++i]!);
    else tokens.push(c);
  }
  return (value) => {
    const text = Array.from(value);
    let p = 0;
    let t = 0;
    let star = -1;
    let resume = 0;
    while (t < text.length) {
      const tok = tokens[p];
      if (tok === ANY_RUN) {
        star = p++;
        resume = t;
      } else if (tok !== undefined && (tok === ANY_ONE || tok === text[t])) {
        p++;
        t++;
      } else if (star >= 0) {
        // The last `*` takes one more character, and matching goes on after it.
        p = star + 1;
        t = ++resume;
      } else return false;
    }
    while (tokens[p] === ANY_RUN) p++;
    return p === tokens.length;
  };
}

function words(s: string): string[] {
  return s.split(/\W+/).filter((w) => w.length > 0);
}

function containsRun(haystack: string[], needle: string[]): boolean {
  if (needle.length === 0) return false;
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

export function rangePredicate(q: RangeQuery): (v: IndexedValue) => boolean {
  const r = q.range;
  if (r.type === 'DOUBLE') {
    const min = r.min ?? -Infinity;
    const max = r.max ?? Infinity;
    return (v) => typeof v === 'number' && (r.isMinInclusive ? v >= min : v > min) && (r.isMaxInclusive ? v <= max : v < max);
  }
  const lo = r.min === null ? -Infinity : Math.trunc(r.min) + (r.isMinInclusive ? 0 : 1);
  const hi = r.max === null ? Infinity : Math.trunc(r.max) - (r.isMaxInclusive ? 0 : 1);
  return (v) => typeof v === 'number' && v >= lo && v <= hi;
}

// ---- Candidate selection ----

/** A superset of the versions a query can match, read from postings. */
export interface Candidates {
  /** How many ids `forEach` yields at most (exact for one posting). */
  size: number;
  forEach(visit: (vid: number) => void): void;
}

const NONE: Candidates = { size: 0, forEach: () => undefined };

/**
 * Where to start: candidates from postings, or null when the query has no MUST (or all-SHOULD)
 * string clause to drive it and every version must be examined. Every candidate is still checked
 * against the full predicate, so this only has to return a superset.
 */
export function chooseCandidates(q: PlanQuery, postings: Postings, alive: VidAlive): Candidates | null {
  if (q.kind === 'boolean' && q.occurance === 'MUST_NOT_OCCUR') return NONE;
  return drive(q, postings, alive);
}

function drive(q: PlanQuery, postings: Postings, alive: VidAlive): Candidates | null {
  if (q.kind === 'range') return null;
  if (q.kind === 'term') return q.matchType === 'TERM' ? exact(q, postings, alive) : scanValues(q, postings, alive);

  const must = q.clauses.filter((c) => c.occurance === 'MUST_OCCUR');
  if (must.length > 0) {
    // Exact terms cost one map lookup each, so try them first and take the narrowest.
    let best: Candidates | null = null;
    for (const c of must) {
      if (c.kind !== 'term' || c.matchType !== 'TERM') continue;
      const cand = exact(c, postings, alive);
      if (best === null || cand.size < best.size) best = cand;
    }
    if (best !== null) return best;
    for (const c of must) {
      const cand = drive(c, postings, alive);
      if (cand !== null && (best === null || cand.size < best.size)) best = cand;
    }
    return best;
  }
  const should = q.clauses.filter((c) => c.occurance === 'SHOULD_OCCUR');
  if (should.length === 0) return NONE;
  const parts: Candidates[] = [];
  for (const c of should) {
    const cand = drive(c, postings, alive);
    if (cand === null) return null;
    parts.push(cand);
  }
  return union(parts);
}

function exact(q: TermQuery, postings: Postings, alive: VidAlive): Candidates {
  const p = postings.get(q.propertyName, q.matchValue);
  return p === undefined ? NONE : fromPosting(p, alive);
}

function fromPosting(p: Posting, alive: VidAlive): Candidates {
  return { size: p.live, forEach: (visit) => p.forEachLive(alive, visit) };
}

/** PREFIX, WILDCARD and PHRASE: test each distinct value of the field once, not each version. */
function scanValues(q: TermQuery, postings: Postings, alive: VidAlive): Candidates {
  const values = postings.valuesOf(q.propertyName);
  if (values === undefined) return NONE;
  const pred = termPredicate(q);
  const hits: Candidates[] = [];
  for (const [value, s] of values) if (pred(value)) hits.push(fromPosting(postingOf(s), alive));
  return union(hits);
}

/** One version can sit in several of the parts (two tags, two SHOULD clauses): yield it once. */
function union(parts: Candidates[]): Candidates {
  if (parts.length === 0) return NONE;
  if (parts.length === 1) return parts[0]!;
  let size = 0;
  for (const p of parts) size += p.size;
  return {
    size,
    forEach: (visit) => {
      const seen = new Set<number>();
      for (const p of parts) {
        p.forEach((vid) => {
          if (seen.has(vid)) return;
          seen.add(vid);
          visit(vid);
        });
      }
    },
  };
}
