/**
 * Node groups with real processes on the seeds' own ports (8000-8002), so the tutorials' URLs and
 * bodies are used verbatim: seed 001's join, node-group GET and custom group with an OBSERVER;
 * seed 004's forwarding examples; failure detection after SIGKILL and recovery after restart.
 * Seed 000 (quorum 3, tasks, a POST waiting for the quorum) is test/e2e/seed-000.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Client } from '../support/http.js';
import { tempDir } from '../support/hosts.js';
import { startHostProcess, type HostProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

interface Group {
  nodes: Record<string, { status: string; options: string[]; membershipQuorum: number; id: string }>;
}

const PEERS3 = '--peerNodes=http://127.0.0.1:8000,http://127.0.0.1:8001,http://127.0.0.1:8002';
const PEERS2 = '--peerNodes=http://127.0.0.1:8000,http://127.0.0.1:8001';

async function statusOf(c: Client, id: string, group = 'default'): Promise<string | undefined> {
  const g = await c.get<Group>(`/core/node-groups/${group}`);
  return g.body?.nodes?.[id]?.status;
}

async function everyoneAvailable(clients: Client[], ids: string[]): Promise<boolean> {
  for (const c of clients) for (const id of ids) if ((await statusOf(c, id)) !== 'AVAILABLE') return false;
  return true;
}

async function withHosts(
  fn: (start: (port: number, extra?: string[]) => Promise<HostProcess>, clients: Map<number, Client>) => Promise<void>,
): Promise<void> {
  const dir = await tempDir();
  const procs: HostProcess[] = [];
  const clients = new Map<number, Client>();
  const start = async (port: number, extra: string[] = []) => {
    const p = await startHostProcess([`--port=${port}`, `--sandbox=${dir.path}`, `--id=hostAtPort${port}`, ...extra]);
    procs.push(p);
    await clients.get(port)?.close();
    clients.set(port, new Client(`http://localhost:${port}`));
    return p;
  };
  try {
    await fn(start, clients);
  } finally {
    for (const c of clients.values()) await c.close();
    for (const p of procs) await p.kill('SIGKILL');
    await dir.remove();
  }
}

test('seed 001: two hosts join from --peerNodes; custom group with an OBSERVER', async () => {
  await withHosts(async (start, clients) => {
    await start(8000, [PEERS2]);
    await start(8001, [PEERS2]);
    const c0 = clients.get(8000)!;
    const c1 = clients.get(8001)!;
    await waitFor('both AVAILABLE on both', () => everyoneAvailable([c0, c1], ['hostAtPort8000', 'hostAtPort8001']), 15_000);
    const g = await c0.get<Group & Record<string, unknown>>('/core/node-groups/default');
    assert.is(g.body.documentSelfLink, '/core/node-groups/default');
    assert.is(g.body.documentKind, 'com:vmware:xenon:services:common:NodeGroupService:NodeGroupState');
    assert.is(g.body.documentOwner, 'hostAtPort8000');
    assert.equal(g.body.nodes.hostAtPort8001!.options, ['PEER']);
    assert.is((g.body.nodes.hostAtPort8001 as Record<string, unknown>).groupReference, 'http://127.0.0.1:8001/core/node-groups/default');

    const helloNodeGroup = `{
"config": {
"nodeRemovalDelayMicros": 3600000000,
"stableGroupMaintenanceIntervalCount": 5
},
"nodes": {},
"membershipUpdateTimeMicros": 1456872059568025,
"documentSelfLink": "hello-node-group"
}`;
    assert.is((await c0.send('POST', '/core/node-groups', helloNodeGroup, { 'Content-Type': 'application/json' })).status, 200);
    assert.is((await c1.send('POST', '/core/node-groups', helloNodeGroup, { 'Content-Type': 'application/json' })).status, 200);
    assert.equal(Object.keys((await c0.get<Group>('/core/node-groups/hello-node-group')).body.nodes), ['hostAtPort8000']);
    const observerJoin = `{
"kind": "com:vmware:xenon:services:common:NodeGroupService:JoinPeerRequest",
"memberGroupReference": "http://127.0.0.1:8000/core/node-groups/hello-node-group",
"membershipQuorum": 1,
"localNodeOptions": [ "OBSERVER" ]
}`;
    assert.is(
      (await c1.send('POST', '/core/node-groups/hello-node-group', observerJoin, { 'Content-Type': 'application/json' })).status,
      200,
    );
    await waitFor(
      'both hosts list the same nodes, 8001 as OBSERVER',
      async () => {
        const a = (await c0.get<Group>('/core/node-groups/hello-node-group')).body.nodes;
        const b = (await c1.get<Group>('/core/node-groups/hello-node-group')).body.nodes;
        return (
          Object.keys(a).length === 2 &&
          a.hostAtPort8001?.status === 'AVAILABLE' &&
          a.hostAtPort8000?.status === 'AVAILABLE' &&
          JSON.stringify(a.hostAtPort8001.options) === '["OBSERVER"]' &&
          JSON.stringify(Object.keys(b).sort()) === JSON.stringify(Object.keys(a).sort()) &&
          b.hostAtPort8001?.status === 'AVAILABLE'
        );
      },
      15_000,
    );
  });
});

test('seed 004: forwarding to ALL, KEY_HASH and PEER_ID; an unknown peer is 404', async () => {
  await withHosts(async (start, clients) => {
    await start(8000, [PEERS2]);
    await start(8001, [PEERS2]);
    const c0 = clients.get(8000)!;
    await waitFor('group formed', () => everyoneAvailable([c0, clients.get(8001)!], ['hostAtPort8000', 'hostAtPort8001']), 15_000);
    // curl "http://192.168.1.27:8000/core/node-selectors/default/forwarding?path=/core/management/process-log&target=ALL"
    const all = await c0.get<{ receivers: string[]; jsonResponses: Record<string, string> }>(
      '/core/node-selectors/default/forwarding?path=/core/management/process-log&target=ALL',
    );
    assert.is(all.status, 200);
    assert.equal([...all.body.receivers].sort(), [
      'http://127.0.0.1:8000/core/management/process-log',
      'http://127.0.0.1:8001/core/management/process-log',
    ]);
    const key = await c0.get<{ items: string[] }>(
      '/core/node-selectors/default/forwarding?path=/core/management/process-log&target=KEY_HASH',
    );
    assert.is(key.status, 200);
    assert.ok(Array.isArray(key.body.items));
    const peer = await c0.get<{ documentOwner: string }>(
      '/core/node-selectors/default/forwarding?path=/core/examples&target=PEER_ID&peer=hostAtPort8001',
    );
    assert.is(peer.status, 200);
    assert.is(peer.body.documentOwner, 'hostAtPort8001');
    const unknown = await c0.get(
      '/core/node-selectors/default/forwarding?path=/core/examples&target=PEER_ID&peer=55016fd0-7cbb-45ee-bc0c-32767c49ec6',
    );
    assert.is(unknown.status, 404);
    const sel = await c0.get('/core/node-selectors/default-3x');
    assert.is(sel.body.replicationFactor, 3);
  });
});

test('a SIGKILLed host is UNAVAILABLE within 3 s; restarted with its id, AVAILABLE within 5 s', async () => {
  await withHosts(async (start, clients) => {
    await start(8000, [PEERS3]);
    await start(8001, [PEERS3]);
    const victim = await start(8002, [PEERS3]);
    const ids = ['hostAtPort8000', 'hostAtPort8001', 'hostAtPort8002'];
    const live = () => [clients.get(8000)!, clients.get(8001)!];
    await waitFor('group formed', () => everyoneAvailable([...live(), clients.get(8002)!], ids), 20_000);
    await victim.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor(
      '8002 UNAVAILABLE on both others',
      async () =>
        (await statusOf(live()[0]!, 'hostAtPort8002')) === 'UNAVAILABLE' &&
        (await statusOf(live()[1]!, 'hostAtPort8002')) === 'UNAVAILABLE',
      3000,
    );
    const detectMs = Date.now() - killedAt;
    await start(8002, [PEERS3]);
    const restartedAt = Date.now();
    await waitFor('8002 AVAILABLE again everywhere', () => everyoneAvailable([...live(), clients.get(8002)!], ids), 5000);
    process.stderr.write(`    (failure detected in ${detectMs} ms, rejoined in ${Date.now() - restartedAt} ms)\n`);
  });
});

test.run();
