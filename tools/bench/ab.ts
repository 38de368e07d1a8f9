/**
 * Two Krypton builds side by side: a group of 3 hosts from each (`--a=` and `--b=`, each a
 * build's `dist/tools/krypton.js`), a warm-up of each, then `rounds` rounds that load one group
 * and then the other with the replication bench's POST load (64 connections, `seconds` each), the
 * order alternating. Prints each round's B/A throughput and the median. One run of each build
 * minutes apart compares the machine's speed at two moments as much as the builds (it drifts by
 * 10-15% here); back to back, under the same conditions, a 5% change shows.
 *
 * `node --import tsx tools/bench/ab.ts --a=<old>/dist/tools/krypton.js --b=dist/tools/krypton.js
 * [--rounds=4] [--seconds=6] [--warmup=10] [--named [--get]] [--a-env=K=V,...] [--b-env=K=V,...]`; the last line of
 * stdout is the JSON result. The env flags compare one build under two settings (a libuv or V8
 * environment variable) when both sides name the same build.
 * Not part of `npm run bench`: a tool for judging a change before it lands.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { exampleBody, freePorts, removeDir, sleep, spreadLoad, tempDir, track } from './etcd.js';

interface Group {
  urls: string[];
  procs: ChildProcess[];
  sandbox: string;
  /** Requests built so far: every POST creates a new document. */
  n: number;
}

async function startGroup(bin: string, env: Record<string, string> = {}): Promise<Group> {
  const sandbox = await tempDir('krypton-bench-ab-');
  const ports = await freePorts(3);
  const peers = ports.map((p) => `http://127.0.0.1:${p}`).join(',');
  const procs = ports.map((port) =>
    track(
      spawn(
        process.execPath,
        [bin, 'host', `--port=${port}`, `--sandbox=${sandbox}`, `--id=ab-${port}`, `--peerNodes=${peers}`, '--logLevel=error'],
        { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env } },
      ),
    ),
  );
  const g: Group = { urls: ports.map((p) => `http://127.0.0.1:${p}`), procs, sandbox, n: 0 };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const dead = procs.find((p) => p.exitCode !== null);
    if (dead) throw new Error(`${bin}: a host exited with ${dead.exitCode}`);
    const ok = await Promise.all(
      g.urls.map((u) =>
        fetch(`${u}/core/node-groups/default/available`, { signal: AbortSignal.timeout(2000) }).then(
          (r) => r.status === 200,
          () => false,
        ),
      ),
    );
    if (ok.every(Boolean)) return g;
    if (Date.now() > deadline) throw new Error(`${bin}: the group was not available within 60 s`);
    await sleep(100);
  }
}

async function closeGroup(g: Group): Promise<void> {
  await Promise.all(
    g.procs.map(async (p) => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await gone;
    }),
  );
  await removeDir(g.sandbox);
}

const args = process.argv.slice(2);
/**
 * `--named`: each POST names its document, so two in three enter a host that does not own it and
 * are forwarded (each with its request id); without it every POST gets an id its entry host owns.
 */
const named = args.includes('--named');
const bodyOf = (n: number) => (named ? `{"documentSelfLink":"ab-${n}",${exampleBody(n).slice(1)}` : exampleBody(n));
const post = (g: Group, seconds: number) =>
  spreadLoad(g.urls, 64, { seconds }, () => ({ method: 'POST', path: '/core/examples', body: bodyOf(g.n++) }));
/**
 * `--get` (with `--named`): the rounds GET the documents the warm-up created instead, in turn,
 * through every host, so two in three are forwarded to their owners.
 */
const gets = args.includes('--get') && named;
let reads = 0;
const load = (g: Group, seconds: number, warm = false) =>
  gets && !warm
    ? spreadLoad(g.urls, 64, { seconds }, () => ({ method: 'GET', path: `/core/examples/ab-${reads++ % g.n}`, body: '' }))
    : post(g, seconds);

const value = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const a = value('a');
const b = value('b');
if (!a || !b) {
  process.stderr.write(
    'usage: ab.ts --a=<build>/dist/tools/krypton.js --b=<build>/dist/tools/krypton.js [--rounds=4] [--seconds=6] [--warmup=10] [--a-env=K=V,...] [--b-env=K=V,...]\n',
  );
  process.exit(2);
}
/** `--a-env=K=V,K2=V2`: environment variables for one side's hosts only (a libuv or V8 setting, say). */
const envOf = (side: string): Record<string, string> =>
  Object.fromEntries(
    (value(`${side}-env`) ?? '')
      .split(',')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
const rounds = Number(value('rounds') ?? 4);
const seconds = Number(value('seconds') ?? 6);
const warmup = Number(value('warmup') ?? 10);
const groups: Group[] = [];
try {
  const A = await startGroup(path.resolve(a), envOf('a'));
  groups.push(A);
  const B = await startGroup(path.resolve(b), envOf('b'));
  groups.push(B);
  await load(A, warmup, true);
  await load(B, warmup, true);
  const results: { a: number; b: number; ratio: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    const rps = new Map<Group, number>();
    for (const g of r % 2 === 0 ? [A, B] : [B, A]) rps.set(g, (await load(g, seconds)).rps);
    const x = { a: rps.get(A)!, b: rps.get(B)!, ratio: Math.round((rps.get(B)! / rps.get(A)!) * 1000) / 1000 };
    results.push(x);
    const unit = gets ? 'GET/s' : 'POST/s';
    process.stderr.write(`round ${r + 1}: A ${x.a} ${unit}, B ${x.b} ${unit}, B/A ${x.ratio}\n`);
  }
  const sorted = results.map((x) => x.ratio).sort((p, q) => p - q);
  console.log(JSON.stringify({ a, b, named, gets, seconds, rounds: results, medianRatio: sorted[Math.floor(sorted.length / 2)] }));
} finally {
  for (const g of groups) await closeGroup(g);
}
