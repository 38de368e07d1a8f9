/**
 * The torture runner: `npm run torture -- --workload register,set,watch --faults kill,pause,stop,partition
 * --seconds 60 --seed N`. It starts a group of real hosts, runs the workloads through every host
 * while the nemesis applies faults, heals everything, waits for the group to converge, then
 * checks each workload, compares every host's retained history and counts duplicate
 * applications. It prints the history summary, the verdict per key, availability during each
 * fault, and, when something is wrong (or with --keep), saves the history, a readable
 * explanation of each violation with the operations involved and the hosts' logs in one folder
 * (--out, default ./torture-out). With --json the last line of stdout is the result as JSON.
 *
 * Partitions need network namespaces: as root on Linux the runner makes them (netns.ts) and runs
 * itself again inside the bridge's namespace (--inner), so its clients reach the hosts there
 * and nowhere else, and it removes them on the way out, failure or signal included. Without
 * root the partition fault is skipped with a message saying why.
 *
 * Exit code: 0 no violation, 1 violations found, 2 bad usage or the run itself failed.
 */

import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isKryptonError, KryptonError } from '../../lib/errors.js';
import { removeDir, tempDir } from '../bench/etcd.js';
import { Journal } from './client.js';
import { compareHistories } from './compare.js';
import { Group } from './group.js';
import { type Namespaces, namespacesFor, partitionsUnsupported, setupNamespaces, teardownNamespaces } from './netns.js';
import { FAULT_KINDS, Nemesis, type FaultKind } from './nemesis.js';
import { availability, buildResult, printable, type RunResult, save } from './report.js';
import { Rng } from './random.js';
import { RegisterWorkload, SetWorkload, WatchWorkload, type Workload, type WorkloadContext, type WorkloadReport } from './workloads.js';

const WORKLOADS = ['register', 'set', 'watch'] as const;
type WorkloadName = (typeof WORKLOADS)[number];

export interface Options {
  workloads: WorkloadName[];
  faults: FaultKind[];
  seconds: number;
  seed: number;
  hosts: number;
  holdMs: [number, number];
  quietMs: [number, number];
  timeoutMs: number;
  thinkMs: number;
  out: string;
  json: boolean;
  keep: boolean;
  /** Set by the runner itself when it runs inside the namespaces with this prefix. */
  inner?: string;
  hostArgs: string[];
}

const USAGE = `usage: npm run torture -- [--workload register,set,watch] [--faults kill,pause,stop,partition|none]
  [--seconds 60] [--seed N] [--hosts 3] [--hold 4-8] [--quiet 2-4] [--timeout 5000] [--think 5]
  [--out ./torture-out] [--keep] [--json] [--host-arg=--flag=value ...]`;

/** A mistake in the runner's flags: the message, then the usage, exit code 2 (as `krypton log`). */
const usageError = (message: string) => new KryptonError('INVALID_USAGE', message);

function range(v: string, what: string): [number, number] {
  const m = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(v);
  if (!m) throw usageError(`--${what} takes seconds or a range of seconds (4-8), not ${v}`);
  const lo = Number(m[1]) * 1000;
  return [lo, m[2] ? Number(m[2]) * 1000 : lo];
}

const defaults = (): Options => ({
  workloads: ['register'],
  faults: ['kill', 'pause', 'partition'],
  seconds: 60,
  seed: Math.floor(Math.random() * 1_000_000),
  hosts: 3,
  holdMs: [4000, 8000],
  quietMs: [2000, 4000],
  timeoutMs: 5000,
  thinkMs: 5,
  out: 'torture-out',
  json: false,
  keep: false,
  hostArgs: [],
});

function list<T extends string>(v: string, allowed: readonly T[], what: string): T[] {
  const xs = v.split(',').filter((x) => x && x !== 'none');
  for (const x of xs) if (!allowed.includes(x as T)) throw usageError(`unknown ${what} ${x} (${allowed.join(', ')})`);
  return xs as T[];
}

function number(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw usageError(`--${flag} takes a number, not ${v}`);
  return n;
}

/** What each flag that takes a value does with it. */
const VALUE_FLAGS: Record<string, (o: Options, v: string, flag: string) => void> = {
  workload: (o, v) => {
    o.workloads = list(v, WORKLOADS, 'workload');
  },
  faults: (o, v) => {
    o.faults = list(v, FAULT_KINDS, 'fault');
  },
  seconds: (o, v, f) => {
    o.seconds = number(v, f);
  },
  seed: (o, v, f) => {
    o.seed = Math.floor(number(v, f));
  },
  hosts: (o, v, f) => {
    o.hosts = Math.max(3, Math.floor(number(v, f)));
  },
  hold: (o, v, f) => {
    o.holdMs = range(v, f);
  },
  quiet: (o, v, f) => {
    o.quietMs = range(v, f);
  },
  timeout: (o, v, f) => {
    o.timeoutMs = number(v, f);
  },
  think: (o, v, f) => {
    o.thinkMs = number(v, f);
  },
  out: (o, v) => {
    o.out = v;
  },
  inner: (o, v) => {
    o.inner = v;
  },
  'host-arg': (o, v) => {
    o.hostArgs.push(v);
  },
};

export function parseArgs(argv: string[]): Options {
  const o = defaults();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const flag = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (!a.startsWith('--')) throw usageError(`unexpected argument ${a}`);
    if (flag === 'json' || flag === 'keep') {
      o[flag] = true;
      continue;
    }
    if (flag === 'help') throw usageError('');
    const set = VALUE_FLAGS[flag === 'workloads' ? 'workload' : flag];
    if (!set) throw usageError(`unknown flag ${a}`);
    const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined) throw usageError(`--${flag} needs a value`);
    set(o, v, flag);
  }
  return o;
}

interface Session {
  group: Group;
  ns: Namespaces | undefined;
  journal: Journal;
  workloads: Workload[];
  nemesis: Nemesis;
  t0: number;
}

/** Runs the workloads and the nemesis for the run's length, then heals and waits for convergence. */
async function exercise(o: Options, group: Group, ns: Namespaces | undefined): Promise<Session & { converged: number | undefined }> {
  const journal = new Journal();
  const rng = new Rng(o.seed);
  const t0 = performance.now();
  const stopAt = t0 + o.seconds * 1000;
  const ctx: WorkloadContext = {
    group,
    journal,
    rng,
    runId: `t${o.seed}-${Date.now().toString(36)}`,
    timeoutMs: o.timeoutMs,
    thinkMs: o.thinkMs,
    stopped: () => performance.now() >= stopAt,
  };
  const workloads: Workload[] = o.workloads.map((w) =>
    w === 'register' ? new RegisterWorkload(ctx) : w === 'set' ? new SetWorkload(ctx) : new WatchWorkload(ctx),
  );
  const nemesis = new Nemesis(group, ns, rng.fork(1), {
    faults: o.faults,
    holdMs: o.holdMs,
    quietMs: o.quietMs,
    convergeDeadlineMs: 60_000,
  });
  const running = workloads.map((w) => w.run());
  const faults = nemesis.run();
  await new Promise((r) => setTimeout(r, Math.max(0, stopAt - performance.now())));
  nemesis.stop();
  await faults;
  await Promise.all(running);
  await nemesis.healEverything();
  const converged = await group.waitConverged(90_000);
  return { group, ns, journal, workloads, nemesis, t0, converged };
}

async function runHere(o: Options, skipped: string[], cmdline: string): Promise<RunResult> {
  const say = (s: string) => (o.json ? process.stderr : process.stdout).write(`${s}\n`);
  const sandbox = await tempDir('krypton-torture-');
  const logDir = path.join(sandbox, 'logs');
  const ns = o.inner ? namespacesFor(o.inner, o.hosts) : undefined;
  const where = ns ? 'in network namespaces' : 'on loopback';
  say(
    `torture: seed ${o.seed}, workloads ${o.workloads.join(',')}, faults ${o.faults.join(',') || 'none'}, ${o.seconds} s, ${o.hosts} hosts ${where}`,
  );
  const group = await Group.start({ n: o.hosts, sandbox, logDir, ns, hostArgs: o.hostArgs });
  try {
    const s = await exercise(o, group, ns);
    say(`healed; group ${s.converged === undefined ? 'did NOT converge in 90 s' : `converged in ${Math.round(s.converged)} ms`}`);
    // Histories first: the register check folds the versions takeovers made (compare.ts).
    const cmp = await compareHistories(
      group,
      s.workloads.flatMap((w) => w.keys()),
    );
    const reports: WorkloadReport[] = [];
    for (const w of s.workloads) reports.push(await w.finish(cmp.unions));
    const avail = availability(s.journal.entries, s.nemesis.windows, s.t0);
    const result = buildResult(o, skipped, reports, cmp, avail, s.converged);
    say(printable(result, reports, cmp, avail));
    if (!result.ok || o.keep) {
      result.savedTo = save(path.resolve(o.out), o, result, reports, cmp, s.nemesis.windows, logDir, cmdline);
      say(`\nsaved history, explanation and host logs to ${result.savedTo}`);
    }
    say(`\n${result.ok ? 'PASSED' : 'FAILED'}`);
    return result;
  } finally {
    await group.close();
    await removeDir(sandbox);
  }
}

/** Makes the namespaces, runs this script again inside the bridge's, and removes them whatever happens. */
async function runInNamespaces(argv: string[], o: Options): Promise<number> {
  const prefix = `kt${process.pid % 100_000}`;
  const ns = setupNamespaces(prefix, o.hosts);
  const script = fileURLToPath(import.meta.url);
  const child = spawn('ip', ['netns', 'exec', ns.bridge, process.execPath, ...process.execArgv, script, ...argv, `--inner=${prefix}`], {
    stdio: 'inherit',
  });
  const onSignal = (sig: NodeJS.Signals) => {
    child.kill(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await new Promise<number>((r) => child.once('exit', (code, sig) => r(code ?? (sig ? 130 : 2))));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    teardownNamespaces(ns);
  }
}

async function main(argv: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(argv);
  } catch (e) {
    if (!isKryptonError(e) || e.code !== 'INVALID_USAGE') throw e;
    if (e.message) process.stderr.write(`${e.message}\n`);
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const skipped: string[] = [];
  if (o.faults.includes('partition') && !o.inner) {
    const why = partitionsUnsupported();
    if (why) {
      skipped.push(`partition faults skipped: ${why}`);
      process.stderr.write(`torture: partition faults skipped: ${why}\n`);
      o.faults = o.faults.filter((f) => f !== 'partition');
    } else {
      return runInNamespaces(argv, o);
    }
  }
  const cmdline = `npm run torture -- --workload ${o.workloads.join(',')} --faults ${o.faults.join(',') || 'none'} --seconds ${o.seconds} --seed ${o.seed}`;
  const result = await runHere(o, skipped, cmdline);
  if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.ok ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`torture: ${(e as Error).stack ?? e}\n`);
      process.exit(2);
    },
  );
}
