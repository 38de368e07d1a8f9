/**
 * HTTP throughput benchmark: durable `POST /core/examples` on a real `krypton host` process
 * against a bare koa JSON echo server, both loaded by autocannon from this process with the same
 * connections, duration and body, one after the other in the same run.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/tools');

export interface HttpFigures {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

function startProcess(args: string[], ready: RegExp): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`not ready in 20 s: ${args.join(' ')}\n${out}`)), 20_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before ready:\n${out}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await done;
}

async function load(url: string, connections: number, seconds: number): Promise<HttpFigures> {
  const body = JSON.stringify({ name: 'bench', counter: 1, keyValues: { a: 'b', c: 'd' }, tags: ['x', 'y'] });
  // A short warm-up lets V8 optimize both servers before the measured run.
  await autocannon({ url, connections, duration: 1, method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const r = await autocannon({ url, connections, duration: seconds, method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { rps: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
}

export async function benchHttp(opts: { connections?: number; seconds?: number } = {}): Promise<{ krypton: HttpFigures; echo: HttpFigures; ratio: number }> {
  const connections = opts.connections ?? 64;
  const seconds = opts.seconds ?? 8;
  const sandbox = await fs.mkdtemp(path.join(os.tmpdir(), 'krypton-bench-'));
  try {
    const echo = await startProcess([path.join(DIST, 'bench/echo-server.js')], /listening (\d+)/);
    const echoFig = await load(`http://127.0.0.1:${echo.port}/core/examples`, connections, seconds);
    await stop(echo.child);
    const host = await startProcess([path.join(DIST, 'krypton.js'), 'host', '--port=0', `--sandbox=${sandbox}`, '--logLevel=info'], /listening on [^:]+:(\d+)/);
    const kFig = await load(`http://127.0.0.1:${host.port}/core/examples`, connections, seconds);
    await stop(host.child);
    return { krypton: kFig, echo: echoFig, ratio: kFig.rps / echoFig.rps };
  } finally {
    await fs.rm(sandbox, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const seconds = Number(process.argv[2] ?? 8);
  console.log(JSON.stringify(await benchHttp({ seconds })));
}
