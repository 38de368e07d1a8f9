/**
 * The watch workload's check, over the events each stream (`GET <link>/subscriptions/stream`)
 * delivered. Per document, a stream must see each version once and in order: after version u the
 * next is u + 1, unless `gap` events in between covered exactly the versions skipped; a version may
 * only go down when a document starts a new life (an update made by POST after a DELETE, or after
 * an `expired` event). Across streams the same (document, version) must carry the same value, and
 * a stream marked complete (it stayed open until the writes were over and it had caught up) must
 * end at the latest version anyone saw, or at the final version the caller knows.
 */

export type StreamEvent =
  | { type: 'update'; link: string; version: number; value?: string; action?: string }
  | { type: 'gap'; link: string; fromVersion: number; toVersion: number }
  | { type: 'expired'; link: string };

export interface WatchStream {
  id: string;
  events: readonly StreamEvent[];
  /** Open until after the last write, and drained: its last version of each document is the final one. */
  complete?: boolean;
}

export interface WatchProblem {
  stream: string;
  link: string;
  index: number; // position of the offending event in the stream, -1 for the stream's end
  message: string;
}

export interface WatchVerdict {
  result: 'ok' | 'violation';
  problems: WatchProblem[];
  explanation?: string;
}

/** Where one stream is on one document: the next version due, and whether a new life may begin. */
interface Cursor {
  next: number;
  restartable: boolean;
}

/** What checkStream shares across streams. */
interface Shared {
  problems: WatchProblem[];
  /** Kept apart until every stream is read: only then is it known which documents were re-created. */
  disagreements: WatchProblem[];
  values: Map<string, { value: string; stream: string }>;
  restartedLinks: Set<string>;
}

export function checkWatches(streams: readonly WatchStream[], opts: { finalVersions?: Record<string, number> } = {}): WatchVerdict {
  const sh: Shared = { problems: [], disagreements: [], values: new Map(), restartedLinks: new Set() };
  const lastSeen = new Map<string, Map<string, number>>(); // stream id → link → last version
  for (const s of streams) lastSeen.set(s.id, checkStream(s, sh));
  // Two lives of a document share version numbers, so re-created documents are only held to
  // order within each stream.
  const problems = [...sh.problems, ...sh.disagreements.filter((p) => !sh.restartedLinks.has(p.link))];
  checkEnds(streams, lastSeen, opts.finalVersions ?? {}, problems);
  const v: WatchVerdict = { result: problems.length ? 'violation' : 'ok', problems };
  if (problems.length) v.explanation = explainWatches(problems);
  return v;
}

function checkStream(s: WatchStream, sh: Shared): Map<string, number> {
  const at = new Map<string, Cursor>();
  const last = new Map<string, number>();
  s.events.forEach((e, index) => {
    const report = (message: string) => sh.problems.push({ stream: s.id, link: e.link, index, message });
    const c = at.get(e.link);
    if (e.type === 'expired') {
      if (c) c.restartable = true;
      return;
    }
    if (e.type === 'gap') {
      if (e.toVersion < e.fromVersion) report(`gap from v${e.fromVersion} to v${e.toVersion} is empty`);
      else if (c && e.fromVersion !== c.next) report(`gap from v${e.fromVersion} where v${c.next} was due`);
      at.set(e.link, { next: e.toVersion + 1, restartable: false });
      return;
    }
    if (c && e.version !== c.next) {
      const newLife = e.version < c.next && (c.restartable || e.action === 'POST');
      if (newLife) sh.restartedLinks.add(e.link);
      else if (e.version === c.next - 1) report(`v${e.version} delivered twice`);
      else if (e.version < c.next) report(`v${e.version} after v${c.next - 1}: went back`);
      else report(`v${e.version} after v${c.next - 1}: v${c.next}..v${e.version - 1} skipped without a gap event`);
    }
    at.set(e.link, { next: e.version + 1, restartable: false });
    last.set(e.link, e.version);
    if (e.value !== undefined) agree(s.id, e.link, e.version, e.value, sh, index);
  });
  return last;
}

function agree(stream: string, link: string, version: number, value: string, sh: Shared, index: number): void {
  const key = `${link}\u0000${version}`;
  const had = sh.values.get(key);
  if (!had) sh.values.set(key, { value, stream });
  else if (had.value !== value) {
    const message = `value ${JSON.stringify(value)} at v${version}, but stream ${had.stream} saw ${JSON.stringify(had.value)}`;
    sh.disagreements.push({ stream, link, index, message });
  }
}

function checkEnds(
  streams: readonly WatchStream[],
  lastSeen: Map<string, Map<string, number>>,
  finalVersions: Record<string, number>,
  problems: WatchProblem[],
): void {
  const latest = new Map<string, number>(Object.entries(finalVersions));
  if (!Object.keys(finalVersions).length) {
    for (const m of lastSeen.values()) for (const [link, v] of m) latest.set(link, Math.max(v, latest.get(link) ?? -1));
  }
  for (const s of streams) {
    if (!s.complete) continue;
    const mine = lastSeen.get(s.id)!;
    for (const [link, v] of latest) {
      const got = mine.get(link);
      if (got !== v)
        problems.push({
          stream: s.id,
          link,
          index: -1,
          message: `ended at ${got === undefined ? 'nothing' : `v${got}`}, the final version is v${v}`,
        });
    }
  }
}

const SHOWN = 20;

function explainWatches(problems: readonly WatchProblem[]): string {
  const lines = [`watches: ${problems.length} problem(s)`];
  for (const p of problems.slice(0, SHOWN))
    lines.push(`  stream ${p.stream} ${p.link}${p.index >= 0 ? ` event #${p.index}` : ''}: ${p.message}`);
  if (problems.length > SHOWN) lines.push(`  ... and ${problems.length - SHOWN} more`);
  return lines.join('\n');
}
