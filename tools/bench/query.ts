/**
 * Query speed (issue 20), with real `krypton host` processes on loopback:
 *  1. A 3-host group holding 10,000 examples, 1,000 of them with `keyValues.grp` = `g3`; a direct
 *     query task for those 1,000 with EXPAND_CONTENT, sent through one host (not the first), at
 *     50 connections and at 1, against a 3-member etcd cluster holding 10,000 keys of the same
 *     values, ranged 1,000 at a time (`/v3/kv/range` over the prefix `q/g3/`) through a follower,
 *     same load generator, alternating rounds. `ratio` = Krypton queries/s / etcd ranges/s.
 *  2. A 5-host group with 2,000 documents in `/core/examples-3x` (each on 3 of the 5): p50 and p99
 *     of a BROADCAST query for the 200 of one group value (links only), one connection.
 * The machine is shared: figures move with its load, so compare the ratio of one run.
 * Runnable directly: `node --import tsx tools/bench/query.ts [quick]`; the last line of stdout is
 * the JSON result.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exampleBody, freePorts, removeDir, sleep, spreadLoad, startEtcd, tempDir, track, type LoadFigures } from './etcd.js';

const KRYPTON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/tools/krypton.js');
const log = (s: string) => process.stderr.write(`[query] ${s}\n`);
const quick = process.argv.includes('quick');
const b64 = (s: string) => Buffer.from(s).toString('base64');

async function json(url: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
  try {
    const r = await fetch(url, {
      method: body === undefined ? 'GET' : 'POST',
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  } catch {
    return undefined;
  }
}

async function startGroup(n: number): Promise<{ urls: string[]; close(): Promise<void> }> {
  const sandbox = await tempDir('krypton-bench-query-');
  const ports = await freePorts(n);
  const peers = ports.map((p) => `http://127.0.0.1:${p}`).join(',');
  const procs: ChildProcess[] = ports.map((p) =>
    track(
      spawn(process.execPath, [KRYPTON, 'host', `--port=${p}`, `--sandbox=${sandbox}`, `--peerNodes=${peers}`, '--logLevel=warn'], {
        stdio: 'ignore',
      }),
    ),
  );
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const close = async () => {
    await Promise.all(
      procs.map(async (c) => {
        if (c.exitCode !== null) return;
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await gone;
      }),
    );
    await removeDir(sandbox);
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    let ok = true;
    for (const u of urls) {
      const g = await json(`${u}/core/node-groups/default`);
      const nodes = Object.values((g?.body.nodes ?? {}) as Record<string, { status: string }>);
      if (nodes.length !== n || nodes.some((x) => x.status !== 'AVAILABLE')) ok = false;
      else if ((await json(`${u}/core/node-groups/default/available`))?.status !== 200) ok = false;
      if (!ok) break;
    }
    if (ok) return { urls, close };
    if (procs.some((c) => c.exitCode !== null) || Date.now() > deadline) {
      await close();
      throw new Error(`${n} hosts did not converge`);
    }
    await sleep(50);
  }
}

/** `n` examples through every host in turn, `grp` = `g<i % groups>`, 32 at a time. */
async function load(urls: string[], factory: string, n: number, groups: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async (_, w) => {
      for (let i = next++; i < n; i = next++) {
        const body = { ...JSON.parse(exampleBody(i)), documentSelfLink: `q${i}`, keyValues: { grp: `g${i % groups}` } };
        const r = await json(`${urls[(i + w) % urls.length]}${factory}`, body);
        if (r?.status !== 200) throw new Error(`POST ${factory} q${i}: ${r?.status}`);
      }
    }),
  );
}

const groupQuery = (value: string, options: string[]) => ({
  taskInfo: { isDirect: true },
  querySpec: { options, query: { term: { propertyName: 'keyValues.grp', matchValue: value } } },
});

/** Sequential requests, one connection: p50 and p99 in ms. */
async function sequential(n: number, send: () => Promise<void>): Promise<{ p50Ms: number; p99Ms: number }> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await send();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const at = (q: number) => Math.round(ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]! * 100) / 100;
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

async function mustOk(url: string, body: unknown, expect: number): Promise<void> {
  const r = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const b = (await r.json()) as { results?: { documentLinks?: unknown[] }; kvs?: unknown[] };
  const got = b.results?.documentLinks?.length ?? b.kvs?.length;
  if (r.status !== 200 || got !== expect) throw new Error(`${url} answered ${r.status} with ${got} results, not ${expect}`);
}

export interface QueryBenchResult {
  docs: number;
  matches: number;
  connections: number;
  seconds: number;
  krypton: LoadFigures;
  krypton1: { p50Ms: number; p99Ms: number };
  etcd?: { version: string; range: LoadFigures; range1: { p50Ms: number; p99Ms: number } } | { skipped: string };
  ratio?: number;
  broadcast: { hosts: number; docs: number; matches: number; p50Ms: number; p99Ms: number };
}

async function versusEtcd(seconds: number, rounds: number): Promise<Omit<QueryBenchResult, 'broadcast'>> {
  const docs = 10_000;
  const groups = 10;
  const connections = 50;
  const g = await startGroup(3);
  try {
    log(`3 hosts up; loading ${docs} examples`);
    await load(g.urls, '/core/examples', docs, groups);
    const entry = g.urls[1]!;
    const qPath = '/core/query-tasks';
    const qBody = JSON.stringify(groupQuery('g3', ['EXPAND_CONTENT']));
    await mustOk(`${entry}${qPath}`, JSON.parse(qBody), docs / groups);
    const cluster = await startEtcd();
    let etcd: QueryBenchResult['etcd'];
    let follower = '';
    let rangePath = '';
    let rangeBody = '';
    if ('skipped' in cluster) etcd = cluster;
    else {
      const gw = cluster.info.gateway.replace(/\/put$/, '');
      const members = cluster.clientUrls;
      log(`etcd up; loading ${docs} keys`);
      let next = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          for (let i = next++; i < docs; i = next++) {
            const key = `q/g${i % groups}/${String(i).padStart(6, '0')}`;
            const r = await json(`${members[i % 3]}${gw}/put`, { key: b64(key), value: b64(exampleBody(i)) });
            if (r?.status !== 200) throw new Error(`etcd put ${key}: ${r?.status}`);
          }
        }),
      );
      for (const u of members) {
        const s = await json(`${u}/v3/maintenance/status`, {});
        const h = s?.body as { header?: { member_id?: string }; leader?: string } | undefined;
        if (h?.header?.member_id !== undefined && h.header.member_id !== h.leader) {
          follower = u;
          break;
        }
      }
      rangePath = `${gw}/range`;
      rangeBody = JSON.stringify({ key: b64('q/g3/'), range_end: b64('q/g30') });
      // 'q/g30' is the end of prefix 'q/g3/' ('/' + 1 = '0').
      await mustOk(`${follower}${rangePath}`, JSON.parse(rangeBody), docs / groups);
    }
    const kRuns: LoadFigures[] = [];
    const eRuns: LoadFigures[] = [];
    const kLoad = (s: number) => spreadLoad([entry], connections, { seconds: s }, () => ({ method: 'POST', path: qPath, body: qBody }));
    const eLoad = (s: number) =>
      spreadLoad([follower], connections, { seconds: s }, () => ({ method: 'POST', path: rangePath, body: rangeBody }));
    log(`warm-up, then ${rounds} rounds of ${seconds} s at ${connections} connections, alternating`);
    await kLoad(3);
    if (follower) await eLoad(3);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ['k', 'e'] : ['e', 'k'];
      for (const w of order) {
        if (w === 'k') kRuns.push(await kLoad(seconds));
        else if (follower) eRuns.push(await eLoad(seconds));
      }
      log(
        `round ${r + 1}: krypton ${kRuns.at(-1)!.rps}/s p50 ${kRuns.at(-1)!.p50Ms} ms${follower ? `, etcd ${eRuns.at(-1)!.rps}/s p50 ${eRuns.at(-1)!.p50Ms} ms` : ''}`,
      );
    }
    const krypton1 = await sequential(quick ? 30 : 100, () => mustOk(`${entry}${qPath}`, JSON.parse(qBody), docs / groups));
    const median = (runs: LoadFigures[]) => [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)]!;
    const krypton = median(kRuns);
    let ratio: number | undefined;
    if (!('skipped' in cluster)) {
      const range1 = await sequential(quick ? 30 : 100, () => mustOk(`${follower}${rangePath}`, JSON.parse(rangeBody), docs / groups));
      const range = median(eRuns);
      etcd = { version: cluster.info.version, range, range1 };
      ratio = Math.round((krypton.rps / range.rps) * 100) / 100;
      await cluster.close();
    }
    return {
      docs,
      matches: docs / groups,
      connections,
      seconds,
      krypton,
      krypton1,
      ...(etcd ? { etcd } : {}),
      ...(ratio ? { ratio } : {}),
    };
  } finally {
    await g.close();
  }
}

async function broadcast(): Promise<QueryBenchResult['broadcast']> {
  const docs = 2000;
  const groups = 10;
  const g = await startGroup(5);
  try {
    log(`5 hosts up; loading ${docs} documents into /core/examples-3x`);
    await load(g.urls, '/core/examples-3x', docs, groups);
    const url = `${g.urls[2]}/core/query-tasks`;
    const body = groupQuery('g3', ['BROADCAST']);
    await mustOk(url, body, docs / groups);
    for (let i = 0; i < 20; i++) await mustOk(url, body, docs / groups);
    const t = await sequential(quick ? 50 : 200, () => mustOk(url, body, docs / groups));
    return { hosts: 5, docs, matches: docs / groups, ...t };
  } finally {
    await g.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const vs = await versusEtcd(quick ? 3 : 8, quick ? 2 : 4);
  const b = await broadcast();
  console.log(JSON.stringify({ ...vs, broadcast: b }));
}
