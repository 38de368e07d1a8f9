/**
 * Catch-up in process: a host stopped while its peers take updates and new documents is
 * restarted on the same sandbox and port, and synchronization brings every host to the same
 * documents (the restarted host's owned links are taken over with a new epoch).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { selectNodes } from '../../lib/hash.js';
import { startHost, tempDir, type TestHost } from '../support/hosts.js';
import { metricValue, parsePrometheusText } from '../support/prom-text.js';
import { waitFor } from '../support/wait.js';

type Docs = Record<string, { documentVersion: number; documentEpoch: number; counter?: number }>;

test('a restarted host receives every update and document it missed', async () => {
  const dirs = await Promise.all([0, 1, 2].map(() => tempDir()));
  const hosts: TestHost[] = [];
  // Fixed ports: a restarted host must come back at the address its peers know (and <sandbox>/<port>).
  const base = 23400 + Math.floor(Math.random() * 500) * 3;
  try {
    for (let i = 0; i < 3; i++) hosts.push(await startHost({ id: `h${i}`, port: base + i }, dirs[i]!.path));
    for (const h of hosts.slice(1))
      await h.client.post('/core/node-groups/default', {
        kind: KINDS.joinPeerRequest,
        memberGroupReference: `${hosts[0]!.host.uri}/core/node-groups/default`,
      });
    const ready = async () => {
      for (const h of hosts) {
        if ((await h.client.get('/core/node-groups/default/available')).status !== 200) return false;
        const g = await h.client.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default');
        if (Object.values(g.body.nodes).filter((n) => n.status === 'AVAILABLE').length !== 3) return false;
      }
      return true;
    };
    await waitFor('group ready', ready, 20_000);
    for (let i = 0; i < 20; i++)
      assert.is((await hosts[i % 3]!.client.post('/core/examples', { documentSelfLink: `d${i}`, name: `d${i}` })).status, 200);

    await hosts[2]!.close();
    await waitFor(
      'h2 UNAVAILABLE',
      async () =>
        (await hosts[0]!.client.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default')).body.nodes.h2!.status ===
        'UNAVAILABLE',
      10_000,
    );
    for (let i = 0; i < 20; i++) assert.is((await hosts[i % 2]!.client.patch(`/core/examples/d${i}`, { counter: 100 + i })).status, 200);
    for (let i = 20; i < 25; i++)
      assert.is((await hosts[0]!.client.post('/core/examples', { documentSelfLink: `d${i}`, name: `d${i}` })).status, 200);
    assert.is((await hosts[1]!.client.delete('/core/examples/d3')).status, 200);

    hosts[2] = await startHost({ id: 'h2', port: base + 2 }, dirs[2]!.path);
    let views: Docs[] = [];
    await waitFor(
      'every host holds the same documents',
      async () => {
        views = await Promise.all(
          hosts.map(async (h) => (await h.client.get<{ documents: Docs }>('/core/examples?expand')).body.documents),
        );
        const canon = views.map((v) =>
          JSON.stringify(
            Object.keys(v)
              .sort()
              .map((k) => v[k]),
          ),
        );
        return canon[0] === canon[1] && canon[1] === canon[2];
      },
      30_000,
    );
    assert.is(Object.keys(views[2]!).length, 24);
    // What an operator's Prometheus sees of it: the copies the live hosts pushed to the restarted one.
    const totals = await Promise.all(hosts.map((h) => h.client.get('/metrics').then((r) => parsePrometheusText(r.text))));
    assert.ok(totals.reduce((n, m) => n + metricValue(m, 'krypton_synch_pushed_total'), 0) > 0, 'pushes counted in /metrics');
    assert.is(views[2]!['/core/examples/d7']!.counter, 107);
    assert.is((await hosts[2]!.client.send('GET', '/core/examples/d3', undefined, { pragma: 'xn-no-fwd' })).status, 404);
  } finally {
    for (const h of hosts) await h.close();
    for (const d of dirs) await d.remove();
  }
});

test('while the group settles, a restarted host already receives what it missed: pushed by owners, handed over by old owners', async () => {
  const dirs = await Promise.all([0, 1, 2].map(() => tempDir()));
  const hosts: TestHost[] = [];
  const base = 23400 + Math.floor(Math.random() * 500) * 3;
  const available = async (h: TestHost) => (await h.client.get('/core/node-groups/default/available')).status === 200;
  try {
    for (let i = 0; i < 3; i++) hosts.push(await startHost({ id: `e${i}`, port: base + i }, dirs[i]!.path));
    for (const h of hosts.slice(1))
      await h.client.post('/core/node-groups/default', {
        kind: KINDS.joinPeerRequest,
        memberGroupReference: `${hosts[0]!.host.uri}/core/node-groups/default`,
      });
    await waitFor(
      'group ready',
      async () => {
        for (const h of hosts) {
          if (!(await available(h))) return false;
          const g = await h.client.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default');
          if (Object.values(g.body.nodes).filter((n) => n.status === 'AVAILABLE').length !== 3) return false;
        }
        return true;
      },
      20_000,
    );
    await hosts[2]!.close();
    await waitFor(
      'e2 UNAVAILABLE and the group available again',
      async () =>
        (await hosts[0]!.client.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default')).body.nodes.e2!.status ===
          'UNAVAILABLE' &&
        (await available(hosts[0]!)) &&
        (await available(hosts[1]!)),
      20_000,
    );
    const links: string[] = [];
    for (let i = 0; i < 60; i++) {
      const r = await hosts[i % 2]!.client.post('/core/examples', { documentSelfLink: `m${i}`, name: `m${i}` });
      assert.is(r.status, 200);
      links.push(String(r.body.documentSelfLink));
    }
    // A long stability window on the live hosts: no settled pass runs there while this test waits.
    for (const h of hosts.slice(0, 2))
      assert.is((await h.client.patch('/core/node-groups/default', { config: { stableGroupMaintenanceIntervalCount: 60 } })).status, 200);

    hosts[2] = await startHost({ id: 'e2', port: base + 2 }, dirs[2]!.path);
    const ids = ['e0', 'e1', 'e2'].map((id) => ({ id, eligible: true }));
    const keptByLive = links.filter((l) => selectNodes(l, ids, 1)[0] !== 'e2');
    assert.ok(
      keptByLive.length > 10 && keptByLive.length < links.length,
      `${keptByLive.length} of ${links.length} links stay with the live owners`,
    );
    // The links e2 now owns come too: their old owners hand their copies over.
    await waitFor(
      'e2 holds every missed document',
      async () => {
        const held = (await hosts[2]!.client.get<{ documentLinks: string[] }>('/core/examples')).body.documentLinks;
        return links.every((l) => held.includes(l));
      },
      20_000,
    );
    assert.not.ok(await available(hosts[0]!), 'e0 is still inside its stability window');
    assert.not.ok(await available(hosts[1]!), 'e1 is still inside its stability window');
    const copy = await hosts[2]!.client.send('GET', keptByLive[0]!, undefined, { pragma: 'xn-no-fwd' });
    assert.is(copy.status, 200);
    assert.is(copy.body.name, keptByLive[0]!.slice('/core/examples/'.length));
    const moved = links.find((l) => !keptByLive.includes(l))!;
    const handed = await hosts[2]!.client.send('GET', moved, undefined, { pragma: 'xn-no-fwd' });
    assert.is(handed.status, 200);
    assert.is(handed.body.name, moved.slice('/core/examples/'.length));
    const stats = await Promise.all(
      hosts
        .slice(0, 2)
        .map(
          async (h) =>
            (await h.client.get<{ synchStats: { earlyPushed: number; earlyHandedOver: number } }>('/core/management')).body.synchStats,
        ),
    );
    assert.ok(
      stats.every((x) => x.earlyPushed > 0),
      'both live hosts pushed early',
    );
    assert.is(
      stats[0]!.earlyHandedOver + stats[1]!.earlyHandedOver,
      links.length - keptByLive.length,
      'each moved link was handed over once',
    );
    // The same figures in /metrics, as an operator's Prometheus reads them.
    const scraped = await Promise.all(hosts.slice(0, 2).map((h) => h.client.get('/metrics').then((r) => parsePrometheusText(r.text))));
    for (const m of scraped) assert.ok(metricValue(m, 'krypton_synch_pushed_total') > 0, 'pushes counted in /metrics');
    assert.is(
      scraped.reduce((n, m) => n + metricValue(m, 'krypton_synch_handovers_total'), 0),
      links.length - keptByLive.length,
      'hand-overs counted in /metrics',
    );
  } finally {
    for (const h of hosts) await h.close();
    for (const d of dirs) await d.remove();
  }
});

test.run();
