/**
 * The client hosts talk to each other with (server/net/peers.ts): answers come back whole with their
 * status and headers, member headers go to members only, and every way a peer can fail (refused,
 * silent past the deadline, cut off mid-answer, client closed) is a PEER_UNAVAILABLE KryptonError, never a hang.
 */

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isPeerError, isPeerTimeout, PeerClient } from '../../server/net/peers.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A server answering each request with `answer`; the requests it saw are in `seen`. */
async function serve(
  answer: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void,
): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      answer(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

test('an answer comes back whole, with status, headers and a body over many chunks', async () => {
  const big = 'x'.repeat(300_000);
  const s = await serve((_req, res, body) => {
    res.writeHead(201, { 'content-type': 'text/plain', 'x-extra': 'yes' });
    res.write(`${body}:`);
    res.end(big);
  });
  const client = new PeerClient({ memberHeaders: { 'x-krypton-peer': 'secret' } });
  try {
    const r = await client.request(`${s.url}/some/path?a=1`, { method: 'POST', body: 'hello', timeoutMs: 5000 });
    assert.is(r.status, 201);
    assert.is(r.headers['x-extra'], 'yes');
    assert.is(r.body.toString('utf8'), `hello:${big}`);
    assert.is(s.seen[0]!.url, '/some/path?a=1');
    assert.is(s.seen[0]!.method, 'POST');
    // A body without a content type is sent as JSON; member headers go to members.
    assert.is(s.seen[0]!.headers['content-type'], 'application/json');
    assert.is(s.seen[0]!.headers['x-krypton-peer'], 'secret');
    // The same URL again (its parsed form is cached) reaches the same place.
    const again = await client.request(`${s.url}/some/path?a=1`, { method: 'GET', timeoutMs: 5000 });
    assert.is(again.status, 201);
    assert.is(s.seen[1]!.url, '/some/path?a=1');
    assert.is(client.stats.requests, 2);
    assert.is(client.stats.failures, 0);
  } finally {
    await client.close();
    await s.close();
  }
});

test('an external request never carries the member headers', async () => {
  const s = await serve((_req, res) => res.end('ok'));
  const client = new PeerClient({ memberHeaders: { 'x-krypton-peer': 'secret' } });
  try {
    const r = await client.request(`${s.url}/callback`, {
      method: 'POST',
      body: '{}',
      headers: { 'x-a': 'b' },
      timeoutMs: 5000,
      external: true,
    });
    assert.is(r.body.toString(), 'ok');
    assert.is(s.seen[0]!.headers['x-krypton-peer'], undefined);
    assert.is(s.seen[0]!.headers['x-a'], 'b');
  } finally {
    await client.close();
    await s.close();
  }
});

test('a peer that never answers fails the request at its deadline', async () => {
  const s = await serve(() => undefined);
  const client = new PeerClient();
  try {
    const started = Date.now();
    const e = await client.request(`${s.url}/slow`, { method: 'GET', timeoutMs: 200 }).then(
      () => undefined,
      (x: unknown) => x,
    );
    assert.ok(isPeerError(e));
    assert.match((e as Error).message, /timed out after 200 ms/);
    assert.ok(isPeerTimeout(e), 'a timeout, which membership counts as a miss rather than a death');
    assert.ok(Date.now() - started < 5000, 'failed near its deadline, not at some later timeout');
    assert.is(client.stats.failures, 1);
  } finally {
    await client.close();
    await s.close();
  }
});

test('abandon fails the requests in flight to a peer at once, and later ones go out afresh', async () => {
  let answer = false;
  const s = await serve((_req, res) => {
    if (answer) res.end('ok');
  });
  const client = new PeerClient();
  try {
    const started = Date.now();
    const pending = client.request(`${s.url}/hung`, { method: 'GET', timeoutMs: 20_000 }).then(
      () => undefined,
      (x: unknown) => x,
    );
    await new Promise((r) => setImmediate(r));
    client.abandon(new URL(s.url).origin);
    const e = await pending;
    assert.ok(isPeerError(e) && !isPeerTimeout(e));
    assert.ok(Date.now() - started < 5000, 'failed when abandoned, not at its deadline');
    answer = true;
    assert.is((await client.request(`${s.url}/again`, { method: 'GET', timeoutMs: 5000 })).status, 200);
  } finally {
    await client.close();
    await s.close();
  }
});

test('an answer cut off in the middle of its body is a failure, not a short body', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': 1000 });
    res.write('only part of it');
    setImmediate(() => res.destroy());
  });
  const client = new PeerClient();
  try {
    const e = await client.request(`${s.url}/cut`, { method: 'GET', timeoutMs: 5000 }).then(
      () => undefined,
      (x: unknown) => x,
    );
    assert.ok(isPeerError(e));
  } finally {
    await client.close();
    await s.close();
  }
});

test('a refused connection, a malformed URL and a closed client are PEER_UNAVAILABLE', async () => {
  const s = await serve((_req, res) => res.end());
  const url = s.url;
  await s.close(); // nothing listens there now
  const client = new PeerClient();
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (x: unknown) => x,
    );
  try {
    const refused = await failure(client.request(`${url}/x`, { method: 'GET', timeoutMs: 5000 }));
    assert.ok(isPeerError(refused));
    assert.not.ok(isPeerTimeout(refused), 'nothing listens: no timeout');
    assert.ok(isPeerError(await failure(client.request('not a url', { method: 'GET', timeoutMs: 5000 }))));
  } finally {
    await client.close();
  }
  const closed = await failure(client.request(`${url}/x`, { method: 'GET', timeoutMs: 5000 }));
  assert.ok(isPeerError(closed));
  assert.match((closed as Error).message, /closed/);
});

test.run();
