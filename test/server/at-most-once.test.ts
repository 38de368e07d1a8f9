/**
 * At most once: a write forwarded to its owner takes effect once however often the entry host
 * sends it again. Three hosts with a write quorum of 2 and a short operation timeout (hops of
 * 1 s); the owner's link is held busy past several hop timeouts, as a paused owner would be, so
 * the entry host sends the same request again after each one. Once the link is let go the owner
 * runs the original and every retry: the first takes effect, the others are answered with its
 * outcome. A CAS (StrictUpdateRequest PATCH) that took effect is answered as a success. A client's
 * own Idempotency-Key has the same effect, and the request id is in the log record: a restarted
 * owner, and a replica that took the link over, recognize a retry too.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { limits } from '../../lib/limits.js';
import { forwardTo } from '../support/forward.js';
import { closeAll, groupAvailable, startGroup, startHost, startJoined, tempDir, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

interface Doc {
  documentVersion: number;
  name: string;
}

const t = suite<{ hosts: TestHost[] }>('at most once through a non-owner');

t.before(async (ctx) => {
  ctx.hosts = await startGroup(3, (i) => ({ id: `amo-${i + 1}`, membershipQuorum: 2, operationTimeoutMicros: 10_000_000 }));
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

t('a client retrying with its Idempotency-Key, through a non-owner or the owner, is answered with the first outcome', async ({ hosts }) => {
  const link = '/core/examples/dup-key';
  assert.is((await hosts[0]!.client.post('/core/examples', { documentSelfLink: link, name: 'before' })).status, 200);
  const { owner, entry } = await ownerOf(hosts, link);
  const cas = { kind: KINDS.strictUpdateRequest, name: 'keyed', documentVersion: 0 };
  const key = { 'idempotency-key': 'client-retry-1' };
  const first = await entry.client.send<Doc>('PATCH', link, cas, key);
  assert.is(first.status, 200, first.text);
  assert.is(first.body.documentVersion, 1);
  for (const via of [entry, owner]) {
    const again = await via.client.send<Doc>('PATCH', link, cas, key);
    assert.is(again.status, 200, again.text);
    assert.is(again.body.documentVersion, 1);
  }
  // Without the key the same CAS is a new request, and fails as it should.
  const fresh = await entry.client.patch<{ message: string }>(link, cas);
  assert.is(fresh.status, 400);
  assert.is(fresh.body.message, 'Current version 1. Request version 0');
  await everyHostAt(hosts, link, 1);
  const bad = await entry.client.send<{ message: string }>('PATCH', link, cas, { 'idempotency-key': 'x'.repeat(129) });
  assert.is(bad.status, 400);
  assert.match(bad.body.message, /Idempotency-Key must be 1 to 128/);
});

t.run();

/** One forwarded PATCH with `requestId`, sent to `h`'s batch endpoint as an entry host would. */
function forwardedPatch(h: TestHost, link: string, body: unknown, requestId: string): Promise<[number, Doc]> {
  return forwardTo<Doc>(h, [{ method: 'PATCH', url: link, pragma: 'xn-fwd', xenonHeaders: {}, body: JSON.stringify(body), requestId }]);
}

const restart = suite('at most once across a restart');

restart('a restarted owner recognizes a retry: the request id came back with the replay of its log', async () => {
  let h = await startHost({ id: 'amo-solo' });
  try {
    const link = '/core/examples/dup-restart';
    assert.is((await h.client.post('/core/examples', { documentSelfLink: link, name: 'before' })).status, 200);
    const key = { 'idempotency-key': 'before-restart' };
    assert.is((await h.client.send<Doc>('PUT', link, { name: 'keyed' }, key)).body.documentVersion, 1);
    const cas = { kind: KINDS.strictUpdateRequest, name: 'cas', documentVersion: 1 };
    const applied = await forwardedPatch(h, link, cas, 'fwd-1');
    assert.equal([applied[0], applied[1].documentVersion], [200, 2]);
    h = await h.restart();
    const put = await h.client.send<Doc>('PUT', link, { name: 'keyed' }, key);
    assert.is(put.status, 200, put.text);
    assert.is(put.body.documentVersion, 1);
    const [status, doc] = await forwardedPatch(h, link, cas, 'fwd-1');
    assert.is(status, 200, JSON.stringify(doc));
    assert.is(doc.documentVersion, 2);
    assert.is(doc.name, 'cas');
    assert.is((await h.client.get<Doc>(link)).body.documentVersion, 2, 'no new version');
  } finally {
    await h.close();
  }
});

restart.run();

const takeover = suite('at most once across a takeover');

takeover('a replica that took the link over recognizes a retry of a write its old owner applied', async () => {
  const hosts = await startGroup(3, (i) => ({ id: `amt-${i + 1}`, membershipQuorum: 2 }));
  try {
    const link = '/core/examples/dup-takeover';
    assert.is((await hosts[0]!.client.post('/core/examples', { documentSelfLink: link, name: 'before' })).status, 200);
    const { owner } = await ownerOf(hosts, link);
    const cas = { kind: KINDS.strictUpdateRequest, name: 'cas', documentVersion: 0 };
    const key = { 'idempotency-key': 'before-takeover' };
    const first = await owner.client.send<Doc>('PATCH', link, cas, key);
    assert.is(first.status, 200, first.text);
    assert.is(first.body.documentVersion, 1);
    await everyHostAt(hosts, link, 1);
    const rest = hosts.filter((h) => h !== owner);
    hosts.splice(hosts.indexOf(owner), 1);
    await owner.close();
    await waitFor(
      'the old owner UNAVAILABLE and the link owned by another host',
      async () => {
        const g = await rest[0]!.client.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default');
        if (g.body.nodes[owner.host.id]?.status !== 'UNAVAILABLE') return false;
        return (await ownerOf(rest, link)).owner !== undefined;
      },
      20_000,
    );
    // The first read through the owner path takes the link over (a new version, the same state).
    const latest = () =>
      waitFor('the link readable through its new owner', async () => {
        const r = await rest[0]!.client.get<Doc>(link);
        return r.status === 200 ? r.body.documentVersion : undefined;
      });
    const before = await latest();
    for (const via of rest) {
      const again = await via.client.send<Doc>('PATCH', link, cas, key);
      assert.is(again.status, 200, again.text);
      assert.is(again.body.documentVersion, 1);
      assert.is(again.body.name, 'cas');
    }
    assert.is(await latest(), before, 'the retries made no new version');
  } finally {
    await closeAll(hosts);
  }
});

takeover.run();

const fenced = suite('at most once when the first try failed its quorum');

fenced('a retry of a write that was logged but failed its quorum is answered "unknown", never applied again', async () => {
  const hosts = await startGroup(3, (i) => ({ id: `amf-${i + 1}`, membershipQuorum: 2, isPeerSynchronizationEnabled: false }));
  try {
    const link = '/core/examples/dup-fenced';
    assert.is((await hosts[0]!.client.post('/core/examples', { documentSelfLink: link, name: 'before' })).status, 200);
    const { owner } = await ownerOf(hosts, link);
    await everyHostAt(hosts, link, 0);
    const [y, z] = hosts.filter((h) => h !== owner) as [TestHost, TestHost];
    // z takes the link over, as far as the replicas know: they refuse the owner's epoch from now on.
    for (const h of [z, y]) {
      const r = await h.client.post('/core/node-selectors/default/synch', {
        kind: 'promise',
        from: z.host.id,
        factoryLink: '/core/examples',
        asks: [[link, 1]],
      });
      assert.is(r.status, 200, r.text);
    }
    const key = { 'idempotency-key': 'fenced-1' };
    const body = { kind: KINDS.strictUpdateRequest, name: 'cas', documentVersion: 0 };
    const first = await owner.client.send<{ message: string }>('PATCH', link, body, key);
    assert.is(first.status, 500, first.text);
    assert.match(first.body.message, /failed\. Success/);
    const again = await owner.client.send<{ message: string }>('PATCH', link, body, key);
    assert.is(again.status, 500, again.text);
    assert.match(again.body.message, /request fenced-1 was logged here but did not reach its quorum/);
    const held = await owner.client.send<Doc>('GET', link, undefined, { pragma: 'xn-no-fwd' });
    assert.is(held.body.documentVersion, 1, 'the owner logged the first try only');
  } finally {
    await closeAll(hosts);
  }
});

fenced(
  'the "unknown" answer outlives a restart of the owner: its mark is on disk, the replay alone would call the write a success',
  async () => {
    const dirs = await Promise.all([0, 1, 2].map(() => tempDir()));
    // Fixed ports: the restarted owner comes back at the address its peers know.
    const base = 26900 + Math.floor(Math.random() * 500) * 3;
    const config = (i: number) => ({ id: `amr-${i + 1}`, port: base + i, membershipQuorum: 2, isPeerSynchronizationEnabled: false });
    const hosts: TestHost[] = [];
    try {
      await startJoined(
        dirs.map((d) => d.path),
        config,
        hosts,
      );
      const whole = () => groupAvailable(hosts);
      await whole();
      const link = '/core/examples/dup-fenced-restart';
      assert.is((await hosts[0]!.client.post('/core/examples', { documentSelfLink: link, name: 'before' })).status, 200);
      const { owner } = await ownerOf(hosts, link);
      await everyHostAt(hosts, link, 0);
      const [y, z] = hosts.filter((h) => h !== owner) as [TestHost, TestHost];
      for (const h of [z, y]) {
        const r = await h.client.post('/core/node-selectors/default/synch', {
          kind: 'promise',
          from: z.host.id,
          factoryLink: '/core/examples',
          asks: [[link, 1]],
        });
        assert.is(r.status, 200, r.text);
      }
      const key = { 'idempotency-key': 'fenced-restart-1' };
      const body = { kind: KINDS.strictUpdateRequest, name: 'cas', documentVersion: 0 };
      const first = await owner.client.send<{ message: string }>('PATCH', link, body, key);
      assert.is(first.status, 500, first.text);

      const at = hosts.indexOf(owner);
      const restarted = await owner.restart();
      hosts[at] = restarted;
      await whole();
      const again = await restarted.client.send<{ message: string }>('PATCH', link, body, key);
      assert.is(again.status, 500, again.text);
      assert.match(again.body.message, /request fenced-restart-1 was logged here but did not reach its quorum/);
    } finally {
      await closeAll(hosts);
      for (const d of dirs) await d.remove();
    }
  },
);

fenced.run();

const late = suite('at most once for a late retry');

late("a host's retry whose original the owner may have forgotten is answered outcome unknown, never applied again", async () => {
  // One link written past the hard bound of ids it keeps within the retry horizon: the oldest
  // young id is dropped, so the owner can no longer tell a retry from a new write.
  const h = await startHost({ id: 'amo-late' });
  try {
    const link = '/core/examples/late';
    assert.is((await h.client.post('/core/examples', { documentSelfLink: link, name: 'v0', counter: 0 })).status, 200);
    const writes = limits.dedupIdsPerLinkHardMax + 1;
    for (let n = 1; n <= writes; n++) {
      const r = await h.client.send('PATCH', link, { counter: n }, { 'idempotency-key': `late-${n}` });
      assert.is(r.status, 200, r.text);
    }
    const patch = (requestId: string, pragma: string) =>
      forwardTo<Doc & { message?: string }>(h, [
        { method: 'PATCH', url: link, pragma, xenonHeaders: {}, body: JSON.stringify({ name: requestId }), requestId },
      ]);
    const [status, body] = await patch('fwd-retry', 'xn-fwd;kr-retry');
    assert.is(status, 500, JSON.stringify(body));
    assert.match(String(body.message), /retry of a write this host may have applied and forgotten; whether it took effect is unknown/);
    assert.is((await h.client.get<Doc>(link)).body.documentVersion, writes, 'nothing applied');
    // A retry of an id still remembered is answered with its write; a first hop is a new write.
    const [again, earlier] = await patch(`late-${writes}`, 'xn-fwd;kr-retry');
    assert.equal([again, earlier.documentVersion], [200, writes]);
    const [first, made] = await patch('fwd-first', 'xn-fwd');
    assert.equal([first, made.documentVersion, made.name], [200, writes + 1, 'fwd-first']);
  } finally {
    await h.close();
  }
});

late.run();
