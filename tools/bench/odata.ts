/**
 * OData benchmark: one host (the built `dist/`), 100,000 ExampleService documents created over
 * HTTP, then the p50 and p99 of a `$filter` on a selective field (`name`, one match, with its
 * document) through the factory GET, against the same query sent as a direct query task (the
 * querySpec the translation makes, written out by hand), each 300 times over one connection,
 * the two interleaved so that load on the machine hits both alike. The difference is what
 * OData costs on top of the query: parsing the parameters and shaping Xenon's
 * ODataFactoryQueryResult.
 *
 * Run: npm run build && node --import tsx tools/bench/odata.ts [docs]
 */

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import { KINDS } from '../../lib/document.js';
import { startProcess, stop } from './http.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/tools');
const RUNS = 300;
const LOAD_CONNECTIONS = 64;

export interface ODataBenchResult {
  docs: number;
  loadSeconds: number;
  odata: { p50Ms: number; p99Ms: number };
  queryTask: { p50Ms: number; p99Ms: number };
  /** OData p50 over query task p50. */
  ratio: number;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))]!;
}

/** A small deterministic generator, so every run asks for the same documents. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

async function send(pool: Pool, method: 'GET' | 'POST', p: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await pool.request({
    method,
    path: p,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
}

async function load(pool: Pool, docs: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < docs; i = next++) {
      const r = await send(pool, 'POST', '/core/examples', {
        documentSelfLink: `d${i}`,
        name: `example-${i}`,
        counter: i,
        tags: [`t${i % 10}`],
        keyValues: { colour: `c${i % 17}` },
      });
      if (r.status !== 200) throw new Error(`POST d${i} answered ${r.status}`);
    }
  };
  await Promise.all(Array.from({ length: LOAD_CONNECTIONS }, worker));
}

function taskBody(name: string): unknown {
  return {
    taskInfo: { isDirect: true },
    querySpec: {
      options: ['EXPAND_CONTENT'],
      query: {
        booleanClauses: [
          { occurance: 'MUST_OCCUR', term: { propertyName: 'documentKind', matchValue: KINDS.example } },
          { occurance: 'MUST_OCCUR', term: { propertyName: 'documentSelfLink', matchValue: '/core/examples/', matchType: 'PREFIX' } },
          { occurance: 'MUST_OCCUR', term: { propertyName: 'name', matchValue: name } },
        ],
      },
    },
  };
}

function linksOf(json: unknown): string[] {
  const o = json as { documentLinks?: string[]; results?: { documentLinks?: string[] } };
  return o.documentLinks ?? o.results?.documentLinks ?? [];
}

export async function benchOData(opts: { docs?: number } = {}): Promise<ODataBenchResult> {
  const docs = opts.docs ?? 100_000;
  const sandbox = await fs.mkdtemp(path.join(os.tmpdir(), 'krypton-bench-odata-'));
  const host = await startProcess(
    [path.join(DIST, 'krypton.js'), 'host', '--port=0', `--sandbox=${sandbox}`, '--logLevel=info'],
    /listening on [^:]+:(\d+)/,
  );
  const loadPool = new Pool(`http://127.0.0.1:${host.port}`, { connections: LOAD_CONNECTIONS });
  const one = new Pool(`http://127.0.0.1:${host.port}`, { connections: 1 });
  try {
    const started = process.hrtime.bigint();
    await load(loadPool, docs);
    const loadSeconds = Number(process.hrtime.bigint() - started) / 1e9;

    const pick = lcg(7);
    const names = Array.from({ length: RUNS + 50 }, () => `example-${pick() % docs}`);
    const odataTimes: number[] = [];
    const taskTimes: number[] = [];
    const time = async (run: () => Promise<{ status: number; json: unknown }>, out: number[] | undefined, want: string) => {
      const t = process.hrtime.bigint();
      const r = await run();
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      const links = linksOf(r.json);
      if (r.status !== 200 || links.length !== 1 || links[0] !== want)
        throw new Error(`query answered ${r.status} ${JSON.stringify(links)}`);
      out?.push(ms);
    };
    for (let k = 0; k < names.length; k++) {
      const name = names[k]!;
      const want = `/core/examples/d${name.slice('example-'.length)}`;
      // The first 50 warm both paths up and are not counted.
      const warm = k < 50;
      const filter = encodeURIComponent(`name eq '${name}'`);
      const odata = () => time(() => send(one, 'GET', `/core/examples?$filter=${filter}`), warm ? undefined : odataTimes, want);
      const task = () => time(() => send(one, 'POST', '/core/query-tasks', taskBody(name)), warm ? undefined : taskTimes, want);
      // Alternate which goes first, so neither always runs on a warmer cache.
      if (k % 2 === 0) {
        await odata();
        await task();
      } else {
        await task();
        await odata();
      }
    }
    const round = (x: number) => Math.round(x * 100) / 100;
    const odata = { p50Ms: round(quantile(odataTimes, 0.5)), p99Ms: round(quantile(odataTimes, 0.99)) };
    const queryTask = { p50Ms: round(quantile(taskTimes, 0.5)), p99Ms: round(quantile(taskTimes, 0.99)) };
    return { docs, loadSeconds: Math.round(loadSeconds * 10) / 10, odata, queryTask, ratio: round(odata.p50Ms / queryTask.p50Ms) };
  } finally {
    await loadPool.close();
    await one.close();
    await stop(host.child);
    await fs.rm(sandbox, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const docs = Number(process.argv[2]);
  console.log(JSON.stringify(await benchOData(docs > 0 ? { docs } : {}), null, 2));
}
