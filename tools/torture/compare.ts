/**
 * After healing: every host's retained history of every key, read from its own index (a local
 * INCLUDE_ALL_VERSIONS query), compared version by version, and duplicate applications counted.
 * Hosts keep the latest 100 versions of an example, so versions are compared where every host
 * still retains them; a host whose latest version is below another's lacks the difference. A
 * duplicate is one client value at two versions: either a value coming back after another
 * replaced it, or two consecutive versions with the same value in the same epoch (a takeover
 * writes the same state again, but always in a new epoch).
 */

import type { AnswerBody } from './client.js';
import { Agent, request } from 'undici';
import type { Group } from './group.js';

export interface VersionState {
  epoch: number;
  value: string | null;
  tags: string[];
}

export interface HistoryDifference {
  key: string;
  what: string;
}

export interface Duplicate {
  key: string;
  value: string;
  versions: number[];
}

export interface ComparisonReport {
  keys: number;
  /** Versions read, summed over hosts (so a reader can tell the comparison saw data). */
  versionsRead: number;
  differences: HistoryDifference[];
  duplicates: Duplicate[];
  /** Each host's retained history (version, epoch, value) of every key with a difference or a duplicate. */
  histories: Record<string, Record<string, [number, number, string | null][]>>;
  /** Hosts that did not answer the query for some key. */
  unreadable: string[];
  /** Per key, every version any host retains (the fullest copy's state where they differ). */
  unions: Map<string, Map<number, VersionState>>;
}

async function historyOf(agent: Agent, base: string, link: string): Promise<Map<number, VersionState> | undefined> {
  const body = {
    taskInfo: { isDirect: true },
    querySpec: {
      options: ['INCLUDE_ALL_VERSIONS', 'EXPAND_CONTENT'],
      query: { term: { propertyName: 'documentSelfLink', matchValue: link } },
    },
  };
  try {
    const r = await request(`${base}/core/local-query-tasks`, {
      method: 'POST',
      dispatcher: agent,
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const t = (await r.body.json()) as { results?: { documents?: Record<string, AnswerBody> } };
    if (r.statusCode !== 200) return undefined;
    const out = new Map<number, VersionState>();
    for (const d of Object.values(t.results?.documents ?? {})) {
      if (d.documentSelfLink !== link) continue;
      out.set(d.documentVersion as number, { epoch: d.documentEpoch ?? 0, value: d.name ?? null, tags: [...(d.tags ?? [])].sort() });
    }
    return out;
  } catch {
    return undefined;
  }
}

const same = (a: VersionState, b: VersionState) => a.epoch === b.epoch && a.value === b.value && a.tags.join() === b.tags.join();

export function duplicatesIn(key: string, h: Map<number, VersionState>): Duplicate[] {
  const at = new Map<string, number[]>();
  const dup = new Set<string>();
  for (const v of [...h.keys()].sort((x, y) => x - y)) {
    const s = h.get(v)!;
    if (s.value === null) continue;
    const prev = h.get(v - 1);
    const takeover = prev !== undefined && prev.value === s.value && prev.epoch !== s.epoch;
    if (at.has(s.value) && !takeover) dup.add(s.value);
    at.set(s.value, [...(at.get(s.value) ?? []), v]);
  }
  return [...dup].map((value) => ({ key, value, versions: at.get(value)! }));
}

const top = (h: Map<number, VersionState>) => (h.size ? Math.max(...h.keys()) : -1);
const bottom = (h: Map<number, VersionState>) => (h.size ? Math.min(...h.keys()) : -1);

/** "1-44, 48": consecutive versions as ranges, so one host's missing stretch is one line. */
export function ranges(vs: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < vs.length; ) {
    let j = i;
    while (j + 1 < vs.length && vs[j + 1] === vs[j]! + 1) j++;
    out.push(i === j ? `${vs[i]}` : `${vs[i]}-${vs[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}

/**
 * Where the hosts' copies of one key differ: a host behind the latest version, versions a host
 * lacks below its own latest while another holds them (only where every host still retains
 * versions), and versions held with different contents.
 */
function differencesOf(key: string, hs: { host: string; h: Map<number, VersionState> }[]): HistoryDifference[] {
  const out: HistoryDifference[] = [];
  const latest = Math.max(...hs.map((x) => top(x.h)));
  const from = Math.max(...hs.map((x) => bottom(x.h)));
  for (const x of hs) if (top(x.h) < latest) out.push({ key, what: `${x.host} holds up to version ${top(x.h)}, another host ${latest}` });
  const lacks = new Map<string, number[]>();
  for (let v = from; v <= latest; v++) {
    const holders = hs.filter((x) => x.h.has(v));
    if (!holders.length) continue;
    for (const x of hs) if (v <= top(x.h) && !x.h.has(v)) lacks.set(x.host, [...(lacks.get(x.host) ?? []), v]);
    const first = holders[0]!;
    for (const y of holders.slice(1)) {
      const a = first.h.get(v)!;
      const b = y.h.get(v)!;
      if (!same(a, b)) out.push({ key, what: `version ${v}: ${first.host} has ${JSON.stringify(a)}, ${y.host} ${JSON.stringify(b)}` });
    }
  }
  for (const [host, vs] of lacks) out.push({ key, what: `${host} lacks versions ${ranges(vs)} (it holds later ones)` });
  return out;
}

export async function compareHistories(group: Group, keys: string[]): Promise<ComparisonReport> {
  const agent = new Agent({ keepAliveTimeout: 1000 });
  const report: ComparisonReport = {
    keys: keys.length,
    versionsRead: 0,
    differences: [],
    duplicates: [],
    unreadable: [],
    histories: {},
    unions: new Map(),
  };
  try {
    for (const key of keys) {
      const hs: { host: string; h: Map<number, VersionState> }[] = [];
      for (const host of group.hosts) {
        const h = await historyOf(agent, host.url, key);
        if (h) hs.push({ host: host.id, h });
        if (h) report.versionsRead += h.size;
        else report.unreadable.push(`${host.id} ${key}`);
      }
      if (!hs.length) continue;
      report.differences.push(...differencesOf(key, hs));
      const reference = hs.reduce((x, y) => (top(y.h) > top(x.h) ? y : x));
      // Duplicates from the union of what the hosts retain: per version the state most hosts hold
      // (the one a quorum took; a host may keep a write a takeover discarded at that version),
      // the fullest copy's on a tie. Taking the fullest copy's alone made a discarded write on
      // one host hide the takeover's version, so the fold miscounted and a read of the takeover's
      // copy looked like a violation.
      const union = unionOf(reference, hs);
      report.unions.set(key, union);
      const dups = duplicatesIn(key, union);
      report.duplicates.push(...dups);
      if (dups.length || report.differences.some((d) => d.key === key)) {
        report.histories[key] = Object.fromEntries(
          hs.map((x) => [
            x.host,
            [...x.h].sort((a, b) => a[0] - b[0]).map(([v, st]): [number, number, string | null] => [v, st.epoch, st.value]),
          ]),
        );
      }
    }
  } finally {
    await agent.close();
  }
  return report;
}

/** Per version, the state most of `hs` hold; `reference`'s on a tie, or when only it holds one. */
export function unionOf(
  reference: { h: Map<number, VersionState> },
  hs: readonly { h: Map<number, VersionState> }[],
): Map<number, VersionState> {
  const union = new Map<number, VersionState>();
  const versions = new Set<number>();
  for (const x of hs) for (const v of x.h.keys()) versions.add(v);
  for (const v of [...versions].sort((a, b) => a - b)) {
    const counts = new Map<string, { s: VersionState; n: number }>();
    for (const x of hs) {
      const s = x.h.get(v);
      if (!s) continue;
      const k = JSON.stringify(s);
      const c = counts.get(k) ?? { s, n: 0 };
      c.n++;
      counts.set(k, c);
    }
    const own = reference.h.get(v);
    let best = own ? counts.get(JSON.stringify(own)) : undefined;
    for (const c of counts.values()) if (!best || c.n > best.n) best = c;
    if (best) union.set(v, best.s);
  }
  return union;
}

/** A takeover writes the state of the version before again, in a new epoch: no client made it. */
const isTakeover = (h: Map<number, VersionState>, v: number) => {
  const s = h.get(v);
  const prev = h.get(v - 1);
  return s !== undefined && prev !== undefined && s.value === prev.value && s.epoch !== prev.epoch;
};

/**
 * The versions clients made, counted without the takeovers' versions: version v becomes v minus
 * the takeover versions up to v, so a register model where each write adds one holds. Answers
 * undefined when the key's history is not known from version 0 (older versions not retained).
 */
export function takeoverFold(h: Map<number, VersionState> | undefined): ((v: number) => number) | undefined {
  if (!h?.has(0)) return undefined;
  const top = Math.max(...h.keys());
  const logical: number[] = [];
  let skipped = 0;
  for (let v = 0; v <= top; v++) {
    if (isTakeover(h, v)) skipped++;
    logical.push(v - skipped);
  }
  return (v) => (v < 0 ? v : v <= top ? logical[v]! : v - skipped);
}
