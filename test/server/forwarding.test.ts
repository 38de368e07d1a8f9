/**
 * Batched forwarding (server/routing/forwarder.ts, server/http/peer-endpoints.ts): requests entering a host
 * other than their owner travel to the owner packed in batches, and each still gets its own
 * answer, errors included; the answer stream survives any cut into chunks; the endpoint refuses
 * malformed batches with Xenon's error body.
 */
import { Packr } from 'msgpackr';
import { request } from 'undici';
import { suite, test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { selectNodes } from '../../lib/hash.js';
import { AnswerReader, decodeForwardBatch, encodeAnswer, encodeForwardBatch, type ForwardItem } from '../../server/routing/forwarder.js';
import { closeAll, startGroup, type TestHost } from '../support/hosts.js';

test('codec: a batch reads back as written; malformed batches are INVALID_BODY', () => {
  const items: ForwardItem[] = [
    { method: 'POST', url: '/core/examples', pragma: 'xn-fwd', xenonHeaders: { 'x-xenon-rpl-quorum': '2' }, body: '{"name":"a"}' },
    { method: 'GET', url: '/core/examples/a?documentVersion=0', pragma: 'xn-fwd', xenonHeaders: {}, body: undefined },
    { method: 'PUT', url: '/core/examples/a', pragma: 'xn-fwd', xenonHeaders: {}, body: '{"name":"b"}', requestId: 'r-1' },
    { method: 'PATCH', url: '/core/examples/a', pragma: 'xn-fwd', xenonHeaders: {}, body: '{"name":"c"}', requestId: 'r-2', ownerEntry: 4 },
  ];
  assert.equal(decodeForwardBatch(encodeForwardBatch(items)), items);
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return (e as { code?: string }).code;
    }
    return 'no error';
  };
  const p = new Packr({ useRecords: false });
  assert.is(
    code(() => decodeForwardBatch(Buffer.from([0xc1]))),
    'INVALID_BODY',
    'not msgpack',
  );
  assert.is(
    code(() => decodeForwardBatch(p.pack({ a: 1 }))),
    'INVALID_BODY',
    'not a list',
  );
  assert.is(
    code(() => decodeForwardBatch(p.pack([['TRACE', '/x', 'xn-fwd', {}, null]]))),
    'INVALID_BODY',
    'unknown method',
  );
  assert.is(
    code(() => decodeForwardBatch(p.pack([['GET', 'x', 'xn-fwd', {}, null]]))),
    'INVALID_BODY',
    'path without /',
  );
  assert.is(
    code(() => decodeForwardBatch(p.pack([['GET', '/x', 'xn-fwd', { host: 'evil' }, null]]))),
    'INVALID_BODY',
    'a header other than x-xenon-*',
  );
  assert.is(
    code(() => decodeForwardBatch(p.pack([['POST', '/x', 'xn-fwd', {}, 5]]))),
    'INVALID_BODY',
    'a body that is not text',
  );
  assert.is(
    code(() => decodeForwardBatch(p.pack([['PUT', '/x', 'xn-fwd', {}, '{}', 7]]))),
    'INVALID_BODY',
    'a request id that is not text',
  );
  assert.is(
    code(() => decodeForwardBatch(p.pack([['PUT', '/x', 'xn-fwd', {}, '{}', 'r', -1]]))),
    'INVALID_BODY',
    'an owner entry version that is negative',
  );
  assert.is(
    code(() => decodeForwardBatch(p.pack([['PUT', '/x', 'xn-fwd', {}, '{}', 'r'.repeat(129)]]))),
    'INVALID_BODY',
    'a request id over the limit',
  );
  assert.is(
    code(() => decodeForwardBatch(p.pack(Array.from({ length: 1025 }, () => ['GET', '/x', '', {}, null])))),
    'INVALID_BODY',
    'over the item limit',
  );
});

test('answer frames are read back whatever the chunks', () => {
  const frames = Buffer.concat([encodeAnswer(1, 200, '{"a":1}'), encodeAnswer(0, 409, '{"message":"é"}'), encodeAnswer(2, 404, '{}')]);
  for (const size of [1, 2, 3, 7, frames.length]) {
    const got: [number, number, string][] = [];
    const r = new AnswerReader((i, s, t) => got.push([i, s, t]));
    for (let at = 0; at < frames.length; at += size) r.push(frames.subarray(at, at + size));
    assert.equal(
      got,
      [
        [1, 200, '{"a":1}'],
        [0, 409, '{"message":"é"}'],
        [2, 404, '{}'],
      ],
      `chunks of ${size}`,
    );
  }
});

test.run();

const t = suite<{ hosts: TestHost[] }>('forwarding between three hosts');

t.before(async (ctx) => {
  ctx.hosts = await startGroup(3, (i) => ({ id: `host-${i + 1}` }));
});
t.after((ctx) => closeAll(ctx.hosts));

const owner = (link: string) =>
  selectNodes(
    link,
    ['host-1', 'host-2', 'host-3'].map((id) => ({ id, eligible: true })),
    1,
  )[0]!;

t('concurrent requests entering a non-owner travel in batches, each with its own answer', async ({ hosts }) => {
  const a = hosts[0]!;
  // Links owned by the two other hosts only, so every request is forwarded.
  const links: string[] = [];
  for (let i = 0; links.length < 60; i++) if (owner(`/core/examples/fw-${i}`) !== 'host-1') links.push(`/core/examples/fw-${i}`);
  const before = (await a.client.get<{ forwardStats: { batches: number; requests: number } }>('/core/management')).body.forwardStats;
  const created = await Promise.all(
    links.map((l, i) => a.client.post('/core/examples', { documentSelfLink: l, name: `n${i}`, counter: i })),
  );
  created.forEach((r, i) => {
    assert.is(r.status, 200);
    assert.is(r.body.documentSelfLink, links[i]);
    assert.is(r.body.name, `n${i}`);
    assert.is(r.body.documentOwner, owner(links[i]!));
    assert.match(String(r.headers['content-type']), /^application\/json/);
  });
  const after = (await a.client.get<{ forwardStats: { batches: number; requests: number } }>('/core/management')).body.forwardStats;
  assert.is(after.requests - before.requests, 60, 'every request was forwarded');
  assert.ok(after.batches - before.batches < 60, `${after.batches - before.batches} batches carried 60 requests`);

  const patched = await Promise.all(links.map((l, i) => a.client.patch(l, { keyValues: { k: `v${i}` } })));
  patched.forEach((r, i) => {
    assert.is(r.status, 200);
    assert.is(r.body.documentVersion, 1);
    assert.equal(r.body.keyValues, { k: `v${i}` });
  });
  // Query strings, errors and headers reach the owner and come back unchanged.
  const v0 = await a.client.get(`${links[0]}?documentVersion=0`);
  assert.is(v0.status, 200);
  assert.is(v0.body.documentVersion, 0);
  const dup = await a.client.post('/core/examples', { documentSelfLink: links[1], name: 'again' });
  assert.is(dup.status, 409);
  assert.is(dup.body.errorCode, -2147483645);
  const missing = links.length + 1000;
  let gone = `/core/examples/none-${missing}`;
  for (let i = missing; owner(gone) === 'host-1'; i++) gone = `/core/examples/none-${i}`;
  const nf = await a.client.get(gone);
  assert.is(nf.status, 404);
  assert.is(nf.body.statusCode, 404);
  const tooMany = await a.client.send('PATCH', links[2]!, { counter: 99 }, { 'x-xenon-rpl-quorum': '4' });
  assert.is(tooMany.status, 400);
  assert.is(tooMany.body.message, 'Requested quorum 4 is larger than member count 3');
  const del = await a.client.delete(links[3]!);
  assert.is(del.status, 200);
  assert.is((await a.client.get(links[3]!)).status, 404);
});

t('a POST without a documentSelfLink gets an id its entry host owns: created there, not forwarded', async ({ hosts }) => {
  const stats = () =>
    Promise.all(
      hosts.map(async (h) => (await h.client.get<{ forwardStats: { requests: number } }>('/core/management')).body.forwardStats.requests),
    );
  const before = await stats();
  const made = await Promise.all(
    hosts.flatMap((h, i) => Array.from({ length: 20 }, (_, k) => h.client.post('/core/examples', { name: `local-${i}-${k}` }))),
  );
  const links = new Set<string>();
  made.forEach((r, j) => {
    const entry = `host-${Math.floor(j / 20) + 1}`;
    assert.is(r.status, 200);
    const link = String(r.body.documentSelfLink);
    links.add(link);
    assert.is(owner(link), entry, `${link} is owned by the host it entered`);
    assert.is(r.body.documentOwner, entry);
    assert.match(link, /^\/core\/examples\/[0-9a-f]+$/);
  });
  assert.is(links.size, 60, 'every generated id is distinct');
  assert.equal(await stats(), before, 'no POST was forwarded');
  // The copies on the other hosts agree on the owner, as for any document.
  const sample = [...links][7]!;
  for (const h of hosts) assert.is((await h.client.get(sample)).body.documentOwner, owner(sample));
});

t('the forwarding endpoint answers a batch in frames, trusts the checks of the entry host, and refuses bad ones', async ({ hosts }) => {
  const b = hosts[1]!;
  const url = `${b.host.uri}/core/node-selectors/default/forwarded`;
  const items: ForwardItem[] = [
    {
      method: 'POST',
      url: '/core/examples',
      pragma: 'xn-fwd',
      xenonHeaders: {},
      body: '{"documentSelfLink":"/core/examples/direct-1","name":"d"}',
    },
    // The service's own create rule still runs on the owner: it is the create, not a check of the body.
    { method: 'POST', url: '/core/examples', pragma: 'xn-fwd', xenonHeaders: {}, body: '{"documentSelfLink":"/core/examples/direct-2"}' },
    { method: 'PATCH', url: '/core/examples/direct-nobody', pragma: 'xn-fwd', xenonHeaders: {}, body: '{not json' },
    // The schema wants a string id: an entry host would have refused this body, the owner does not check it again.
    {
      method: 'POST',
      url: '/core/examples',
      pragma: 'xn-fwd',
      xenonHeaders: {},
      body: '{"documentSelfLink":"/core/examples/direct-3","name":"n","id":5}',
    },
    // An entry host always names the child a create makes.
    { method: 'POST', url: '/core/examples', pragma: 'xn-fwd', xenonHeaders: {}, body: '{"name":"nameless"}' },
    // Bodies a client could not send are refused from a member too: too deep, or half a surrogate pair.
    {
      method: 'PATCH',
      url: '/core/examples/direct-1',
      pragma: 'xn-fwd',
      xenonHeaders: {},
      body: `{"name":${'['.repeat(5000)}${']'.repeat(5000)}}`,
    },
    { method: 'PATCH', url: '/core/examples/direct-1', pragma: 'xn-fwd', xenonHeaders: {}, body: '{"name":"\\ud800"}' },
  ];
  const r = await request(url, { method: 'POST', body: encodeForwardBatch(items), headers: { 'content-type': 'application/x-msgpack' } });
  assert.is(r.statusCode, 200);
  const answers = new Map<number, [number, Record<string, unknown>]>();
  const reader = new AnswerReader((i, status, text) => answers.set(i, [status, JSON.parse(text) as Record<string, unknown>]));
  reader.push(Buffer.from(await r.body.arrayBuffer()));
  assert.is(answers.size, 7);
  assert.is(answers.get(0)![0], 200);
  assert.is(answers.get(0)![1].documentSelfLink, '/core/examples/direct-1');
  assert.is(answers.get(1)![0], 400);
  assert.is(answers.get(1)![1].message, 'name is required');
  assert.is(answers.get(2)![0], 400);
  assert.match(String(answers.get(2)![1].message), /malformed JSON body/);
  assert.is(answers.get(3)![0], 200);
  assert.is(answers.get(3)![1].id, 5);
  assert.is(answers.get(4)![0], 400);
  assert.match(String(answers.get(4)![1].message), /must be a create naming its child/);
  assert.is(answers.get(5)![0], 400);
  assert.match(String(answers.get(5)![1].message), /nested more than 256 levels/);
  assert.is(answers.get(6)![0], 400);
  assert.is(answers.get(6)![1].message, 'malformed JSON body: a string holds a lone UTF-16 surrogate');

  const junk = await b.client.send('POST', '/core/node-selectors/default/forwarded', Buffer.from([0x93, 0xc1]), {
    'content-type': 'application/x-msgpack',
  });
  assert.is(junk.status, 400);
  assert.is(junk.body.statusCode, 400);
  assert.is(junk.body.documentKind, KINDS.serviceErrorResponse);
  assert.is((await b.client.get('/core/node-selectors/default/forwarded')).status, 405);
  assert.is((await b.client.post('/core/node-selectors/nope/forwarded', {})).status, 404);
});

t('a body the entry host refuses is answered there and never forwarded', async ({ hosts }) => {
  const a = hosts[0]!;
  let link = '/core/examples/refused-0';
  for (let i = 1; owner(link) === 'host-1'; i++) link = `/core/examples/refused-${i}`;
  const forwarded = async () => (await a.client.get<{ forwardStats: { requests: number } }>('/core/management')).body.forwardStats.requests;
  const created = await a.client.post('/core/examples', { documentSelfLink: link, name: 'r' });
  assert.is(created.status, 200);
  const before = await forwarded();
  const badCreate = await a.client.post('/core/examples', { documentSelfLink: `${link}-x`, name: 'r', id: 5 });
  assert.is(badCreate.status, 400);
  assert.is(badCreate.body.message, 'invalid body: id must be string');
  const badPatch = await a.client.patch(link, { counter: 'many' });
  assert.is(badPatch.status, 400);
  assert.match(String(badPatch.body.message), /^invalid body: counter/);
  assert.is(await forwarded(), before, 'neither reached the owner');
  assert.is((await a.client.get(link)).body.documentVersion, 0);
});

t('a direct task entering a non-owner is held by its owner and answered with its end state', async ({ hosts }) => {
  const a = hosts[0]!;
  let link = '/core/example-tasks/direct-0';
  for (let i = 1; owner(link) === 'host-1'; i++) link = `/core/example-tasks/direct-${i}`;
  const forwarded = async () => (await a.client.get<{ forwardStats: { requests: number } }>('/core/management')).body.forwardStats.requests;
  const before = await forwarded();
  const r = await a.client.post<{ taskInfo: { stage: string }; documentOwner: string }>('/core/example-tasks', {
    documentSelfLink: link,
    taskInfo: { isDirect: true },
  });
  assert.is(r.status, 200);
  assert.is(r.body.taskInfo.stage, 'FINISHED');
  assert.is(r.body.documentOwner, owner(link));
  assert.is(await forwarded(), before + 1, 'forwarded in a batch of its own');
});

t.run();
