/**
 * HTTP throughput benchmark: durable `POST /core/examples` on a real `krypton host` process
 * against a bare koa JSON echo server, both loaded by autocannon from this process with the same
 * connections, duration and body, one after the other in the same run. Then the same load on a
 * host with authorization on, every request carrying the admin's token (a session lookup and a
 * role check per request), compared with the host without authorization; and, since a durable
 * POST mostly waits for the disk, GETs of one document on both, where the check's CPU shows.
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

export function startProcess(args: string[], ready: RegExp): Promise<{ child: ChildProcess; port: number }> {
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

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await done;
}

const BODY = JSON.stringify({ name: 'bench', counter: 1, keyValues: { a: 'b', c: 'd' }, tags: ['x', 'y'] });

async function load(
  url: string,
  connections: number,
  seconds: number,
  extraHeaders: Record<string, string> = {},
  method: 'POST' | 'GET' = 'POST',
): Promise<HttpFigures> {
  const headers = method === 'POST' ? { 'content-type': 'application/json', ...extraHeaders } : extraHeaders;
  const body = method === 'POST' ? BODY : undefined;
  // A short warm-up lets V8 optimize both servers before the measured run.
  await autocannon({ url, connections, duration: 1, method, headers, body });
  const r = await autocannon({ url, connections, duration: seconds, method, headers, body });
  return { rps: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
}

/** Logs the admin in once the host has created it (it does so once its group is available). */
async function adminToken(port: number, password: string): Promise<string> {
  const end = Date.now() + 20_000;
  for (;;) {
    const r = await fetch(`http://127.0.0.1:${port}/core/authn/basic`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Basic ${Buffer.from(`admin@localhost:${password}`).toString('base64')}`,
      },
      body: '{"requestType":"LOGIN"}',
    });
    const token = r.headers.get('x-xenon-auth-token');
    if (r.status === 200 && token) return token;
    if (Date.now() > end) throw new Error(`admin login kept failing: ${r.status} ${await r.text()}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

export interface HttpBench {
  krypton: HttpFigures;
  echo: HttpFigures;
  ratio: number;
  /** The same load with authorization on and the admin's token on every request. */
  authz: HttpFigures;
  /** authz rps over krypton rps (authorization off), same run. */
  authzRatio: number;
  /** GET of one document, authorization off and on. */
  get: HttpFigures;
  authzGet: HttpFigures;
  authzGetRatio: number;
}

/** Creates the document the GET load reads; returns its URL. */
async function benchDoc(port: number, headers: Record<string, string>): Promise<string> {
  const url = `http://127.0.0.1:${port}/core/examples`;
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ documentSelfLink: 'bench-get', name: 'bench' }),
  });
  if (r.status !== 200) throw new Error(`bench document: ${r.status} ${await r.text()}`);
  return `${url}/bench-get`;
}

export async function benchHttp(opts: { connections?: number; seconds?: number } = {}): Promise<HttpBench> {
  const connections = opts.connections ?? 64;
  const seconds = opts.seconds ?? 8;
  const sandbox = await fs.mkdtemp(path.join(os.tmpdir(), 'krypton-bench-'));
  try {
    const echo = await startProcess([path.join(DIST, 'bench/echo-server.js')], /listening (\d+)/);
    const echoFig = await load(`http://127.0.0.1:${echo.port}/core/examples`, connections, seconds);
    await stop(echo.child);
    const host = await startProcess(
      [path.join(DIST, 'krypton.js'), 'host', '--port=0', `--sandbox=${sandbox}`, '--logLevel=info'],
      /listening on [^:]+:(\d+)/,
    );
    let kFig: HttpFigures;
    let getFig: HttpFigures;
    try {
      kFig = await load(`http://127.0.0.1:${host.port}/core/examples`, connections, seconds);
      getFig = await load(await benchDoc(host.port, {}), connections, seconds, {}, 'GET');
    } finally {
      await stop(host.child);
    }
    const password = 'bench-admin-password';
    const secured = await startProcess(
      [
        path.join(DIST, 'krypton.js'),
        'host',
        '--port=0',
        `--sandbox=${path.join(sandbox, 'authz')}`,
        '--logLevel=info',
        '--isAuthorizationEnabled',
        `--adminPassword=${password}`,
      ],
      /listening on [^:]+:(\d+)/,
    );
    let aFig: HttpFigures;
    let aGetFig: HttpFigures;
    try {
      const token = { 'x-xenon-auth-token': await adminToken(secured.port, password) };
      aFig = await load(`http://127.0.0.1:${secured.port}/core/examples`, connections, seconds, token);
      aGetFig = await load(await benchDoc(secured.port, token), connections, seconds, token, 'GET');
    } finally {
      await stop(secured.child);
    }
    return {
      krypton: kFig,
      echo: echoFig,
      ratio: kFig.rps / echoFig.rps,
      authz: aFig,
      authzRatio: aFig.rps / kFig.rps,
      get: getFig,
      authzGet: aGetFig,
      authzGetRatio: aGetFig.rps / getFig.rps,
    };
  } finally {
    await fs.rm(sandbox, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const seconds = Number(process.argv[2] ?? 8);
  console.log(JSON.stringify(await benchHttp({ seconds })));
}
