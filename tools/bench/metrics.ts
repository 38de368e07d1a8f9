/**
 * The cost of being watched: durable POST /core/examples throughput of one `krypton host`
 * process at 64 connections while a scraper reads GET /metrics every second (as Prometheus
 * would, only more often than its usual 15 s), as a ratio to the same host unscraped, in one run.
 * The modes alternate over `rounds` fresh hosts, the order flipping each round (unscraped then
 * scraped, scraped then unscraped, ...), so drift in the machine's load and the second start's
 * warmer caches hit both; the ratio is the median scraped throughput over the
 * median unscraped one. The instruments themselves are always on (counters incremented on the
 * hot path); comparing builds with and without them is tools/bench/ab.ts's job.
 *
 * Runnable directly: `node --import tsx tools/bench/metrics.ts [quick] [--seconds=N] [--warmup=N]
 * [--rounds=N]`; the last line of stdout is the JSON result.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Metrics } from '../../server/base/metrics.js';
import { exampleBody, freePorts, removeDir, sleep, spreadLoad, tempDir, track, type LoadFigures } from './etcd.js';

const KRYPTON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/tools/krypton.js');
const log = (s: string) => process.stderr.write(`[metrics] ${s}\n`);

type Mode = 'unscraped' | 'scraped';

export interface MetricsBenchResult {
  connections: number;
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  unscraped: LoadFigures[];
  scraped: LoadFigures[];
  /** Median scraped throughput / median unscraped throughput. */
  ratio: number;
  roundRatios: number[];
  /** Size of the last /metrics answer and the median time to fetch it under load. */
  scrapeBytes: number;
  scrapeMsMedian: number;
  scrapes: number;
  /** CPU time of what the hot path does per request (count it, observe its latency), measured in this process. */
  instrumentNsPerRequest: number;
}

/** Times the per-request instruments of server/base/metrics.ts alone, as the host updates them. */
function instrumentCost(): number {
  const m = new Metrics();
  const verbs = ['GET', 'POST', 'PATCH'];
  const n = 300_000;
  const run = (count: number) => {
    for (let i = 0; i < count; i++) {
      const verb = verbs[i % 3]!;
      m.requests.inc({ verb, factory: '/core/examples', status: '200' });
      m.requestSeconds.observe({ verb, factory: '/core/examples' }, 0.0004 + (i % 7) * 0.001);
    }
  };
  run(n / 10);
  const t0 = process.cpuUsage();
  run(n);
  const used = process.cpuUsage(t0);
  m.stop();
  return Math.round(((used.user + used.system) * 1000) / n);
}

const median = (xs: number[]) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function withHost<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const sandbox = await tempDir('krypton-bench-metrics-');
  const [port] = await freePorts(1);
  const url = `http://127.0.0.1:${port}`;
  const proc: ChildProcess = track(
    spawn(process.execPath, [KRYPTON, 'host', `--port=${port}`, `--sandbox=${sandbox}`, '--logLevel=warn'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`the host exited with ${proc.exitCode}`);
      const r = await fetch(`${url}/readyz`).catch(() => undefined);
      if (r?.status === 200) break;
      if (Date.now() > deadline) throw new Error('the host was not ready within 60 s');
      await sleep(50);
    }
    return await fn(url);
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await gone;
    }
    await removeDir(sandbox);
  }
}

/** Fetches /metrics every second until stopped; the fetch times and the last answer's size. */
function scraper(url: string): { stop(): Promise<{ ms: number[]; bytes: number }> } {
  const ms: number[] = [];
  let bytes = 0;
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = (async () => {
      const t0 = performance.now();
      const text = await (await fetch(`${url}/metrics`)).text();
      ms.push(performance.now() - t0);
      bytes = Buffer.byteLength(text);
    })().catch(() => {});
  }, 1000);
  return {
    async stop() {
      clearInterval(timer);
      await running;
      return { ms, bytes };
    },
  };
}

export async function benchMetrics(opts: { seconds?: number; warmupSeconds?: number; rounds?: number } = {}): Promise<MetricsBenchResult> {
  const connections = 64;
  const seconds = opts.seconds ?? 10;
  const warmupSeconds = opts.warmupSeconds ?? 5;
  const rounds = opts.rounds ?? 3;
  const figures: Record<Mode, LoadFigures[]> = { unscraped: [], scraped: [] };
  const scrapeMs: number[] = [];
  let scrapeBytes = 0;
  let n = 0;
  const build = () => ({ method: 'POST', path: '/core/examples', body: exampleBody(n++) });
  const instrumentNsPerRequest = instrumentCost();
  log(`instruments: ${instrumentNsPerRequest} ns of CPU per request`);
  for (let round = 1; round <= rounds; round++) {
    // The order flips every round (ABBA...): the second host of a round started on a warmer machine.
    const order = round % 2 === 1 ? (['unscraped', 'scraped'] as const) : (['scraped', 'unscraped'] as const);
    for (const mode of order) {
      const f = await withHost(async (url) => {
        log(
          `round ${round}/${rounds}, ${mode}: warm-up ${warmupSeconds} s, then ${seconds} s of durable POST over ${connections} connections`,
        );
        const s = mode === 'scraped' ? scraper(url) : undefined;
        if (warmupSeconds > 0) await spreadLoad([url], connections, { seconds: warmupSeconds }, build);
        const figures = await spreadLoad([url], connections, { seconds }, build);
        const scraped = await s?.stop();
        if (scraped) {
          scrapeMs.push(...scraped.ms);
          scrapeBytes = scraped.bytes;
        }
        return figures;
      });
      log(`round ${round}, ${mode}: ${f.rps} ok/s, p99 ${f.p99Ms} ms, non-2xx ${f.non2xx}, errors ${f.errors}`);
      figures[mode].push(f);
    }
  }
  const ratio = Math.round((median(figures.scraped.map((f) => f.rps)) / median(figures.unscraped.map((f) => f.rps))) * 1000) / 1000;
  const roundRatios = figures.scraped.map((f, i) => Math.round((f.rps / figures.unscraped[i]!.rps) * 1000) / 1000);
  return {
    connections,
    seconds,
    warmupSeconds,
    rounds,
    unscraped: figures.unscraped,
    scraped: figures.scraped,
    ratio,
    roundRatios,
    scrapeBytes,
    scrapeMsMedian: Math.round(median(scrapeMs) * 10) / 10,
    scrapes: scrapeMs.length,
    instrumentNsPerRequest,
  };
}

/** The row `npm run bench` (run.ts) prints: measure, scraped, unscraped baseline, ratio. */
export function metricsRows(r: MetricsBenchResult, fmt: (n: number, digits?: number) => string): [string, string, string, string][] {
  const med = (fs: LoadFigures[]) => `${fmt(median(fs.map((f) => f.rps)))} req/s, p99 ${median(fs.map((f) => f.p99Ms))} ms`;
  return [
    [
      `durable POST, 1 host, ${r.connections} conns, GET /metrics every 1 s (${fmt(r.scrapeBytes / 1024)} KiB, ${fmt(r.scrapeMsMedian, 1)} ms)`,
      `scraped ${med(r.scraped)}`,
      `unscraped ${med(r.unscraped)}`,
      `${fmt(r.ratio, 3)} (goal >= 0.97; rounds ${r.roundRatios.map((x) => fmt(x, 3)).join(', ')})`,
    ],
    ['per-request instruments (count + latency histogram), CPU', `${fmt(r.instrumentNsPerRequest)} ns/request`, '', ''],
  ];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const num = (name: string) => {
    const a = args.find((x) => x.startsWith(`--${name}=`));
    return a === undefined ? undefined : Number(a.slice(name.length + 3));
  };
  const quick = args.includes('quick');
  const r = await benchMetrics({
    seconds: num('seconds') ?? (quick ? 3 : undefined),
    warmupSeconds: num('warmup') ?? (quick ? 1 : undefined),
    rounds: num('rounds') ?? (quick ? 1 : undefined),
  });
  process.stdout.write(JSON.stringify(r) + '\n');
}
