/**
 * What an operator sees in /metrics when a replica hangs: three real hosts on free ports, one
 * paused with SIGSTOP while its owner ships it an update. The batch waits (the owner's
 * krypton_replication_lag_records for that peer is above 0), the write is answered on the quorum
 * of the two live hosts, and once the paused host is marked UNAVAILABLE the batch fails and
 * krypton_replication_failures_total counts it under that peer and PEER_UNAVAILABLE.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Client } from '../support/http.js';
import { startProcessGroup } from '../support/process.js';
import { metricValue, parsePrometheusText } from '../support/prom-text.js';
import { waitFor } from '../support/wait.js';

const scrape = async (c: Client) => parsePrometheusText((await c.get('/metrics')).text);

test('a paused replica shows as lag, then as failed records, on its owner', async () => {
  const group = await startProcessGroup(3, 'rm');
  const { ports, ids, procs, clients } = group;
  try {
    await waitFor(
      'ready everywhere',
      async () => (await Promise.all(clients.map((c) => c.get('/readyz')))).every((r) => r.status === 200),
      20_000,
    );
    // /readyz answers once a host serves, which can be before host 0 counts host 2 as a member:
    // a record is then not shipped to it at all (it synchronizes later) and there is no lag to
    // see. An operator checks the node group lists all three first (CI run: lag 0 without this).
    await waitFor(
      'host 0 counting all three hosts AVAILABLE',
      async () => {
        const g = await clients[0]!.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default');
        return Object.values(g.body?.nodes ?? {}).filter((n) => n.status === 'AVAILABLE').length === 3;
      },
      20_000,
    );
    // A document host 0 owns, so host 0 ships its updates to the other two.
    let link = '';
    for (let i = 0; !link; i++) {
      const r = await clients[0]!.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key: `/core/examples/rm-${i}` });
      if (r.body.ownerNodeId === ids[0]) link = `/core/examples/rm-${i}`;
    }
    assert.is((await clients[0]!.post('/core/examples', { documentSelfLink: link, name: 'before' })).status, 200);
    const pausedPeer = `http://127.0.0.1:${ports[2]}`;

    procs[2]!.child.kill('SIGSTOP');
    const patched = await clients[0]!.patch(link, { name: 'while paused' });
    assert.is(patched.status, 200, patched.text);
    // Answered on the live hosts' quorum; the copy for the paused one is still in flight.
    const lag = metricValue(await scrape(clients[0]!), 'krypton_replication_lag_records', { peer: pausedPeer });
    assert.ok(lag >= 1, `lag to the paused host ${lag}`);
    const failed = await waitFor(
      'the batch to the paused host counted as failed',
      async () => {
        const n = metricValue(await scrape(clients[0]!), 'krypton_replication_failures_total', {
          peer: pausedPeer,
          code: 'PEER_UNAVAILABLE',
        });
        return n > 0 ? n : undefined;
      },
      15_000,
    );
    assert.ok(failed >= 1);
    // The live replica got its copy, with no failure.
    const live = `http://127.0.0.1:${ports[1]}`;
    assert.is(metricValue(await scrape(clients[0]!), 'krypton_replication_failures_total', { peer: live }), 0);
  } finally {
    await group.close();
  }
});

test.run();
