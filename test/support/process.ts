/**
 * Real `krypton host` processes for e2e tests, started from the built `dist/` so they are what a
 * user runs. A process is ready when its log line says it is listening; its port is read from
 * that line (tests use --port=0). Every process is killed (SIGKILL if need be) when the test ends.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './hosts.js';
import { Client } from './http.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const KRYPTON_BIN = path.join(ROOT, 'dist/tools/krypton.js');

export interface HostProcess {
  child: ChildProcess;
  port: number;
  url: string;
  output(): string;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export function runKrypton(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): { child: ChildProcess; output(): string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [KRYPTON_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

export async function startHostProcess(args: string[], deadlineMs = 15_000, env?: NodeJS.ProcessEnv): Promise<HostProcess> {
  const p = runKrypton(['host', ...args], env);
  let scheme = 'http';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`host did not start in ${deadlineMs} ms:\n${p.output()}`)), deadlineMs);
    const check = () => {
      const m = /listening on [^:]+:(\d+)( \(https\))?/.exec(p.output());
      if (m) {
        if (m[2]) scheme = 'https';
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    p.child.stdout!.on('data', check);
    void p.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`host exited with ${code} before listening:\n${p.output()}`));
    });
  });
  return {
    ...p,
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
      return p.exited;
    },
  };
}

/** A port free on loopback now (a host started on it right after gets it, as the OS does not reuse it at once). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** `n` host processes on free ports with the same --peerNodes, a client for each. */
export interface ProcessGroup {
  ports: number[];
  ids: string[];
  procs: HostProcess[];
  clients: Client[];
  /** Closes the clients, kills every process (resumed first if paused) and removes the sandbox. */
  close(): Promise<void>;
}

/** Starts the processes of a ProcessGroup (ids `<prefix><port>`, one sandbox folder); waits for none of them to converge. */
export async function startProcessGroup(n: number, prefix: string, args: string[] = []): Promise<ProcessGroup> {
  const dir = await tempDir();
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  const ids = ports.map((p) => `${prefix}${p}`);
  const peers = `--peerNodes=${ports.map((p) => `http://127.0.0.1:${p}`).join(',')}`;
  const procs: HostProcess[] = [];
  const clients = ports.map((p) => new Client(`http://127.0.0.1:${p}`));
  const close = async () => {
    for (const c of clients) await c.close();
    for (const p of procs) {
      p.child.kill('SIGCONT');
      await p.kill('SIGKILL');
    }
    await dir.remove();
  };
  try {
    for (const [i, port] of ports.entries())
      procs.push(await startHostProcess([`--port=${port}`, `--sandbox=${dir.path}`, `--id=${ids[i]}`, peers, ...args]));
  } catch (e) {
    await close();
    throw e;
  }
  return { ports, ids, procs, clients, close };
}
