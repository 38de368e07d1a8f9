/**
 * Availability through faults, Krypton against etcd in the same run (issue 17's bench rows): the
 * same writers (one per key, each writing a new value as soon as the previous answer came, after
 * a short pause) on 3 Krypton hosts at quorum 2 and on the 3-member etcd cluster of etcd.ts, and
 * the same faults: `kill -9`, a graceful stop (SIGTERM) and a rolling restart of every member.
 * For each fault, two figures measured from the fault: the group gap (the longest time in which
 * no write at all was acknowledged) and the moved-link gap (the longest time a key whose owner
 * was the faulty member went without an acknowledged write: on Krypton the links the host owned,
 * on etcd every key when the faulty member was the leader, none when it was a follower).
 *
 * Writers send through the members that are up (a killed or stopping member is left out from the
 * fault on, as a client with several endpoints would), so what is measured is the store's own
 * pause, not a client's connection timeout. Losses are not checked here: test/e2e/availability.ts
 * checks every acknowledged write on every host after the same faults. Runnable directly:
 * `node --import tsx tools/bench/availability.ts`; the last line of stdout is the JSON.
 */

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type EtcdMembers, sleep, startEtcd } from './etcd.js';
import { Group, type Host } from './replication.js';

const WRITERS = 12;
/** Each writer's pause between writes: it bounds the figures' resolution and keeps the load light. */
const PACE_MS = 10;
const WRITE_TIMEOUT_MS = 10_000;
/** How long after a kill or stop the gaps are measured; a restart is measured until this long after it serves. */
const WINDOW_MS = 3000;
const log = (s: string) => process.stderr.write(`[availability] ${s}\n`);

export interface Gaps {
  groupMs: number;
  /** undefined when no key moved (an etcd follower). */
  movedMs?: number;
}

export interface AvailabilityResult {
  writers: number;
  paceMs: number;
  windowMs: number;
  krypton: { kill: Gaps; stop: Gaps; restart: Gaps[] };
  etcd: { version: string; killLeader: Gaps; killFollower: Gaps; stopLeader: Gaps; restart: Gaps[] } | { skipped: string };
}

/** Writers over a set of members; `send` writes one value through one member and says whether it was acknowledged. */
class Writers {
  readonly acks: { key: number; atMs: number }[] = [];
  readonly up: Set<number>;
  private stopped = false;
  private running: Promise<void>[] = [];

  constructor(
    members: number,
    private readonly send: (member: number, key: number, value: string) => Promise<boolean>,
  ) {
    this.up = new Set(Array.from({ length: members }, (_, i) => i));
  }

  start(): void {
    this.running = Array.from({ length: WRITERS }, (_, k) => this.writer(k));
  }

  private async writer(k: number): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      const entries = [...this.up];
      const m = entries[(k + i) % entries.length];
      if (m === undefined) {
        await sleep(5);
        continue;
      }
      let ok = false;
      try {
        ok = await this.send(m, k, `w${k}-${i}`);
      } catch {
        // A member that is killed or stopping cuts its connections: the writer goes on, as a client would retry.
      }
      if (ok) this.acks.push({ key: k, atMs: performance.now() });
      await sleep(ok ? PACE_MS : 5);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }

  /** The longest time without an acknowledged write in [from, to]: of any key, and of each of `moved`. */
  gaps(from: number, to: number, moved: readonly number[] | undefined): Gaps {
    const longest = (times: number[]) => {
      let prev = from;
      let max = 0;
      for (const t of times.filter((x) => x > from && x <= to).sort((a, b) => a - b)) {
        max = Math.max(max, t - prev);
        prev = t;
      }
      return Math.round(Math.max(max, to - prev));
    };
    const groupMs = longest(this.acks.map((a) => a.atMs));
    if (!moved || moved.length === 0) return { groupMs };
    return { groupMs, movedMs: Math.max(...moved.map((k) => longest(this.acks.filter((a) => a.key === k).map((a) => a.atMs)))) };
  }
}

async function waitUntil(ms: number): Promise<void> {
  while (performance.now() < ms) await sleep(Math.min(50, ms - performance.now()));
}

const linkOf = (k: number) => `/core/examples/avail-${k}`;

async function kryptonWrite(h: Host, k: number, value: string): Promise<boolean> {
  const r = await fetch(`${h.url}${linkOf(k)}`, {
    method: 'PUT',
    body: JSON.stringify({ name: value }),
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(WRITE_TIMEOUT_MS),
  });
  await r.arrayBuffer();
  return r.status === 200;
}

async function ownedBy(g: Group, id: string): Promise<number[]> {
  const out: number[] = [];
  const live = g.hosts.find((h) => h.id !== id)!;
  for (let k = 0; k < WRITERS; k++) {
    const r = await fetch(`${live.url}/core/node-selectors/default`, {
      method: 'POST',
      body: JSON.stringify({ key: linkOf(k) }),
      headers: { 'content-type': 'application/json' },
    });
    if (((await r.json()) as { ownerNodeId?: string }).ownerNodeId === id) out.push(k);
  }
  return out;
}

async function benchKrypton(): Promise<AvailabilityResult['krypton']> {
  const g = await Group.start(3);
  const w = new Writers(3, (m, k, v) => kryptonWrite(g.hosts[m]!, k, v));
  try {
    for (let k = 0; k < WRITERS; k++) {
      const r = await fetch(`${g.hosts[k % 3]!.url}/core/examples`, {
        method: 'POST',
        body: JSON.stringify({ documentSelfLink: linkOf(k), name: 'start' }),
        headers: { 'content-type': 'application/json' },
      });
      if (r.status !== 200) throw new Error(`create ${linkOf(k)}: ${r.status} ${await r.text()}`);
    }
    w.start();
    await sleep(1000);
    const serving = () => g.waitFor(g.hosts, 'all 3 serving', () => g.converged(g.hosts, 3), 60_000);
    const restartAt = async (i: number) => {
      const h = g.spawn(g.ports[i]!);
      g.replace(g.hosts[i]!, h);
      await serving();
      w.up.add(i);
    };
    const fault = async (what: string, i: number, act: (h: Host) => Promise<void>): Promise<Gaps> => {
      const moved = await ownedBy(g, g.hosts[i]!.id);
      w.up.delete(i);
      const t0 = performance.now();
      await act(g.hosts[i]!);
      await waitUntil(t0 + WINDOW_MS);
      const gaps = w.gaps(t0, t0 + WINDOW_MS, moved);
      log(
        `krypton ${what} of ${g.hosts[i]!.id} (owned ${moved.length} of ${WRITERS} keys): group gap ${gaps.groupMs} ms, moved-link gap ${gaps.movedMs ?? '-'} ms`,
      );
      await restartAt(i);
      return gaps;
    };
    const kill = await fault('kill -9', 2, async (h) => {
      h.proc.kill('SIGKILL');
    });
    const stop = await fault('SIGTERM', 2, (h) => g.stop(h));
    const restart: Gaps[] = [];
    for (let i = 0; i < 3; i++) {
      const h = g.hosts[i]!;
      const moved = await ownedBy(g, h.id);
      w.up.delete(i);
      const t0 = performance.now();
      await g.stop(h);
      await restartAt(i);
      const end = performance.now() + WINDOW_MS / 2;
      await waitUntil(end);
      const gaps = w.gaps(t0, end, moved);
      log(
        `krypton rolling restart of ${h.id}, serving after ${Math.round(end - WINDOW_MS / 2 - t0)} ms: group gap ${gaps.groupMs} ms, moved-link gap ${gaps.movedMs ?? '-'} ms`,
      );
      restart.push(gaps);
    }
    return { kill, stop, restart };
  } finally {
    await w.stop();
    await g.close();
  }
}

async function benchEtcdFaults(): Promise<AvailabilityResult['etcd']> {
  const c = await startEtcd();
  if ('skipped' in c) return c;
  const m: EtcdMembers = c.members;
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const w = new Writers(m.count, async (i, k, v) => {
    const r = await fetch(`${c.clientUrls[i]}${m.gateway}`, {
      method: 'POST',
      body: JSON.stringify({ key: b64(`avail/${k}`), value: b64(v) }),
      headers: { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(WRITE_TIMEOUT_MS),
    });
    // The gateway answers 200 with an error body when the put failed (no leader, leader changed).
    const text = await r.text();
    return r.status === 200 && text.includes('"header"') && !text.includes('"error"');
  });
  const all = Array.from({ length: WRITERS }, (_, k) => k);
  const leader = async () => {
    const l = await m.leader();
    if (l === undefined) throw new Error('etcd: no member reports a leader');
    return l;
  };
  const back = async (i: number) => {
    m.start(i);
    const why = await m.waitHealthy(60_000);
    if (why) throw new Error(why);
    w.up.add(i);
  };
  try {
    w.start();
    await sleep(1000);
    const fault = async (what: string, pick: 'leader' | 'follower', signal: NodeJS.Signals): Promise<Gaps> => {
      const l = await leader();
      const i = pick === 'leader' ? l : (l + 1) % m.count;
      w.up.delete(i);
      const t0 = performance.now();
      await m.stop(i, signal);
      await waitUntil(t0 + WINDOW_MS);
      const gaps = w.gaps(t0, t0 + WINDOW_MS, pick === 'leader' ? all : undefined);
      log(`etcd ${what} of the ${pick}: group gap ${gaps.groupMs} ms, moved-link gap ${gaps.movedMs ?? '-'} ms`);
      await back(i);
      return gaps;
    };
    const killLeader = await fault('kill -9', 'leader', 'SIGKILL');
    const killFollower = await fault('kill -9', 'follower', 'SIGKILL');
    const stopLeader = await fault('SIGTERM', 'leader', 'SIGTERM');
    const restart: Gaps[] = [];
    for (let i = 0; i < m.count; i++) {
      const wasLeader = (await leader()) === i;
      w.up.delete(i);
      const t0 = performance.now();
      await m.stop(i, 'SIGTERM');
      await back(i);
      const end = performance.now() + WINDOW_MS / 2;
      await waitUntil(end);
      const gaps = w.gaps(t0, end, wasLeader ? all : undefined);
      log(
        `etcd rolling restart of member ${i}${wasLeader ? ' (leader)' : ''}: group gap ${gaps.groupMs} ms, moved-link gap ${gaps.movedMs ?? '-'} ms`,
      );
      restart.push(gaps);
    }
    return { version: c.info.version, killLeader, killFollower, stopLeader, restart };
  } finally {
    await w.stop();
    await c.close();
  }
}

export async function benchAvailability(): Promise<AvailabilityResult> {
  const krypton = await benchKrypton();
  const etcd = await benchEtcdFaults();
  return { writers: WRITERS, paceMs: PACE_MS, windowMs: WINDOW_MS, krypton, etcd };
}

/** The worst step of a rolling restart: the largest gap of each kind over its steps. */
function worst(steps: Gaps[]): Gaps {
  const moved = steps.map((s) => s.movedMs).filter((x): x is number => x !== undefined);
  return { groupMs: Math.max(...steps.map((s) => s.groupMs)), ...(moved.length ? { movedMs: Math.max(...moved) } : {}) };
}

export function availabilityRows(r: AvailabilityResult): [string, string, string, string][] {
  const show = (g: Gaps) => `group gap ${g.groupMs} ms, moved-link gap ${g.movedMs === undefined ? '-' : `${g.movedMs} ms`}`;
  const e = 'skipped' in r.etcd ? undefined : r.etcd;
  const vs = (k: Gaps, b: Gaps | undefined) => {
    if (!b) return '';
    const ahead = k.groupMs <= b.groupMs && (b.movedMs === undefined || (k.movedMs ?? 0) <= b.movedMs);
    return ahead ? 'krypton ahead' : 'etcd ahead';
  };
  const of = `${r.writers} writers, 3 hosts`;
  return [
    [
      `kill -9 of a host, ${of}`,
      show(r.krypton.kill),
      e ? `etcd ${e.version} leader: ${show(e.killLeader)}` : 'etcd skipped',
      vs(r.krypton.kill, e?.killLeader),
    ],
    ['same, etcd follower', show(r.krypton.kill), e ? `etcd follower: ${show(e.killFollower)}` : '', vs(r.krypton.kill, e?.killFollower)],
    [
      'graceful stop (SIGTERM) of a host',
      show(r.krypton.stop),
      e ? `etcd leader: ${show(e.stopLeader)}` : '',
      vs(r.krypton.stop, e?.stopLeader),
    ],
    [
      'rolling restart, worst step',
      show(worst(r.krypton.restart)),
      e ? `etcd: ${show(worst(e.restart))}` : '',
      vs(worst(r.krypton.restart), e ? worst(e.restart) : undefined),
    ],
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.log(JSON.stringify(await benchAvailability()));
}
