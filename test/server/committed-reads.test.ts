/**
 * Committed reads on the owner. Three hosts in process, quorum 2. The replicas are made to refuse
 * the owner's records the way a takeover in progress makes them (a promise of a later epoch to
 * another host), so the owner's write is logged and indexed there but never reaches its quorum,
 * as under a partition. A GET routed to the owner must then never answer that write: with
 * synchronization off (nothing can settle the link) it is an error; with it on, the read first
 * synchronizes the link and answers only a state a majority holds. The owner's own copy (a local
 * read, `pragma: xn-no-fwd`) does show the write: local reads are the host's index as it is. The
 * read rule itself is checked on an index with a write in flight. Writes queued on the owner
 * behind the one that missed its quorum wait for that synchronization too: none is planned on the
 * doubtful state and logged above it in the same epoch.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CommitTracker } from '../../lib/commit.js';
import type { ServiceDocument } from '../../lib/document.js';
import { isKryptonError } from '../../lib/errors.js';
import { DocumentIndex } from '../../index/views.js';
import { readCommitted } from '../../server/documents/reads.js';
import { closeAll, startGroup, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';
import { openStream, type SseStream } from '../../tools/recipes/sse.js';

interface Doc {
  documentVersion: number;
  documentEpoch: number;
  name: string;
}

const local = { pragma: 'xn-no-fwd' };

async function ownerOf(hosts: TestHost[], link: string): Promise<{ owner: TestHost; others: TestHost[] }> {
  const r = await hosts[0]!.client.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key: link });
  const owner = hosts.find((h) => h.host.id === r.body.ownerNodeId)!;
  return { owner, others: hosts.filter((h) => h !== owner) };
}

/** Creates `link`, waits until every host holds it, and makes the owner's replicas refuse its epoch. */
async function fencedOwner(hosts: TestHost[], link: string): Promise<{ owner: TestHost; others: TestHost[] }> {
  assert.is((await hosts[0]!.client.post('/core/examples', { documentSelfLink: link, name: 'committed' })).status, 200);
  const roles = await ownerOf(hosts, link);
  await waitFor('every host holds version 0', async () => {
    for (const h of hosts) if ((await h.client.send<Doc>('GET', link, undefined, local)).status !== 200) return false;
    return true;
  });
  const z = roles.others[1]!;
  // As if a partition cut the owner's lease renewals: the replicas then promise the link to z
  // once the owner's lease has run out, while the owner still takes itself for the owner.
  roles.owner.host.cluster.synchronizer.lease.holdRenewals(true);
  for (const h of roles.others) {
    const r = await h.client.post<{ promises: [string, number, 0 | 1][] }>('/core/node-selectors/default/synch', {
      kind: 'promise',
      from: z.host.id,
      factoryLink: '/core/examples',
      asks: [[link, 1]],
    });
    assert.is(r.status, 200, r.text);
    assert.is(r.body.promises[0]![2], 1, `${h.host.id} promised: ${r.text}`);
  }
  return roles;
}

const rule = suite('the read rule');

rule('a write in flight is not answered, nor its version; one in doubt is an error', () => {
  const index = new DocumentIndex({ retentionFor: () => 100 });
  const commits = new CommitTracker();
  const link = '/core/examples/r';
  const doc = (v: number, name: string) =>
    ({
      documentSelfLink: link,
      documentKind: 'k',
      documentVersion: v,
      documentEpoch: 0,
      documentUpdateTimeMicros: 1000 + v,
      documentUpdateAction: v ? 'PUT' : 'POST',
      documentExpirationTimeMicros: 0,
      name,
    }) as ServiceDocument;
  const apply = (d: ServiceDocument) =>
    index.apply({
      seq: d.documentVersion + 1,
      link,
      action: d.documentUpdateAction,
      version: d.documentVersion,
      epoch: 0,
      timeMicros: d.documentUpdateTimeMicros,
      state: d,
    });
  apply(doc(0, 'a'));
  commits.begin(link, 1, index.latest(link));
  apply(doc(1, 'b'));
  assert.is(readCommitted(index, commits, link, undefined, 5000).name, 'a');
  assert.is(readCommitted(index, commits, link, 0, 5000).name, 'a');
  assert.throws(
    () => readCommitted(index, commits, link, 1, 5000),
    (e: unknown) => isKryptonError(e) && e.code === 'NOT_FOUND',
  );
  commits.failed(link, 1);
  assert.throws(
    () => readCommitted(index, commits, link, undefined, 5000),
    (e: unknown) => isKryptonError(e) && e.code === 'QUORUM_UNAVAILABLE',
  );
  assert.is(readCommitted(index, commits, link, 0, 5000).name, 'a', 'the versions under it are committed');
  commits.settled(link);
  assert.is(readCommitted(index, commits, link, undefined, 5000).name, 'b');
});

rule.run();

const owner = suite('a fenced owner');

owner('with nothing to settle the link, the owner answers an error, never the write its quorum did not take', async () => {
  const hosts = await startGroup(3, (i) => ({ id: `cr-${i + 1}`, membershipQuorum: 2, isPeerSynchronizationEnabled: false }));
  const streams: SseStream[] = [];
  try {
    const link = '/core/examples/committed-off';
    const { owner, others } = await fencedOwner(hosts, link);
    const watch = await openStream(`${owner.host.uri}/core/examples/subscriptions/stream`);
    streams.push(watch);
    const w = await owner.client.put<{ message: string }>(link, { name: 'unseen' });
    assert.is(w.status, 500, w.text);
    // A watch on the owner hears only committed writes: once a later write has reached the
    // stream, the refused one is known never to have been sent (before: sent at the local append).
    assert.is((await owner.client.post('/core/examples', { documentSelfLink: 'committed-barrier', name: 'barrier' })).status, 200);
    const names = () => watch.events.filter((e) => e.event === 'update').map((e) => (e.data as Doc).name);
    await waitFor('the later write on the owner stream', () => names().includes('barrier'));
    assert.not.ok(names().includes('unseen'), `the owner's stream saw the refused write: ${names().join(',')}`);
    for (const via of hosts) {
      const r = await via.client.get<Doc & { message?: string }>(link);
      assert.is.not(r.body.name, 'unseen', `a read through ${via.host.id} answered the write the majority never saw`);
      assert.is(r.status, 503, r.text);
      const v = await via.client.get<Doc>(`${link}?documentVersion=1`);
      assert.is(v.status, 404, `version 1 through ${via.host.id}: ${v.text}`);
    }
    // The owner's own copy holds it (local reads are the index as it is); the replicas never took it.
    assert.is((await owner.client.send<Doc>('GET', link, undefined, local)).body.name, 'unseen');
    for (const h of others) assert.is((await h.client.send<Doc>('GET', link, undefined, local)).body.name, 'committed');
  } finally {
    for (const s of streams) await s.close();
    await closeAll(hosts);
  }
});

owner('with synchronization on, the read settles the link first and answers only what a majority holds', async () => {
  const hosts = await startGroup(3, (i) => ({ id: `cs-${i + 1}`, membershipQuorum: 2 }));
  try {
    const link = '/core/examples/committed-on';
    const { owner } = await fencedOwner(hosts, link);
    const w = await owner.client.put<{ message: string }>(link, { name: 'doubtful' });
    assert.is(w.status, 500, w.text);
    owner.host.cluster.synchronizer.lease.holdRenewals(false);
    const r = await owner.client.get<Doc>(link);
    assert.is(r.status, 200, r.text);
    // Whatever the synchronization decided, a majority holds exactly the state answered.
    const held = await Promise.all(hosts.map(async (h) => (await h.client.send<Doc>('GET', link, undefined, local)).body));
    const same = held.filter(
      (d) => d.documentVersion === r.body.documentVersion && d.documentEpoch === r.body.documentEpoch && d.name === r.body.name,
    );
    assert.ok(same.length >= 2, `answered ${JSON.stringify(r.body)}; held ${JSON.stringify(held)}`);
  } finally {
    await closeAll(hosts);
  }
});

owner('writes queued behind one that missed its quorum are planned only after synchronization settled it', async () => {
  const hosts = await startGroup(3, (i) => ({ id: `cq-${i + 1}`, membershipQuorum: 2 }));
  try {
    const link = '/core/examples/committed-queue';
    const { owner } = await fencedOwner(hosts, link);
    // Sent together, so all but the first wait in the link's queue while the first misses its quorum.
    const writes = await Promise.all(
      Array.from({ length: 6 }, (_, i) => owner.client.put<Doc & { message?: string }>(link, { name: `queued-${i}` })),
    );
    const failed = writes.filter((w) => w.status !== 200);
    assert.ok(failed.length >= 1, 'the first write misses its quorum');
    assert.ok(failed.length < writes.length, `every write failed: ${writes.map((w) => w.text).join('; ')}`);
    for (const w of writes.filter((x) => x.status === 200)) {
      assert.ok(w.body.documentEpoch > 0, `a queued write was logged in the refused epoch: ${w.text}`);
    }
    // The owner logged no second version of the refused epoch over the doubtful one.
    const v2 = await owner.client.send<Doc>('GET', `${link}?documentVersion=2`, undefined, local);
    if (v2.status === 200) assert.ok(v2.body.documentEpoch > 0, `version 2 on the owner: ${v2.text}`);
  } finally {
    await closeAll(hosts);
  }
});

owner.run();
