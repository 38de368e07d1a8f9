/**
 * The baseline of the replication benchmark: a 3-member etcd cluster (Debian's `etcd-server`)
 * started on loopback ports, loaded through its JSON gateway (`POST /v3/kv/put`) by the same
 * load generator, connections and body size as Krypton's replicated POST (see replication.ts).
 * etcd is found on the PATH (or $ETCD_BIN); when missing, `apt-get install -y etcd-server` is
 * tried, and where that fails the result is `{ skipped: <reason> }`, never an error.
 *
 * The load helpers used by both sides live here (`spreadLoad`, `freePorts`), so Krypton and etcd
 * are measured by literally the same code: one autocannon instance whose connections are dealt
 * round-robin over every member's URL (64 connections over 3 members: 22 + 21 + 21), so its
 * latency histogram covers every request and its p99 is the p99 of the whole load. Throughput is
 * successful (2xx) responses per second of the run; failures are counted, not included.
 *
 * `startEtcd` gives a running cluster to load in several rounds (replication.ts alternates them
 * with Krypton's); `benchEtcd` measures etcd alone. Runnable directly: `node --import tsx
 * tools/bench/etcd.ts [seconds]` (10 s warm-up first); the last line of stdout is the JSON result.
 */

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

// ---- the load generator shared with replication.ts ---------------------------------------------

/** The slice of autocannon's options used here (tools/bench/autocannon.d.ts declares fewer). */
export interface AcRequest {
  method?: string;
  path?: string;
  body?: string;
  headers?: Record<string, string>;
  setupRequest?: (req: AcRequest, context: Record<string, unknown>) => AcRequest;
}
interface AcOptions {
  url: string | string[];
  connections: number;
  duration?: number;
  amount?: number;
  timeout?: number;
  method?: string;
  headers?: Record<string, string>;
  requests?: AcRequest[];
}
interface AcResult {
  latency: { p50: number; p99: number; average: number; max: number };
  requests: { average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
}
const cannon = autocannon as unknown as (o: AcOptions) => Promise<AcResult>;

export interface LoadFigures {
  /** Successful (2xx) responses per second of the run. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** 2xx responses. */
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Every status code seen with its count, e.g. {"200": 51234}. */
  statusCodes: Record<string, number>;
  seconds: number;
}

/**
 * One autocannon run over several URLs: `connections` connections dealt round-robin over
 * `urls`, each request built by `build(i)` (i counts requests of this run across connections).
 * Either `seconds` of load or exactly `amount` requests.
 */
export async function spreadLoad(
  urls: string[],
  connections: number,
  until: { seconds: number } | { amount: number },
  build: (i: number) => { method: string; path: string; body: string },
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<LoadFigures> {
  let i = 0;
  const first = build(0);
  const r = await cannon({
    url: urls,
    connections,
    ...('seconds' in until ? { duration: until.seconds } : { amount: until.amount }),
    timeout: 30,
    method: first.method,
    headers,
    requests: [{ setupRequest: (req) => ({ ...req, ...build(i++) }) }],
  });
  const statusCodes: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.statusCodeStats ?? {})) statusCodes[k] = v.count;
  return {
    rps: Math.round(r['2xx'] / r.duration),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes,
    seconds: r.duration,
  };
}

/**
 * The body of every Krypton POST of the replication bench, and the value of every etcd put:
 * the HTTP benchmark's body with a fixed-width counter in the name, so each is distinct and all
 * have the same size.
 */
export function exampleBody(i: number): string {
  return `{"name":"bench-${String(i % 1e8).padStart(8, '0')}","counter":1,"keyValues":{"a":"b","c":"d"},"tags":["x","y"]}`;
}

/**
 * `n` consecutive free ports below Linux's ephemeral range (32768+), where no outgoing
 * connection can take one before the server binds it.
 */
export async function freePorts(n: number): Promise<number[]> {
  const isFree = (port: number) =>
    new Promise<boolean>((r) => {
      const s = net.createServer();
      s.once('error', () => r(false));
      s.listen(port, '127.0.0.1', () => s.close(() => r(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 10_000);
    const ports = Array.from({ length: n }, (_, i) => base + i);
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return ports;
  }
  throw new Error('no free block of ports found between 20000 and 30000');
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Every server process and temp folder a benchmark makes is tracked here: the processes are
 * SIGKILLed and the folders removed if this process exits without doing it (an exception, or
 * SIGINT/SIGTERM from whoever runs the bench).
 */
const tracked = new Set<ChildProcess>();
const trackedDirs = new Set<string>();
let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', () => {
    for (const c of tracked) c.kill('SIGKILL');
    for (const d of trackedDirs) fs.rmSync(d, { recursive: true, force: true });
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
}
export function track(p: ChildProcess): ChildProcess {
  hookExit();
  tracked.add(p);
  p.once('exit', () => tracked.delete(p));
  return p;
}
/** A new temp folder, removed at exit if still there (`removeDir` removes it earlier). */
export async function tempDir(prefix: string): Promise<string> {
  hookExit();
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  trackedDirs.add(d);
  return d;
}
export async function removeDir(d: string): Promise<void> {
  await fsp.rm(d, { recursive: true, force: true });
  trackedDirs.delete(d);
}
const log = (s: string) => process.stderr.write(`[etcd] ${s}\n`);

// ---- etcd ---------------------------------------------------------------------------------------

export interface EtcdResult {
  version: string;
  binary: string;
  members: number;
  connections: number;
  /** The gateway path that answered (`/v3/kv/put` on etcd 3.4+, `/v3beta/kv/put` on 3.3). */
  gateway: string;
  /** Bytes of each put's value (before base64), the same as Krypton's POST body. */
  valueBytes: number;
  put: LoadFigures;
}
export type EtcdOutcome = EtcdResult | { skipped: string };

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, out: `${stdout}${stderr}` });
      },
    );
  });
}

async function findEtcd(): Promise<string | undefined> {
  const candidates = [process.env.ETCD_BIN, '/usr/bin/etcd', '/usr/local/bin/etcd'].filter((c): c is string => !!c);
  for (const c of candidates) if (fs.existsSync(c)) return c;
  const w = await run('sh', ['-c', 'command -v etcd'], 5000);
  return w.code === 0 && w.out.trim() ? w.out.trim().split('\n')[0] : undefined;
}

/** etcd's path, installing Debian's `etcd-server` when it is missing; a reason when it cannot. */
export async function ensureEtcd(install = true): Promise<{ bin: string } | { skipped: string }> {
  let bin = await findEtcd();
  if (bin) return { bin };
  if (!install) return { skipped: 'etcd is not installed (install Debian package etcd-server, or set ETCD_BIN)' };
  const apt = await run('sh', ['-c', 'command -v apt-get'], 5000);
  if (apt.code !== 0) return { skipped: 'etcd is not installed and apt-get is not available to install etcd-server' };
  log('etcd not found: apt-get update && apt-get install -y etcd-server ...');
  const upd = await run('apt-get', ['update', '-qq'], 300_000);
  if (upd.code !== 0) log(`apt-get update failed (${upd.code}): ${upd.out.trim().split('\n').slice(-3).join(' | ')}`);
  const inst = await run('apt-get', ['install', '-y', '-qq', 'etcd-server'], 600_000);
  bin = await findEtcd();
  if (bin) return { bin };
  const why = inst.out.trim().split('\n').slice(-3).join(' | ');
  return {
    skipped: `etcd is not installed and \`apt-get install -y etcd-server\` failed (exit ${inst.code}${process.getuid?.() === 0 ? '' : ', not root'}): ${why}`,
  };
}

async function etcdVersion(bin: string): Promise<string> {
  const v = await run(bin, ['--version'], 10_000);
  return /etcd Version:\s*(\S+)/.exec(v.out)?.[1] ?? v.out.trim().split('\n')[0] ?? 'unknown';
}

async function post(url: string, body: unknown, timeoutMs = 2000): Promise<{ status: number; text: string } | undefined> {
  try {
    const r = await fetch(url, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: r.status, text: await r.text() };
  } catch {
    return undefined;
  }
}

async function healthy(clientUrl: string): Promise<boolean> {
  try {
    const r = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(2000) });
    return r.status === 200 && ((await r.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A running 3-member etcd cluster, ready for puts through its JSON gateway. */
export interface EtcdCluster {
  info: Omit<EtcdResult, 'put'>;
  /** The members' process ids, for CPU accounting. */
  pids: number[];
  /** The members' client URLs, for loads made by other generators than autocannon. */
  clientUrls: string[];
  /**
   * `seconds` of puts of distinct keys over `connections` connections (one counter across calls,
   * so every put of every call writes a new key).
   */
  load(connections: number, seconds: number): Promise<LoadFigures>;
  /** One member by index, for fault benchmarks (availability.ts): signal it, start it again, find the leader. */
  members: EtcdMembers;
  close(): Promise<void>;
}

export interface EtcdMembers {
  readonly count: number;
  readonly gateway: string;
  /** Sends `signal` and resolves once the member has exited. */
  stop(i: number, signal: NodeJS.Signals): Promise<void>;
  /** Starts a stopped member again on its data folder (it rejoins as the member it was). */
  start(i: number): void;
  /** Every member reports healthy and takes a put; why not after `timeoutMs`. */
  waitHealthy(timeoutMs: number): Promise<string | undefined>;
  /** The index of the member that is leader now, as the members that answer report it. */
  leader(): Promise<number | undefined>;
}

/** Loopback addresses of the 3 members, from 6 free ports. */
interface EtcdLayout {
  names: string[];
  clientUrls: string[];
  peerUrls: string[];
  /** Distinguishes this cluster from one a previous run may have left behind. */
  token: string;
}

/** Starts member `i`, logging to `<dir>/<name>.log` (appended, so a restart keeps the first run's lines). */
function spawnMember(bin: string, dir: string, l: EtcdLayout, i: number): { proc: ChildProcess; log: string } {
  const name = l.names[i]!;
  const initialCluster = l.names.map((n, j) => `${n}=${l.peerUrls[j]}`).join(',');
  const file = path.join(dir, `${name}.log`);
  const out = fs.openSync(file, 'a');
  const args = [
    `--name=${name}`,
    `--data-dir=${path.join(dir, name)}`,
    `--listen-client-urls=${l.clientUrls[i]}`,
    `--advertise-client-urls=${l.clientUrls[i]}`,
    `--listen-peer-urls=${l.peerUrls[i]}`,
    `--initial-advertise-peer-urls=${l.peerUrls[i]}`,
    `--initial-cluster=${initialCluster}`,
    '--initial-cluster-state=new',
    `--initial-cluster-token=${l.token}`,
    '--logger=zap',
    '--log-level=warn',
  ];
  const proc = track(spawn(bin, args, { stdio: ['ignore', out, out] }));
  fs.closeSync(out);
  return { proc, log: file };
}

/** Starts one process per member; returns the processes and log files. */
function spawnMembers(bin: string, dir: string, l: EtcdLayout): { procs: ChildProcess[]; logs: string[] } {
  const started = l.names.map((_, i) => spawnMember(bin, dir, l, i));
  return { procs: started.map((m) => m.proc), logs: started.map((m) => m.log) };
}

/** SIGTERM, then SIGKILL after 10 s, for every member still running. */
async function stopMembers(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    }),
  );
}

/** Waits until every member reports healthy; why not when one exits or 60 s pass. */
async function waitHealthy(l: EtcdLayout, procs: ChildProcess[], logs: string[], timeoutMs = 60_000): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = procs.findIndex((p) => p.exitCode !== null);
    if (dead >= 0) {
      const tail = fs.readFileSync(logs[dead]!, 'utf8').trim().split('\n').slice(-5).join('\n') || '(no output)';
      return `etcd member ${l.names[dead]} exited with ${procs[dead]!.exitCode} at start: ${tail}`;
    }
    if ((await Promise.all(l.clientUrls.map(healthy))).every(Boolean)) return undefined;
    if (Date.now() > deadline) return `the 3-member etcd cluster did not become healthy within ${timeoutMs / 1000} s`;
    await sleep(100);
  }
}

/** Which gateway path this version serves: 3.4+ answers /v3, 3.3 /v3beta, 3.2 /v3alpha. */
async function findGateway(clientUrl: string): Promise<string | undefined> {
  for (const p of ['/v3/kv/put', '/v3beta/kv/put', '/v3alpha/kv/put']) {
    const r = await post(`${clientUrl}${p}`, { key: b64('probe'), value: b64('probe') });
    if (r?.status === 200 && r.text.includes('header')) return p;
  }
  return undefined;
}

/** Every member takes a put before the measure (a member may still be catching up the leader); why not. */
async function waitPuts(clientUrls: string[], gateway: string): Promise<string | undefined> {
  for (const u of clientUrls) {
    const until = Date.now() + 20_000;
    while ((await post(`${u}${gateway}`, { key: b64('probe'), value: b64('probe') }))?.status !== 200) {
      if (Date.now() > until) return `etcd member ${u} refused puts for 20 s`;
      await sleep(100);
    }
  }
  return undefined;
}

/** Starts a 3-member etcd cluster on loopback ports; a reason instead when it cannot. */
export async function startEtcd(opts: { install?: boolean } = {}): Promise<EtcdCluster | { skipped: string }> {
  const found = await ensureEtcd(opts.install ?? true);
  if ('skipped' in found) return found;
  const bin = found.bin;
  const version = await etcdVersion(bin);
  const dir = await tempDir('krypton-bench-etcd-');
  const ports = await freePorts(6);
  const names = ['e0', 'e1', 'e2'];
  const layout: EtcdLayout = {
    names,
    clientUrls: names.map((_, i) => `http://127.0.0.1:${ports[i]}`),
    peerUrls: names.map((_, i) => `http://127.0.0.1:${ports[3 + i]}`),
    token: `krypton-bench-${ports[0]}`,
  };
  const clientUrls = layout.clientUrls;
  log(`etcd ${version} (${bin}): 3 members, clients on ${clientUrls.join(' ')}, data in ${dir}`);
  const { procs, logs } = spawnMembers(bin, dir, layout);
  const close = async () => {
    await stopMembers(procs);
    await removeDir(dir);
  };
  const skip = async (why: string) => {
    await close();
    return { skipped: why };
  };
  const unhealthy = await waitHealthy(layout, procs, logs);
  if (unhealthy) return skip(unhealthy);
  const gateway = await findGateway(clientUrls[0]!);
  if (!gateway) return skip(`etcd ${version} answers none of /v3/kv/put, /v3beta/kv/put, /v3alpha/kv/put with 200`);
  const refused = await waitPuts(clientUrls, gateway);
  if (refused) return skip(refused);
  let n = 0;
  const build = () => {
    const i = n++;
    return {
      method: 'POST',
      path: gateway,
      body: JSON.stringify({ key: b64(`bench/${String(i).padStart(10, '0')}`), value: b64(exampleBody(i)) }),
    };
  };
  return {
    info: { version, binary: bin, members: 3, connections: 0, gateway, valueBytes: exampleBody(0).length },
    pids: procs.map((p) => p.pid!),
    clientUrls,
    load: (connections, seconds) => spreadLoad(clientUrls, connections, { seconds }, build),
    members: {
      count: names.length,
      gateway,
      stop: async (i, signal) => {
        const p = procs[i]!;
        if (p.exitCode !== null || p.signalCode !== null) return;
        const gone = new Promise((r) => p.once('exit', r));
        p.kill(signal);
        await gone;
      },
      start: (i) => {
        const m = spawnMember(bin, dir, layout, i);
        procs[i] = m.proc;
      },
      waitHealthy: async (timeoutMs) => (await waitHealthy(layout, procs, logs, timeoutMs)) ?? (await waitPuts(clientUrls, gateway)),
      leader: async () => {
        for (const [i, u] of clientUrls.entries()) {
          if (procs[i]!.exitCode !== null || procs[i]!.signalCode !== null) continue;
          const r = await post(`${u}${gateway.replace('/kv/put', '/maintenance/status')}`, {});
          if (r?.status !== 200) continue;
          const st = JSON.parse(r.text) as { header?: { member_id?: string }; leader?: string };
          if (st.leader === undefined) continue;
          // Each member's id is in its own answer's header; the leader is the one whose id it names.
          for (const [j, v] of clientUrls.entries()) {
            const o = await post(`${v}${gateway.replace('/kv/put', '/maintenance/status')}`, {});
            if (o?.status === 200 && (JSON.parse(o.text) as { header?: { member_id?: string } }).header?.member_id === st.leader) return j;
          }
        }
        return undefined;
      },
    },
    close,
  };
}

/** etcd alone: warm-up, then `seconds` of puts. */
export async function benchEtcd(
  opts: { connections?: number; seconds?: number; warmupSeconds?: number; install?: boolean } = {},
): Promise<EtcdOutcome> {
  const connections = opts.connections ?? 64;
  const seconds = opts.seconds ?? 8;
  const warmupSeconds = opts.warmupSeconds ?? 10;
  const cluster = await startEtcd(opts);
  if ('skipped' in cluster) return cluster;
  try {
    log(`warm-up ${warmupSeconds} s, then ${seconds} s of ${connections} connections doing POST ${cluster.info.gateway} ...`);
    if (warmupSeconds > 0) await cluster.load(connections, warmupSeconds);
    const put = await cluster.load(connections, seconds);
    log(`put: ${put.rps} ok/s, p99 ${put.p99Ms} ms, non-2xx ${put.non2xx}, errors ${put.errors}`);
    return { ...cluster.info, connections, put };
  } finally {
    await cluster.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const seconds = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 8);
  console.log(JSON.stringify(await benchEtcd({ seconds })));
}
