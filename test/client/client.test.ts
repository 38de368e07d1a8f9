/**
 * The client (`krypton/client`) against in-process hosts, as a program uses it: owner-aware
 * routing over a 3-host group (the hosts' forwarding counters in GET /core/management stay
 * still, where the same requests through one host are forwarded), typed CRUD, queries with the
 * builder, errors carrying Xenon's body, and retries through a connection that drops the
 * answer: a write sent with its Idempotency-Key is applied once however often it is sent, and
 * a write without one is not sent again.
 */

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isNotFound, KryptonClient, KryptonClientError, query } from '../../client/index.js';
import { makeCerts } from '../support/certs.js';
import { closeAll, joinAll, startGroup, startHost, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

interface Example {
  name?: string;
  counter?: number;
  keyValues?: Record<string, string>;
  tags?: string[];
}

async function forwarded(hosts: TestHost[]): Promise<number> {
  let n = 0;
  for (const h of hosts) {
    const s = await h.client.get<{ forwardStats: { requests: number } }>('/core/management');
    n += s.body.forwardStats.requests;
  }
  return n;
}

test('document requests go straight to their owners; the same load through one host is forwarded', async () => {
  const hosts = await startGroup(3, () => ({}));
  const client = await KryptonClient.connect({ hosts: [hosts[0]!.host.uri] });
  const oneHost = new KryptonClient({ hosts: [hosts[0]!.host.uri], routing: 'any' });
  try {
    const examples = client.factory<Example>('/core/examples');
    const before = await forwarded(hosts);
    for (let i = 0; i < 30; i++) {
      const d = await examples.create({ documentSelfLink: `r${i}`, name: `n${i}` });
      assert.is(d.documentSelfLink, `/core/examples/r${i}`);
      const p = await examples.doc(`r${i}`).patch({ counter: i });
      assert.is(p.documentVersion, 1);
      assert.is((await examples.get(`r${i}`)).counter, i);
    }
    assert.is(await forwarded(hosts), before, 'no request was forwarded');
    assert.is(client.stats.toOwner, 90);

    const viaOne = oneHost.factory<Example>('/core/examples');
    for (let i = 0; i < 30; i++) await viaOne.doc(`r${i}`).patch({ counter: 100 + i });
    // About two thirds of the links are owned by the other two hosts.
    assert.ok((await forwarded(hosts)) - before >= 10, 'through one host, requests are forwarded');
  } finally {
    await oneHost.close();
    await client.close();
    await closeAll(hosts);
  }
});

test('a view gone stale (a host joined) is read again when an answer names another owner', async () => {
  const hosts = await startGroup(2, () => ({}));
  const client = await KryptonClient.connect({ hosts: [hosts[0]!.host.uri], viewMaxAgeMs: 600_000 });
  try {
    assert.is(Object.keys(client.membership!.nodes).length, 2);
    hosts.push(await startHost());
    await joinAll(hosts);
    const examples = client.factory<Example>('/core/examples');
    // Some of these are owned by the new host: the old view sends them elsewhere, which forwards.
    for (let i = 0; i < 30; i++) await examples.create({ documentSelfLink: `s${i}`, name: `s${i}` });
    await waitFor('the view to hold 3 members', () => Object.keys(client.membership!.nodes).length === 3);
    const before = await forwarded(hosts);
    for (let i = 0; i < 30; i++) await examples.doc(`s${i}`).patch({ counter: i });
    assert.is(await forwarded(hosts), before, 'with the fresh view nothing is forwarded');
  } finally {
    await client.close();
    await closeAll(hosts);
  }
});

test('typed CRUD, a query, and errors as values with the host answer', async () => {
  const h = await startHost();
  const client = await KryptonClient.connect({ hosts: [h.host.uri] });
  try {
    const examples = client.factory<Example>('/core/examples');
    await examples.create({ documentSelfLink: 'a', name: 'alpha', keyValues: { team: 'x' } });
    await examples.create({ documentSelfLink: 'b', name: 'beta', keyValues: { team: 'y' } });
    const generated = await examples.create({ name: 'gamma' });
    assert.ok(generated.documentSelfLink.startsWith('/core/examples/'));
    const put = await examples.doc('a').put({ name: 'alpha2', counter: 3 });
    assert.is(put.documentVersion, 1);
    assert.is((await examples.doc('a').get(0)).name, 'alpha');

    const r = await client.query<Example>(
      query().kind('com:vmware:xenon:services:common:ExampleService:ExampleServiceState').eq('keyValues.team', 'y').expand(),
    );
    assert.equal(r.documentLinks, ['/core/examples/b']);
    assert.is(r.documents['/core/examples/b']?.name, 'beta');
    assert.equal((await examples.list()).sort(), ['/core/examples/a', '/core/examples/b', generated.documentSelfLink].sort());

    const err = await examples.create({ documentSelfLink: 'a', name: 'again' }).catch((e: unknown) => e);
    assert.instance(err, KryptonClientError);
    const e = err as KryptonClientError;
    assert.is(e.kind, 'http');
    assert.is(e.status, 409);
    assert.is(e.body?.statusCode, 409);
    assert.match(e.body?.message ?? '', /already started/);

    const bad = (await examples.create({ name: 5 as unknown as string }).catch((x: unknown) => x)) as KryptonClientError;
    assert.is(bad.status, 400);
    assert.is(bad.body?.documentKind, 'com:vmware:xenon:common:ServiceErrorResponse');

    await examples.doc('b').delete();
    assert.is(await examples.doc('b').find(), undefined);
    assert.ok(isNotFound(await examples.get('b').catch((x: unknown) => x)));
  } finally {
    await client.close();
    await h.close();
  }
});

/**
 * A proxy in front of one host that forwards everything but, for the first `drops` requests of
 * the given method, destroys the client's connection once the host has answered: the write took
 * effect and the client never hears it.
 */
async function droppingProxy(method: string, drops: number) {
  let dropped = 0;
  const seen: { method: string; key: string | undefined }[] = [];
  let upstream = new URL('http://127.0.0.1:1');
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === method) seen.push({ method, key: req.headers['idempotency-key'] as string | undefined });
      const fwd = http.request(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
        (up) => {
          const body: Buffer[] = [];
          up.on('data', (c: Buffer) => body.push(c));
          up.on('end', () => {
            if (req.method === method && dropped < drops) {
              dropped++;
              req.socket.destroy();
              return;
            }
            res.writeHead(up.statusCode ?? 500, up.headers);
            res.end(Buffer.concat(body));
          });
        },
      );
      fwd.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    target(uri: string) {
      upstream = new URL(uri);
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

test('a write whose answer is lost is sent again under its key and applied once', async () => {
  // The host's public URI is the proxy, so the membership the client learns routes through it.
  const proxy = await droppingProxy('PATCH', 2);
  const h = await startHost({ publicUri: proxy.url });
  proxy.target(`http://127.0.0.1:${h.host.port}`);
  const client = await KryptonClient.connect({ hosts: [proxy.url], retryBaseMs: 5 });
  try {
    const examples = client.factory<Example>('/core/examples');
    await examples.create({ documentSelfLink: 'once', name: 'n' });
    const patched = await examples.doc('once').patch({ tags: ['t1'], counter: 1 });
    assert.is(patched.documentVersion, 1);
    assert.is(proxy.seen.length, 3, 'sent three times: two answers dropped');
    assert.ok(
      proxy.seen.every((s) => s.key !== undefined && s.key === proxy.seen[0]!.key),
      'every try carries one key',
    );
    const latest = await examples.get('once');
    assert.is(latest.documentVersion, 1, 'applied once');
  } finally {
    await client.close();
    await proxy.close();
    await h.close();
  }
});

test('without a key, a write whose answer is lost is not sent again', async () => {
  const h = await startHost();
  const proxy = await droppingProxy('PATCH', 1);
  proxy.target(h.host.uri);
  const client = new KryptonClient({ hosts: [proxy.url], routing: 'any', retryBaseMs: 5 });
  try {
    const examples = client.factory<Example>('/core/examples');
    await examples.create({ documentSelfLink: 'nokey', name: 'n' });
    const err = (await client
      .request('PATCH', '/core/examples/nokey', { counter: 1 }, { idempotencyKey: false })
      .catch((e: unknown) => e)) as KryptonClientError;
    assert.instance(err, KryptonClientError);
    assert.is(err.kind, 'network');
    assert.is(proxy.seen.length, 1, 'sent once');
    assert.is((await examples.get('nokey')).documentVersion, 1, 'the host did apply it, once');
  } finally {
    await client.close();
    await proxy.close();
    await h.close();
  }
});

test('the query builder: ranges, negation, sorting, paging through every page', async () => {
  const h = await startHost();
  const client = await KryptonClient.connect({ hosts: [h.host.uri] });
  try {
    const examples = client.factory<Example>('/core/examples');
    for (let i = 0; i < 7; i++) await examples.create({ documentSelfLink: `q${i}`, name: `q${i}`, counter: i });
    const kind = 'com:vmware:xenon:services:common:ExampleService:ExampleServiceState';
    const mid = await client.query<Example>(
      query().kind(kind).range('counter', { min: 2, max: 5 }).not(query().eq('name', 'q3')).sortBy('counter', 'DESC', 'LONG').expand(),
    );
    assert.equal(
      mid.documentLinks.map((l) => mid.documents[l]?.counter),
      [5, 4, 2],
    );
    const pages: string[][] = [];
    for await (const page of client.queryPages<Example>(query().kind(kind).prefix('name', 'q').sortBy('name').pageSize(3))) {
      pages.push(page.documentLinks);
    }
    assert.equal(
      pages.map((p) => p.length),
      [3, 3, 1],
    );
    assert.equal(
      pages.flat(),
      Array.from({ length: 7 }, (_, i) => `/core/examples/q${i}`),
    );
  } finally {
    await client.close();
    await h.close();
  }
});

test('over HTTPS with a CA file: the client verifies the hosts against it', async () => {
  const certs = await makeCerts();
  const h = await startHost({ port: -1, securePort: 0, keyFile: certs.hostKey, certificateFile: certs.hostCert, caFile: certs.caCert });
  const trusting = await KryptonClient.connect({ hosts: [h.host.uri], caFile: certs.caCert });
  const untrusting = new KryptonClient({ hosts: [h.host.uri], deadlineMs: 500 });
  try {
    assert.ok(h.host.uri.startsWith('https://'));
    const d = await trusting.factory<Example>('/core/examples').create({ documentSelfLink: 'tls', name: 'over tls' });
    assert.is(d.name, 'over tls');
    assert.is(trusting.membership?.nodes[h.host.id]?.groupReference.startsWith('https://'), true);
    const e = (await untrusting
      .document('/core/examples/tls')
      .get()
      .catch((x: unknown) => x)) as KryptonClientError;
    assert.instance(e, KryptonClientError);
    assert.match(e.message, /certificate/i);
  } finally {
    await trusting.close();
    await untrusting.close();
    await h.close();
    await certs.remove();
  }
});

test('login: the token is kept, sent, and renewed before the session ends', async () => {
  const h = await startHost({ isAuthorizationEnabled: true, adminUser: 'admin@localhost', adminPassword: 'changeme-123' });
  const client = new KryptonClient({ hosts: [h.host.uri] });
  try {
    const examples = client.factory<Example>('/core/examples');
    const guest = (await examples.create({ documentSelfLink: 'g', name: 'guest' }).catch((x: unknown) => x)) as KryptonClientError;
    assert.is(guest.status, 403, 'without a login the guest is refused');
    // The admin exists once the host has made it.
    await waitFor('the admin user', () =>
      client.login('admin@localhost', 'changeme-123', 2).then(
        () => true,
        () => false,
      ),
    );
    const first = client.token;
    assert.ok(first);
    assert.is((await examples.create({ documentSelfLink: 'a', name: 'admin' })).name, 'admin');
    // A 2 s session is renewed after 80% of it, at the next request.
    await waitFor(
      'the renewal',
      async () => {
        await examples.get('a');
        return client.token !== first;
      },
      5000,
    );
    // The host ends the first session when its time is up; the client goes on with the new one.
    await waitFor(
      'the first session to end',
      async () => (await h.client.send('GET', '/core/examples/a', undefined, { 'x-xenon-auth-token': first! })).status === 403,
      5000,
    );
    assert.is((await examples.get('a')).name, 'admin', 'still logged in after the first session ended');
  } finally {
    await client.close();
    await h.close();
  }
});

test.run();
