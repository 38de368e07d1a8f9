/**
 * The client bench (`npm run bench -- --only=client`): named creates (POST /core/examples with
 * a `documentSelfLink`) and PATCHes of pre-created documents over 3 real `krypton host`
 * processes, by the same in-process load generator (`inFlight` concurrent loops, each waiting
 * for its answer before the next request) three ways, in the same run:
 *
 *  - through the owner-aware client (krypton/client): each request goes straight to its link's
 *    owner, every write with an Idempotency-Key, as a program using the library sends them;
 *  - through one host by plain HTTP (an undici pool to the first host): two thirds of the
 *    requests are forwarded to their owner by that host;
 *  - etcd: puts of the same value size to a 3-member cluster's JSON gateway (etcd.ts), keys new
 *    for the creates and rotating over the same number of keys for the PATCHes, spread over the
 *    members.
 *
 * Every write is durable on a quorum (2 of 3) before it is answered, in both systems. After an
 * unmeasured warm-up of each, `rounds` rounds load the three in turn for `seconds` each, the
 * order rotating, so a drift of the shared machine's speed falls on all three alike. The
 * generator runs in this process, so its own CPU (the client library's included) is part of what
 * is measured; the forwards the hosts counted during the client's runs (GET /core/management,
 * forwardStats.requests) are reported, to show they went straight to the owners.
 *
 * Runnable directly: `node --import tsx tools/bench/client.ts [quick] [--no-etcd] [--seconds=N]
 * [--rounds=N] [--inFlight=N]`; the last line of stdout is the JSON result.
 */

import { Pool } from 'undici';
import { KryptonClient } from '../../client/index.js';
import { type EtcdCluster, exampleBody, startEtcd } from './etcd.js';
import { Group } from './replication.js';

const log = (s: string) => process.stderr.write(`[client] ${s}\n`);

export interface RunFigures {
  /** CPU the generator's process (the client library included) spent per successful request, in µs. */
  cpuUsPerRequest: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  ok: number;
  failed: number;
  seconds: number;
}

type System = 'client' | 'oneHost' | 'etcd';
type Op = 'create' | 'patch';

export interface ClientBenchResult {
  hosts: number;
  inFlight: number;
  seconds: number;
  rounds: number;
  bodyBytes: number;
  patchDocs: number;
  create: Partial<Record<System, RunFigures>>;
  patch: Partial<Record<System, RunFigures>>;
  /** Requests the hosts forwarded to an owner during the client's measured runs, and during one host's. */
  forwarded: { client: number; oneHost: number };
  etcd?: { version: string } | { skipped: string };
}

/** Request numbers run on across loads, so no create names a link an earlier load made. */
let next = 0;

/** `inFlight` loops sending `send(i)` back to back for `seconds`; latencies of the successful ones. */
async function load(inFlight: number, seconds: number, send: (i: number) => Promise<boolean>): Promise<RunFigures> {
  const latencies: number[] = [];
  let failed = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const ok = await send(next++).catch(() => false);
        if (ok) latencies.push(performance.now() - t);
        else failed++;
      }
    }),
  );
  const took = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) * 100) / 100;
  return {
    cpuUsPerRequest: Math.round((used.user + used.system) / Math.max(1, latencies.length)),
    rps: Math.round(latencies.length / took),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    ok: latencies.length,
    failed,
    seconds: took,
  };
}

function combine(runs: RunFigures[]): RunFigures {
  const ok = runs.reduce((n, r) => n + r.ok, 0);
  const seconds = runs.reduce((n, r) => n + r.seconds, 0);
  const p50s = runs.map((r) => r.p50Ms).sort((a, b) => a - b);
  const cpu = runs.reduce((n, r) => n + r.cpuUsPerRequest * r.ok, 0);
  return {
    cpuUsPerRequest: ok > 0 ? Math.round(cpu / ok) : 0,
    rps: seconds > 0 ? Math.round(ok / seconds) : 0,
    p50Ms: p50s[Math.floor(p50s.length / 2)] ?? 0,
    p99Ms: Math.max(0, ...runs.map((r) => r.p99Ms)),
    ok,
    failed: runs.reduce((n, r) => n + r.failed, 0),
    seconds: Math.round(seconds * 10) / 10,
  };
}

async function forwardedSoFar(urls: string[]): Promise<number> {
  let n = 0;
  for (const u of urls) {
    const r = await fetch(`${u}/core/management`, { signal: AbortSignal.timeout(10_000) });
    n += ((await r.json()) as { forwardStats?: { requests?: number } }).forwardStats?.requests ?? 0;
  }
  return n;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** The body of a named create: exampleBody's fields with the link, so etcd's values are as large. */
const createBody = (link: string, i: number) => `{"documentSelfLink":"${link}",${exampleBody(i).slice(1)}`;

interface Senders {
  create: Record<System, ((i: number) => Promise<boolean>) | undefined>;
  patch: Record<System, ((i: number) => Promise<boolean>) | undefined>;
}

function senders(
  client: KryptonClient,
  oneHost: Pool,
  etcd: { cluster: EtcdCluster; pools: Pool[] } | undefined,
  patchDocs: number,
  run: string,
): Senders {
  const examples = client.factory<Record<string, unknown>>('/core/examples');
  const ok = async (r: Awaited<ReturnType<Pool['request']>>) => {
    await r.body.dump();
    return r.statusCode === 200;
  };
  const put = async (key: string, value: string, i: number) =>
    ok(
      await etcd!.pools[i % etcd!.pools.length]!.request({
        method: 'POST',
        path: etcd!.cluster.info.gateway,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: b64(key), value: b64(value) }),
      }),
    );
  const patchBody = (i: number) => ({ counter: i, keyValues: { a: 'b', c: String(i % 1000) } });
  return {
    create: {
      client: async (i) => {
        const link = `c-${run}-${i}`;
        await examples.create(JSON.parse(createBody(link, i)) as Record<string, unknown>);
        return true;
      },
      oneHost: async (i) =>
        ok(
          await oneHost.request({
            method: 'POST',
            path: '/core/examples',
            headers: { 'content-type': 'application/json' },
            body: createBody(`h-${run}-${i}`, i),
          }),
        ),
      etcd: etcd ? (i) => put(`bench/create/${run}/${i}`, createBody(`e-${i}`, i), i) : undefined,
    },
    patch: {
      client: async (i) => {
        await examples.doc(`p-${i % patchDocs}`).patch(patchBody(i));
        return true;
      },
      oneHost: async (i) =>
        ok(
          await oneHost.request({
            method: 'PATCH',
            path: `/core/examples/p-${i % patchDocs}`,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(patchBody(i)),
          }),
        ),
      etcd: etcd ? (i) => put(`bench/patch/${i % patchDocs}`, JSON.stringify(patchBody(i)), i) : undefined,
    },
  };
}

export async function benchClient(o: {
  seconds: number;
  rounds: number;
  inFlight: number;
  etcd: boolean;
  patchDocs: number;
}): Promise<ClientBenchResult> {
  const g = await Group.start(3);
  let etcd: EtcdCluster | undefined;
  let etcdInfo: ClientBenchResult['etcd'];
  const urls = g.hosts.map((h) => h.url);
  const client = await KryptonClient.connect({ hosts: urls, deadlineMs: 60_000 });
  const oneHost = new Pool(urls[0]!);
  const etcdPools: Pool[] = [];
  try {
    if (o.etcd) {
      const started = await startEtcd();
      if ('skipped' in started) {
        etcdInfo = started;
        log(`etcd part skipped: ${started.skipped}`);
      } else {
        etcd = started;
        etcdInfo = { version: started.info.version };
      }
    }
    const examples = client.factory<Record<string, unknown>>('/core/examples');
    for (let i = 0; i < o.patchDocs; i++) await examples.create({ documentSelfLink: `p-${i}`, name: `p-${i}` });
    if (etcd) etcdPools.push(...etcd.clientUrls.map((u) => new Pool(u)));
    const s = senders(client, oneHost, etcd ? { cluster: etcd, pools: etcdPools } : undefined, o.patchDocs, Date.now().toString(36));
    const systems: System[] = ['client', 'oneHost', 'etcd'].filter((x) => s.create[x as System] !== undefined) as System[];
    log(
      `3 hosts on ${g.ports.join(', ')}${etcd ? ', etcd running' : ''}; ${o.rounds} rounds of ${o.seconds} s per system and op, ${o.inFlight} in flight`,
    );
    const runs: Record<Op, Record<System, RunFigures[]>> = {
      create: { client: [], oneHost: [], etcd: [] },
      patch: { client: [], oneHost: [], etcd: [] },
    };
    const forwarded = { client: 0, oneHost: 0 };
    for (const op of ['create', 'patch'] as const) {
      for (const sys of systems) await load(o.inFlight, Math.min(3, o.seconds), s[op][sys]!);
      for (let round = 0; round < o.rounds; round++) {
        const order = systems.map((_, k) => systems[(k + round) % systems.length]!);
        for (const sys of order) {
          const before = sys === 'etcd' ? 0 : await forwardedSoFar(urls);
          const r = await load(o.inFlight, o.seconds, s[op][sys]!);
          if (sys !== 'etcd') forwarded[sys] += (await forwardedSoFar(urls)) - before;
          runs[op][sys].push(r);
          log(
            `${op} ${sys} round ${round + 1}: ${r.rps} ok/s, p99 ${r.p99Ms} ms, failed ${r.failed}, generator ${r.cpuUsPerRequest} µs CPU/request`,
          );
        }
      }
    }
    const pick = (op: Op) => Object.fromEntries(systems.map((sys) => [sys, combine(runs[op][sys])])) as Partial<Record<System, RunFigures>>;
    return {
      hosts: 3,
      inFlight: o.inFlight,
      seconds: o.seconds,
      rounds: o.rounds,
      bodyBytes: createBody('c-x-0', 0).length,
      patchDocs: o.patchDocs,
      create: pick('create'),
      patch: pick('patch'),
      forwarded,
      etcd: etcdInfo,
    };
  } finally {
    await client.close();
    await oneHost.close();
    for (const p of etcdPools) await p.close();
    await etcd?.close();
    await g.close();
  }
}

/** The bench table's rows for this result. */
export function clientRows(r: ClientBenchResult, fmt: (n: number, d?: number) => string): [string, string, string, string][] {
  const rows: [string, string, string, string][] = [];
  const fig = (f: RunFigures | undefined) => (f ? `${fmt(f.rps)} req/s, p99 ${fmt(f.p99Ms, 1)} ms` : 'n/a');
  const ratio = (a: RunFigures | undefined, b: RunFigures | undefined) => (a && b && b.rps > 0 ? fmt(a.rps / b.rps, 2) : 'n/a');
  for (const op of ['create', 'patch'] as const) {
    const what = op === 'create' ? 'named POST' : 'PATCH';
    const x = r[op];
    rows.push([
      `${what} via owner-aware client, 3 hosts, ${r.inFlight} in flight`,
      fig(x.client),
      `one host by plain HTTP ${fig(x.oneHost)}`,
      ratio(x.client, x.oneHost),
    ]);
    if (x.etcd)
      rows.push([
        `same, against etcd put (${r.inFlight} in flight)`,
        fig(x.client),
        `etcd ${fig(x.etcd)}`,
        `${ratio(x.client, x.etcd)} (goal >= 1.5)`,
      ]);
  }
  rows.push(['requests forwarded between hosts', `client: ${fmt(r.forwarded.client)}`, `one host: ${fmt(r.forwarded.oneHost)}`, '']);
  const cpu = (op: Op, sys: System) => (r[op][sys] ? `${fmt(r[op][sys]!.cpuUsPerRequest)} µs` : 'n/a');
  rows.push([
    "generator's CPU per request (POST / PATCH)",
    `client: ${cpu('create', 'client')} / ${cpu('patch', 'client')}`,
    `one host: ${cpu('create', 'oneHost')} / ${cpu('patch', 'oneHost')}; etcd: ${cpu('create', 'etcd')} / ${cpu('patch', 'etcd')}`,
    '',
  ]);
  if (r.etcd && 'skipped' in r.etcd) rows.push(['etcd comparison', 'skipped', r.etcd.skipped, '']);
  return rows;
}

if (process.argv[1]?.endsWith('client.ts')) {
  const arg = (name: string, dflt: number) => {
    const a = process.argv.find((x) => x.startsWith(`--${name}=`));
    return a ? Number(a.slice(name.length + 3)) : dflt;
  };
  const quick = process.argv.includes('quick');
  const result = await benchClient({
    seconds: arg('seconds', quick ? 2 : 5),
    rounds: arg('rounds', quick ? 1 : 2),
    inFlight: arg('inFlight', 64),
    etcd: !process.argv.includes('--no-etcd'),
    patchDocs: 256,
  });
  process.stdout.write(`\n${JSON.stringify(result)}\n`);
}
