/**
 * The workloads, each against `/core/examples` (the `default` selector: every host holds a
 * replica, writes need a majority) through every live host:
 *
 * - register: GET, PUT of unique values and compare-and-set (a StrictUpdateRequest PATCH at the
 *   version the client last saw; Xenon's 400 "Current version ..." is a definite failure) on one
 *   document at a time, the value in `name`; checked for linearizability by tools/check.
 * - set: PATCHes adding unique elements to `tags` of one document (the element also in `name`,
 *   so each version names the add that made it); read back through every host at the end:
 *   nothing acknowledged may be missing, nothing never sent or refused may be there.
 * - watch: PUTs on one document while an SSE stream on every host follows it (reconnecting with
 *   Last-Event-ID when its host goes away): every stream must see consecutive versions (a gap
 *   only as `event: gap`), the same value at each version on every host, the acknowledged value
 *   at its version, and reach the final version.
 *
 * Keys rotate after a bounded number of writes (below the 100 versions an example retains), so
 * each key's history stays small enough to check quickly and to compare whole between hosts.
 */

import { checkHistory, type KeyVerdict, type Op } from '../check/history.js';
import { type SetAdd as CheckedAdd, checkSet } from '../check/set.js';
import { type StreamEvent as CheckedEvent, checkWatches, type WatchStream } from '../check/watch.js';
import { duplicatesIn, takeoverFold, type VersionState } from './compare.js';
import { openStream, type SseStream } from '../recipes/sse.js';
import { type AnswerBody, HostClient, type Journal } from './client.js';
import type { Group } from './group.js';
import type { Rng } from './random.js';
import { exampleService } from '../../lib/services/example.js';

export const FACTORY = exampleService.factoryLink;
/**
 * Writes tried on a key before the workloads move to the next: below the versions an example
 * retains, with room for the versions takeovers add, so every host still holds a key's whole
 * history when the histories are compared and the takeovers' versions folded.
 */
const KEY_WRITES = exampleService.versionRetention - 20;
const STRICT_UPDATE = 'com:vmware:xenon:services:common:ExampleService:StrictUpdateRequest';

export interface WorkloadContext {
  group: Group;
  journal: Journal;
  rng: Rng;
  /** Prefix of every key of this run, so runs never share documents. */
  runId: string;
  timeoutMs: number;
  /** Milliseconds each client waits between its operations, so load leaves the hosts CPU to fail over. */
  thinkMs: number;
  stopped: () => boolean;
}

export interface Finding {
  key: string;
  what: string;
  /** Journal op ids, or other evidence, in a form a reader can follow. */
  evidence?: unknown;
}

export interface WorkloadReport {
  name: string;
  keys: string[];
  summary: Record<string, number>;
  /** Per-key verdicts (register) or per-key problems (set, watch). */
  verdicts: KeyVerdict[];
  violations: Finding[];
  /** What to save for a reader on failure. */
  history: unknown;
  /** register: the keys whose violations the known failure modes explain, and the ops that show them. */
  knownBugs?: { keys: string[]; refusedButApplied: Op[]; readsOfDiscardedWrites: Op[] };
  /** register: op id → [expected version, result version] as the hosts answered, before folding. */
  realVersions?: Record<number, [number | undefined, number | undefined]>;
}

export interface Workload {
  name: string;
  keys(): string[];
  run(): Promise<void>;
  /** After healing: `histories` is every key's retained history (compare.ts), read from the hosts. */
  finish(histories: Map<string, Map<number, VersionState>>): Promise<WorkloadReport>;
}

const think = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());

/** A client whose request went unanswered backs off, so a dead host's clients do not spin on refused connections. */
const UNKNOWN_BACKOFF_MS = 100;
const pace = (ctx: WorkloadContext, outcome: string, factor = 1) =>
  think(outcome === 'unknown' ? UNKNOWN_BACKOFF_MS : ctx.thinkMs * factor);

function clientsFor(ctx: WorkloadContext, name: string, perHost: number): HostClient[] {
  const hosts = ctx.group.hosts;
  return Array.from({ length: hosts.length * perHost }, (_, i) => {
    const h = hosts[i % hosts.length]!;
    return new HostClient(h.index, h.url, ctx.timeoutMs, ctx.journal, name);
  });
}

/** Keys advance when `limit` writes were tried on the current one; the client that advances creates the next. */
class KeyRing {
  index = 0;
  writes = 0;
  readonly all: string[] = [];
  constructor(
    private readonly prefix: string,
    private readonly limit: number,
  ) {
    this.all.push(this.linkOf(0));
  }
  linkOf(i: number): string {
    return `${FACTORY}/${this.prefix}-${i}`;
  }
  current(): string {
    return this.all[this.index]!;
  }
  /** Counts a write; answers the new key when this one moved the ring on. */
  wrote(): string | undefined {
    if (++this.writes < this.limit) return undefined;
    this.writes = 0;
    this.index++;
    this.all.push(this.linkOf(this.index));
    return this.current();
  }
}

const selfLinkOf = (link: string) => link.slice(FACTORY.length + 1);

// ---- register -----------------------------------------------------------------------------------

export class RegisterWorkload implements Workload {
  readonly name = 'register';
  private readonly ring: KeyRing;
  private readonly ops: Op[] = [];
  private readonly clients: HostClient[];

  constructor(private readonly ctx: WorkloadContext) {
    this.ring = new KeyRing(`${ctx.runId}-reg`, KEY_WRITES);
    this.clients = clientsFor(ctx, this.name, 2);
  }

  keys(): string[] {
    return this.ring.all;
  }

  private record(p: number, op: Omit<Op, 'id' | 'process' | 'call' | 'outcome'>, a: Awaited<ReturnType<HostClient['send']>>): Op {
    const o: Op = { id: this.ctx.journal.id(), process: p, ...op, call: a.call, outcome: a.outcome };
    if (op.kind === 'read' && a.status === 404) {
      // A read that found nothing is a definite observation, not a failure.
      o.outcome = 'ok';
      o.result = { value: null, version: -1 };
    } else if (a.outcome === 'ok') {
      o.result = { value: a.body?.name ?? null, version: a.body?.documentVersion as number };
    }
    if (o.outcome !== 'unknown') o.ret = a.ret;
    this.ops.push(o);
    this.ctx.journal.ops.push(o);
    return o;
  }

  private async create(c: HostClient, p: number, key: string, value: string): Promise<void> {
    const a = await c.send('POST', FACTORY, { documentSelfLink: selfLinkOf(key), name: value });
    this.record(p, { key, kind: 'write', value }, a);
  }

  async run(): Promise<void> {
    const first = this.ring.current();
    await this.create(this.clients[0]!, 0, first, `c0-init`);
    await Promise.all(this.clients.map((c, p) => this.client(c, p)));
  }

  private async client(c: HostClient, p: number): Promise<void> {
    const rng = this.ctx.rng.fork(100 + p);
    const seen = new Map<string, number>();
    for (let n = 0; !this.ctx.stopped(); n++) {
      const key = this.ring.current();
      const r = rng.next();
      const value = `p${p}-${n}`;
      const expected = seen.get(key);
      let o: Op;
      if (r < 0.5 || (r >= 0.8 && expected === undefined)) {
        o = this.record(p, { key, kind: 'read' }, await c.send('GET', key));
      } else if (r < 0.8) {
        o = this.record(p, { key, kind: 'write', value }, await c.send('PUT', key, { name: value }));
      } else {
        const body = { kind: STRICT_UPDATE, documentVersion: expected, name: value };
        o = this.record(p, { key, kind: 'cas', value, expectedVersion: expected }, await c.send('PATCH', key, body));
      }
      if (o.result && o.result.version >= 0) seen.set(key, o.result.version);
      if (o.kind !== 'read') {
        const next = this.ring.wrote();
        if (next) await this.create(c, p, next, `${value}-init`);
      }
      await pace(this.ctx, o.outcome);
    }
  }

  /**
   * The ops as the register model sees them: versions made by takeovers folded away (see
   * takeoverFold), per key; a key whose history is not known from version 0 is left as it is.
   */
  private folded(histories: Map<string, Map<number, VersionState>>): { ops: Op[]; unfolded: string[] } {
    const unfolded: string[] = [];
    const folds = new Map<string, ((v: number) => number) | undefined>();
    for (const key of this.ring.all) {
      folds.set(key, takeoverFold(histories.get(key)));
      if (!folds.get(key) && histories.get(key)?.size) unfolded.push(key);
    }
    const ops = this.ops.map((o) => {
      const f = folds.get(o.key);
      if (!f) return o;
      const x: Op = { ...o };
      if (o.expectedVersion !== undefined) x.expectedVersion = f(o.expectedVersion);
      if (o.result) x.result = { ...o.result, version: f(o.result.version) };
      return x;
    });
    return { ops, unfolded };
  }

  /**
   * What the hosts' final histories tell about the known failure modes, per key: a value at two
   * versions (applied twice), a write or CAS answered 4xx whose value is there (took effect
   * though refused), and a read of a value no host holds any more (a write later discarded).
   * A violation on such a key is explained by them; any other is news.
   */
  private knownBugs(histories: Map<string, Map<number, VersionState>>) {
    const keys = new Set<string>();
    const refusedButApplied: Op[] = [];
    const readsOfDiscarded: Op[] = [];
    let duplicates = 0;
    for (const key of this.ring.all) {
      const h = histories.get(key);
      if (!h?.has(0)) continue;
      const held = new Set([...h.values()].map((s) => s.value));
      const dups = duplicatesIn(key, h).length;
      duplicates += dups;
      if (dups) keys.add(key);
      for (const o of this.ops) {
        if (o.key !== key) continue;
        if (o.kind !== 'read' && o.outcome === 'fail' && held.has(o.value!)) refusedButApplied.push(o);
        if (o.kind === 'read' && o.outcome === 'ok' && o.result?.value != null && !held.has(o.result.value)) readsOfDiscarded.push(o);
      }
    }
    for (const o of [...refusedButApplied, ...readsOfDiscarded]) keys.add(o.key);
    return { keys, refusedButApplied, readsOfDiscarded, duplicates };
  }

  async finish(histories: Map<string, Map<number, VersionState>>): Promise<WorkloadReport> {
    await Promise.all(this.clients.map((c) => c.close()));
    const { ops, unfolded } = this.folded(histories);
    const verdicts = checkHistory(ops, { timeLimitMs: 10_000 });
    const known = this.knownBugs(histories);
    const dupKeys = new Set(this.ring.all.filter((key) => duplicatesIn(key, histories.get(key) ?? new Map()).length > 0));
    const explained = verdicts.filter((v) => v.result === 'violation' && explainsViolation(v, this.ops, known, dupKeys));
    const byId = new Map(ops.map((o) => [o.id, o]));
    const count = (f: (o: Op) => boolean) => this.ops.filter(f).length;
    return {
      name: this.name,
      keys: this.ring.all,
      summary: {
        ops: this.ops.length,
        ok: count((o) => o.outcome === 'ok'),
        fail: count((o) => o.outcome === 'fail'),
        unknown: count((o) => o.outcome === 'unknown'),
        reads: count((o) => o.kind === 'read'),
        writes: count((o) => o.kind === 'write'),
        cas: count((o) => o.kind === 'cas'),
        casRefused: count((o) => o.kind === 'cas' && o.outcome === 'fail'),
        opsWithTakeoverVersionsFolded: ops.filter((o, i) => o.result && o.result.version !== this.ops[i]!.result?.version).length,
        keysNotFolded: unfolded.length,
        duplicateApplications: known.duplicates,
        refusedButApplied: known.refusedButApplied.length,
        readsOfDiscardedWrites: known.readsOfDiscarded.length,
        violationsNotExplained: verdicts.filter((v) => v.result === 'violation').length - explained.length,
      },
      knownBugs: {
        // The keys of the violations a known failure mode explains (see explains()).
        keys: explained.map((v) => v.key),
        refusedButApplied: known.refusedButApplied,
        readsOfDiscardedWrites: known.readsOfDiscarded,
      },
      verdicts,
      violations: verdicts
        .filter((v) => v.result === 'violation')
        .map((v) => ({
          key: v.key,
          what: v.explanation ?? 'not linearizable',
          evidence: (v.ops ?? []).map((id) => byId.get(id)),
        })),
      // As checked (takeover versions folded); realVersions has each op's versions as the hosts answered.
      history: ops,
      realVersions: Object.fromEntries(
        this.ops.filter((o) => o.result || o.expectedVersion !== undefined).map((o) => [o.id, [o.expectedVersion, o.result?.version]]),
      ),
    };
  }
}

/**
 * Whether a known failure mode explains a register violation: its key had a write applied twice,
 * or the ops the checker found it in include a known-bug op (a write answered 4xx yet applied, a
 * read of a write later discarded), or an op that wrote or saw the value of such a refused write.
 * One known-bug op on a key does not excuse every violation on it: a read of a state that never
 * existed next to it is news.
 */
export function explainsViolation(
  v: KeyVerdict,
  ops: readonly Op[],
  known: { refusedButApplied: readonly Op[]; readsOfDiscarded: readonly Op[] },
  duplicateKeys: ReadonlySet<string>,
): boolean {
  if (duplicateKeys.has(v.key)) return true;
  const mine = (o: Op) => o.key === v.key;
  const bugIds = new Set([...known.refusedButApplied, ...known.readsOfDiscarded].filter(mine).map((o) => o.id));
  const refusedValues = new Set(known.refusedButApplied.filter(mine).map((o) => o.value));
  const byId = new Map(ops.filter(mine).map((o) => [o.id, o]));
  return (v.ops ?? []).some((id) => {
    const o = byId.get(id);
    return bugIds.has(id) || (o !== undefined && (refusedValues.has(o.value) || refusedValues.has(o.result?.value ?? undefined)));
  });
}

// ---- set ----------------------------------------------------------------------------------------

interface SetAdd extends CheckedAdd {
  key: string;
  status?: number;
}

export class SetWorkload implements Workload {
  readonly name = 'set';
  private readonly ring: KeyRing;
  private readonly adds: SetAdd[] = [];
  private readonly clients: HostClient[];
  private finalReads: Record<string, Record<string, string[] | string>> = {};

  constructor(private readonly ctx: WorkloadContext) {
    this.ring = new KeyRing(`${ctx.runId}-set`, KEY_WRITES);
    this.clients = clientsFor(ctx, this.name, 1);
  }

  keys(): string[] {
    return this.ring.all;
  }

  private async create(c: HostClient, key: string): Promise<void> {
    await c.send('POST', FACTORY, { documentSelfLink: selfLinkOf(key), name: 'init', tags: [] });
  }

  async run(): Promise<void> {
    await this.create(this.clients[0]!, this.ring.current());
    await Promise.all(this.clients.map((c, p) => this.client(c, p)));
  }

  private async client(c: HostClient, p: number): Promise<void> {
    for (let n = 0; !this.ctx.stopped(); n++) {
      const key = this.ring.current();
      const element = `s${p}-${n}`;
      const a = await c.send('PATCH', key, { tags: [element], name: element });
      this.adds.push({ key, element, process: p, outcome: a.outcome, call: a.call, ret: a.ret, status: a.status });
      const next = this.ring.wrote();
      if (next) await this.create(c, next);
      await pace(this.ctx, a.outcome);
    }
  }

  /** The tags of `key` read through host `h` (forwarded to the owner) or from its own copy. */
  private async readTags(c: HostClient, key: string, local: boolean): Promise<string[] | string> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const a = await c.send('GET', key, undefined, local ? { pragma: 'xn-no-fwd' } : {});
      if (a.status === 200) return (a.body?.tags ?? []) as string[];
      if (a.status === 404 || Date.now() > deadline) return `no answer (${a.status ?? a.error})`;
      await think(200);
    }
  }

  async finish(_histories: Map<string, Map<number, VersionState>>): Promise<WorkloadReport> {
    const readers = this.ctx.group.hosts.map((h) => new HostClient(h.index, h.url, this.ctx.timeoutMs, this.ctx.journal, 'final'));
    const violations: Finding[] = [];
    const verdicts: KeyVerdict[] = [];
    const worst = { lost: 0, unexpected: 0, duplicated: 0, replicaLost: 0 };
    for (const key of this.ring.all) {
      const adds = this.adds.filter((a) => a.key === key);
      const reads: Record<string, string[] | string> = {};
      for (const r of readers) {
        reads[`host${r.host}`] = await this.readTags(r, key, false);
        reads[`host${r.host} local`] = await this.readTags(r, key, true);
      }
      this.finalReads[key] = reads;
      const problems: string[] = [];
      let lost = 0;
      let unexpected = 0;
      let duplicated = 0;
      let replicaLost = 0;
      for (const [where, tags] of Object.entries(reads)) {
        if (typeof tags === 'string') {
          // A key whose create never took effect has no document: only a problem if adds were acknowledged.
          const acked = adds.filter((a) => a.outcome === 'ok').length;
          if (acked) problems.push(`${where}: ${tags}`);
          if (where.endsWith('local')) replicaLost = Math.max(replicaLost, acked);
          else lost = Math.max(lost, acked);
          continue;
        }
        const v = checkSet({ adds, finalRead: tags });
        if (v.result === 'ok') continue;
        problems.push(`read through ${where}: ${v.explanation}`);
        // Reads through a host reach the owner: what a client sees. Local reads show one replica's copy.
        if (where.endsWith('local')) replicaLost = Math.max(replicaLost, v.lost.length);
        else {
          lost = Math.max(lost, v.lost.length);
          unexpected = Math.max(unexpected, v.unexpected.length);
          duplicated = Math.max(duplicated, v.duplicated.length);
        }
      }
      worst.lost += lost;
      worst.unexpected += unexpected;
      worst.duplicated += duplicated;
      worst.replicaLost += replicaLost;
      verdicts.push({ key, result: problems.length ? 'violation' : 'ok', explanation: problems.join('\n') || undefined });
      for (const p of problems) violations.push({ key, what: p });
    }
    await Promise.all([...this.clients, ...readers].map((c) => c.close()));
    const count = (f: (a: SetAdd) => boolean) => this.adds.filter(f).length;
    return {
      name: this.name,
      keys: this.ring.all,
      summary: {
        adds: this.adds.length,
        ok: count((a) => a.outcome === 'ok'),
        fail: count((a) => a.outcome === 'fail'),
        unknown: count((a) => a.outcome === 'unknown'),
        lostAcknowledged: worst.lost,
        unexpectedPresent: worst.unexpected,
        listedTwice: worst.duplicated,
        lostOnAReplicaOnly: worst.replicaLost,
      },
      verdicts,
      violations,
      history: { adds: this.adds, finalReads: this.finalReads },
    };
  }
}

// ---- watch --------------------------------------------------------------------------------------

type StreamEvent = { version: number; value: string | null; action?: string } | { gap: [number, number] };

/** One host's stream of one document, across reconnects. */
class Follower {
  readonly segments: StreamEvent[][] = [];
  reconnects = 0;
  private stream: SseStream | undefined;
  private closed = false;
  private last: string | undefined;
  readonly done: Promise<void>;

  constructor(
    readonly host: number,
    readonly url: string,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      let s: SseStream;
      try {
        s = await openStream(this.url, this.last);
      } catch {
        // Its host is down, paused or the document is not there yet: try again shortly.
        await think(200);
        continue;
      }
      if (this.closed) {
        await s.close();
        return;
      }
      this.stream = s;
      const seg: StreamEvent[] = [];
      this.segments.push(seg);
      let seen = 0;
      const drain = () => {
        for (; seen < s.events.length; seen++) {
          const e = s.events[seen]!;
          const d = e.data as AnswerBody | undefined;
          if (e.event === 'update' && d)
            seg.push({ version: d.documentVersion as number, value: (d.name as string) ?? null, action: d.documentUpdateAction as string });
          else if (e.event === 'gap' && d) seg.push({ gap: [d.fromVersion as number, d.toVersion as number] });
        }
      };
      const timer = setInterval(drain, 50);
      await s.ended;
      clearInterval(timer);
      drain();
      this.last = s.lastEventId();
      if (!this.closed) this.reconnects++;
      await think(100);
    }
  }

  events(): StreamEvent[] {
    return this.segments.flat();
  }

  lastVersion(): number {
    const ev = this.events();
    const e = ev[ev.length - 1];
    if (!e) return -1;
    return 'version' in e ? e.version : e.gap[1];
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.stream?.close();
    await this.done;
  }
}

interface WatchWrite {
  key: string;
  value: string;
  outcome: 'ok' | 'fail' | 'unknown';
  version?: number;
  call: number;
  ret: number;
}

export class WatchWorkload implements Workload {
  readonly name = 'watch';
  private readonly ring: KeyRing;
  private readonly writes: WatchWrite[] = [];
  private readonly clients: HostClient[];
  private readonly followers = new Map<string, Follower[]>();

  constructor(private readonly ctx: WorkloadContext) {
    this.ring = new KeyRing(`${ctx.runId}-watch`, KEY_WRITES);
    this.clients = clientsFor(ctx, this.name, 1).slice(0, 2);
  }

  keys(): string[] {
    return this.ring.all;
  }

  private async create(c: HostClient, key: string): Promise<void> {
    await c.send('POST', FACTORY, { documentSelfLink: selfLinkOf(key), name: `${selfLinkOf(key)}-init` });
    this.followers.set(
      key,
      this.ctx.group.hosts.map((h) => new Follower(h.index, `${h.url}${key}/subscriptions/stream`)),
    );
  }

  async run(): Promise<void> {
    await this.create(this.clients[0]!, this.ring.current());
    await Promise.all(this.clients.map((c, p) => this.client(c, p)));
  }

  private async client(c: HostClient, p: number): Promise<void> {
    for (let n = 0; !this.ctx.stopped(); n++) {
      const key = this.ring.current();
      const value = `w${p}-${n}`;
      const a = await c.send('PUT', key, { name: value });
      this.writes.push({ key, value, outcome: a.outcome, version: a.body?.documentVersion, call: a.call, ret: a.ret });
      const next = this.ring.wrote();
      if (next) await this.create(c, next);
      await pace(this.ctx, a.outcome, 2);
    }
  }

  async finish(_histories: Map<string, Map<number, VersionState>>): Promise<WorkloadReport> {
    const reader = new HostClient(0, this.ctx.group.hosts[0]!.url, this.ctx.timeoutMs, this.ctx.journal, 'final');
    const finalVersion = new Map<string, number>();
    for (const key of this.ring.all) {
      const a = await reader.send('GET', key);
      finalVersion.set(key, a.status === 200 ? (a.body?.documentVersion as number) : -1);
    }
    // Streams deliver asynchronously: give each one a bounded time to reach its key's last version.
    const deadline = Date.now() + 15_000;
    for (const [key, fs] of this.followers) {
      const want = finalVersion.get(key) ?? -1;
      while (Date.now() < deadline && fs.some((f) => f.lastVersion() < want)) await think(50);
    }
    await Promise.all([...this.followers.values()].flat().map((f) => f.close()));
    await Promise.all([...this.clients, reader].map((c) => c.close()));

    const violations: Finding[] = [];
    const verdicts: KeyVerdict[] = [];
    let gapEvents = 0;
    let problemsSeen = 0;
    for (const key of this.ring.all) {
      const fs = this.followers.get(key) ?? [];
      const streams: WatchStream[] = fs.map((f) => ({
        id: `host${f.host}`,
        // Every stream stayed open past the last write and was drained (above): it must end at the final version.
        complete: true,
        events: f.events().map((e): CheckedEvent => {
          if ('gap' in e) {
            gapEvents++;
            return { type: 'gap', link: key, fromVersion: e.gap[0], toVersion: e.gap[1] };
          }
          return { type: 'update', link: key, version: e.version, value: e.value ?? undefined, action: e.action };
        }),
      }));
      const want = finalVersion.get(key) ?? -1;
      const v = checkWatches(streams, want >= 0 ? { finalVersions: { [key]: want } } : {});
      const problems = v.problems.map((p) => `stream on ${p.stream}${p.index >= 0 ? ` event #${p.index}` : ''}: ${p.message}`);
      // What the checker cannot know: the value a client was told it wrote at a version.
      const seen = new Map<number, string | undefined>();
      for (const st of streams) for (const e of st.events) if (e.type === 'update' && !seen.has(e.version)) seen.set(e.version, e.value);
      for (const w of this.writes) {
        if (w.key !== key || w.outcome !== 'ok' || w.version === undefined || !seen.has(w.version)) continue;
        if (seen.get(w.version) !== w.value)
          problems.push(`acknowledged ${w.value} at version ${w.version}, streams saw ${seen.get(w.version)} there`);
      }
      problemsSeen += problems.length;
      verdicts.push({ key, result: problems.length ? 'violation' : 'ok', explanation: problems.join('; ') || undefined });
      for (const p of problems) violations.push({ key, what: p });
    }
    const count = (f: (w: WatchWrite) => boolean) => this.writes.filter(f).length;
    return {
      name: this.name,
      keys: this.ring.all,
      summary: {
        writes: this.writes.length,
        ok: count((w) => w.outcome === 'ok'),
        unknown: count((w) => w.outcome === 'unknown'),
        streams: [...this.followers.values()].flat().length,
        reconnects: [...this.followers.values()].flat().reduce((n, f) => n + f.reconnects, 0),
        gapEvents,
        problems: problemsSeen,
      },
      verdicts,
      violations,
      history: {
        writes: this.writes,
        streams: Object.fromEntries(
          [...this.followers].map(([k, fs]) => [k, fs.map((f) => ({ host: f.host, reconnects: f.reconnects, events: f.events() }))]),
        ),
      },
    };
  }
}
