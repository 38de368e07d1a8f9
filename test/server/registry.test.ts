/**
 * The service-registry recipe on three in-process hosts: workers register as expiring documents
 * and keep refreshing them; a client lists and watches the live ones; a worker that stops
 * refreshing drops out of the listing once its document expires, and the watcher is told.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { liveServices, Registration } from '../../tools/recipes/registry.js';
import { openStream, type SseStream } from '../../tools/recipes/sse.js';
import { startHost, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

test('workers stay listed while they refresh; a dead one expires and the watcher hears it', async () => {
  const hosts: TestHost[] = [];
  const workers: Registration[] = [];
  let watch: SseStream | undefined;
  try {
    for (let i = 0; i < 3; i++) hosts.push(await startHost({ id: `r${i}` }));
    for (const h of hosts.slice(1))
      await h.client.post('/core/node-groups/default', {
        kind: KINDS.joinPeerRequest,
        memberGroupReference: `${hosts[0]!.host.uri}/core/node-groups/default`,
      });
    await waitFor(
      'group available',
      async () => {
        for (const h of hosts) if ((await h.client.get('/core/node-groups/default/available')).status !== 200) return false;
        return true;
      },
      20_000,
    );
    const factory = '/core/examples';
    watch = await openStream(`${hosts[0]!.host.uri}${factory}/subscriptions/stream`);
    for (let i = 0; i < 3; i++) {
      const w = new Registration(hosts[i]!.host.uri, factory, `worker-${i}`, 1500);
      await w.start();
      workers.push(w);
    }
    const all = [0, 1, 2].map((i) => `${factory}/worker-${i}`);
    for (const h of hosts)
      await waitFor(
        `all listed on ${h.host.id}`,
        async () => JSON.stringify(await liveServices(h.host.uri, factory)) === JSON.stringify(all),
      );
    // Past several ttls, refreshing keeps everyone listed.
    const until = Date.now() + 3000;
    const listings: string[][] = [];
    await waitFor(
      'three ttls later',
      async () => {
        listings.push(await liveServices(hosts[1]!.host.uri, factory));
        return Date.now() > until;
      },
      10_000,
    );
    assert.ok(
      listings.length > 10 && listings.every((l) => JSON.stringify(l) === JSON.stringify(all)),
      'every listing in between had all three',
    );
    assert.equal(await liveServices(hosts[2]!.host.uri, factory), all);

    workers[1]!.stop();
    const alive = [all[0]!, all[2]!];
    for (const h of hosts)
      await waitFor(
        `worker-1 gone on ${h.host.id}`,
        async () => JSON.stringify(await liveServices(h.host.uri, factory)) === JSON.stringify(alive),
        10_000,
      );
    await waitFor(
      'the watcher is told worker-1 expired',
      () => watch!.events.some((e) => e.event === 'expired' && (e.data as { documentSelfLink: string }).documentSelfLink === all[1]),
      15_000,
    );
    const registered = new Set(
      watch.events.filter((e) => e.event === 'update').map((e) => (e.data as { documentSelfLink: string }).documentSelfLink),
    );
    assert.equal([...registered].sort(), all);
    assert.ok(
      !watch.events.some((e) => e.event === 'expired' && (e.data as { documentSelfLink: string }).documentSelfLink !== all[1]),
      'only worker-1 expired',
    );
  } finally {
    for (const w of workers) w.stop();
    await watch?.close();
    for (const h of hosts) await h.close();
  }
});

test.run();
