/**
 * `npm run bench`: every benchmark of the single-host issue, measured in one run on this machine,
 * each against its baseline from the same run, printed as a table (and as JSON with --json).
 *   1. durable POST /core/examples at 64 connections vs a bare koa JSON echo server (goal >= 0.6)
 *   2. log replay of 1M records at start vs a bare msgpackr decode loop over the same bytes (goal >= 0.7)
 *   3. p50 of a selective term query and of an INCLUDE_ALL_VERSIONS query over 100k docs x 10 versions,
 *      and index bytes per version
 *   4. time for 3, 5 and 7 hosts to converge after start, and gossip bytes per second per host at rest
 *   5. replication over 3 hosts against etcd, and catch-up of a restarted host
 *   6. the log tools: `krypton log verify` and `krypton log replay` over 1M records vs the same bare
 *      msgpackr decode loop (goal >= 0.7)
 *   7. TLS overhead: replicated POST over 3 hosts speaking HTTPS vs the same on plain HTTP
 *   8. OData: p50 of a `$filter` on a selective field over 100k documents vs the same query task
 *   9. the client: named creates and PATCHes over 3 hosts through the owner-aware client vs the same
 *      load through one host by plain HTTP, and vs etcd (tools/bench/client.ts)
 *  10. metrics: durable POST on one host while GET /metrics is scraped every second vs unscraped (goal >= 0.97)
 *  11. queries: a query task returning 1,000 of 10,000 documents with EXPAND_CONTENT through one host
 *      of 3, 50 connections, vs etcd's range of 1,000 of 10,000 keys through a follower (goal >= 1.5);
 *      and a BROADCAST query over 5 hosts p50
 *  12. availability: group and moved-link gaps after `kill -9`, a graceful stop and a rolling restart, on 3
 *      Krypton hosts and on the 3-member etcd cluster (its leader and a follower) with the same writers
 *  13. storage: restart to serving of a host holding 100k documents x 10 versions from its snapshot vs a
 *      full replay, disk after compaction, backup and restore throughput, vs an etcd follower's restart
 * `--only=<step>[,<step>]` runs some of them: http, replay, cluster, index, replication, log-tools, tls, odata, client, metrics, query,
 * availability, storage.
 * `--quick` runs each on a smaller scale. Figures move with the machine's load; compare ratios,
 * not absolute numbers, across machines.
 */

import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AvailabilityResult, availabilityRows } from './availability.js';
import { type ClientBenchResult, clientRows } from './client.js';
import type { benchCluster } from './cluster.js';
import type { HttpBench } from './http.js';
import type { IndexBenchResult } from './index-query.js';
import type { LogToolsBenchResult } from './log-tools.js';
import { metricsRows, type MetricsBenchResult } from './metrics.js';
import type { ODataBenchResult } from './odata.js';
import type { QueryBenchResult } from './query.js';
import { replicationRows, type ReplicationResult } from './replication.js';
import { storageRows, type StorageBenchResult } from './storage.js';
import { tlsRows, type TlsBenchResult } from './tls.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/**
 * Each benchmark runs in a fresh process, so one's heap, threads and leftovers (autocannon's
 * garbage, a million held versions) do not slow the next; each script prints JSON last.
 */
function child<T>(script: string, args: string[] = [], nodeFlags: string[] = []): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...nodeFlags, '--import', 'tsx', path.join(HERE, script), ...args],
      { maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`${script} failed: ${err.message}\n${stderr}`));
        const start = stdout.lastIndexOf('\n{');
        resolve(JSON.parse(stdout.slice(start < 0 ? stdout.indexOf('{') : start + 1)) as T);
      },
    );
  });
}

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const log = (s: string) => process.stderr.write(s + '\n');

const STEPS = [
  'http',
  'replay',
  'cluster',
  'index',
  'replication',
  'log-tools',
  'tls',
  'odata',
  'client',
  'metrics',
  'query',
  'availability',
  'storage',
] as const;
type Step = (typeof STEPS)[number];
const onlyArg = process.argv.find((a) => a.startsWith('--only='));
const only = onlyArg === undefined ? undefined : onlyArg.slice('--only='.length).split(',');
const unknown = only?.filter((x) => !(STEPS as readonly string[]).includes(x)) ?? [];
if (unknown.length > 0) {
  log(`bench: unknown step(s) ${unknown.join(', ')}; the steps are ${STEPS.join(', ')}`);
  process.exit(2);
}
const chosen = STEPS.filter((step) => only === undefined || only.includes(step));
let stepNo = 0;
/** Runs a step if chosen, numbering the chosen ones "n/total". */
async function step<T>(name: Step, what: string, run: () => Promise<T>): Promise<T | undefined> {
  if (!chosen.includes(name)) return undefined;
  log(`${++stepNo}/${chosen.length} ${what} ...`);
  return run();
}

log(
  `krypton bench on ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}${quick ? ' (quick)' : ''}`,
);
const http = await step('http', 'HTTP: bare koa echo, then krypton durable POST (64 connections), without and with authorization', () =>
  child<HttpBench>('http.ts', quick ? ['3'] : []),
);
const replay = await step('replay', 'log replay', () =>
  child<{ records: number; walRecordsPerSec: number; bareRecordsPerSec: number; ratio: number }>('wal-replay.ts', [
    quick ? '100000' : '1000000',
  ]),
);
const cluster = await step('cluster', 'node groups: convergence of 3, 5, 7 hosts; gossip at rest', () =>
  child<Awaited<ReturnType<typeof benchCluster>>>('cluster.ts', quick ? ['quick'] : []),
);
const idx = await step('index', 'index queries', () =>
  child<IndexBenchResult>('index-query.ts', quick ? ['10000', '10'] : [], ['--expose-gc']),
);
const repl = await step('replication', 'replication: 3 hosts, replicated POST and PATCH, etcd baseline, catch-up of a restarted host', () =>
  child<ReplicationResult>('replication.ts', quick ? ['quick'] : []),
);
const tlsBench = await step('tls', 'TLS: replicated POST over 3 hosts with HTTPS vs plain HTTP, alternating', () =>
  child<TlsBenchResult>('tls.ts', quick ? ['quick'] : []),
);
const tools = await step('log-tools', 'log tools: verify and replay of a log written by WriteAheadLog', () =>
  child<LogToolsBenchResult>('log-tools.ts', [quick ? '100000' : '1000000']),
);

const odata = await step('odata', 'OData: $filter on a selective field over 100k documents vs the same query task', () =>
  child<ODataBenchResult>('odata.ts', quick ? ['10000'] : []),
);

const clientBench = await step(
  'client',
  'client: named POST and PATCH through the owner-aware client vs one host by plain HTTP vs etcd',
  () => child<ClientBenchResult>('client.ts', quick ? ['quick'] : []),
);
const metrics = await step('metrics', 'metrics: durable POST on one host scraped every second vs unscraped, alternating', () =>
  child<MetricsBenchResult>('metrics.ts', quick ? ['quick'] : []),
);
const queries = await step(
  'query',
  'queries: 1,000 of 10,000 with EXPAND_CONTENT through one of 3 hosts vs etcd range; BROADCAST over 5 hosts',
  () => child<QueryBenchResult>('query.ts', quick ? ['quick'] : []),
);
const availability = await step('availability', 'availability: gaps after kill -9, graceful stop, rolling restart, vs etcd', () =>
  child<AvailabilityResult>('availability.ts'),
);

const storage = await step(
  'storage',
  'storage: restart of a host holding 1M records from a snapshot vs a full replay, disk after compaction, backup and restore, vs etcd',
  () => child<StorageBenchResult>('storage.ts', quick ? ['10000', '10'] : []),
);

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const rows: [string, string, string, string][] = [];
if (http !== undefined) {
  rows.push([
    'durable POST /core/examples, 64 conns',
    `${fmt(http.krypton.rps)} req/s, p99 ${http.krypton.p99Ms} ms`,
    `koa echo ${fmt(http.echo.rps)} req/s, p99 ${http.echo.p99Ms} ms`,
    `${fmt(http.ratio, 2)} (goal >= 0.6)`,
  ]);
  rows.push([
    'same, authorization on (token + role check)',
    `${fmt(http.authz.rps)} req/s, p99 ${http.authz.p99Ms} ms`,
    `authorization off ${fmt(http.krypton.rps)} req/s`,
    fmt(http.authzRatio, 2),
  ]);
  rows.push(['GET of one document, 64 conns', `${fmt(http.get.rps)} req/s, p99 ${http.get.p99Ms} ms`, '', '']);
  rows.push([
    'same, authorization on (token + role check)',
    `${fmt(http.authzGet.rps)} req/s, p99 ${http.authzGet.p99Ms} ms`,
    `authorization off ${fmt(http.get.rps)} req/s`,
    fmt(http.authzGetRatio, 2),
  ]);
}
if (replay !== undefined) {
  rows.push([
    `log replay at start, ${fmt(replay.records)} records`,
    `${fmt(replay.walRecordsPerSec)} rec/s`,
    `msgpackr decode loop ${fmt(replay.bareRecordsPerSec)} rec/s`,
    `${fmt(replay.ratio, 2)} (goal >= 0.7)`,
  ]);
}
if (idx !== undefined) {
  rows.push(
    [`term query p50, ${fmt(idx.docs)} docs x ${idx.versions / idx.docs} versions`, `${fmt(idx.termP50Micros, 1)} µs`, '', ''],
    ['INCLUDE_ALL_VERSIONS query p50 (one link)', `${fmt(idx.allVersionsP50Micros, 1)} µs`, '', ''],
    [
      'index bytes per version',
      `${fmt(idx.bytesPerVersion)} B (states ${fmt(idx.stateBytesPerVersion)} + index ${fmt(idx.indexBytesPerVersion)})`,
      '',
      '',
    ],
  );
}
if (cluster !== undefined) {
  for (const [n, ms] of Object.entries(cluster.convergeMs))
    rows.push([
      `${n} hosts converge after start`,
      `${fmt(ms / 1000, 1)} s`,
      '',
      '(joins as it starts listening, then the 5 s stability window)',
    ]);
  rows.push(['gossip at rest, per host', `${fmt(cluster.gossipBytesPerHostPerSec)} B/s`, '', '']);
}
if (http !== undefined && (http.krypton.non2xx || http.krypton.errors))
  rows.push(['krypton non-2xx / errors', `${http.krypton.non2xx} / ${http.krypton.errors}`, '', '']);
if (http !== undefined && (http.authz.non2xx || http.authz.errors))
  rows.push(['krypton with authorization non-2xx / errors', `${http.authz.non2xx} / ${http.authz.errors}`, '', '']);
if (repl !== undefined) rows.push(...replicationRows(repl, fmt));
if (tools !== undefined) {
  const of = `${fmt(tools.records)} records`;
  const bare = `msgpackr decode loop ${fmt(tools.bareRecordsPerSec)} rec/s`;
  rows.push(
    [`krypton log verify, ${of}`, `${fmt(tools.verifyRecordsPerSec)} rec/s`, bare, `${fmt(tools.verifyRatio, 2)} (goal >= 0.7)`],
    [`krypton log replay (counts), ${of}`, `${fmt(tools.replayRecordsPerSec)} rec/s`, bare, `${fmt(tools.replayRatio, 2)} (goal >= 0.7)`],
    [`krypton log replay --link, ${of}`, `${fmt(tools.replayLinkRecordsPerSec)} rec/s`, bare, fmt(tools.replayLinkRatio, 2)],
  );
}
if (tlsBench !== undefined) rows.push(...tlsRows(tlsBench, fmt));
if (odata !== undefined) {
  rows.push([
    `OData $filter on name (1 match), ${fmt(odata.docs)} docs, 1 conn`,
    `p50 ${fmt(odata.odata.p50Ms, 2)} ms, p99 ${fmt(odata.odata.p99Ms, 2)} ms`,
    `query task p50 ${fmt(odata.queryTask.p50Ms, 2)} ms, p99 ${fmt(odata.queryTask.p99Ms, 2)} ms`,
    fmt(odata.ratio, 2),
  ]);
}
if (clientBench !== undefined) rows.push(...clientRows(clientBench, fmt));

if (metrics !== undefined) rows.push(...metricsRows(metrics, fmt));
if (queries !== undefined) {
  const e = queries.etcd && !('skipped' in queries.etcd) ? queries.etcd : undefined;
  rows.push(
    [
      `query task, ${fmt(queries.matches)} of ${fmt(queries.docs)} docs + content, 3 hosts, ${queries.connections} conns`,
      `${fmt(queries.krypton.rps)} q/s, p50 ${queries.krypton.p50Ms} ms, p99 ${queries.krypton.p99Ms} ms`,
      e ? `etcd ${e.version} range via follower ${fmt(e.range.rps)} q/s, p50 ${e.range.p50Ms} ms, p99 ${e.range.p99Ms} ms` : 'etcd skipped',
      queries.ratio === undefined ? '' : `${fmt(queries.ratio, 2)} (goal >= 1.5)`,
    ],
    [
      'same, 1 connection',
      `p50 ${fmt(queries.krypton1.p50Ms, 2)} ms, p99 ${fmt(queries.krypton1.p99Ms, 2)} ms`,
      e ? `etcd p50 ${fmt(e.range1.p50Ms, 2)} ms, p99 ${fmt(e.range1.p99Ms, 2)} ms` : '',
      e ? `p50 ${fmt(e.range1.p50Ms / queries.krypton1.p50Ms, 2)} (goal >= 1)` : '',
    ],
    [
      `BROADCAST query, ${queries.broadcast.hosts} hosts, ${fmt(queries.broadcast.matches)} of ${fmt(queries.broadcast.docs)} links, 1 conn`,
      `p50 ${fmt(queries.broadcast.p50Ms, 2)} ms, p99 ${fmt(queries.broadcast.p99Ms, 2)} ms`,
      '',
      '',
    ],
  );
}
if (availability !== undefined) rows.push(...availabilityRows(availability));
if (storage !== undefined) rows.push(...storageRows(storage, fmt));

if (json) {
  process.stdout.write(
    JSON.stringify(
      {
        http,
        replay,
        index: idx,
        cluster,
        replication: repl,
        logTools: tools,
        tls: tlsBench,
        odata,
        client: clientBench,
        metrics,
        queries,
        availability,
        storage,
      },
      null,
      2,
    ) + '\n',
  );
} else {
  const w = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(`\n| measure | krypton | baseline (same run) | ratio |\n|${w.map((n) => '-'.repeat(n + 2)).join('|')}|\n`);
  for (const r of rows) process.stdout.write(`| ${r.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |\n`);
}
