/**
 * What a torture run reports: availability per fault from the clients' journal, the result as
 * printed and as JSON, and, for a run that found something, the folder a reader starts from:
 * result.json, history.json (every operation and fault window), comparison.json (every host's
 * retained history where they differ), explanation.txt (each violation with the operations
 * involved, readable) and the hosts' logs.
 */

import fs from 'node:fs';
import path from 'node:path';
import type { Op } from '../check/history.js';
import type { JournalEntry } from './client.js';
import type { ComparisonReport } from './compare.js';
import type { FaultWindow } from './nemesis.js';
import type { Options } from './run.js';
import type { WorkloadReport } from './workloads.js';

export interface Availability {
  fault: string;
  host: string;
  seconds: number;
  ops: number;
  ok: number;
  okRatio: number;
  convergedMs?: number;
  noticed?: boolean;
  note?: string;
  error?: string;
}

export function availability(entries: JournalEntry[], windows: FaultWindow[], t0: number): Availability[] {
  const rows: Availability[] = [];
  const inside = (e: JournalEntry, a: number, b: number) => e.call >= a && e.call < b;
  const clientEntries = entries.filter((e) => e.workload !== 'final');
  for (const w of windows) {
    const end = w.healed ?? performance.now();
    const es = clientEntries.filter((e) => inside(e, w.start, end));
    const ok = es.filter((e) => e.outcome === 'ok').length;
    rows.push({
      fault: `${w.kind} @${((w.start - t0) / 1000).toFixed(1)}s`,
      host: `host${w.host}`,
      seconds: Math.round((end - w.start) / 100) / 10,
      ops: es.length,
      ok,
      okRatio: es.length ? Math.round((ok / es.length) * 1000) / 1000 : 0,
      convergedMs: w.convergedMs,
      noticed: w.noticed,
      note: w.note,
      error: w.error,
    });
  }
  const outside = clientEntries.filter((e) => !windows.some((w) => inside(e, w.start, (w.healed ?? Infinity) + (w.convergedMs ?? 0))));
  const ok = outside.filter((e) => e.outcome === 'ok').length;
  rows.push({
    fault: 'no fault (incl. converged)',
    host: '-',
    seconds: 0,
    ops: outside.length,
    ok,
    okRatio: outside.length ? Math.round((ok / outside.length) * 1000) / 1000 : 0,
  });
  return rows;
}

export interface RunResult {
  seed: number;
  workloads: string[];
  faults: string[];
  skipped: string[];
  seconds: number;
  workloadResults: Record<
    string,
    {
      summary: Record<string, number>;
      keys: number;
      violatingKeys: string[];
      /** The register's keys whose violations the known failure modes explain. */
      knownBugKeys: string[];
      violations: { key: string; what: string }[];
    }
  >;
  availability: Availability[];
  comparison: { keys: number; versionsRead: number; differences: number; duplicates: number; unreadable: number; samples: string[] };
  finalConvergedMs?: number;
  /** Any violation, history difference or duplicate. */
  ok: boolean;
  savedTo?: string;
}

type RealVersions = WorkloadReport['realVersions'];

/** One op on one line; versions are the checked ones, with the host's own numbers where takeovers made them differ. */
function describeOp(o: Op | undefined, real?: RealVersions): string {
  if (!o) return '  (op not found)';
  const r = real?.[o.id];
  const asAnswered =
    r && (r[0] !== o.expectedVersion || r[1] !== o.result?.version)
      ? ` (host's versions: expected ${r[0] ?? '-'}, result ${r[1] ?? '-'})`
      : '';
  const t = (x: number | undefined) => (x === undefined ? '?' : `${x.toFixed(1)}ms`);
  const res = o.result ? ` -> ${o.result.value === null ? 'not found' : JSON.stringify(o.result.value)} @v${o.result.version}` : '';
  const exp = o.expectedVersion !== undefined ? ` if v${o.expectedVersion}` : '';
  const val = o.value !== undefined ? ` ${JSON.stringify(o.value)}` : '';
  return `  op ${o.id} process ${o.process}: ${o.kind}${val}${exp} [${t(o.call)} .. ${t(o.ret)}] ${o.outcome}${res}${asAnswered}`;
}

function explanation(reports: WorkloadReport[], cmp: ComparisonReport, cmdline: string): string {
  const lines = [`reproduce: ${cmdline}`, ''];
  for (const r of reports) {
    if (!r.violations.length) continue;
    lines.push(`== ${r.name}: ${r.violations.length} violation(s)`);
    for (const v of r.violations) {
      lines.push(`- ${v.key}: ${v.what}`);
      if (Array.isArray(v.evidence))
        for (const e of v.evidence) lines.push(r.name === 'register' ? describeOp(e as Op, r.realVersions) : `  ${JSON.stringify(e)}`);
      if (r.name === 'register') {
        // The key's whole history, so the minimal ops can be read in context.
        const all = (r.history as Op[]).filter((o) => o.key === v.key).sort((a, b) => a.call - b.call);
        lines.push(`  all ${all.length} ops on this key, by call time (versions without the takeovers' own, see compare.ts):`);
        for (const o of all) lines.push(`  ${describeOp(o, r.realVersions)}`);
      }
    }
    lines.push('');
  }
  const kb = reports.find((r) => r.knownBugs)?.knownBugs;
  const real = reports.find((r) => r.knownBugs)?.realVersions;
  if (kb?.refusedButApplied.length) {
    lines.push(
      `== register: answered 4xx, yet the value is in the hosts' history (${kb.refusedButApplied.length}; versions as the hosts answered)`,
    );
    for (const o of kb.refusedButApplied) lines.push(`- ${o.key}: ${describeOp(o, real).trim()}`);
    lines.push('');
  }
  if (kb?.readsOfDiscardedWrites.length) {
    lines.push(
      `== register: reads of a value no host holds after healing, a write later discarded (${kb.readsOfDiscardedWrites.length}; versions as the hosts answered)`,
    );
    for (const o of kb.readsOfDiscardedWrites) lines.push(`- ${o.key}: ${describeOp(o, real).trim()}`);
    lines.push('');
  }
  if (cmp.differences.length) {
    lines.push(`== hosts' histories differ after healing (${cmp.differences.length})`);
    for (const d of cmp.differences) lines.push(`- ${d.key}: ${d.what}`);
    lines.push('');
  }
  if (cmp.duplicates.length) {
    lines.push(`== duplicate applications (${cmp.duplicates.length}): one client value at several versions`);
    for (const d of cmp.duplicates) lines.push(`- ${d.key}: ${d.value} at versions ${d.versions.join(', ')}`);
    lines.push('');
  }
  if (Object.keys(cmp.histories).length) {
    lines.push('each key above as every host retains it (version/epoch/value):');
    for (const [key, hosts] of Object.entries(cmp.histories)) {
      lines.push(`  ${key}`);
      for (const [host, vs] of Object.entries(hosts)) lines.push(`    ${host}: ${vs.map(([v, e, x]) => `${v}/e${e}/${x}`).join(' ')}`);
    }
  }
  return lines.join('\n');
}

function table(rows: Availability[]): string {
  const head = ['fault', 'host', 'held s', 'ops', 'ok', 'ok ratio', 'others saw it down', 'converged after heal', 'note'];
  const body = rows.map((r) => [
    r.fault,
    r.host,
    String(r.seconds),
    String(r.ops),
    String(r.ok),
    r.okRatio.toFixed(3),
    r.noticed === undefined ? '' : r.noticed ? 'yes' : 'NO',
    r.fault.startsWith('no fault') ? '' : r.convergedMs !== undefined ? `${r.convergedMs} ms` : 'NOT CONVERGED',
    r.note ?? r.error ?? '',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ')).join('\n');
}

export function buildResult(
  o: Options,
  skipped: string[],
  reports: WorkloadReport[],
  cmp: ComparisonReport,
  avail: Availability[],
  converged: number | undefined,
): RunResult {
  const bad =
    reports.some((r) => r.violations.length) || cmp.differences.length > 0 || cmp.duplicates.length > 0 || converged === undefined;
  return {
    seed: o.seed,
    workloads: o.workloads,
    faults: o.faults,
    skipped,
    seconds: o.seconds,
    workloadResults: Object.fromEntries(
      reports.map((r) => [
        r.name,
        {
          summary: r.summary,
          keys: r.keys.length,
          violatingKeys: r.verdicts.filter((v) => v.result === 'violation').map((v) => v.key),
          knownBugKeys: r.knownBugs?.keys ?? [],
          violations: r.violations.map((v) => ({ key: v.key, what: v.what })),
        },
      ]),
    ),
    availability: avail,
    comparison: {
      keys: cmp.keys,
      versionsRead: cmp.versionsRead,
      differences: cmp.differences.length,
      duplicates: cmp.duplicates.length,
      unreadable: cmp.unreadable.length,
      samples: [
        ...cmp.differences.slice(0, 5).map((d) => `${d.key}: ${d.what}`),
        ...cmp.duplicates.slice(0, 5).map((d) => `${d.key}: duplicate ${d.value} at versions ${d.versions.join(',')}`),
      ],
    },
    finalConvergedMs: converged === undefined ? undefined : Math.round(converged),
    ok: !bad,
  };
}

/** Words on lines of at most 140 columns, indented. */
function wrap(words: string[]): string[] {
  const lines: string[] = [];
  let line = ' ';
  for (const w of words) {
    if (line.length + w.length + 1 > 140) {
      lines.push(line);
      line = ' ';
    }
    line += ` ${w}`;
  }
  if (line.trim()) lines.push(line);
  return lines;
}

/** The run as a person reads it on the terminal. */
export function printable(result: RunResult, reports: WorkloadReport[], cmp: ComparisonReport, avail: Availability[]): string {
  const out: string[] = [];
  for (const r of reports) {
    const counts = { ok: 0, violation: 0, unknown: 0 };
    for (const v of r.verdicts) counts[v.result]++;
    out.push(
      `\n${r.name}: ${Object.entries(r.summary)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    out.push(`  keys ${r.verdicts.length}: ok ${counts.ok}, violation ${counts.violation}, unknown ${counts.unknown}`);
    out.push(...wrap(r.verdicts.map((v) => `${v.key.slice(v.key.lastIndexOf('-', v.key.lastIndexOf('-') - 1) + 1)}:${v.result}`)));
    // The first problem in full (the operations involved), the others one line each: explanation.txt has them all.
    const bad = r.verdicts.filter((v) => v.result !== 'ok');
    bad.forEach((v, i) => {
      const text = (v.explanation ?? '').split('\n');
      const shown = i === 0 ? text.slice(0, 40) : [text[0]!.slice(0, 200)];
      out.push(`  ${v.result} ${v.key}:`, ...shown.map((l) => `    ${l}`));
    });
  }
  out.push(
    `\nhistories after healing: ${cmp.keys} keys, ${cmp.versionsRead} versions read over all hosts, ${cmp.differences.length} differences, ` +
      `${cmp.duplicates.length} duplicate applications, ${cmp.unreadable.length} unreadable`,
  );
  for (const s of result.comparison.samples) out.push(`  ${s}`);
  out.push(`\navailability (client operations called during each fault):\n${table(avail)}`);
  if (result.skipped.length) out.push(`\nskipped: ${result.skipped.join('; ')}`);
  return out.join('\n');
}

/** Writes the run's folder under `outDir`; answers its path. */
export function save(
  outDir: string,
  o: Options,
  result: RunResult,
  reports: WorkloadReport[],
  cmp: ComparisonReport,
  windows: FaultWindow[],
  logDir: string,
  cmdline: string,
): string {
  const dir = path.join(outDir, `${o.workloads.join('+')}-seed${o.seed}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify({ ...result, savedTo: dir }, null, 2));
  // Operation and fault times are the runner's performance.now(): timeOriginMs + t is the wall
  // clock the hosts' log lines carry in `time`, so a history lines up with the logs beside it.
  const history = {
    timeOriginMs: performance.timeOrigin,
    workloads: Object.fromEntries(reports.map((r) => [r.name, r.history])),
    faults: windows,
  };
  fs.writeFileSync(path.join(dir, 'history.json'), JSON.stringify(history));
  fs.writeFileSync(path.join(dir, 'comparison.json'), JSON.stringify(cmp, null, 2));
  fs.writeFileSync(path.join(dir, 'explanation.txt'), explanation(reports, cmp, cmdline));
  fs.cpSync(logDir, path.join(dir, 'logs'), { recursive: true });
  return dir;
}
