/**
 * Client histories of single-document operations and their linearizability check. A history is
 * what the torture runner recorded: each operation's invocation and completion times and what it
 * saw. checkHistory decides, per document, whether some total order of the operations that agrees
 * with real time explains every result under a versioned-register model (the state is a value and
 * a documentVersion; a write bumps the version, a compare-and-set — Xenon's StrictUpdateRequest —
 * only applies at the version it names). Linearizability is local, so each key is searched on its
 * own: Wing & Gong's search with Lowe's memoization of (set of operations placed, model state).
 *
 * Outcomes: an 'ok' operation happened exactly once between its call and its return; a 'fail' one
 * (a 4xx) definitely had no effect, so it constrains nothing and is left out; an 'unknown' one
 * (timeout, connection error, 5xx) may take effect at any point after its call or never, so it has
 * no return time and the search may leave it out. An unknown read saw nothing and is left out.
 *
 * Three cuts keep the search small without changing its answer: a write may only make the version
 * the history says it made (reported, or seen by a read of its unique value), and one nobody saw
 * only a version nobody else makes; writes of unknown outcome nobody saw are interchangeable, so
 * only the earliest called is tried; and a read that fits the current state is placed at once.
 * test/tools/check-linearizability.test.ts holds the search to a brute-force check.
 */

export type OpKind = 'read' | 'write' | 'cas';

export interface Op {
  id: number; // unique in the history
  process: number; // client id; one process has at most one op in flight
  key: string; // document link
  kind: OpKind;
  value?: string; // write/cas: the unique value written
  expectedVersion?: number; // cas: documentVersion the client expects (Xenon StrictUpdateRequest)
  call: number; // invocation time, ms (monotonic, performance.now())
  ret?: number; // completion time; absent when outcome is 'unknown'
  outcome: 'ok' | 'fail' | 'unknown'; // fail = definite non-effect (4xx, e.g. CAS refused 400 "Current version N")
  result?: { value: string | null; version: number }; // read ok: state seen (value null, version -1 = absent/404); write/cas ok: version after
}

export interface KeyVerdict {
  key: string;
  result: 'ok' | 'violation' | 'unknown';
  explanation?: string;
  ops?: number[];
}

/** The register's state; absent is (null, -1), so creating a document gives version 0. */
export interface State {
  value: string | null;
  version: number;
}

export const ABSENT: State = { value: null, version: -1 };

/** The search is cut off past this many milliseconds per key and the key's verdict is 'unknown'. */
export const DEFAULT_TIME_LIMIT_MS = 10_000;

/**
 * Configurations remembered per key before the search gives up with 'unknown': about 100 bytes
 * each, and a JavaScript Set cannot hold more than 2^24 entries anyway.
 */
export const DEFAULT_MAX_CONFIGS = 4_000_000;

/** How often (in search steps) the clock is read: performance.now() per step would dominate. */
const CLOCK_EVERY = 1024;

export function checkHistory(ops: readonly Op[], opts: { timeLimitMs?: number; maxConfigs?: number } = {}): KeyVerdict[] {
  validate(ops);
  const byKey = new Map<string, Op[]>();
  for (const op of ops) {
    const list = byKey.get(op.key);
    if (list) list.push(op);
    else byKey.set(op.key, [op]);
  }
  const limits = { ms: opts.timeLimitMs ?? DEFAULT_TIME_LIMIT_MS, configs: opts.maxConfigs ?? DEFAULT_MAX_CONFIGS };
  return [...byKey.keys()].sort().map((key) => checkKey(key, byKey.get(key)!, limits));
}

function validate(ops: readonly Op[]): void {
  const ids = new Set<number>();
  for (const op of ops) {
    if (ids.has(op.id)) throw new Error(`op id ${op.id} appears twice in the history`);
    ids.add(op.id);
    if (op.kind !== 'read' && op.value === undefined) throw new Error(`op ${op.id}: a ${op.kind} needs a value`);
    if (op.kind === 'cas' && op.expectedVersion === undefined) throw new Error(`op ${op.id}: a cas needs an expectedVersion`);
    if (op.ret !== undefined && op.ret < op.call) throw new Error(`op ${op.id} returns (${op.ret}) before its call (${op.call})`);
  }
}

/**
 * The state after `op` takes effect in `s`, or undefined when it cannot take effect there (a read
 * that saw something else, a cas at another version, an ok write whose reported version differs).
 */
export function step(s: State, op: Op): State | undefined {
  if (op.kind === 'read') {
    const r = op.result!;
    return r.value === s.value && r.version === s.version ? s : undefined;
  }
  if (op.kind === 'cas' && s.version !== op.expectedVersion) return undefined;
  const next: State = { value: op.value!, version: s.version + 1 };
  if (op.outcome === 'ok' && op.result && op.result.version !== next.version) return undefined;
  return next;
}

/**
 * Which version each write must make, where the history tells: an ok one's reported version, or
 * the version a read saw its (unique) value at. A write nobody saw cannot make a version another
 * write is known to make — versions only go up, so that one could never be placed after it. This
 * is what keeps unknown writes cheap: without it every one of them is tried at every point.
 */
class Versions {
  private readonly required = new Map<number, number>(); // op index → version it makes
  private readonly claims = new Map<number, number>(); // version → op index making it

  constructor(private readonly ops: readonly Op[]) {
    const writerOf = new Map<string, number>();
    ops.forEach((op, i) => {
      if (op.kind !== 'read') writerOf.set(op.value!, i);
      if (op.kind !== 'read' && op.outcome === 'ok' && op.result) this.claim(i, op.result.version);
    });
    for (const op of ops) {
      const w = op.kind === 'read' && op.result!.value !== null ? writerOf.get(op.result!.value) : undefined;
      if (w !== undefined && !this.required.has(w)) this.claim(w, op.result!.version);
    }
  }

  /**
   * A write of unknown outcome whose value nobody saw: it can only have filled a version nobody
   * else makes, and any two such writes already called are interchangeable, so the search tries
   * only the earliest one called (and its value, never read, does not tell states apart).
   */
  blind(i: number): boolean {
    const op = this.ops[i]!;
    return op.kind === 'write' && op.outcome === 'unknown' && !this.required.has(i);
  }

  private claim(i: number, version: number): void {
    this.required.set(i, version);
    if (!this.claims.has(version)) this.claims.set(version, i);
  }

  /** The state after op `i` takes effect in `s`, or undefined when it cannot take effect there. */
  fits(s: State, i: number): State | undefined {
    const op = this.ops[i]!;
    const next = step(s, op);
    if (!next || op.kind === 'read') return next;
    const need = this.required.get(i);
    if (need !== undefined) return next.version === need ? next : undefined;
    return this.claims.has(next.version) ? undefined : next;
  }

  /** Why op `i` cannot take effect in `s`, or why placing it would be no way out. */
  whyNot(s: State, i: number): string {
    const op = this.ops[i]!;
    if (this.fits(s, i)) return 'it fits here, but every order that places it next runs into a later dead end';
    if (op.kind === 'read') return `a read now would see ${formatState(s)}, not ${formatState(op.result!)}`;
    if (op.kind === 'cas' && s.version !== op.expectedVersion)
      return `the version is ${s.version}, not the ${op.expectedVersion} it expects`;
    const need = this.required.get(i);
    if (need !== undefined)
      return `it would make version ${s.version + 1}, but ${op.outcome === 'ok' ? 'reported' : 'was seen at'} ${need}`;
    return `it would make version ${s.version + 1}, which op ${this.ops[this.claims.get(s.version + 1)!]!.id} makes`;
  }
}

/** Whether the op takes part in the search at all; see the file comment. */
function matters(op: Op): boolean {
  if (op.outcome === 'fail') return false;
  if (op.kind === 'read') return op.outcome === 'ok' && op.result !== undefined;
  return true;
}

/** An operation's call or return in the time-ordered, doubly linked list of the search. */
interface Entry {
  op: number; // index into the key's ops
  call: boolean;
  time: number;
  match?: Entry; // a call's return entry; none for unknown outcomes
  prev?: Entry;
  next?: Entry;
}

function buildList(ops: readonly Op[]): Entry {
  const entries: Entry[] = [];
  ops.forEach((op, i) => {
    const c: Entry = { op: i, call: true, time: op.call };
    entries.push(c);
    if (op.outcome === 'ok') {
      c.match = { op: i, call: false, time: op.ret ?? Number.POSITIVE_INFINITY };
      entries.push(c.match);
    }
  });
  // At equal times calls come first: ops that touch at an instant count as concurrent, which can
  // only admit more orders, never report a violation that is not there.
  entries.sort((a, b) => a.time - b.time || (a.call === b.call ? a.op - b.op : a.call ? -1 : 1));
  const head: Entry = { op: -1, call: false, time: Number.NEGATIVE_INFINITY };
  let prev = head;
  for (const e of entries) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  return head;
}

function unlink(e: Entry): void {
  e.prev!.next = e.next;
  if (e.next) e.next.prev = e.prev;
}

/** Undoes unlink; valid because entries are put back in the reverse order they were taken out. */
function relink(e: Entry): void {
  e.prev!.next = e;
  if (e.next) e.next.prev = e;
}

function lift(c: Entry): void {
  unlink(c);
  if (c.match) unlink(c.match);
}

function unlift(c: Entry): void {
  if (c.match) relink(c.match);
  relink(c);
}

/** The deepest dead end seen: what the explanation of a violation is built from. */
interface DeadEnd {
  placed: number[]; // indexes into the key's ops, in linearization order
  state: State;
  blocked: number; // the op that returned without any place to take effect
  pending: number[]; // ops called before that return and not placed, none of which fit either
}

class Search {
  private readonly words: Uint32Array;
  private readonly values = new Map<string, number>();
  private readonly seen = new Set<string>();
  /** Placements in order; `forced` ones had no alternative worth trying (see placeRead). */
  private readonly stack: { entry: Entry; before: State; forced: boolean }[] = [];
  /** How many ok ops are still to place; unknown ones may stay out. */
  private left: number;
  private state: State = ABSENT;
  /** Blind writes in call order; the first `blindPlaced` of them are placed (see Versions.blind). */
  private readonly blindOrder: number[];
  private blindPlaced = 0;
  private readonly blindValues: Set<string>;
  deadEnd?: DeadEnd;
  steps = 0;

  get configs(): number {
    return this.seen.size;
  }

  constructor(
    readonly ops: readonly Op[],
    private readonly versions: Versions,
    private readonly deadline: number,
    private readonly maxConfigs: number,
  ) {
    this.words = new Uint32Array(Math.ceil(ops.length / 32) || 1);
    this.blindOrder = ops
      .map((_, i) => i)
      .filter((i) => versions.blind(i))
      .sort((a, b) => ops[a]!.call - ops[b]!.call || a - b);
    this.blindValues = new Set(this.blindOrder.map((i) => ops[i]!.value!));
    this.left = ops.filter((op) => op.outcome === 'ok').length;
  }

  run(): 'ok' | 'violation' | 'unknown' {
    const head = buildList(this.ops);
    let e = head.next;
    let fresh = true;
    while (this.left > 0) {
      if (++this.steps % CLOCK_EVERY === 0 && performance.now() > this.deadline) return 'unknown';
      if (this.seen.size >= this.maxConfigs) return 'unknown';
      const reads: 'placed' | 'dead' | 'none' = fresh ? this.placeRead(head) : 'none';
      if (reads === 'placed') {
        e = head.next;
        continue;
      }
      if (reads === 'none' && e?.call) {
        fresh = this.tryPlace(e, false);
        e = fresh ? head.next : e.next;
        continue;
      }
      // A return (or the end, with only unknown calls left): its op had to be placed by now.
      if (e && reads === 'none') this.noteDeadEnd(e);
      fresh = false;
      const back = this.backtrack();
      if (!back) return 'violation';
      e = back.next;
    }
    return 'ok';
  }

  /**
   * Places a read that fits the current state, if one is open. Nothing else need be tried here:
   * a read changes nothing, and every op that had to precede it is placed (it is open), so any
   * way on from here stays one with the read moved to now. 'dead': such a read leads somewhere
   * already explored, so this configuration is a dead end too.
   */
  private placeRead(head: Entry): 'placed' | 'dead' | 'none' {
    for (let c = head.next; c?.call; c = c.next) {
      if (this.ops[c.op]!.kind !== 'read' || !this.versions.fits(this.state, c.op)) continue;
      return this.tryPlace(c, true) ? 'placed' : 'dead';
    }
    return 'none';
  }

  /** Undoes placements back to the last one that has alternatives; returns its entry. */
  private backtrack(): Entry | undefined {
    for (;;) {
      const top = this.stack.pop();
      if (!top) return undefined;
      this.flip(top.entry.op);
      this.state = top.before;
      if (this.versions.blind(top.entry.op)) this.blindPlaced--;
      unlift(top.entry);
      if (this.ops[top.entry.op]!.outcome === 'ok') this.left++;
      if (!top.forced) return top.entry;
    }
  }

  /** Places the call's op next if the model allows it and this configuration is new. */
  private tryPlace(e: Entry, forced: boolean): boolean {
    const blind = this.versions.blind(e.op);
    if (blind && this.blindOrder[this.blindPlaced] !== e.op) return false;
    const next = this.versions.fits(this.state, e.op);
    if (!next) return false;
    this.flip(e.op);
    const key = this.configKey(next);
    if (this.seen.has(key)) {
      this.flip(e.op);
      return false;
    }
    this.seen.add(key);
    this.stack.push({ entry: e, before: this.state, forced });
    this.state = next;
    if (blind) this.blindPlaced++;
    if (this.ops[e.op]!.outcome === 'ok') this.left--;
    lift(e);
    return true;
  }

  private flip(i: number): void {
    this.words[i >>> 5]! ^= 1 << (i & 31);
  }

  /** Values are unique per write, so a small number names one; the version completes the state. */
  private configKey(s: State): string {
    let v = -1;
    if (s.value !== null && this.blindValues.has(s.value)) v = -2;
    else if (s.value !== null) {
      v = this.values.get(s.value) ?? this.values.size;
      if (v === this.values.size) this.values.set(s.value, v);
    }
    return `${this.words.join(',')}|${v}|${s.version}`;
  }

  private noteDeadEnd(ret: Entry): void {
    if (this.deadEnd && this.deadEnd.placed.length >= this.stack.length) return;
    const pending: number[] = [];
    for (let c = ret.prev; c && c.op >= 0; c = c.prev) if (c.call && c.op !== ret.op) pending.push(c.op);
    this.deadEnd = { placed: this.stack.map((s) => s.entry.op), state: this.state, blocked: ret.op, pending: pending.reverse() };
  }
}

function checkKey(key: string, all: readonly Op[], limits: { ms: number; configs: number }): KeyVerdict {
  const ops = all.filter(matters);
  const versions = new Versions(ops);
  const t0 = performance.now();
  const search = new Search(ops, versions, t0 + limits.ms, limits.configs);
  const result = search.run();
  if (result === 'ok') return { key, result };
  if (result === 'unknown') {
    const ms = Math.round(performance.now() - t0);
    const why = search.configs >= limits.configs ? `${limits.configs} configurations remembered` : `${limits.ms} ms`;
    return {
      key,
      result,
      explanation: `${key}: gave up after ${why} (${ms} ms, ${search.steps} search steps over ${ops.length} ops); neither proven nor refuted`,
    };
  }
  return explainDeadEnd(key, ops, versions, search.deadEnd!);
}

/** How many placed ops an explanation shows before the dead end; earlier ones are counted only. */
const PREFIX_SHOWN = 6;
const PENDING_SHOWN = 8;

function explainDeadEnd(key: string, ops: readonly Op[], versions: Versions, d: DeadEnd): KeyVerdict {
  const lines: string[] = [`${key}: not linearizable.`];
  const placed = d.placed.map((i) => ops[i]!);
  const setter = [...placed].reverse().find((op) => op.kind !== 'read');
  lines.push(
    `  longest linearizable prefix: ${placed.length} op(s), ending in state ${formatState(d.state)}` +
      (setter ? `, set by op ${setter.id}` : ' (the document was never written)'),
  );
  if (placed.length > PREFIX_SHOWN) lines.push(`    ... ${placed.length - PREFIX_SHOWN} earlier op(s)`);
  for (const op of placed.slice(-PREFIX_SHOWN)) lines.push(`    ${formatOp(op)}`);
  const blocked = ops[d.blocked]!;
  lines.push(`  cannot be placed: ${formatOp(blocked)}`);
  lines.push(`    ${versions.whyNot(d.state, d.blocked)}`);
  const pending = d.pending.map((i) => ops[i]!);
  if (pending.length) {
    lines.push('  nor can any op still open when it returned:');
    for (const i of d.pending.slice(0, PENDING_SHOWN)) lines.push(`    ${formatOp(ops[i]!)}: ${versions.whyNot(d.state, i)}`);
    if (pending.length > PENDING_SHOWN) lines.push(`    ... and ${pending.length - PENDING_SHOWN} more`);
  }
  // The state's writer and the reads that saw it since pin the state the blocked op contradicts.
  const sinceSetter = setter ? placed.slice(placed.indexOf(setter)) : placed;
  const involved = [...sinceSetter.slice(-PREFIX_SHOWN), blocked, ...pending.slice(0, PENDING_SHOWN)].map((op) => op.id);
  return { key, result: 'violation', explanation: lines.join('\n'), ops: involved };
}

export function formatState(s: State): string {
  return s.value === null && s.version === -1 ? 'absent' : `${JSON.stringify(s.value)}@v${s.version}`;
}

/** One op on one line: `op 7 p2 cas(v3 → "x") ok @v4 [10.0, 12.5]`. */
export function formatOp(op: Op): string {
  const what =
    op.kind === 'read'
      ? 'read'
      : op.kind === 'write'
        ? `write(${JSON.stringify(op.value)})`
        : `cas(v${op.expectedVersion} → ${JSON.stringify(op.value)})`;
  let seen = '';
  if (op.outcome === 'ok' && op.result) seen = op.kind === 'read' ? ` → ${formatState(op.result)}` : ` @v${op.result.version}`;
  const ret = op.outcome === 'unknown' || op.ret === undefined ? '?' : op.ret.toFixed(1);
  return `op ${op.id} p${op.process} ${what} ${op.outcome}${seen} [${op.call.toFixed(1)}, ${ret}]`;
}

/** A report for people: a count per result, then each key that is not 'ok' with its explanation. */
export function explain(verdicts: readonly KeyVerdict[]): string {
  const count = (r: KeyVerdict['result']) => verdicts.filter((v) => v.result === r).length;
  const lines = [`${verdicts.length} key(s): ${count('ok')} ok, ${count('violation')} violation(s), ${count('unknown')} unknown`];
  for (const v of verdicts) if (v.result !== 'ok') lines.push(v.explanation ?? `${v.key}: ${v.result}`);
  return lines.join('\n');
}
