/**
 * The prepare phase in process, three hosts with a write quorum of 2. A host taking a link over
 * sends each replica `POST /core/node-selectors/default/synch {kind: "promise", ...}`; the test
 * sends exactly that request on behalf of one host, as a takeover in progress would, and shows
 * that the owner's next write (a late write of the old owner) is refused by the replicas that
 * promised and fails its quorum instead of being acknowledged (the owner's lease renewals held, as
 * if a partition cut them, so the replicas may promise); that the owner then takes the link
 * over again and writes on; and that a promise outlives a restart of the replica that made it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import type { Config } from '../../server/base/config.js';
import { startHost, tempDir, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

interface Doc {
  documentVersion: number;
  documentEpoch: number;
  documentOwner: string;
  counter?: number;
}
type Answer = [string, number, 0 | 1, number, [number, number, 0 | 1, string] | null];

const LINK = '/core/examples/fenced';
const SYNCH = '/core/node-selectors/default/synch';

async function cluster(
  extra: Partial<Config>,
): Promise<{ hosts: TestHost[]; base: number; dirs: { path: string; remove(): Promise<void> }[] }> {
  const dirs = await Promise.all([0, 1, 2].map(() => tempDir()));
  // Fixed ports: a restarted host must come back at the address its peers know.
  const base = 24900 + Math.floor(Math.random() * 500) * 3;
  const hosts: TestHost[] = [];
  for (let i = 0; i < 3; i++) hosts.push(await startHost({ id: `h${i}`, port: base + i, membershipQuorum: 2, ...extra }, dirs[i]!.path));
  for (const h of hosts.slice(1))
    await h.client.post('/core/node-groups/default', {
      kind: KINDS.joinPeerRequest,
      memberGroupReference: `${hosts[0]!.host.uri}/core/node-groups/default`,
    });
  await ready(hosts);
  return { hosts, base, dirs };
}

async function ready(hosts: TestHost[]): Promise<void> {
  await waitFor(
    'group ready',
    async () => {
      for (const h of hosts) {
        if ((await h.client.get('/core/node-groups/default/available')).status !== 200) return false;
        const g = await h.client.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default');
        if (Object.values(g.body.nodes).filter((n) => n.status === 'AVAILABLE').length !== 3) return false;
      }
      return true;
    },
    20_000,
  );
}

/** The copy a host holds itself (no forwarding to the owner). */
async function local(h: TestHost): Promise<Doc> {
  const r = await h.client.send<Doc>('GET', LINK, undefined, { pragma: 'xn-no-fwd' });
  assert.is(r.status, 200, r.text);
  return r.body;
}

/** The owner of LINK and the two others, in host order. */
async function roles(hosts: TestHost[]): Promise<{ owner: TestHost; others: TestHost[] }> {
  const r = await hosts[0]!.client.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key: LINK });
  const owner = hosts.find((h) => h.host.id === r.body.ownerNodeId)!;
  return { owner, others: hosts.filter((h) => h !== owner) };
}

function promise(h: TestHost, from: string, epoch: number) {
  return h.client.post<{ promises: Answer[] }>(SYNCH, { kind: 'promise', from, factoryLink: '/core/examples', asks: [[LINK, epoch]] });
}

test("after a promise, the old owner's late write is refused and fails its quorum; the owner then takes the link over again", async () => {
  const { hosts, dirs } = await cluster({});
  try {
    assert.is((await hosts[0]!.client.post('/core/examples', { documentSelfLink: 'fenced', name: 'fenced', counter: 1 })).status, 200);
    const { owner, others } = await roles(hosts);
    const [y, z] = others as [TestHost, TestHost];
    // Without a promise the owner's writes are acknowledged.
    const before = await owner.client.patch<Doc>(LINK, { counter: 2 });
    assert.is(before.status, 200, before.text);
    const { documentEpoch: e0, documentVersion: v0 } = before.body;
    await waitFor(
      'the replicas hold version v0',
      async () => (await local(y)).documentVersion === v0 && (await local(z)).documentVersion === v0,
    );

    // As if a partition cut the owner's lease renewals: once its lease has run out the replicas
    // may promise the link to z, while the owner still takes itself for the owner.
    owner.host.cluster.synchronizer.lease.holdRenewals(true);
    // z takes the link over: its replicas (z itself and y) promise epoch e0+1 and return their heads.
    for (const r of [await promise(z, z.host.id, e0 + 1), await promise(y, z.host.id, e0 + 1)]) {
      assert.is(r.status, 200, r.text);
      assert.equal(r.body.promises, [[LINK, e0 + 1, 1, e0 + 1, [e0, v0, 0, owner.host.id]]]);
    }
    // The same epoch is never promised to a second host.
    const rival = await promise(y, owner.host.id, e0 + 1);
    assert.equal(rival.body.promises, [[LINK, e0 + 1, 0, e0 + 1, [e0, v0, 0, owner.host.id]]]);

    // The old owner's late write: both replicas refuse epoch e0, so it fails instead of being acknowledged.
    const late = await owner.client.patch<{ message: string; statusCode: number }>(LINK, { counter: 3 });
    assert.is(late.status, 500, late.text);
    // Success 0 or 1: both refusals may come back before the owner's own append is counted.
    assert.match(late.body.message, /PATCH to \/core\/examples\/fenced failed\. Success: [01], {2}Fail: 2, quorum: 2/);
    for (const h of [y, z]) {
      const d = await local(h);
      assert.equal([d.documentEpoch, d.documentVersion, d.counter], [e0, v0, 2], `${h.host.id} took the late write`);
    }
    owner.host.cluster.synchronizer.lease.holdRenewals(false);

    // The refusals tell the owner: its next write takes the link over above the promise and goes through.
    const next = await owner.client.patch<Doc>(LINK, { counter: 4 });
    assert.is(next.status, 200, next.text);
    assert.is(next.body.documentEpoch, e0 + 2);
    assert.is(next.body.counter, 4);
    await waitFor("every host holds the owner's write at the new epoch", async () => {
      const ds = await Promise.all(hosts.map(local));
      return ds.every((d) => d.documentEpoch === e0 + 2 && d.documentVersion === next.body.documentVersion && d.counter === 4);
    });
    const stats = await Promise.all(hosts.map(async (h) => (await h.client.get<{ promisesHeld: number }>(SYNCH)).body.promisesHeld));
    assert.equal(stats, [0, 0, 0], 'every promise is spent once the takeover landed');
  } finally {
    for (const h of hosts) await h.close();
    for (const d of dirs) await d.remove();
  }
});

test('a promise outlives a restart of the replica that made it', async () => {
  // Synchronization off: nothing takes the link over again, so the promise stays visible.
  const { hosts, base, dirs } = await cluster({ isPeerSynchronizationEnabled: false });
  try {
    assert.is((await hosts[0]!.client.post('/core/examples', { documentSelfLink: 'fenced', name: 'fenced', counter: 1 })).status, 200);
    const { owner, others } = await roles(hosts);
    const [y, z] = others as [TestHost, TestHost];
    const { documentEpoch: e0, documentVersion: v0 } = await local(owner);
    await waitFor(
      'the replicas hold the document',
      async () => (await local(y)).documentVersion === v0 && (await local(z)).documentVersion === v0,
    );
    for (const h of [y, z]) assert.is((await promise(h, z.host.id, e0 + 1)).body.promises[0]![2], 1);

    const yi = hosts.indexOf(y);
    await y.close();
    hosts[yi] = await startHost(
      { id: y.host.id, port: base + yi, membershipQuorum: 2, isPeerSynchronizationEnabled: false },
      dirs[yi]!.path,
    );
    await ready(hosts);
    const restarted = hosts[yi]!;
    const heads = await restarted.client.post<{ heads: unknown[][] }>(SYNCH, { kind: 'heads', factoryLink: '/core/examples' });
    // The seventh field is the digest of the replica's retained history (lib/synch/history.ts).
    assert.equal(
      heads.body.heads.map((t) => t.slice(0, 6)),
      [[LINK, e0, v0, 0, owner.host.id, e0 + 1]],
      'the restarted replica still reports the promised epoch',
    );

    const late = await owner.client.patch<{ message: string }>(LINK, { counter: 3 });
    assert.is(late.status, 500, late.text);
    assert.match(late.body.message, /Success: [01], {2}Fail: 2/, late.text);
    assert.is((await local(restarted)).counter, 1);
  } finally {
    for (const h of hosts) await h.close();
    for (const d of dirs) await d.remove();
  }
});

test.run();
