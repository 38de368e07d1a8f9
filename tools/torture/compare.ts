/**
 * After healing: every host's retained history of every key, read from its own index (a local
 * INCLUDE_ALL_VERSIONS query), compared version by version, and duplicate applications counted.
 * Hosts keep the latest 100 versions of an example, so versions are compared where every host
 * still retains them; a host whose latest version is below another's lacks the difference. A
 * duplicate is one client value at two versions: either a value coming back after another
 * replaced it, or two consecutive versions with the same value in the same epoch (a takeover
 * writes the same state again, but always in a new epoch).
 */

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
    const t = (await r.body.json()) as { results?: { documents?: Record<string, any> } };
    if (r.statusCode !== 200) return undefined;
    const out = new Map<number, VersionState>();
    for (const d of Object.values(t.results?.documents ?? {})) {
      if (d.documentSelfLink !== link) continue;
      out.set(d.documentVersion, { epoch: d.documentEpoch ?? 0, value: d.name ?? null, tags: [...(d.tags ?? [])].sort() });
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

export async function compareHistories(group: Group, keys: string[]): Promise<ComparisonReport> {
  const agent = new Agent({ keepAliveTimeout: 1000 });
  const report: ComparisonReport = { keys: keys.length, versionsRead: 0, differences: [], duplicates: [], unreadable: [], histories: {} };
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
      const top = (h: Map<number, VersionState>) => (h.size ? Math.max(...h.keys()) : -1);
      const bottom = (h: Map<number, VersionState>) => (h.size ? Math.min(...h.keys()) : -1);
      const latest = Math.max(...hs.map((x) => top(x.h)));
      const from = Math.max(...hs.map((x) => bottom(x.h)));
      for (const x of hs) {
        if (top(x.h) < latest) report.differences.push({ key, what: `${x.host} holds up to version ${top(x.h)}, another host ${latest}` });
      }
      const reference = hs.reduce((a, b) => (top(b.h) > top(a.h) ? b : a));
      for (let v = from; v <= latest; v++) {
        const want = reference.h.get(v);
        for (const x of hs) {
          if (x === reference || v > top(x.h)) continue;
          const got = x.h.get(v);
          if (!want || !got) {
            if (want || got) report.differences.push({ key, what: `version ${v}: ${want ? x.host : reference.host} lacks it` });
          } else if (!same(want, got)) {
            report.differences.push({
              key,
              what: `version ${v}: ${reference.host} has ${JSON.stringify(want)}, ${x.host} ${JSON.stringify(got)}`,
            });
          }
        }
      }
      // Duplicates from the union of what the hosts retain, the fullest copy first.
      const union = new Map<number, VersionState>();
      for (const x of [reference, ...hs]) for (const [v, s] of x.h) if (!union.has(v)) union.set(v, s);
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
