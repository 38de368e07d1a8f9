/**
 * A client's watch survives the death of the host serving it: 3 real hosts, a document watched
 * through krypton/client while the same client PATCHes it, the host whose stream the watch reads
 * SIGKILLed mid-stream. The watch carries on from another host with Last-Event-ID and sees every
 * version once, in order, with no gap; the writes go on too (retried under their keys while the
 * group routes around the dead host), and each is applied once. If the dead host owned the
 * document, the new owner's takeover adds one version holding the same state in a new epoch.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KryptonClient } from '../../client/index.js';
import { freePorts } from '../../tools/bench/etcd.js';
import { Client } from '../support/http.js';
import { tempDir } from '../support/hosts.js';
import { startHostProcess, type HostProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const peersOf = (ports: number[]) => `--peerNodes=${ports.map((p) => `http://127.0.0.1:${p}`).join(',')}`;

async function groupReady(clients: Client[]): Promise<boolean> {
  for (const c of clients) {
    const g = await c.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default');
    if (Object.values(g.body?.nodes ?? {}).filter((n) => n.status === 'AVAILABLE').length < clients.length) return false;
    if ((await c.get('/core/node-groups/default/available')).status !== 200) return false;
  }
  return true;
}

interface Example {
  name?: string;
  counter?: number;
}

test('a watch whose host is killed mid-stream resumes on another host without a gap', async () => {
  const ports = (await freePorts(3)).filter((p) => p < 8000 || p > 8002);
  assert.is(ports.length, 3, 'three free ports outside 8000-8002');
  const dir = await tempDir();
  const procs: HostProcess[] = [];
  const probes: Client[] = [];
  let client: KryptonClient | undefined;
  try {
    for (const p of ports) procs.push(await startHostProcess([`--port=${p}`, `--sandbox=${dir.path}`, `--id=host${p}`, peersOf(ports)]));
    for (const p of ports) probes.push(new Client(`http://127.0.0.1:${p}`));
    await waitFor('group available on every host', () => groupReady(probes), 20_000);

    client = await KryptonClient.connect({ hosts: ports.map((p) => `http://127.0.0.1:${p}`), deadlineMs: 30_000 });
    const doc = client.document<Example>('/core/examples/watched');
    await client.factory<Example>('/core/examples').create({ documentSelfLink: 'watched', name: 'w', counter: 0 });

    const watch = doc.watch();
    const seen: { type: string; version?: number; counter?: number; epoch?: number }[] = [];
    const LAST = 30;
    const reading = (async () => {
      for await (const ev of watch) {
        if (ev.type !== 'update') {
          seen.push({ type: ev.type });
          continue;
        }
        const s = ev.state;
        seen.push({ type: ev.type, version: s.documentVersion, counter: s.counter ?? -1, epoch: s.documentEpoch ?? 0 });
        if ((s.counter ?? 0) >= LAST) break;
      }
    })();
    await waitFor('the watch to see the create', () => seen.length > 0);
    const first = watch.host!;

    let killed: HostProcess | undefined;
    for (let i = 1; i <= LAST; i++) {
      await doc.patch({ counter: i });
      if (i === 10) {
        killed = procs[ports.indexOf(Number(new URL(first).port))]!;
        await killed.kill('SIGKILL');
      }
    }
    await reading;
    assert.ok(killed, 'a host was killed');
    assert.is.not(watch.host, first, 'the watch moved to another host');
    const latest = await doc.get();
    assert.ok(
      seen.every((e, i) => e.type === 'update' && e.version === i),
      `every version once, in order, no gap: ${JSON.stringify(seen)}`,
    );
    assert.is(seen.length, latest.documentVersion + 1, 'up to the latest version');
    assert.equal(
      [...new Set(seen.map((e) => e.counter))],
      Array.from({ length: LAST + 1 }, (_, i) => i),
      'every PATCH seen, in order',
    );
    // A counter seen twice is the takeover's copy: same state, next version, a higher epoch.
    const repeats = seen.filter((e, i) => i > 0 && e.counter === seen[i - 1]!.counter);
    assert.ok(repeats.length <= 1, `at most the one takeover copy: ${JSON.stringify(repeats)}`);
    for (const r of repeats) assert.ok(r.epoch! > seen[r.version! - 1]!.epoch!, 'the copy is a takeover (new epoch)');
    assert.is(latest.counter, LAST, 'each PATCH applied once');
  } finally {
    await client?.close();
    for (const c of probes) await c.close();
    for (const p of procs) await p.kill();
    await dir.remove();
  }
});

test.run();
