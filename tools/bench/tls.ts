/**
 * TLS overhead: replicated durable POST throughput of 3 `krypton host` processes speaking HTTPS
 * (clients to hosts and hosts to each other: forwarding, replication, gossip) as a ratio to the
 * same 3 hosts on plain HTTP, in one run. Load as in the replication benchmark: one autocannon
 * instance, 64 keep-alive connections dealt over the 3 hosts, distinct POST /core/examples of
 * the same body, an unmeasured warm-up first. The modes alternate (plain, TLS, plain, TLS ...)
 * over `rounds` fresh groups so drift in the machine's load hits both; the ratio is the median
 * TLS throughput over the median plain throughput. Certificates: `krypton certs` (a P-256 CA
 * and host certificate); peers verify each other against the CA, the load generator does not
 * verify (autocannon cannot), which does not change the cost of the encryption.
 *
 * Runnable directly: `node --import tsx tools/bench/tls.ts [quick] [--seconds=N] [--warmup=N]
 * [--rounds=N]`; the last line of stdout is the JSON result.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { makeDevCerts, type DevCerts } from '../certs.js';
import { exampleBody, freePorts, removeDir, sleep, spreadLoad, tempDir, track, type LoadFigures } from './etcd.js';

const KRYPTON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/tools/krypton.js');
const log = (s: string) => process.stderr.write(`[tls] ${s}\n`);

type Mode = 'plain' | 'tls';

export interface TlsBenchResult {
  hosts: number;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  bodyBytes: number;
  plain: LoadFigures[];
  tls: LoadFigures[];
  /** Median TLS POST throughput / median plain POST throughput. */
  ratio: number;
  /** Each round's TLS / plain, to show the spread. */
  roundRatios: number[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Starts 3 hosts in `mode`, waits until each lists 3 AVAILABLE members, runs `fn`, kills them. */
async function withGroup<T>(mode: Mode, certs: DevCerts, ca: string, fn: (urls: string[]) => Promise<T>): Promise<T> {
  const sandbox = await tempDir('krypton-bench-tls-');
  const ports = await freePorts(3);
  const scheme = mode === 'tls' ? 'https' : 'http';
  const urls = ports.map((p) => `${scheme}://127.0.0.1:${p}`);
  const procs: ChildProcess[] = [];
  const tails = new Map<ChildProcess, string>();
  const agent = new Agent({ connect: { ca } });
  try {
    for (const p of ports) {
      const listen =
        mode === 'tls'
          ? [
              '--port=-1',
              `--securePort=${p}`,
              `--keyFile=${certs.hostKey}`,
              `--certificateFile=${certs.hostCert}`,
              `--caFile=${certs.caCert}`,
            ]
          : [`--port=${p}`];
      const proc = track(
        spawn(
          process.execPath,
          [KRYPTON, 'host', ...listen, `--sandbox=${sandbox}`, `--id=host-${p}`, `--peerNodes=${urls.join(',')}`, '--logLevel=warn'],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        ),
      );
      const keep = (b: Buffer) => void tails.set(proc, ((tails.get(proc) ?? '') + b.toString()).slice(-4096));
      proc.stdout!.on('data', keep);
      proc.stderr!.on('data', keep);
      procs.push(proc);
    }
    const deadline = Date.now() + 60_000;
    const converged = async () => {
      for (const u of urls) {
        const r = await request(`${u}/core/node-groups/default`, { dispatcher: agent }).catch(() => undefined);
        if (!r) return false;
        const g = (await r.body.json().catch(() => ({}))) as { nodes?: Record<string, { status: string }> };
        if (Object.values(g.nodes ?? {}).filter((n) => n.status === 'AVAILABLE').length !== 3) return false;
        const a = await request(`${u}/core/node-groups/default/available`, { dispatcher: agent }).catch(() => undefined);
        await a?.body.dump();
        if (a?.statusCode !== 200) return false;
      }
      return true;
    };
    while (!(await converged())) {
      const dead = procs.find((p) => p.exitCode !== null);
      if (dead) throw new Error(`a ${mode} host exited with ${dead.exitCode} before the group converged:\n${tails.get(dead)}`);
      if (Date.now() > deadline) throw new Error(`the ${mode} group did not converge in 60 s`);
      await sleep(50);
    }
    return await fn(urls);
  } finally {
    await agent.close();
    await Promise.all(
      procs.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const gone = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        await gone;
      }),
    );
    await removeDir(sandbox);
  }
}

export async function benchTls(
  opts: { connections?: number; seconds?: number; warmupSeconds?: number; rounds?: number } = {},
): Promise<TlsBenchResult> {
  const connections = opts.connections ?? 64;
  const seconds = opts.seconds ?? 10;
  const warmupSeconds = opts.warmupSeconds ?? 10;
  const rounds = opts.rounds ?? 2;
  const dir = await tempDir('krypton-bench-certs-');
  try {
    const certs = await makeDevCerts(dir, [], 2);
    const ca = await fs.readFile(certs.caCert, 'utf8');
    const figures: Record<Mode, LoadFigures[]> = { plain: [], tls: [] };
    let n = 0;
    const build = () => ({ method: 'POST', path: '/core/examples', body: exampleBody(n++) });
    for (let round = 1; round <= rounds; round++) {
      for (const mode of ['plain', 'tls'] as const) {
        const f = await withGroup(mode, certs, ca, async (urls) => {
          log(
            `round ${round}/${rounds}, ${mode}: 3 hosts converged; warm-up ${warmupSeconds} s, then ${seconds} s of replicated POST over ${connections} connections`,
          );
          if (warmupSeconds > 0) await spreadLoad(urls, connections, { seconds: warmupSeconds }, build);
          return spreadLoad(urls, connections, { seconds }, build);
        });
        log(`round ${round}, ${mode}: ${f.rps} ok/s, p99 ${f.p99Ms} ms, non-2xx ${f.non2xx}, errors ${f.errors}`);
        figures[mode].push(f);
      }
    }
    const ratio = Math.round((median(figures.tls.map((f) => f.rps)) / median(figures.plain.map((f) => f.rps))) * 100) / 100;
    const roundRatios = figures.tls.map((f, i) => Math.round((f.rps / figures.plain[i]!.rps) * 100) / 100);
    return {
      hosts: 3,
      connections,
      seconds,
      warmupSeconds,
      rounds,
      bodyBytes: exampleBody(0).length,
      plain: figures.plain,
      tls: figures.tls,
      ratio,
      roundRatios,
    };
  } finally {
    await removeDir(dir);
  }
}

/** The row `npm run bench` (run.ts) prints: measure, krypton with TLS, plain baseline, ratio. */
export function tlsRows(r: TlsBenchResult, fmt: (n: number, digits?: number) => string): [string, string, string, string][] {
  const med = (fs: LoadFigures[]) => `${fmt(median(fs.map((f) => f.rps)))} req/s, p99 ${median(fs.map((f) => f.p99Ms))} ms`;
  return [
    [
      `replicated POST over HTTPS, 3 hosts, ${r.connections} conns`,
      `TLS ${med(r.tls)}`,
      `plain HTTP ${med(r.plain)}`,
      `${fmt(r.ratio, 2)} (rounds ${r.roundRatios.map((x) => fmt(x, 2)).join(', ')})`,
    ],
  ];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const num = (name: string) => {
    const a = args.find((x) => x.startsWith(`--${name}=`));
    return a === undefined ? undefined : Number(a.slice(name.length + 3));
  };
  const quick = args.includes('quick');
  const r = await benchTls({
    seconds: num('seconds') ?? (quick ? 3 : undefined),
    warmupSeconds: num('warmup') ?? (quick ? 2 : undefined),
    rounds: num('rounds') ?? (quick ? 1 : undefined),
  });
  process.stdout.write(JSON.stringify(r) + '\n');
}
