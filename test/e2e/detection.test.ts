/**
 * How a group sees a host go, with real processes on free ports. A hung one: one of three is
 * paused (SIGSTOP), the other two show it UNAVAILABLE within the probe bound and keep taking
 * writes for links it does not own; resumed (SIGCONT), it is AVAILABLE everywhere again. A
 * stopped one (SIGTERM, SIGINT): its peers show it UNAVAILABLE as soon as it has exited, told
 * rather than probed, and take over the documents it owned.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Client } from '../support/http.js';
import { startProcessGroup, type HostProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

interface Group {
  nodes: Record<string, { status: string }>;
}

/** Goal: a silent host is UNAVAILABLE within 2 s; asserted loosely, at three times that. */
const DETECTION_BOUND_MS = 6_000;

async function statusOn(c: Client, id: string): Promise<string | undefined> {
  return (await c.get<Group>('/core/node-groups/default')).body?.nodes?.[id]?.status;
}

async function everyoneAvailable(clients: Client[], ids: string[]): Promise<boolean> {
  for (const c of clients) for (const id of ids) if ((await statusOn(c, id)) !== 'AVAILABLE') return false;
  return true;
}

/** Three hosts on free ports with the same --peerNodes, AVAILABLE everywhere; `fn` gets them. */
async function withGroup(fn: (procs: HostProcess[], clients: Client[], ids: string[]) => Promise<void>): Promise<void> {
  const group = await startProcessGroup(3, 'host');
  try {
    await waitFor('group formed', () => everyoneAvailable(group.clients, group.ids), 20_000);
    await fn(group.procs, group.clients, group.ids);
  } finally {
    await group.close();
  }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`a host stopped with ${signal} is UNAVAILABLE on its peers once it has exited, without a probe`, async () => {
    await withGroup(async (procs, clients, ids) => {
      const c0 = clients[0]!;
      await waitFor('group available', async () => (await c0.get('/core/node-groups/default/available')).status === 200, 20_000);
      // A document the host about to stop owns: its peers take it over.
      let name = '';
      for (let i = 0; name === ''; i++) {
        const r = await c0.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key: `/core/examples/owned-${i}` });
        if (r.body.ownerNodeId === ids[2]) name = `owned-${i}`;
      }
      assert.is((await c0.post('/core/examples', { documentSelfLink: name, name: 'before' })).status, 200);
      assert.is(await procs[2]!.kill(signal), 0, 'a clean stop');
      // The first look after the exit: a probe could not have noticed yet, the notice has.
      for (const c of clients.slice(0, 2)) assert.is(await statusOn(c, ids[2]!), 'UNAVAILABLE');
      const r = await c0.patch<{ name: string; documentOwner: string }>(`/core/examples/${name}`, { name: 'after' });
      assert.is(r.status, 200, `PATCH of a link the stopped host owned answered ${r.status}: ${r.text}`);
      assert.ok(ids.slice(0, 2).includes(r.body.documentOwner), `owned by ${r.body.documentOwner} now`);
    });
  });
}

test('a paused host is UNAVAILABLE on its peers within the bound, writes it does not own go on, and it comes back on SIGCONT', async () => {
  await withGroup(async (procs, clients, ids) => {
    const [c0, c1] = clients as [Client, Client, Client];
    await waitFor('group available', async () => (await c0.get('/core/node-groups/default/available')).status === 200, 20_000);

    // Links the host about to be paused does not own, as its selector says.
    const links: string[] = [];
    for (let i = 0; links.length < 2; i++) {
      const key = `/core/examples/pause-${i}`;
      const r = await c0.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key });
      if (r.body.ownerNodeId !== ids[2]) links.push(key);
    }

    const paused = procs[2]!;
    paused.child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    // Right away, before anyone noticed: the owner and the other live host make the quorum, and
    // whatever the owner asks the paused host (the link's synchronization) fails once it is marked,
    // not at a 20 s request deadline.
    const early = await c0.post('/core/examples', { documentSelfLink: links[0]!.split('/').pop(), name: 'while paused' });
    assert.is(early.status, 200, `write during the pause answered ${early.status}: ${early.text}`);
    const earlyMs = Date.now() - stoppedAt;
    assert.ok(earlyMs <= DETECTION_BOUND_MS, `the write during the pause took ${earlyMs} ms`);
    await waitFor(
      `${ids[2]} UNAVAILABLE on both peers`,
      async () => (await statusOn(c0, ids[2]!)) === 'UNAVAILABLE' && (await statusOn(c1, ids[2]!)) === 'UNAVAILABLE',
      DETECTION_BOUND_MS,
    );
    const detectedMs = Date.now() - stoppedAt;
    assert.ok(detectedMs <= DETECTION_BOUND_MS, `detected after ${detectedMs} ms`);
    const later = await c1.post('/core/examples', { documentSelfLink: links[1]!.split('/').pop(), name: 'still paused' });
    assert.is(later.status, 200, `write after detection answered ${later.status}: ${later.text}`);
    assert.is((await c0.get<{ name: string }>(links[1]!)).body.name, 'still paused');

    paused.child.kill('SIGCONT');
    await waitFor('AVAILABLE everywhere after SIGCONT', () => everyoneAvailable(clients, ids), 15_000);
    await waitFor('the resumed host serves the writes made while it was paused', async () => {
      const r = await clients[2]!.get<{ name: string }>(links[0]!);
      return r.status === 200 && r.body.name === 'while paused';
    });
  });
});

test.run();
