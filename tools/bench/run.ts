/**
 * `npm run bench`: every benchmark of the single-host issue, measured in one run on this machine,
 * each against its baseline from the same run, printed as a table (and as JSON with --json).
 *   1. durable POST /core/examples at 64 connections vs a bare koa JSON echo server (goal >= 0.6)
 *   2. log replay of 1M records at start vs a bare msgpackr decode loop over the same bytes (goal >= 0.7)
 *   3. p50 of a selective term query and of an INCLUDE_ALL_VERSIONS query over 100k docs x 10 versions,
 *      and index bytes per version
 * Figures move with the machine's load; compare ratios, not absolute numbers, across machines.
 */

import os from 'node:os';
import { benchHttp } from './http.js';
import { benchIndexQuery } from './index-query.js';
import { benchWalReplay } from './wal-replay.js';

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const log = (s: string) => process.stderr.write(s + '\n');

log(`krypton bench on ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}${quick ? ' (quick)' : ''}`);
log('1/3 HTTP: bare koa echo, then krypton durable POST (64 connections) ...');
const http = await benchHttp({ connections: 64, seconds: quick ? 3 : 8 });
log('2/3 log replay ...');
const replay = await benchWalReplay(quick ? 100_000 : 1_000_000);
log('3/3 index queries ...');
const idx = await benchIndexQuery(quick ? { docs: 10_000, versions: 10 } : {});

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const rows: [string, string, string, string][] = [
  ['durable POST /core/examples, 64 conns', `${fmt(http.krypton.rps)} req/s, p99 ${http.krypton.p99Ms} ms`, `koa echo ${fmt(http.echo.rps)} req/s, p99 ${http.echo.p99Ms} ms`, `${fmt(http.ratio, 2)} (goal >= 0.6)`],
  [`log replay at start, ${fmt(replay.records)} records`, `${fmt(replay.walRecordsPerSec)} rec/s`, `msgpackr decode loop ${fmt(replay.bareRecordsPerSec)} rec/s`, `${fmt(replay.ratio, 2)} (goal >= 0.7)`],
  [`term query p50, ${fmt(idx.docs)} docs x ${idx.versions / idx.docs} versions`, `${fmt(idx.termP50Micros, 1)} µs`, '', ''],
  ['INCLUDE_ALL_VERSIONS query p50 (one link)', `${fmt(idx.allVersionsP50Micros, 1)} µs`, '', ''],
  ['index bytes per version', `${fmt(idx.bytesPerVersion)} B (states ${fmt(idx.stateBytesPerVersion)} + index ${fmt(idx.indexBytesPerVersion)})`, '', ''],
];
if (http.krypton.non2xx || http.krypton.errors) rows.push(['krypton non-2xx / errors', `${http.krypton.non2xx} / ${http.krypton.errors}`, '', '']);

if (json) {
  process.stdout.write(JSON.stringify({ http, replay, index: idx }, null, 2) + '\n');
} else {
  const w = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(`\n| measure | krypton | baseline (same run) | ratio |\n|${w.map((n) => '-'.repeat(n + 2)).join('|')}|\n`);
  for (const r of rows) process.stdout.write(`| ${r.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |\n`);
}
