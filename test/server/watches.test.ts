/**
 * Watches across an owner change, three in-process hosts: a stream on a replica that survives
 * and a callback subscription there see every version of a document in order, exactly once;
 * a stream on the owner that dies is resumed on another host with Last-Event-ID and, joined
 * with what it saw before, is the same gap-free sequence. Also factory streams and bad input.
 */
import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { startHost, type TestHost } from '../support/hosts.js';
import { openStream, type SseEvent, type SseStream } from '../../tools/recipes/sse.js';
import { waitFor } from '../support/wait.js';

interface Doc {
  counter: number;
  documentVersion: number;
  documentOwner: string;
  documentUpdateAction: string;
}

const updates = (events: SseEvent[]) => events.filter((e) => e.event === 'update').map((e) => e.data as Doc);

function assertSequence(docs: Doc[], what: string): void {
  const versions = docs.map((d) => d.documentVersion);
  assert.equal(
    versions,
    versions.map((_, i) => i),
    `${what}: versions ${versions.join(',')}`,
  );
  const counters = docs.map((d) => d.counter);
  for (let i = 1; i < counters.length; i++) assert.ok(counters[i]! >= counters[i - 1]!, `${what}: counters ${counters.join(',')}`);
  for (let c = 0; c <= 10; c++) assert.ok(counters.includes(c), `${what}: counter ${c} missing from ${counters.join(',')}`);
}

test('every version in order across an owner change: stream, resumed stream, callback', async () => {
  const hosts: TestHost[] = [];
  const streams: SseStream[] = [];
  const received: { method: string; body: Doc }[] = [];
  const sink = http.createServer((req, res) => {
    let b = '';
    req.on('data', (c: Buffer) => (b += c.toString()));
    req.on('end', () => {
      received.push({ method: req.method!, body: JSON.parse(b) as Doc });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const sinkUrl = `http://127.0.0.1:${(sink.address() as { port: number }).port}/notify`;
  try {
    for (let i = 0; i < 3; i++) hosts.push(await startHost({ id: `w${i}` }));
    for (const h of hosts.slice(1)) {
      await h.client.post('/core/node-groups/default', {
        kind: KINDS.joinPeerRequest,
        memberGroupReference: `${hosts[0]!.host.uri}/core/node-groups/default`,
        membershipQuorum: 2,
      });
    }
    await waitFor(
      'group available',
      async () => {
        for (const h of hosts) if ((await h.client.get('/core/node-groups/default/available')).status !== 200) return false;
        return true;
      },
      20_000,
    );
    const link = '/core/examples/watched';
    const sel = await hosts[0]!.client.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key: link });
    const owner = hosts.find((h) => h.host.id === sel.body.ownerNodeId)!;
    const [survivor, other] = hosts.filter((h) => h !== owner) as [TestHost, TestHost];

    const onSurvivor = await openStream(`${survivor.host.uri}${link}/subscriptions/stream`);
    const onOwner = await openStream(`${owner.host.uri}${link}/subscriptions/stream`);
    streams.push(onSurvivor, onOwner);
    const sub = await survivor.client.post(`${link}/subscriptions`, { reference: sinkUrl });
    assert.is(sub.status, 200);
    const listed = await survivor.client.get<{ subscribers: Record<string, unknown> }>(`${link}/subscriptions`);
    assert.equal(Object.keys(listed.body.subscribers), [sinkUrl]);

    assert.is((await hosts[0]!.client.post('/core/examples', { documentSelfLink: 'watched', name: 'w', counter: 0 })).status, 200);
    for (let c = 1; c <= 5; c++) assert.is((await hosts[c % 3]!.client.patch(link, { counter: c })).status, 200);
    await waitFor('every host at version 5', async () => {
      for (const h of hosts)
        if ((await h.client.send<Doc>('GET', link, undefined, { pragma: 'xn-no-fwd' })).body.documentVersion !== 5) return false;
      return true;
    });
    await waitFor('owner stream saw version 5', () => updates(onOwner.events).some((d) => d.documentVersion === 5));

    await owner.close();
    hosts.splice(hosts.indexOf(owner), 1);
    await onOwner.ended;
    const resumed = await openStream(`${other.host.uri}${link}/subscriptions/stream`, onOwner.lastEventId());
    streams.push(resumed);
    await waitFor(
      'a new owner',
      async () => {
        const g = await survivor.client.get<Doc>(link);
        return g.status === 200 && g.body.documentOwner !== owner.host.id;
      },
      30_000,
    );
    for (let c = 6; c <= 10; c++) assert.is((await hosts[c % 2]!.client.patch(link, { counter: c })).status, 200);

    const last = (events: SseEvent[]) => updates(events).some((d) => d.counter === 10);
    await waitFor('survivor stream saw counter 10', () => last(onSurvivor.events));
    await waitFor('resumed stream saw counter 10', () => last(resumed.events));
    await waitFor('callback saw counter 10', () => received.some((r) => r.body.counter === 10));

    assertSequence(updates(onSurvivor.events), 'stream on a survivor');
    assertSequence([...updates(onOwner.events), ...updates(resumed.events)], 'owner stream + resumed stream');
    assertSequence(
      received.map((r) => r.body),
      'callback',
    );
    assert.is(received[0]!.method, 'POST');
    assert.is(received[1]!.method, 'PATCH');
    const newOwner = updates(onSurvivor.events).at(-1)!.documentOwner;
    assert.ok(newOwner !== owner.host.id);

    // Unsubscribe: no more notifications.
    assert.is((await survivor.client.send('DELETE', `${link}/subscriptions`, { reference: sinkUrl })).status, 200);
    assert.equal(
      Object.keys((await survivor.client.get<{ subscribers: Record<string, unknown> }>(`${link}/subscriptions`)).body.subscribers),
      [],
    );
  } finally {
    for (const s of streams) await s.close();
    for (const h of hosts) await h.close();
    await new Promise((r) => sink.close(r));
  }
});

test('factory streams, resume by time, and bad input', async () => {
  const h = await startHost({ id: 'solo' });
  const streams: SseStream[] = [];
  try {
    const s = await openStream(`${h.host.uri}/core/examples/subscriptions/stream`);
    streams.push(s);
    await h.client.post('/core/examples', { documentSelfLink: 'a', name: 'a' });
    await h.client.post('/core/examples', { documentSelfLink: 'b', name: 'b' });
    await h.client.patch('/core/examples/a', { counter: 1 });
    await waitFor('three updates', () => updates(s.events).length === 3);
    assert.equal(
      updates(s.events).map((d) => `${(d as unknown as { documentSelfLink: string }).documentSelfLink}@${d.documentVersion}`),
      ['/core/examples/a@0', '/core/examples/b@0', '/core/examples/a@1'],
    );
    // Resuming after the first event replays the two later ones.
    const r = await openStream(`${h.host.uri}/core/examples/subscriptions/stream`, s.events[0]!.id);
    streams.push(r);
    await waitFor('replayed', () => updates(r.events).length === 2);
    const bad = await h.client.send('GET', '/core/examples/a/subscriptions/stream?since=x');
    assert.is(bad.status, 400);
    assert.is((await h.client.post('/core/examples/a/subscriptions', { reference: 'not a uri' })).status, 400);
    assert.is((await h.client.post('/core/examples/a/subscriptions', {})).status, 400);
    assert.is((await h.client.send('DELETE', '/core/examples/a/subscriptions', { reference: 'http://127.0.0.1:1/x' })).status, 404);
    assert.is((await h.client.send('PUT', '/core/examples/a/subscriptions/stream', {})).status, 405);
  } finally {
    for (const s of streams) await s.close();
    await h.close();
  }
});

test.run();
