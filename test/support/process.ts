/**
 * Real `krypton host` processes for e2e tests, started from the built `dist/` so they are what a
 * user runs. A process is ready when its log line says it is listening; its port is read from
 * that line (tests use --port=0). Every process is killed (SIGKILL if need be) when the test ends.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
