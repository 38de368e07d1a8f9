/**
 * Replication benchmarks with real `krypton host` processes on loopback (3 hosts, one group):
 *
 *  1. Replicated durable writes. 64 connections dealt round-robin over the 3 hosts by one
 *     autocannon instance (22 + 21 + 21; one latency histogram, so p99 is the p99 of the whole
 *     load): POST /core/examples of distinct documents, then PATCH of `patchDocs` pre-created
 *     documents (requests rotate over them) for `seconds`. Every write entering a host is
 *     forwarded to its owner, appended durably there, shipped to the two other hosts and
 *     answered once a quorum (2 of 3) holds it. Throughput counts 2xx answers only. An
 *     unmeasured warm-up (`warmupSeconds`, 10 s) precedes the POST runs, and etcd's put runs
 *     alike: a freshly formed group ramps from ~600 to ~3,800 POST/s over its first ~10 s of load
 *     on a 2-core machine (V8 tiering up in 3 hosts and the load generator), so a shorter
 *     warm-up measures the ramp, not the steady state.
 *  2. The same load against a 3-member etcd cluster's JSON gateway (etcd.ts), values of the
 *     POST body's size. Both run side by side: after the warm-ups, `rounds` rounds (4) each load
 *     Krypton then etcd for `seconds` (6 s), or etcd then Krypton, alternating; an even number,
 *     so each system goes first as often as the other. One run of each,
 *     minutes apart, compared the machine's speed at two moments as much as the two systems: it
 *     drifts by 10-15% over minutes here. `ratio` = Krypton POST / etcd put throughput over all
 *     rounds (goal >= 1.2); each round's ratio is kept, and the cores the idle system used
 *     meanwhile (`idleCores`, a few thousandths).
 *  3. Catch-up. In a fresh group of 3, one host is stopped with SIGTERM; once the two others
 *     are available again, `missed` POSTs of distinct documents go through them (64 connections
 *     over the two). "Missed updates" are these creates: each is one new link at version 0,
 *     i.e. one record the stopped host lacks, so the restarted host must receive exactly that
 *     many latest states (no update is folded into another). The host is then restarted with
 *     the same port, sandbox and id; the catch-up time runs from its spawn until a local COUNT
 *     query on it (`/core/local-query-tasks`, its own index) finds every document the live hosts
 *     hold. Rate = missed updates / catch-up seconds. The wait polls the host's link count
 *     every 50 ms (`GET /core/management`, constant time) and runs the COUNT query once that
 *     count is reached, the moment of that poll being the catch-up time: polling with the COUNT
 *     query itself (a scan of every document, 20 times a second) took about a third of the
 *     restarted host's CPU, slowing the catch-up it measured. Most documents arrive during the
 *     group's 5 s stability window (early pushes by owners, hand-overs by old owners; see
 *     server/synch/early.ts), so the bench then also waits for the group to be available on the
 *     restarted host and for that host's synchronization pass (taking its own links over under a
 *     new epoch) to finish, reporting both times; only then are its full link list compared with
 *     a live host's and a sample of documents read locally (`pragma: xn-no-fwd`) and compared,
 *     epoch and version included.
 *
 * `BENCH_CLOSE_SIGNAL=TERM` stops the hosts with SIGTERM instead of SIGKILL at the end, so a
 * host run under `--cpu-prof` (through $KRYPTON_BIN) writes its profile.
 *
 * A host that has not caught up `catchUpTimeoutSeconds` after its restart (default 120 s) is
 * reported as such (`caughtUp: false`, what it held), not waited for.
 *
 * Runnable directly: `node --import tsx tools/bench/replication.ts [quick] [--no-etcd]
 * [--seconds=N] [--warmup=N] [--rounds=N] [--missed=N] [--patchDocs=N] [--catchUpTimeout=S]`; the last line of stdout is
 * the JSON result. $KRYPTON_BIN may name another build's dist/tools/krypton.js to compare builds.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  exampleBody,
  freePorts,
  removeDir,
  sleep,
  spreadLoad,
  tempDir,
  track,
  startEtcd,
  type EtcdCluster,
  type EtcdOutcome,
  type LoadFigures,
} from './etcd.js';

/** The host binary: this checkout's build, or another build's `krypton.js` named by $KRYPTON_BIN. */
const KRYPTON = process.env.KRYPTON_BIN
  ? path.resolve(process.env.KRYPTON_BIN)
  : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/tools/krypton.js');
const EXAMPLE_KIND = 'com:vmware:xenon:services:common:ExampleService:ExampleServiceState';
const log = (s: string) => process.stderr.write(`[replication] ${s}\n`);

export interface CatchUpResult {
  /** What was missed: `missed` creates of distinct documents (one record each). */
  meaning: string;
  missedUpdates: number;
  /** The writes made while the host was down (2 live hosts, 64 connections). */
  writes: LoadFigures;
  /** Documents every host must hold at the end (those created before the stop + the missed ones). */
  expectedDocs: number;
  /** Whether the restarted host held every document before `catchUpTimeoutMs`; if not, why. */
  caughtUp: boolean;
  error?: string;
  /** Documents in the restarted host's index when the wait ended. */
  heldAtEnd: number;
  /**
   * From the restart's spawn: port answering, group available on the restarted host, all data
   * local (null when it did not catch up in time; -1 for a moment never reached).
   */
  listenMs: number;
  availableMs: number;
  catchUpMs: number | null;
  /**
   * From the restart until the restarted host's synchronization pass has finished (it has taken
   * over the links it owns again, under a new epoch): the group is wholly synchronized then. The
   * documents themselves arrive earlier, most of them while the group is still settling.
   */
  synchronizedMs: number | null;
  /** missedUpdates / catch-up seconds from the restart (the goal's figure, >= 10 000). */
  updatesPerSec: number;
  /** The restarted host's link list equals a live host's; sampled documents match. */
  linksMatch: boolean;
  sampleChecked: number;
  sampleMismatches: number;
  /** synchStats of each host once caught up (restarted host last). */
  synchStats: Record<string, unknown>[];
}

export interface ReplicationResult {
  hosts: number;
  connections: number;
  /** Each measured run: every round's POST and put, and the PATCH run. */
  seconds: number;
  /** Krypton POST and etcd put, back to back, `seconds` each; `post` and `etcd.put` sum them. */
  rounds: PostRound[];
  /** Cores the idle system used while the other was measured (averaged over the rounds). */
  idleCores?: { kryptonWhileEtcd: number; etcdWhileKrypton: number };
  /** Unmeasured load before each measured run (Krypton POST and etcd put alike). */
  warmupSeconds: number;
  bodyBytes: number;
  post: LoadFigures;
  patch: LoadFigures & { docs: number };
  /** Each host's synchStats right after the POST run. */
  synchStatsAfterPost: Record<string, unknown>[];
  etcd?: EtcdOutcome;
  /** Krypton replicated POST throughput / etcd put throughput over all rounds (goal >= 1.2); absent when etcd was skipped. */
  ratio?: number;
  catchUp: CatchUpResult;
}

export interface Host {
  port: number;
  id: string;
  url: string;
  proc: ChildProcess;
  /** The last few KiB of its output, for error messages. */
  tail: string;
}

/** A group of krypton hosts in one sandbox; every process it starts is killed by `close()`. */
export class Group {
  readonly hosts: Host[] = [];
  private readonly all: ChildProcess[] = [];

  private constructor(
    readonly sandbox: string,
    readonly ports: number[],
  ) {}

  static async start(n: number): Promise<Group> {
    const sandbox = await tempDir('krypton-bench-repl-');
    const g = new Group(sandbox, await freePorts(n));
    try {
      for (const p of g.ports) g.hosts.push(g.spawn(p));
      await g.waitFor(g.hosts, 'all AVAILABLE', () => g.converged(g.hosts, g.hosts.length), 60_000);
    } catch (e) {
      await g.close();
      throw e;
    }
    return g;
  }

  /** Starts (or restarts) the host of `port`: same sandbox, same id, same peer list. */
  spawn(port: number): Host {
    const peers = this.ports.map((p) => `http://127.0.0.1:${p}`).join(',');
    const id = `host-${port}`;
    const proc = track(
      spawn(
        process.execPath,
        [KRYPTON, 'host', `--port=${port}`, `--sandbox=${this.sandbox}`, `--id=${id}`, `--peerNodes=${peers}`, '--logLevel=info'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      ),
    );
    this.all.push(proc);
    const h: Host = { port, id, url: `http://127.0.0.1:${port}`, proc, tail: '' };
    const keep = (b: Buffer) => {
      h.tail = (h.tail + b.toString()).slice(-4096);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    return h;
  }

  replace(old: Host, h: Host): void {
    this.hosts[this.hosts.indexOf(old)] = h;
  }

  /** Every host in `hosts` lists `members` AVAILABLE members (and no more) and is available. */
  async converged(hosts: Host[], members: number, notAvailable?: string): Promise<boolean> {
    for (const h of hosts) {
      const g = await getJson(`${h.url}/core/node-groups/default`);
      const nodes = Object.values((g?.nodes ?? {}) as Record<string, { id: string; status: string }>);
      if (nodes.filter((x) => x.status === 'AVAILABLE').length !== members) return false;
      if (notAvailable && nodes.some((x) => x.id === notAvailable && x.status === 'AVAILABLE')) return false;
      const a = await fetch(`${h.url}/core/node-groups/default/available`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
      if (a?.status !== 200) return false;
    }
    return true;
  }

  async waitFor(hosts: Host[], what: string, cond: () => Promise<boolean>, timeoutMs: number, pollMs = 20): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await cond())) {
      const dead = hosts.find((h) => h.proc.exitCode !== null);
      if (dead) throw new Error(`host ${dead.port} exited with ${dead.proc.exitCode} while waiting for ${what}:\n${dead.tail}`);
      if (Date.now() > deadline) throw new Error(`not ${what} within ${timeoutMs / 1000} s`);
      await sleep(pollMs);
    }
  }

  /** Graceful stop (SIGTERM), SIGKILL after 30 s. */
  async stop(h: Host): Promise<void> {
    if (h.proc.exitCode !== null || h.proc.signalCode !== null) return;
    const gone = new Promise((r) => h.proc.once('exit', r));
    h.proc.kill('SIGTERM');
    const t = setTimeout(() => h.proc.kill('SIGKILL'), 30_000);
    await gone;
    clearTimeout(t);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.all.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const gone = new Promise((r) => p.once('exit', r));
        p.kill(process.env.BENCH_CLOSE_SIGNAL === 'TERM' ? 'SIGTERM' : 'SIGKILL');
        await gone;
      }),
    );
    await removeDir(this.sandbox);
  }
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<Record<string, unknown> | undefined> {
  try {
    const r = await fetch(url, { headers, signal: AbortSignal.timeout(30_000) });
    return (await r.json()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Example documents in `host`'s own index (a local direct COUNT query), or -1 while it does not answer. */
async function localCount(host: Host): Promise<number> {
  try {
    const r = await fetch(`${host.url}/core/local-query-tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        taskInfo: { isDirect: true },
        querySpec: { options: ['COUNT'], query: { term: { propertyName: 'documentKind', matchValue: EXAMPLE_KIND } } },
      }),
      signal: AbortSignal.timeout(5000),
    });
    if (r.status !== 200) return -1;
    return ((await r.json()) as { results?: { documentCount?: number } }).results?.documentCount ?? -1;
  } catch {
    return -1;
  }
}

/** Links in `host`'s index (`indexStats` of `GET /core/management`, constant time), or -1 while it does not answer. */
async function indexedLinks(host: Host): Promise<number> {
  const m = await getJson(`${host.url}/core/management`);
  const links = (m?.indexStats as { links?: unknown } | undefined)?.links;
  return typeof links === 'number' ? links : -1;
}

async function factoryLinks(host: Host): Promise<string[]> {
  const r = await getJson(`${host.url}/core/examples`);
  return (r?.documentLinks as string[] | undefined) ?? [];
}

/** Creates `n` documents `<prefix>-<i>` spread over the hosts, 32 at a time; returns their links. */
async function createDocs(hosts: Host[], prefix: string, n: number): Promise<string[]> {
  const links: string[] = [];
  let next = 0;
  let failures = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < n) {
        const i = next++;
        const link = `/core/examples/${prefix}-${String(i).padStart(6, '0')}`;
        const r = await fetch(`${hosts[i % hosts.length]!.url}/core/examples`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ documentSelfLink: link, name: `${prefix}-${i}`, keyValues: { a: 'b' } }),
          signal: AbortSignal.timeout(60_000),
        }).catch(() => undefined);
        await r?.arrayBuffer();
        if (r?.status === 200) links.push(link);
        else failures++;
      }
    }),
  );
  if (failures) throw new Error(`${failures} of ${n} setup POSTs failed`);
  return links.sort();
}

/** Each host's synchronization counters (`passes` 0 with many `linksChecked` = every write synchronized its link on demand). */
async function synchStatsOf(hosts: Host[]): Promise<Record<string, unknown>[]> {
  return Promise.all(
    hosts.map(async (h) => ({ port: h.port, ...((await getJson(`${h.url}/core/management`))?.synchStats as Record<string, unknown>) })),
  );
}

const postBuild = (i: number) => ({ method: 'POST', path: '/core/examples', body: exampleBody(i) });

/** One round of the POST comparison: each system loaded for the same seconds, back to back. */
export interface PostRound {
  /** Which system was loaded first in this round (rounds alternate, so neither always goes first). */
  first: 'krypton' | 'etcd';
  kryptonRps: number;
  etcdRps: number;
  ratio: number;
}

/** Several runs of one load as one: counts and seconds summed, p50 the median run's, p99 the worst run's. */
export function combineRuns(runs: LoadFigures[]): LoadFigures {
  const sum = (f: (x: LoadFigures) => number) => runs.reduce((n, x) => n + f(x), 0);
  const statusCodes: Record<string, number> = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.statusCodes)) statusCodes[k] = (statusCodes[k] ?? 0) + v;
  const seconds = sum((x) => x.seconds);
  const ok = sum((x) => x.ok);
  const p50s = runs.map((x) => x.p50Ms).sort((a, b) => a - b);
  return {
    rps: seconds > 0 ? Math.round(ok / seconds) : 0,
    p50Ms: p50s[Math.floor(p50s.length / 2)] ?? 0,
    p99Ms: Math.max(0, ...runs.map((x) => x.p99Ms)),
    ok,
    non2xx: sum((x) => x.non2xx),
    errors: sum((x) => x.errors),
    timeouts: sum((x) => x.timeouts),
    statusCodes,
    seconds,
  };
}

/** CPU seconds (user + system, every thread) the processes have used so far; undefined without /proc. */
function cpuSeconds(pids: number[]): number | undefined {
  try {
    let ticks = 0;
    for (const pid of pids) {
      // Fields after the command name: utime and stime are the 12th and 13th.
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    }
    // USER_HZ is 100 on every Linux this runs on.
    return ticks / 100;
  } catch {
    return undefined;
  }
}

interface WritesResult {
  post: LoadFigures;
  etcd?: EtcdOutcome;
  rounds: PostRound[];
  idleCores?: { kryptonWhileEtcd: number; etcdWhileKrypton: number };
  patch: LoadFigures & { docs: number };
  synchStatsAfterPost: Record<string, unknown>[];
}

/**
 * Krypton's group and etcd's cluster run side by side; after a warm-up of each, `rounds` rounds
 * load one then the other for `seconds` each, the order alternating. This machine's speed drifts
 * by 10-15% over minutes (both systems' figures move together), so measuring the two back to back
 * many times compares them under the same conditions, where one run of each minutes apart did not.
 * The idle system's CPU use during the other's runs is reported, to show it takes next to none.
 */
async function measureWrites(o: {
  connections: number;
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  patchDocs: number;
  etcd: boolean;
}): Promise<WritesResult> {
  const { connections, seconds, warmupSeconds } = o;
  const g = await Group.start(3);
  let cluster: EtcdCluster | undefined;
  try {
    const urls = g.hosts.map((h) => h.url);
    let etcd: EtcdOutcome | undefined;
    if (o.etcd) {
      const started = await startEtcd();
      if ('skipped' in started) {
        etcd = started;
        log(`etcd part skipped: ${started.skipped}`);
      } else cluster = started;
    }
    log(
      `3 hosts on ${g.ports.join(', ')} converged${cluster ? ', etcd running' : ''}; warm-up ${warmupSeconds} s each, then ${o.rounds} rounds of ${seconds} s of replicated POST${cluster ? ' and etcd put, alternating' : ''} over ${connections} connections ...`,
    );
    let n = 0;
    const build = () => postBuild(n++);
    const kryptonPids = g.hosts.map((h) => h.proc.pid!);
    if (warmupSeconds > 0) {
      await spreadLoad(urls, connections, { seconds: warmupSeconds }, build);
      if (cluster) await cluster.load(connections, warmupSeconds);
    }
    const measured = await postRounds({ urls, connections, seconds, rounds: o.rounds, build, kryptonPids, cluster });
    const post = combineRuns(measured.posts);
    if (cluster) {
      const put = combineRuns(measured.puts);
      etcd = { ...cluster.info, connections, put };
      log(`etcd put: ${put.rps} ok/s, p99 ${put.p99Ms} ms, non-2xx ${put.non2xx}, errors ${put.errors}`);
      await cluster.close();
      cluster = undefined;
    }
    const synchStatsAfterPost = await synchStatsOf(g.hosts);
    log(`POST: ${post.rps} ok/s, p99 ${post.p99Ms} ms, non-2xx ${post.non2xx}, errors ${post.errors}, timeouts ${post.timeouts}`);
    const patch = await measurePatch(g.hosts, connections, seconds, o.patchDocs);
    return {
      post,
      ...(etcd ? { etcd } : {}),
      rounds: measured.rounds,
      ...(measured.idleCores ? { idleCores: measured.idleCores } : {}),
      patch,
      synchStatsAfterPost,
    };
  } finally {
    await cluster?.close();
    await g.close();
  }
}

type Build = () => { method: string; path: string; body: string };

/**
 * The alternating rounds of measureWrites: Krypton's POSTs alone without etcd, else Krypton and
 * etcd back to back, the one not loaded having its CPU use counted.
 */
async function postRounds(p: {
  urls: string[];
  connections: number;
  seconds: number;
  rounds: number;
  build: Build;
  kryptonPids: number[];
  cluster: EtcdCluster | undefined;
}): Promise<{ posts: LoadFigures[]; puts: LoadFigures[]; rounds: PostRound[]; idleCores: WritesResult['idleCores'] }> {
  const { urls, connections, seconds, build, kryptonPids, cluster } = p;
  const posts: LoadFigures[] = [];
  const puts: LoadFigures[] = [];
  const rounds: PostRound[] = [];
  let idleK = 0;
  let idleE = 0;
  let idleSeconds = 0;
  for (let r = 0; r < p.rounds; r++) {
    const first = r % 2 === 0 || !cluster ? 'krypton' : 'etcd';
    let k: LoadFigures | undefined;
    let e: LoadFigures | undefined;
    for (const which of first === 'krypton' ? (['krypton', 'etcd'] as const) : (['etcd', 'krypton'] as const)) {
      if (which === 'etcd' && !cluster) continue;
      const idlePids = which === 'krypton' ? (cluster?.pids ?? []) : kryptonPids;
      const before = cpuSeconds(idlePids);
      const f = which === 'krypton' ? await spreadLoad(urls, connections, { seconds }, build) : await cluster!.load(connections, seconds);
      const after = cpuSeconds(idlePids);
      if (before !== undefined && after !== undefined && idlePids.length > 0) {
        if (which === 'krypton') idleE += after - before;
        else idleK += after - before;
        if (which === 'krypton') idleSeconds += f.seconds;
      }
      if (which === 'krypton') k = f;
      else e = f;
    }
    posts.push(k!);
    if (e) {
      puts.push(e);
      rounds.push({ first, kryptonRps: k!.rps, etcdRps: e.rps, ratio: Math.round((k!.rps / e.rps) * 100) / 100 });
      log(`round ${r + 1}: Krypton POST ${k!.rps} ok/s, etcd put ${e.rps} ok/s, ratio ${(k!.rps / e.rps).toFixed(2)} (${first} first)`);
    } else log(`round ${r + 1}: Krypton POST ${k!.rps} ok/s`);
  }
  const idleCores =
    rounds.length > 0 && idleSeconds > 0
      ? {
          kryptonWhileEtcd: Math.round((idleK / idleSeconds) * 1000) / 1000,
          etcdWhileKrypton: Math.round((idleE / idleSeconds) * 1000) / 1000,
        }
      : undefined;
  return { posts, puts, rounds, idleCores };
}

/** `seconds` of replicated PATCH rotating over `docs` documents created for it. */
async function measurePatch(hosts: Host[], connections: number, seconds: number, docs: number): Promise<LoadFigures & { docs: number }> {
  const links = await createDocs(hosts, 'patch', docs);
  log(`${links.length} documents created; ${seconds} s of replicated PATCH rotating over them ...`);
  let m = 0;
  const patchBuild = () => {
    const i = m++;
    return { method: 'PATCH', path: links[i % links.length]!, body: `{"keyValues":{"a":"v${String(i % 1e8).padStart(8, '0')}"}}` };
  };
  const patch = await spreadLoad(
    hosts.map((h) => h.url),
    connections,
    { seconds },
    patchBuild,
  );
  log(`PATCH: ${patch.rps} ok/s, p99 ${patch.p99Ms} ms, non-2xx ${patch.non2xx}, errors ${patch.errors}, timeouts ${patch.timeouts}`);
  return { ...patch, docs: links.length };
}

/** What the live hosts took while the third was stopped: its id and port, and the documents it must catch up. */
interface Missed {
  victim: Host;
  live: Host[];
  writes: LoadFigures;
  expectedDocs: number;
  missedUpdates: number;
}

/** 100 documents on all 3 hosts, then the third stopped and `missed` POSTs made through the other two. */
async function stopAndWrite(g: Group, connections: number, missed: number): Promise<Missed> {
  // A few documents before the stop, so the stopped host has a log and an index to come back to.
  await createDocs(g.hosts, 'before', 100);
  await g.waitFor(
    g.hosts,
    'holding the first 100 documents',
    async () => (await Promise.all(g.hosts.map(localCount))).every((c) => c === 100),
    30_000,
    50,
  );
  const victim = g.hosts[2]!;
  const live = g.hosts.slice(0, 2);
  log(`stopping host ${victim.port} (SIGTERM; sandbox ${g.sandbox}/${victim.port}, id ${victim.id}) ...`);
  await g.stop(victim);
  await g.waitFor(live, `2 live hosts available without ${victim.id}`, () => g.converged(live, 2, victim.id), 60_000, 50);

  log(`${missed} POSTs of distinct documents through ports ${live.map((h) => h.port).join(', ')} (${connections} connections) ...`);
  let n = 0;
  const writes = await spreadLoad(
    live.map((h) => h.url),
    Math.min(connections, missed),
    { amount: missed },
    () => postBuild(n++),
  );
  log(`writes: ${writes.ok} ok at ${writes.rps} ok/s, p99 ${writes.p99Ms} ms, non-2xx ${writes.non2xx}, errors ${writes.errors}`);
  const counts = await Promise.all(live.map(localCount));
  if (counts[0] !== counts[1]) throw new Error(`the live hosts disagree before the restart: ${counts.join(' vs ')} documents`);
  const expectedDocs = counts[0]!;
  return { victim, live, writes, expectedDocs, missedUpdates: expectedDocs - 100 };
}

/** Milliseconds since `t0` when `host`'s default group answers available now, else -1. */
async function availableSince(host: Host, t0: number): Promise<number> {
  const a = await fetch(`${host.url}/core/node-groups/default/available`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
  return a?.status === 200 ? Math.round(performance.now() - t0) : -1;
}

/** Milestones of the restarted host, in ms from its spawn at `t0` (-1 for one not reached). */
interface CatchUpTimes {
  listenMs: number;
  availableMs: number;
  catchUpMs: number;
  held: number;
}

/** Polls the restarted host until it holds `expectedDocs` documents or `deadline` passes. */
async function waitCatchUp(back: Host, expectedDocs: number, t0: number, deadline: number): Promise<CatchUpTimes> {
  const t: CatchUpTimes = { listenMs: -1, availableMs: -1, catchUpMs: -1, held: -1 };
  while (performance.now() < deadline) {
    if (back.proc.exitCode !== null) throw new Error(`restarted host exited with ${back.proc.exitCode}:\n${back.tail}`);
    const links = await indexedLinks(back);
    const now = performance.now() - t0;
    // Only example documents are written in this group, so every indexed link is one of them.
    t.held = links >= expectedDocs ? await localCount(back) : links;
    if (t.held >= 0 && t.listenMs < 0) t.listenMs = Math.round(now);
    if (t.held >= 0 && t.availableMs < 0) t.availableMs = await availableSince(back, t0);
    if (t.held === expectedDocs) {
      t.catchUpMs = Math.round(now);
      break;
    }
    await sleep(50);
  }
  return t;
}

/**
 * The documents can all be there before the group is available (they arrive while it settles);
 * so wait for availability, and for the restarted host's own pass (its takeovers) to finish.
 * Returns the (possibly updated) availableMs and synchronizedMs, -1 when not reached by `deadline`.
 */
async function waitSynchronized(
  back: Host,
  t0: number,
  deadline: number,
  availableMs: number,
): Promise<{ availableMs: number; synchronizedMs: number }> {
  let synchronizedMs = -1;
  while (performance.now() < deadline && (availableMs < 0 || synchronizedMs < 0)) {
    if (availableMs < 0) availableMs = await availableSince(back, t0);
    const st = (await getJson(`${back.url}/core/management`))?.synchStats as { passes?: number; running?: boolean } | undefined;
    if (availableMs >= 0 && (st?.passes ?? 0) > 0 && st?.running === false) synchronizedMs = Math.round(performance.now() - t0);
    else await sleep(50);
  }
  return { availableMs, synchronizedMs };
}

/** Same links as a live host, and up to 200 sampled documents equal there and here. */
async function compareWithLive(back: Host, live: Host): Promise<{ linksMatch: boolean; sampleChecked: number; sampleMismatches: number }> {
  const [mine, theirs] = await Promise.all([factoryLinks(back), factoryLinks(live)]);
  mine.sort();
  theirs.sort();
  const linksMatch = mine.length === theirs.length && mine.every((l, i) => l === theirs[i]);
  const sample = theirs.filter((_, i) => i % Math.max(1, Math.floor(theirs.length / 200)) === 0).slice(0, 200);
  let sampleMismatches = 0;
  for (const l of sample) {
    const [a, b] = await Promise.all([
      getJson(`${back.url}${l}`, { pragma: 'xn-no-fwd' }),
      getJson(`${live.url}${l}`, { pragma: 'xn-no-fwd' }),
    ]);
    if (
      !a ||
      !b ||
      a.name !== b.name ||
      JSON.stringify(a.keyValues) !== JSON.stringify(b.keyValues) ||
      a.documentVersion !== b.documentVersion ||
      a.documentEpoch !== b.documentEpoch
    )
      sampleMismatches++;
  }
  return { linksMatch, sampleChecked: sample.length, sampleMismatches };
}

async function measureCatchUp(connections: number, missed: number, catchUpTimeoutMs: number): Promise<CatchUpResult> {
  const g = await Group.start(3);
  try {
    const { victim, live, writes, expectedDocs, missedUpdates } = await stopAndWrite(g, connections, missed);
    log(`restarting host ${victim.port}; waiting until it holds ${expectedDocs} documents ...`);
    const t0 = performance.now();
    const back = g.spawn(victim.port);
    g.replace(victim, back);
    const deadline = performance.now() + catchUpTimeoutMs;
    const caught = await waitCatchUp(back, expectedDocs, t0, deadline);
    const { listenMs, catchUpMs, held } = caught;
    const synchStats = await synchStatsOf(g.hosts);
    const meaning = `${missedUpdates} POSTs of distinct documents (one new link at version 0 each, so ${missedUpdates} latest states to receive) made through the 2 live hosts while the third was stopped`;
    if (catchUpMs < 0) {
      const error = `the restarted host held ${held} of ${expectedDocs} documents ${Math.round(catchUpTimeoutMs / 1000)} s after its restart`;
      log(`NOT caught up: ${error}; synchStats ${JSON.stringify(synchStats)}`);
      return {
        meaning,
        missedUpdates,
        writes,
        expectedDocs,
        caughtUp: false,
        error,
        heldAtEnd: held,
        listenMs,
        availableMs: caught.availableMs,
        catchUpMs: null,
        synchronizedMs: null,
        updatesPerSec: 0,
        linksMatch: false,
        sampleChecked: 0,
        sampleMismatches: 0,
        synchStats,
      };
    }
    const { availableMs, synchronizedMs } = await waitSynchronized(back, t0, deadline, caught.availableMs);
    log(
      `caught up in ${catchUpMs} ms (port answering after ${listenMs} ms, group available after ${availableMs} ms, synchronized after ${synchronizedMs} ms)`,
    );
    return {
      meaning,
      missedUpdates,
      writes,
      expectedDocs,
      caughtUp: true,
      heldAtEnd: held,
      listenMs,
      availableMs,
      catchUpMs,
      updatesPerSec: Math.round(missedUpdates / (catchUpMs / 1000)),
      synchronizedMs: synchronizedMs < 0 ? null : synchronizedMs,
      ...(await compareWithLive(back, live[0]!)),
      synchStats,
    };
  } finally {
    await g.close();
  }
}

export async function benchReplication(
  opts: {
    connections?: number;
    seconds?: number;
    warmupSeconds?: number;
    rounds?: number;
    patchDocs?: number;
    missed?: number;
    catchUpTimeoutSeconds?: number;
    etcd?: boolean;
  } = {},
): Promise<ReplicationResult> {
  const connections = opts.connections ?? 64;
  const seconds = opts.seconds ?? 6;
  const warmupSeconds = opts.warmupSeconds ?? 10;
  const rounds = opts.rounds ?? 4;
  const w = await measureWrites({
    connections,
    seconds,
    warmupSeconds,
    rounds,
    patchDocs: opts.patchDocs ?? 1000,
    etcd: opts.etcd ?? true,
  });
  const catchUp = await measureCatchUp(connections, opts.missed ?? 100_000, (opts.catchUpTimeoutSeconds ?? 120) * 1000);
  const e = w.etcd && !('skipped' in w.etcd) ? w.etcd : undefined;
  const ratio = e ? Math.round((w.post.rps / e.put.rps) * 100) / 100 : undefined;
  return {
    hosts: 3,
    connections,
    seconds,
    warmupSeconds,
    rounds: w.rounds,
    bodyBytes: exampleBody(0).length,
    post: w.post,
    patch: w.patch,
    synchStatsAfterPost: w.synchStatsAfterPost,
    ...(w.etcd ? { etcd: w.etcd } : {}),
    ...(ratio !== undefined ? { ratio } : {}),
    ...(w.idleCores ? { idleCores: w.idleCores } : {}),
    catchUp,
  };
}

/** The rows `npm run bench` (run.ts) prints for this benchmark: measure, krypton, baseline, ratio. */
export function replicationRows(r: ReplicationResult, fmt: (n: number, digits?: number) => string): [string, string, string, string][] {
  const e = r.etcd && !('skipped' in r.etcd) ? r.etcd : undefined;
  const skipped = r.etcd && 'skipped' in r.etcd ? `etcd skipped: ${r.etcd.skipped}` : 'etcd not run';
  const c = r.catchUp;
  const rows: [string, string, string, string][] = [
    [
      `replicated durable POST, ${r.hosts} hosts, ${r.connections} conns, ${r.rounds.length || 1} x ${r.seconds} s`,
      `${fmt(r.post.rps)} req/s, p99 ${r.post.p99Ms} ms`,
      e ? `etcd ${e.version} 3 members, put (same load, alternating rounds) ${fmt(e.put.rps)} req/s, p99 ${e.put.p99Ms} ms` : skipped,
      r.ratio !== undefined
        ? `${fmt(r.ratio, 2)} (goal >= 1.2; rounds ${r.rounds.map((x) => fmt(x.ratio, 2)).join(', ')})`
        : '(goal >= 1.2)',
    ],
    [
      `replicated durable PATCH, ${r.hosts} hosts, ${r.connections} conns, ${fmt(r.patch.docs)} docs`,
      `${fmt(r.patch.rps)} req/s, p99 ${r.patch.p99Ms} ms`,
      '',
      '',
    ],
    [
      `catch-up of a host restarted after ${fmt(c.missedUpdates)} missed creates`,
      c.caughtUp && c.catchUpMs !== null
        ? `${fmt(c.updatesPerSec)} updates/s (all held ${fmt(c.catchUpMs / 1000, 1)} s after restart; group available at ${fmt(c.availableMs / 1000, 1)} s, takeovers done at ${c.synchronizedMs === null ? 'not in time' : `${fmt(c.synchronizedMs / 1000, 1)} s`})`
        : `not caught up: ${c.error}`,
      '',
      '(goal >= 10,000 updates/s)',
    ],
  ];
  const bad = [r.post, r.patch, c.writes, ...(e ? [e.put] : [])].some((f) => f.non2xx || f.errors || f.timeouts);
  if (bad) {
    const f = (x: LoadFigures) => `${x.non2xx}/${x.errors}/${x.timeouts}`;
    rows.push([
      'replication non-2xx/errors/timeouts',
      `POST ${f(r.post)}, PATCH ${f(r.patch)}, catch-up writes ${f(c.writes)}`,
      e ? `etcd ${f(e.put)}` : '',
      '',
    ]);
  }
  return rows;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const a = args.find((x) => x.startsWith(`--${name}=`));
    return a === undefined ? undefined : Number(a.slice(name.length + 3));
  };
  const quick = args.includes('quick') || args.includes('--quick');
  console.log(
    JSON.stringify(
      await benchReplication({
        seconds: flag('seconds') ?? (quick ? 3 : 6),
        warmupSeconds: flag('warmup') ?? (quick ? 3 : 10),
        rounds: flag('rounds') ?? (quick ? 2 : 4),
        missed: flag('missed') ?? (quick ? 10_000 : 100_000),
        patchDocs: flag('patchDocs') ?? (quick ? 200 : 1000),
        catchUpTimeoutSeconds: flag('catchUpTimeout') ?? (quick ? 60 : 120),
        etcd: !args.includes('--no-etcd'),
      }),
    ),
  );
}
