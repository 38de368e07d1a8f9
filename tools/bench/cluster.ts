/**
 * Node-group benchmarks with real `krypton host` processes on loopback: the time for 3, 5 and 7
 * hosts started together with the same --peerNodes list to converge (every host lists every
 * other as AVAILABLE and the group is available), and the gossip traffic per host per second at
 * rest, read from each host's peer-client byte counters over a quiet window.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from './etcd.js';

const KRYPTON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/tools/krypton.js');

async function getJson(url: string): Promise<Record<string, unknown> | undefined> {
  try {
    const r = await fetch(url);
    return (await r.json()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

async function converged(ports: number[]): Promise<boolean> {
  for (const p of ports) {
    const g = await getJson(`http://127.0.0.1:${p}/core/node-groups/default`);
    const nodes = Object.values((g?.nodes ?? {}) as Record<string, { status: string }>);
    if (nodes.length !== ports.length || nodes.some((x) => x.status !== 'AVAILABLE')) return false;
    const a = await fetch(`http://127.0.0.1:${p}/core/node-groups/default/available`).catch(() => undefined);
    if (a?.status !== 200) return false;
  }
  return true;
}

async function gossipBytes(ports: number[]): Promise<number> {
  let total = 0;
  for (const p of ports) {
    const m = await getJson(`http://127.0.0.1:${p}/core/management`);
    const s = m?.peerStats as { bytesSent: number; bytesReceived: number } | undefined;
    total += (s?.bytesSent ?? 0) + (s?.bytesReceived ?? 0);
  }
  return total;
}

export async function benchCluster(
  sizes: number[] = [3, 5, 7],
  restSeconds = 10,
): Promise<{ convergeMs: Record<number, number>; gossipBytesPerHostPerSec: number }> {
  const convergeMs: Record<number, number> = {};
  let gossipBytesPerHostPerSec = 0;
  for (const n of sizes) {
    const sandbox = await fs.mkdtemp(path.join(os.tmpdir(), 'krypton-bench-cluster-'));
    const ports = await freePorts(n);
    const peers = ports.map((p) => `http://127.0.0.1:${p}`).join(',');
    const procs: ChildProcess[] = [];
    try {
      const started = performance.now();
      for (const p of ports) {
        procs.push(
          spawn(process.execPath, [KRYPTON, 'host', `--port=${p}`, `--sandbox=${sandbox}`, `--peerNodes=${peers}`, '--logLevel=warn'], {
            stdio: 'ignore',
          }),
        );
      }
      const deadline = Date.now() + 60_000;
      while (!(await converged(ports))) {
        const dead = procs.findIndex((c) => c.exitCode !== null);
        if (dead >= 0) throw new Error(`host on port ${ports[dead]} exited with ${procs[dead]!.exitCode} before the group converged`);
        if (Date.now() > deadline) throw new Error(`${n} hosts did not converge in 60 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
      convergeMs[n] = Math.round(performance.now() - started);
      if (n === sizes[0]) {
        // At rest: only gossip moves. Each host's counters include its own sends and replies.
        const b0 = await gossipBytes(ports);
        const t0 = performance.now();
        await new Promise((r) => setTimeout(r, restSeconds * 1000));
        const b1 = await gossipBytes(ports);
        gossipBytesPerHostPerSec = Math.round((b1 - b0) / n / ((performance.now() - t0) / 1000));
      }
    } finally {
      for (const c of procs) c.kill('SIGKILL');
      await fs.rm(sandbox, { recursive: true, force: true });
    }
  }
  return { convergeMs, gossipBytesPerHostPerSec };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const quick = process.argv[2] === 'quick';
  console.log(JSON.stringify(quick ? await benchCluster([3], 3) : await benchCluster()));
}
