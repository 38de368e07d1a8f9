/**
 * Peer endpoints and authorization across three in-process hosts sharing a peer secret. Without
 * authorization: log shipping, synchronization, replication pragmas, gossip, insert-self and a
 * client's join are refused (403) without the secret and served with it, also through the
 * forwarding helper; the secret is compared in constant time and never sent to a watch's
 * callback; the hosts still replicate to each other; a request marked `xn-fwd` outside the batch
 * endpoint, even a member's, has its body checked. With authorization: a token issued by one
 * host works on every host, forwarded requests are checked again by the owner with the caller's
 * token, and LOGOUT on one host ends the session on all of them. Flag combinations that cannot
 * work stop the start.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import { suite, test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { isKryptonError } from '../../lib/errors.js';
import { defaultConfig, parseHostArgs } from '../../server/base/config.js';
import { Host } from '../../server/host/host.js';
import { PEER_SECRET_HEADER } from '../../server/auth/peer-auth.js';
import { encodeBatch, REPLICATION_CONTENT_TYPE } from '../../server/replication/replicator.js';
import { closeAll, startGroup, tempDir, type TestHost } from '../support/hosts.js';
import type { Client } from '../support/http.js';
import { waitFor } from '../support/wait.js';

const isUsageError = (e: unknown) => isKryptonError(e) && e.code === 'INVALID_USAGE';

const SECRET = 'peer-secret-for-tests-0123456789';
const member = { [PEER_SECRET_HEADER]: SECRET };

const open = suite<{ hosts: TestHost[] }>('peer secret, authorization off');

open.before(async (ctx) => {
  ctx.hosts = await startGroup(3, (i) => ({ id: `p${i}`, peerSecret: SECRET }), member);
});
open.after((ctx) => closeAll(ctx.hosts));

open('peer endpoints answer 403 without the secret and serve members', async ({ hosts }) => {
  const c = hosts[0]!.client;
  const batch = encodeBatch({ from: 'someone', records: [] });
  const msgpack = { 'content-type': REPLICATION_CONTENT_TYPE };
  const refused = await c.send('POST', '/core/node-selectors/default/replication', batch, msgpack);
  assert.is(refused.status, 403);
  assert.match(String(refused.body.message), /^forbidden: POST \/core\/node-selectors\/default\/replication accepts requests from members/);
  assert.is(refused.body.statusCode, 403);
  assert.is(refused.body.documentKind, KINDS.serviceErrorResponse);
  // Replicas answer log shipping in msgpack: one result per record, none here.
  const served = await c.send('POST', '/core/node-selectors/default/replication', batch, { ...msgpack, ...member });
  assert.is(served.status, 200);
  assert.is(served.headers['content-type'], REPLICATION_CONTENT_TYPE);
  assert.is(
    (await c.send('POST', '/core/node-selectors/default/replication', batch, { ...msgpack, [PEER_SECRET_HEADER]: `${SECRET}x` })).status,
    403,
  );

  // Batched forwarding is served before koa; a non-member falls through to the access check.
  const batched = await c.send('POST', '/core/node-selectors/default/forwarded', batch, msgpack);
  assert.is(batched.status, 403);
  assert.match(String(batched.body.message), /^forbidden: POST \/core\/node-selectors\/default\/forwarded accepts requests from members/);

  // A host's part of a query across hosts reads every document: members only.
  const part = { querySpec: { query: { term: { propertyName: 'name', matchValue: 'x' } } }, asOfMicros: null, withDocs: true };
  const outsider = await c.send('POST', '/core/node-selectors/default/query', part);
  assert.is(outsider.status, 403);
  assert.match(String(outsider.body.message), /^forbidden: POST \/core\/node-selectors\/default\/query accepts requests from members/);
  const asMember = await c.send<{ hits: unknown[] }>('POST', '/core/node-selectors/default/query', part, member);
  assert.is(asMember.status, 200);
  assert.ok(Array.isArray(asMember.body.hits));

  const heads = { kind: 'heads', factoryLink: '/core/examples' };
  assert.is((await c.send('POST', '/core/node-selectors/default/synch', heads)).status, 403);
  assert.is((await c.send('POST', '/core/node-selectors/default/synch', heads, member)).status, 200);
  assert.is((await c.send('GET', '/core/node-selectors/default/synch')).status, 200); // statistics are for anyone

  const doc = { documentSelfLink: '/core/examples/injected', name: 'x', documentVersion: 9, documentEpoch: 9 };
  for (const pragma of ['xn-rpl', 'xn-synch-peer', 'xn-synch-owner']) {
    assert.is((await c.send('PATCH', '/core/examples/injected', doc, { pragma })).status, 403, pragma);
  }

  const state = (await c.send('GET', '/core/node-groups/default')).body;
  assert.is((await c.send('PATCH', '/core/node-groups/default', state)).status, 403); // gossip
  assert.is((await c.send('PATCH', '/core/node-groups/default', state, member)).status, 200);
  const self = (state as { nodes: Record<string, unknown> }).nodes.p0;
  assert.is((await c.send('POST', '/core/node-groups/default', self)).status, 403); // insert-self
  const join = { kind: KINDS.joinPeerRequest, memberGroupReference: 'http://127.0.0.1:9/core/node-groups/default' };
  const refusedJoin = await c.send('POST', '/core/node-groups/default', join);
  assert.is(refusedJoin.status, 403);
  assert.match(String(refusedJoin.body.message), /JoinPeerRequest needs the peer secret/);
  // Client requests to the group stay open.
  const quorum = await c.send('PATCH', '/core/node-groups/default', {
    kind: KINDS.updateQuorumRequest,
    membershipQuorum: 2,
    isGroupUpdate: false,
  });
  assert.is(quorum.status, 200, quorum.text);

  // The forwarding helper is judged by the request it forwards.
  const fwd = (path: string, target = 'PEER_ID&peer=p1') =>
    `/core/node-selectors/default/forwarding?path=${encodeURIComponent(path)}&target=${target}`;
  assert.is((await c.send('POST', fwd('/core/node-selectors/default/synch'), heads)).status, 403);
  assert.is((await c.send('PATCH', fwd('/core/node-groups/default', 'ALL'), state)).status, 403);
  assert.is((await c.send('POST', fwd('/core/node-selectors/default/synch'), heads, member)).status, 200);
  assert.is((await c.send('GET', fwd('/core/examples', 'ALL'))).status, 200);
});

open('members prove themselves to each other: writes replicate, gossip flows', async ({ hosts }) => {
  const r = await hosts[2]!.client.post('/core/examples', { documentSelfLink: 'everywhere', name: 'e' });
  assert.is(r.status, 200, r.text);
  for (const h of hosts) {
    await waitFor(
      `copy on ${h.host.id}`,
      async () => (await h.client.send('GET', '/core/examples/everywhere', undefined, { pragma: 'xn-no-fwd' })).status === 200,
    );
  }
});

open('a request marked xn-fwd outside the batch endpoint is checked like a client request, even from a member', async ({ hosts }) => {
  const c = hosts[0]!.client;
  // The schema wants a string id. The forwarding helper relays a client's request with the secret
  // and xn-fwd, unchecked: only owner routing's batches are taken as their entry host checked them.
  const body = (n: number) => ({ documentSelfLink: `/core/examples/unchecked-${n}`, name: 'x', id: 5 });
  for (const headers of [{ pragma: 'xn-fwd' }, { pragma: 'xn-fwd', ...member }]) {
    const r = await c.send('POST', '/core/examples', body(1), headers);
    assert.is(r.status, 400);
    assert.is(r.body.message, 'invalid body: id must be string');
  }
  const helper = await c.send('POST', '/core/node-selectors/default/forwarding?path=/core/examples&target=KEY_HASH', body(2));
  assert.is(helper.status, 400);
  assert.is(helper.body.message, 'invalid body: id must be string');
});

open('the secret is compared as equal-length digests with timingSafeEqual', async ({ hosts }) => {
  const original = crypto.timingSafeEqual;
  const lengths: [number, number][] = [];
  crypto.timingSafeEqual = ((a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
    lengths.push([a.byteLength, b.byteLength]);
    return original(a, b);
  }) as typeof crypto.timingSafeEqual;
  try {
    const c = hosts[1]!.client;
    for (const presented of ['x', SECRET.slice(0, -1), `${SECRET}${'y'.repeat(100)}`]) {
      assert.is(
        (
          await c.send(
            'POST',
            '/core/node-selectors/default/synch',
            { kind: 'heads', factoryLink: '/core/examples' },
            { [PEER_SECRET_HEADER]: presented },
          )
        ).status,
        403,
      );
    }
  } finally {
    crypto.timingSafeEqual = original;
  }
  assert.ok(lengths.length >= 3, JSON.stringify(lengths));
  assert.ok(
    lengths.every(([a, b]) => a === 32 && b === 32),
    JSON.stringify(lengths),
  );
});

open('a watch callback goes to its subscriber without the secret', async ({ hosts }) => {
  const seen: http.IncomingHttpHeaders[] = [];
  const sink = http.createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => res.end('{}'));
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  try {
    const c = hosts[0]!.client;
    const reference = `http://127.0.0.1:${(sink.address() as { port: number }).port}/cb`;
    assert.is((await c.post('/core/examples/everywhere/subscriptions', { reference })).status, 200);
    assert.is((await c.patch('/core/examples/everywhere', { name: 'notify' })).status, 200);
    await waitFor('callback', () => seen.length > 0);
    assert.is(seen[0]![PEER_SECRET_HEADER], undefined);
    assert.is(seen[0]!.pragma, 'xn-nt');
  } finally {
    await new Promise((r) => sink.close(r));
  }
});

const ADMIN = 'admin@localhost';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const as = (token: string) => ({ 'x-xenon-auth-token': token });

async function login(c: Client, user: string, password: string): Promise<string> {
  const r = await c.send('POST', '/core/authn/basic', { requestType: 'LOGIN' }, { authorization: basic(user, password) });
  assert.is(r.status, 200, r.text);
  return r.headers['x-xenon-auth-token'] as string;
}

const authz = suite<{ hosts: TestHost[] }>('peer secret, authorization on');

authz.before(async (ctx) => {
  ctx.hosts = await startGroup(
    3,
    (i) => ({ id: `z${i}`, peerSecret: SECRET, isAuthorizationEnabled: true, adminUser: ADMIN, adminPassword: 'admin-pw' }),
    member,
  );
  // Every host bootstraps the same admin documents; they settle on one copy.
  for (const h of ctx.hosts) await h.host.cluster.admin!.ready;
});
authz.after((ctx) => closeAll(ctx.hosts));

authz('a token from one host works on every host; forwarded requests are checked again by the owner', async ({ hosts }) => {
  const [a, b, c] = hosts as [TestHost, TestHost, TestHost];
  const admin = await login(a.client, ADMIN, 'admin-pw');
  const docs = ['f1', 'f2', 'f3', 'f4', 'f5', 'f6'];
  for (const [i, id] of docs.entries()) {
    const r = await hosts[i % 3]!.client.send('POST', '/core/examples', { documentSelfLink: id, name: id }, as(admin));
    assert.is(r.status, 200, r.text);
  }
  assert.is((await b.client.send('POST', '/core/authz/users', { documentSelfLink: 'ro', email: 'ro@localhost' }, as(admin))).status, 200);
  assert.is(
    (
      await c.client.send(
        'POST',
        '/core/auth/credentials',
        { documentSelfLink: 'ro', userEmail: 'ro@localhost', privateKey: 'ro-pw' },
        as(admin),
      )
    ).status,
    200,
  );
  assert.is(
    (
      await a.client.send(
        'POST',
        '/core/authz/roles',
        { documentSelfLink: 'ro', userLinks: ['/core/authz/users/ro'], pathPrefixes: ['/core/examples'], verbs: ['GET'], policy: 'ALLOW' },
        as(admin),
      )
    ).status,
    200,
  );

  const reader = await login(b.client, 'ro@localhost', 'ro-pw');
  const owners = new Set<string>();
  for (const h of hosts) {
    for (const id of docs) {
      const r = await h.client.send<{ documentOwner: string }>('GET', `/core/examples/${id}`, undefined, as(reader));
      assert.is(r.status, 200, `${h.host.id} ${id}: ${r.text}`);
      owners.add(r.body.documentOwner);
      assert.is((await h.client.send('PATCH', `/core/examples/${id}`, { name: 'no' }, as(reader))).status, 403);
    }
  }
  assert.is(owners.size, 3, 'the documents are owned by every host, so most reads were forwarded');

  // The owner does not take a member's word for who the caller is: the token travels and is checked.
  const sel = await a.client.send<{ ownerNodeId: string }>('POST', '/core/node-selectors/default', { key: '/core/examples/f1' }, as(admin));
  const owner = hosts.find((h) => h.host.id === sel.body.ownerNodeId)!;
  assert.is(
    (await owner.client.send('PATCH', '/core/examples/f1', { name: 'no' }, { ...member, ...as(reader), pragma: 'xn-fwd' })).status,
    403,
  );
  assert.is((await owner.client.send('PATCH', '/core/examples/f1', { name: 'system' }, { ...member, pragma: 'xn-fwd' })).status, 200);
  assert.is((await owner.client.send('PATCH', '/core/examples/f1', { name: 'no' }, { pragma: 'xn-fwd' })).status, 403);

  // The forwarding helper carries the caller's token, and the caller needs the target path too.
  const fwd = `/core/node-selectors/default/forwarding?path=${encodeURIComponent('/core/examples/f2')}&target=KEY_HASH`;
  const adminFwd = await c.client.send('GET', fwd, undefined, as(admin));
  assert.is(adminFwd.status, 200, adminFwd.text);
  assert.is((await c.client.send('GET', fwd, undefined, as(reader))).status, 403);

  // LOGOUT on one host ends the session on every host.
  assert.is((await c.client.send('POST', '/core/authn/basic', { requestType: 'LOGOUT' }, as(reader))).status, 200);
  for (const h of hosts) {
    await waitFor(
      `session ended on ${h.host.id}`,
      async () => (await h.client.send('GET', '/core/examples/f1', undefined, as(reader))).status === 403,
    );
  }
});

authz('without a token, peer secret or role: 403 on every host', async ({ hosts }) => {
  for (const h of hosts) {
    assert.is((await h.client.get('/core/examples/f1')).status, 403);
    assert.is((await h.client.post('/core/examples', { name: 'x' })).status, 403);
    assert.is(
      (await h.client.send('PATCH', '/core/node-groups/default', { kind: KINDS.updateQuorumRequest, membershipQuorum: 1 })).status,
      403,
    );
    assert.is(
      (
        await h.client.send('POST', '/core/node-groups/default', {
          kind: KINDS.joinPeerRequest,
          memberGroupReference: 'http://127.0.0.1:9/core/node-groups/default',
        })
      ).status,
      403,
    );
  }
});

test('flag combinations that cannot work stop the start with one line', async () => {
  assert.throws(
    () => parseHostArgs(['--isAuthorizationEnabled', '--peerNodes=http://127.0.0.1:8001']),
    (e: unknown) =>
      isUsageError(e) &&
      /needs --peerSecret or --peerSecretFile \(or --sslClientAuthMode=WANT or NEED with certificates from --caFile\)/.test(
        (e as Error).message,
      ),
  );
  assert.throws(
    () => parseHostArgs(['--peerSecret=short']),
    (e: unknown) => isUsageError(e) && /at least 16/.test((e as Error).message),
  );
  assert.throws(
    () => parseHostArgs([`--peerSecret=${SECRET}`, '--peerSecretFile=/tmp/x']),
    (e: unknown) => isUsageError(e) && /not both/.test((e as Error).message),
  );
  const ok = parseHostArgs([
    '--isAuthorizationEnabled',
    '--peerNodes=http://127.0.0.1:8001',
    `--peerSecret=${SECRET}`,
    '--adminPassword=pw',
  ]);
  assert.is(ok.isAuthorizationEnabled, true);
  assert.is(ok.adminPassword, 'pw');

  const dir = await tempDir();
  try {
    const config = {
      ...defaultConfig(),
      port: 0,
      sandbox: dir.path,
      logLevel: 'silent',
      isAuthorizationEnabled: true,
      peerNodes: ['http://127.0.0.1:1'],
    };
    await Host.start(config).then(
      () => assert.unreachable('started'),
      (e: Error) => assert.match(e.message, /needs --peerSecret/),
    );
    await Host.start({ ...config, peerNodes: [], peerSecretFile: `${dir.path}/missing` }).then(
      () => assert.unreachable('started'),
      (e: Error) => assert.match(e.message, /cannot read --peerSecretFile/),
    );
  } finally {
    await dir.remove();
  }
});

open.run();
authz.run();
test.run();
