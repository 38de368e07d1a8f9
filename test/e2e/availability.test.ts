/**
 * Availability through membership changes, with real processes: 3 hosts, quorum 2, one writer per
 * named document PATCHing unique tags into it, and three faults: `kill -9` of a host, a rolling
 * restart (SIGTERM, start again, wait until it serves, next host), and a host paused with SIGSTOP
 * for 5 s then resumed. For each it measures, from the fault, the group gap (the longest time in
 * which no write at all was acknowledged) and the moved-link gap (the longest time a document the
 * faulty host owned went without an acknowledged write), asserts both under 3x the goals of
 * issue 17 (0.5 s and 1.5 s), and checks that every acknowledged tag is on every host once the
 * faulty host is back and caught up. The figures are printed (docs/benchmarks.md quotes them).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePorts } from '../../tools/bench/etcd.js';
import { Client } from '../support/http.js';
import { tempDir } from '../support/hosts.js';
import { startHostProcess, type HostProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const GROUP_GAP_MAX_MS = 1500;
const MOVED_GAP_MAX_MS = 4500;
const LINKS = 12;
/**
 * Each writer's pause between writes: load pacing, not settling. Every PATCH adds a tag, so a
 * document's versions grow with its writes and the log with their square; unpaced writers made
 * the third restart's replay outlast the start deadline. It also bounds the gaps' resolution.
 */
const PACE_MS = 40;

interface Ack {
  link: string;
  atMs: number;
  tag: string;
}

class Cluster {
  procs: (HostProcess | undefined)[] = [];
  clients: Client[] = [];
  ids: string[] = [];

  constructor(
    readonly ports: number[],
    readonly dir: string,
  ) {
    this.ids = ports.map((p) => `host${p}`);
    this.clients = ports.map((p) => new Client(`http://127.0.0.1:${p}`));
  }

  async start(i: number): Promise<void> {
    const peers = `--peerNodes=${this.ports.map((p) => `http://127.0.0.1:${p}`).join(',')}`;
    this.procs[i] = await startHostProcess([`--port=${this.ports[i]}`, `--sandbox=${this.dir}`, `--id=${this.ids[i]}`, peers]);
  }

  /** Every host lists all three AVAILABLE and says the group is available: what a user waits for. */
  async serving(): Promise<boolean> {
    for (const c of this.clients) {
      const g = await c.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default');
      if (Object.values(g.body?.nodes ?? {}).filter((n) => n.status === 'AVAILABLE').length < 3) return false;
      if ((await c.get('/core/node-groups/default/available')).status !== 200) return false;
    }
    return true;
  }

  async ownerOf(link: string): Promise<string> {
    const r = await this.clients[0]!.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key: link });
    return r.body.ownerNodeId;
  }

  async close(): Promise<void> {
    for (const p of this.procs) await p?.kill('SIGKILL');
    for (const c of this.clients) await c.close();
  }
}

/** One writer per link, each PATCHing a new unique tag as soon as the previous answer came. */
class Load {
  readonly acks: Ack[] = [];
  /** Hosts writers may send through; a writer skips the others. */
  up: Set<number>;
  private stopped = false;
  private running: Promise<void>[] = [];

  constructor(
    private readonly cluster: Cluster,
    readonly links: string[],
    up: number[],
    private readonly prefix = 'w',
  ) {
    this.up = new Set(up);
  }

  start(): void {
    this.running = this.links.map((link, w) => this.writer(link, w));
  }

  private async writer(link: string, w: number): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      const entries = [...this.up];
      const entry = entries[(w + i) % entries.length];
      if (entry === undefined) {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      const tag = `${this.prefix}${w}-${i}`;
      try {
        const r = await this.cluster.clients[entry]!.patch(link, { tags: [tag] });
        if (r.status === 200) this.acks.push({ link, atMs: Date.now(), tag });
        await new Promise((done) => setTimeout(done, PACE_MS));
      } catch {
        // A host that is killed or stopping cuts its connections: the writer goes on, as a client would retry.
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }

  /** The longest time without any acknowledged write in [from, to], and for `moved` links each. */
  gaps(from: number, to: number, moved: readonly string[]): { group: number; moved: number } {
    const longest = (times: number[]) => {
      let prev = from;
      let max = 0;
      for (const t of times.filter((x) => x > from && x <= to).sort((a, b) => a - b)) {
        max = Math.max(max, t - prev);
        prev = t;
      }
      return Math.max(max, to - prev);
    };
    const group = longest(this.acks.map((a) => a.atMs));
    let movedGap = 0;
    for (const l of moved) movedGap = Math.max(movedGap, longest(this.acks.filter((a) => a.link === l).map((a) => a.atMs)));
    return { group, moved: movedGap };
  }
}

async function withCluster(fn: (c: Cluster, load: Load, stopLater: (l: Load) => void) => Promise<void>): Promise<void> {
  const ports = (await freePorts(3)).filter((p) => p < 8000 || p > 8002);
  assert.is(ports.length, 3, 'three free ports outside 8000-8002');
  const dir = await tempDir();
  const c = new Cluster(ports, dir.path);
  const links = Array.from({ length: LINKS }, (_, i) => `/core/examples/avail-${i}`);
  const load = new Load(c, links, [0, 1, 2]);
  const others: Load[] = [];
  try {
    for (let i = 0; i < 3; i++) await c.start(i);
    await waitFor('group serving on every host', () => c.serving(), 20_000);
    for (const [i, link] of links.entries()) {
      const r = await c.clients[i % 3]!.post('/core/examples', { documentSelfLink: link, name: link, tags: [] });
      assert.is(r.status, 200, `create ${link}: ${r.text}`);
    }
    await fn(c, load, (l) => others.push(l));
  } finally {
    for (const p of c.procs) p?.child.kill('SIGCONT');
    await Promise.all([load, ...others].map((l) => l.stop()));
    await c.close();
    await dir.remove();
  }
}

/** Every acknowledged tag is in every host's own copy of its document, once they have caught up. */
async function nothingLost(c: Cluster, load: Load, ...more: Load[]): Promise<void> {
  await Promise.all([load, ...more].map((l) => l.stop()));
  const want = new Map<string, Set<string>>();
  for (const a of [load, ...more].flatMap((l) => l.acks)) {
    const s = want.get(a.link) ?? new Set();
    s.add(a.tag);
    want.set(a.link, s);
  }
  for (const [hi, client] of c.clients.entries()) {
    for (const link of load.links) {
      await waitFor(
        `${c.ids[hi]} holds every acknowledged tag of ${link}`,
        async () => {
          const r = await client.send<{ tags?: string[] }>('GET', link, undefined, { pragma: 'xn-no-fwd' });
          const have = new Set(r.body?.tags ?? []);
          const missing = [...(want.get(link) ?? [])].filter((t) => !have.has(t));
          return missing.length === 0 ? true : (`missing ${missing.length}: ${missing.slice(0, 5).join(',')}` as unknown as false);
        },
        15_000,
      ).catch((e: Error) => assert.unreachable(e.message));
    }
  }
}

function report(what: string, g: { group: number; moved: number }): void {
  console.log(`availability ${what}: group gap ${g.group} ms, moved-link gap ${g.moved} ms`);
  assert.ok(g.group < GROUP_GAP_MAX_MS, `${what}: group gap ${g.group} ms`);
  assert.ok(g.moved < MOVED_GAP_MAX_MS, `${what}: moved-link gap ${g.moved} ms`);
}

async function movedLinks(c: Cluster, load: Load, victim: number): Promise<string[]> {
  const out: string[] = [];
  for (const l of load.links) if ((await c.ownerOf(l)) === c.ids[victim]) out.push(l);
  return out;
}

const WINDOW_MS = 3000;

test('kill -9 of one of three hosts: writes through the survivors go on; nothing acknowledged is lost', async () => {
  await withCluster(async (c, load) => {
    const victim = 2;
    const moved = await movedLinks(c, load, victim);
    load.up = new Set([0, 1]);
    load.start();
    await waitFor('writes acknowledged', () => load.acks.length >= 100, 20_000);
    const fault = Date.now();
    await c.procs[victim]!.kill('SIGKILL');
    await waitFor('the window after the kill', () => Date.now() >= fault + WINDOW_MS, WINDOW_MS + 1000);
    report('kill -9', load.gaps(fault, fault + WINDOW_MS, moved));
    await c.start(victim);
    await waitFor('group serving again', () => c.serving(), 20_000);
    await nothingLost(c, load);
  });
});

test('rolling restart (SIGTERM, start, wait until it serves, next): writes go on; nothing acknowledged is lost', async () => {
  await withCluster(async (c, load) => {
    load.start();
    await waitFor('writes acknowledged', () => load.acks.length >= 100, 20_000);
    for (let victim = 0; victim < 3; victim++) {
      const moved = await movedLinks(c, load, victim);
      load.up.delete(victim);
      const fault = Date.now();
      assert.is(await c.procs[victim]!.kill('SIGTERM'), 0, 'a clean stop');
      const restarted = Date.now();
      await c.start(victim);
      await waitFor('group serving again', () => c.serving(), 20_000);
      load.up.add(victim);
      // Its links come back to it: the window covers that move too.
      const end = Date.now() + 1500;
      await waitFor('the window after the restart', () => Date.now() >= end, 3000);
      const stopPart = load.gaps(fault, restarted, moved);
      const startPart = load.gaps(restarted, end, moved);
      console.log(`  stop ${stopPart.group}/${stopPart.moved} ms, start ${startPart.group}/${startPart.moved} ms`);
      report(`rolling restart of host ${victim}`, load.gaps(fault, end, moved));
    }
    await nothingLost(c, load);
  });
});

test('SIGSTOP for 5 s then SIGCONT: the others go on; the paused host acknowledges nothing that is lost', async () => {
  await withCluster(async (c, load, stopLater) => {
    const victim = 2;
    const moved = await movedLinks(c, load, victim);
    load.up = new Set([0, 1]);
    // More writers on the same documents through the paused host: what it takes late must be refused or kept.
    const late = new Load(c, load.links, [victim], 'p');
    stopLater(late);
    load.start();
    late.start();
    await waitFor('writes acknowledged', () => load.acks.length >= 100, 20_000);
    const fault = Date.now();
    c.procs[victim]!.child.kill('SIGSTOP');
    await waitFor('5 s paused', () => Date.now() >= fault + 5000, 6000);
    c.procs[victim]!.child.kill('SIGCONT');
    report('SIGSTOP 5 s', load.gaps(fault, fault + 5000, moved));
    await waitFor('group serving again', () => c.serving(), 20_000);
    const end = Date.now() + 1500;
    await waitFor('the window after SIGCONT', () => Date.now() >= end, 3000);
    report('after SIGCONT', load.gaps(fault + 5000, end, moved));
    await nothingLost(c, load, late);
  });
});

test('quorum 3, a replica killed just before a write: the write waits (no 500) and completes once the quorum is lowered to 2', async () => {
  await withCluster(async (c) => {
    const quorum = (q: number) => ({
      kind: 'com:vmware:xenon:services:common:NodeGroupService:UpdateQuorumRequest',
      membershipQuorum: q,
      isGroupUpdate: true,
    });
    assert.is((await c.clients[0]!.patch('/core/node-groups/default', quorum(3))).status, 200);
    await c.procs[2]!.kill('SIGKILL');
    // Sent at once: the owner may not have noticed yet, and its write to the dead replica fails.
    const started = Date.now();
    let answered: string | undefined;
    const write = c.clients[0]!.post('/core/examples', { documentSelfLink: '/core/examples/q3', name: 'q3' });
    // A rejected write is reported by the `await write` below; this branch only records an answer.
    write.then(
      (r) => (answered = `${r.status} ${r.text}`),
      () => (answered = 'rejected'),
    );
    await waitFor('the dead host UNAVAILABLE', async () => {
      const g = await c.clients[0]!.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default');
      return g.body.nodes[c.ids[2]!]?.status === 'UNAVAILABLE';
    });
    // Once the dead host is written off the quorum of 3 cannot be met: still unanswered, not failed.
    assert.is(answered, undefined, 'the write waits for the quorum, it is not failed');
    assert.is((await c.clients[0]!.patch('/core/node-groups/default', quorum(2))).status, 200);
    const r = await write;
    assert.is(r.status, 200, r.text);
    console.log(`availability quorum 3 -> 2 after kill -9: write answered 200 after ${Date.now() - started} ms`);
    for (const i of [0, 1])
      assert.is((await c.clients[i]!.send('GET', '/core/examples/q3', undefined, { pragma: 'xn-no-fwd' })).status, 200);
  });
});

test.run();
