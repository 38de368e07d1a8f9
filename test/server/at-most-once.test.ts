/**
 * At most once: a write forwarded to its owner takes effect once however often the entry host
 * sends it again. Three hosts with a write quorum of 2 and a short operation timeout (hops of
 * 1 s); the owner's link is held busy past several hop timeouts, as a paused owner would be, so
 * the entry host sends the same request again after each one. Once the link is let go the owner
 * runs the original and every retry: the first takes effect, the others are answered with its
 * outcome. A CAS (StrictUpdateRequest PATCH) that took effect is answered as a success.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { closeAll, startGroup, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

interface Doc {
  documentVersion: number;
  name: string;
}

const t = suite<{ hosts: TestHost[] }>('at most once through a non-owner');

t.before(async (ctx) => {
  ctx.hosts = await startGroup(3, (i) => ({ id: `amo-${i + 1}`, operationTimeoutMicros: 10_000_000 }));
});
t.after((ctx) => closeAll(ctx.hosts));

async function ownerOf(hosts: TestHost[], link: string): Promise<{ owner: TestHost; entry: TestHost }> {
  const r = await hosts[0]!.client.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key: link });
  const owner = hosts.find((h) => h.host.id === r.body.ownerNodeId)!;
  return { owner, entry: hosts.find((h) => h !== owner)! };
}

async function forwarded(h: TestHost): Promise<number> {
  return (await h.client.get<{ forwardStats: { requests: number } }>('/core/management')).body.forwardStats.requests;
}

/** Every host's own copy of `link` at `version`, and none past it. */
async function everyHostAt(hosts: TestHost[], link: string, version: number): Promise<void> {
  await waitFor(`every host holds ${link} at version ${version}`, async () => {
    for (const h of hosts) {
      const r = await h.client.send<Doc>('GET', link, undefined, { pragma: 'xn-no-fwd' });
      if (r.status !== 200 || r.body.documentVersion !== version) return false;
    }
    return true;
  });
  for (const h of hosts) {
    const past = await h.client.send('GET', `${link}?documentVersion=${version + 1}`, undefined, { pragma: 'xn-no-fwd' });
    assert.is(past.status, 404, `${h.host.id} holds a version past ${version}`);
  }
}

/**
 * Sends `send()` through `entry` while the owner's link is busy, lets the link go once the entry
 * host has sent the request three times (the original and two retries), and returns the answer.
 */
async function throughBusyOwner<T>(owner: TestHost, entry: TestHost, link: string, send: () => Promise<T>): Promise<T> {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const busy = owner.host.cluster.store.serialized(link, () => held);
  const before = await forwarded(entry);
  const answer = send();
  try {
    await waitFor('the entry host sent the request three times', async () => (await forwarded(entry)) >= before + 3, 9_000);
  } finally {
    release();
  }
  await busy;
  return answer;
}

t('a PUT the entry host sends again after hop timeouts is applied once and answered 200', async ({ hosts }) => {
  const link = '/core/examples/dup';
  assert.is((await hosts[0]!.client.post('/core/examples', { documentSelfLink: link, name: 'before' })).status, 200);
  const { owner, entry } = await ownerOf(hosts, link);
  await everyHostAt(hosts, link, 0);
  const r = await throughBusyOwner(owner, entry, link, () => entry.client.put<Doc>(link, { name: 'once' }));
  assert.is(r.status, 200, r.text);
  assert.is(r.body.documentVersion, 1);
  assert.is(r.body.name, 'once');
  await everyHostAt(hosts, link, 1);
});

t('a CAS that took effect is answered 200 with the version it made, never 400', async ({ hosts }) => {
  const link = '/core/examples/dup-cas';
  assert.is((await hosts[0]!.client.post('/core/examples', { documentSelfLink: link, name: 'before' })).status, 200);
  const { owner, entry } = await ownerOf(hosts, link);
  await everyHostAt(hosts, link, 0);
  const r = await throughBusyOwner(owner, entry, link, () =>
    entry.client.patch<Doc>(link, { kind: KINDS.strictUpdateRequest, name: 'cas', documentVersion: 0 }),
  );
  assert.is(r.status, 200, r.text);
  assert.is(r.body.documentVersion, 1);
  assert.is(r.body.name, 'cas');
  await everyHostAt(hosts, link, 1);
});

t.run();
