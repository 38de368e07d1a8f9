/**
 * Three in-process hosts on ephemeral ports, joined with JoinPeerRequest: membership converges,
 * every host picks the same owner, requests entering a non-owner reach the owner, the forwarding
 * helper works for each target, and with quorum 3 and one host stopped a POST waits until the
 * quorum is relaxed to 2 (seed 000 steps 4-7).
 */
import { request } from 'undici';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { closeAll, startGroup, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

interface Group {
  nodes: Record<string, { status: string; membershipQuorum: number; options: string[]; groupReference: string }>;
  membershipUpdateTimeMicros: number;
}

const t = suite<{ hosts: TestHost[] }>('three hosts');

t.before(async (ctx) => {
  ctx.hosts = await startGroup(3, (i) => ({ id: `host-${i + 1}` }));
});
t.after((ctx) => closeAll(ctx.hosts));

t('every host picks the same owner, matching Xenon vectors', async ({ hosts }) => {
  for (const h of hosts) {
    const r = await h.client.post('/core/node-selectors/default', { key: '/core/examples/foo' });
    assert.is(r.status, 200);
    assert.is(r.body.ownerNodeId, 'host-2');
    assert.is(r.body.availableNodeCount, 3);
    const bar = await h.client.post('/core/node-selectors/default', { key: '/core/examples/bar' });
    assert.is(bar.body.ownerNodeId, 'host-3');
    const three = await h.client.post<{ selectedNodes: unknown[] }>('/core/node-selectors/default-3x', { key: '/core/examples/bar' });
    assert.is(three.body.selectedNodes.length, 3);
    const st = await h.client.get('/core/node-selectors/default');
    assert.is(st.body.status, 'AVAILABLE');
    assert.is(st.body.nodeGroupLink, '/core/node-groups/default');
  }
  assert.is((await hosts[0]!.client.post('/core/node-selectors/default', {})).status, 400);
});

t('a POST and later requests entering a non-owner run on the owner', async ({ hosts }) => {
  const [a] = hosts as [TestHost];
  const post = await a.client.post('/core/examples', { documentSelfLink: 'foo', name: 'routed' });
  assert.is(post.status, 200);
  assert.is(post.body.documentOwner, 'host-2');
  for (const h of hosts) {
    const g = await h.client.get('/core/examples/foo');
    assert.is(g.status, 200);
    assert.is(g.body.documentOwner, 'host-2');
  }
  // The group's membership quorum is 1 here, so the owner alone would be enough; asking for 2
  // makes the owner wait for one replica, and the header survives forwarding from host-3.
  const p = await hosts[2]!.client.send('PATCH', '/core/examples/foo', { counter: 5 }, { 'x-xenon-rpl-quorum': '2' });
  assert.is(p.status, 200);
  assert.is(p.body.documentVersion, 1);
  // The header reaches the owner: one larger than the member count is refused there.
  const tooMany = await hosts[2]!.client.send('PATCH', '/core/examples/foo', { counter: 6 }, { 'x-xenon-rpl-quorum': '4' });
  assert.is(tooMany.status, 400);
  assert.is(tooMany.body.message, 'Requested quorum 4 is larger than member count 3');
  // The owner answered once 2 of 3 held it durably; the third copy follows.
  const localCopies = () => Promise.all(hosts.map((h) => h.client.send('GET', '/core/examples/foo', undefined, { pragma: 'xn-no-fwd' })));
  assert.ok(
    (await localCopies()).filter((r) => r.body?.documentVersion === 1).length >= 2,
    'a quorum holds version 1 when the client hears success',
  );
  await waitFor('every replica at version 1', async () => (await localCopies()).every((r) => r.body?.documentVersion === 1));
  for (const local of await localCopies()) {
    assert.is(local.body.counter, 5);
    assert.is(local.body.documentOwner, 'host-2');
    assert.is(local.body.documentUpdateTimeMicros, p.body.documentUpdateTimeMicros);
  }
  for (const h of hosts) {
    const list = await h.client.get<{ documentLinks: string[] }>('/core/examples');
    assert.ok(list.body.documentLinks.includes('/core/examples/foo'), `listed on ${h.host.id}`);
  }
  // Errors from the owner are relayed unchanged.
  const dup = await hosts[2]!.client.post('/core/examples', { documentSelfLink: 'foo', name: 'again' });
  assert.is(dup.status, 409);
  assert.is(dup.body.errorCode, -2147483645);
});

t('replicas refuse records from an older epoch, and retries are harmless', async ({ hosts }) => {
  const [a] = hosts as [TestHost];
  const { encodeBatch, decodeResults, REPLICATION_CONTENT_TYPE } = await import('../../server/replication/replicator.js');
  const current = (await a.client.send('GET', '/core/examples/foo', undefined, { pragma: 'xn-no-fwd' })).body as Record<string, unknown> & {
    documentVersion: number;
  };
  // The answer is msgpack: read it as bytes.
  const send = async (epoch: number, version: number) => {
    const r = await request(`${a.host.uri}/core/node-selectors/default/replication`, {
      method: 'POST',
      body: encodeBatch({
        from: 'host-2',
        records: [
          {
            link: '/core/examples/foo',
            action: 'PATCH',
            version,
            epoch,
            timeMicros: 1,
            state: { ...current, documentVersion: version, documentEpoch: epoch } as never,
          },
        ],
      }),
      headers: { 'content-type': REPLICATION_CONTENT_TYPE },
    });
    assert.is(r.statusCode, 200);
    return decodeResults(Buffer.from(await r.body.arrayBuffer()), 1);
  };
  assert.equal(await send(0, current.documentVersion), [{ ok: true }]);
  // Raise the held epoch to 5, then a record from epoch 4 is fenced off.
  assert.equal(await send(5, current.documentVersion + 1), [{ ok: true }]);
  assert.equal(await send(4, current.documentVersion + 2), [
    { ok: false, code: 'STALE_EPOCH', message: 'Expected epoch: 5, in update: 4' },
  ]);
  const junk = await a.client.send('POST', '/core/node-selectors/default/replication', Buffer.from([0xc1, 0x00]), {
    'content-type': REPLICATION_CONTENT_TYPE,
  });
  assert.is(junk.status, 400);
  assert.is((junk.body as { statusCode?: number }).statusCode, 400, "Xenon's error body");
  assert.is((await a.client.get('/core/node-selectors/default/replication')).status, 405);
  assert.is((await a.client.post('/core/node-selectors/nope/replication', {})).status, 404);
});

t('forwarding: KEY_HASH, PEER_ID, unknown peer 404, ALL', async ({ hosts }) => {
  const [a, b] = hosts as [TestHost, TestHost];
  const key = await a.client.get('/core/node-selectors/default/forwarding?path=/core/examples/foo&target=KEY_HASH');
  assert.is(key.status, 200);
  assert.is(key.body.name, 'routed');
  const peer = await a.client.get<{ documentOwner: string }>(
    `/core/node-selectors/default/forwarding?path=/core/management&target=PEER_ID&peer=host-3`,
  );
  assert.is(peer.body.documentOwner, 'host-3');
  const unknown = await a.client.get('/core/node-selectors/default/forwarding?path=/core/management&target=PEER_ID&peer=nobody');
  assert.is(unknown.status, 404);
  assert.is((await a.client.get('/core/node-selectors/default/forwarding?target=ALL')).body.message, 'link uri parameter is required');
  assert.is(
    (await a.client.get('/core/node-selectors/default/forwarding?path=/core/management')).body.message,
    'destination uri parameter is required',
  );
  const all = await b.client.get<{
    receivers: string[];
    jsonResponses: Record<string, string>;
    failures: Record<string, unknown>;
    nodeCount: number;
  }>('/core/node-selectors/default/forwarding?path=/core/management/process-log&target=ALL');
  assert.is(all.status, 200);
  assert.is(all.body.receivers.length, 3);
  assert.is(Object.keys(all.body.jsonResponses).length, 3);
  assert.equal(all.body.failures, {});
  assert.is(all.body.nodeCount, 3);
  for (const text of Object.values(all.body.jsonResponses)) assert.ok(Array.isArray(JSON.parse(text).items));
});

t('quorum 3, one host stopped: a POST waits; UpdateQuorumRequest to 2 lets it finish', async ({ hosts }) => {
  const [a, b, c] = hosts as [TestHost, TestHost, TestHost];
  const q3 = await a.client.patch('/core/node-groups/default', {
    isGroupUpdate: true,
    membershipQuorum: 3,
    kind: KINDS.updateQuorumRequest,
  });
  assert.is(q3.status, 200);
  await waitFor('quorum 3 everywhere', async () => {
    for (const h of hosts) {
      const g = await h.client.get<Group>('/core/node-groups/default');
      if (g.body.nodes[h.host.id]!.membershipQuorum !== 3) return false;
    }
    return true;
  });
  assert.is((await c.client.delete('/core/management')).status, 202);
  await c.host.stopped;
  await waitFor(
    'host-3 UNAVAILABLE on host-1',
    async () => (await a.client.get<Group>('/core/node-groups/default')).body.nodes['host-3']!.status === 'UNAVAILABLE',
    5000,
  );

  let done = false;
  const pending = b.client.post('/core/examples', { documentSelfLink: 'blocked', name: 'waits' }).then((r) => {
    done = true;
    return r;
  });
  // The group is short of its quorum: the POST is parked, not failed.
  await waitFor('request parked', async () => (await a.client.get('/core/node-groups/default/available')).status === 503);
  assert.is(done, false);
  const q2 = await a.client.patch('/core/node-groups/default', {
    isGroupUpdate: true,
    membershipQuorum: 2,
    kind: KINDS.updateQuorumRequest,
  });
  assert.is(q2.status, 200);
  const r = await pending;
  assert.is(r.status, 200);
  assert.is(r.body.name, 'waits');
});

t.run();
