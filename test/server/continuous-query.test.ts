/**
 * Continuous query tasks on a group of three in-process hosts: the task answers its first
 * results, then every later match reaches a callback subscriber (PATCH) and a server-sent-event
 * stream, in order, while the matched document's owner is stopped and another host takes it
 * over; a stream resumed with Last-Event-ID continues where it left off; CONTINUOUS_STOP_MATCH
 * tells a document that stops matching; bad combinations are 400.
 */
import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openStream, type SseEvent, type SseStream } from '../../tools/recipes/sse.js';
import { closeAll, startGroup, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

interface Doc {
  documentSelfLink: string;
  documentVersion: number;
  documentUpdateAction: string;
  counter: number;
  name: string;
}
interface Notice {
  results: { documentLinks: string[]; documents: Record<string, Doc>; continuousResults: { documentCountAdded: number } };
}
interface Task {
  documentSelfLink: string;
  taskInfo: { stage: string };
  results?: { documentLinks: string[] };
}

const docsOf = (notices: Notice[]) => notices.map((n) => Object.values(n.results.documents)[0]!);
const streamed = (events: SseEvent[]) => events.filter((e) => e.event === 'update').map((e) => e.data as Notice);

/** Counters in delivery order: nondecreasing (a takeover may repeat a state at a new version), every one there, versions rising. */
function assertInOrder(docs: Doc[], upTo: number, what: string): void {
  const counters = docs.map((d) => d.counter);
  for (let i = 1; i < docs.length; i++) {
    assert.ok(docs[i]!.documentVersion > docs[i - 1]!.documentVersion, `${what}: versions ${docs.map((d) => d.documentVersion).join(',')}`);
    assert.ok(counters[i]! >= counters[i - 1]!, `${what}: counters ${counters.join(',')}`);
  }
  for (let c = 1; c <= upTo; c++) assert.ok(counters.includes(c), `${what}: counter ${c} missing from ${counters.join(',')}`);
}

test('every later match in order across an owner change: callback, stream, resumed stream', async () => {
  let hosts: TestHost[] = [];
  const streams: SseStream[] = [];
  const received: Notice[] = [];
  const methods: string[] = [];
  const sink = http.createServer((req, res) => {
    let b = '';
    req.on('data', (c: Buffer) => (b += c.toString()));
    req.on('end', () => {
      methods.push(req.method!);
      received.push(JSON.parse(b) as Notice);
      res.end('{}');
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const sinkUrl = `http://127.0.0.1:${(sink.address() as { port: number }).port}/notify`;
  try {
    hosts = await startGroup(3, (i) => ({ id: `cq-${i + 1}`, membershipQuorum: 2 }));
    const link = '/core/examples/live';
    const sel = await hosts[0]!.client.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key: link });
    const owner = hosts.find((h) => h.host.id === sel.body.ownerNodeId)!;
    const [runner, other] = hosts.filter((h) => h !== owner) as [TestHost, TestHost];
    // A query task reads its host's own index (like etcd's serializable reads): a quorum of all
    // three makes the first results include this create, which a quorum of 2 may not have shipped
    // to the runner yet (CI flaked on that race).
    const before = { documentSelfLink: 'before', name: 'live-before', counter: 0 };
    assert.is((await runner.client.send('POST', '/core/examples', before, { 'x-xenon-rpl-quorum': '3' })).status, 200);

    const created = await runner.client.post<Task>('/core/query-tasks', {
      querySpec: {
        options: ['CONTINUOUS', 'EXPAND_CONTENT'],
        query: { term: { propertyName: 'name', matchValue: 'live-*', matchType: 'WILDCARD' } },
      },
    });
    assert.is(created.status, 202, created.text);
    const taskLink = created.body.documentSelfLink;
    const first = await waitFor('first results', async () => {
      const g = await runner.client.get<Task>(taskLink);
      return g.body.results ? g.body : undefined;
    });
    assert.is(first.taskInfo.stage, 'STARTED');
    assert.equal(first.results!.documentLinks, ['/core/examples/before']);

    assert.is((await runner.client.post(`${taskLink}/subscriptions`, { reference: sinkUrl })).status, 200);
    const whole = await openStream(`${runner.host.uri}${taskLink}/subscriptions/stream`);
    const part = await openStream(`${runner.host.uri}${taskLink}/subscriptions/stream`);
    streams.push(whole, part);

    // Not a match: never delivered.
    assert.is((await other.client.post('/core/examples', { documentSelfLink: 'unrelated', name: 'other' })).status, 200);
    assert.is((await other.client.post('/core/examples', { documentSelfLink: 'live', name: 'live-doc', counter: 1 })).status, 200);
    for (let c = 2; c <= 5; c++) assert.is((await hosts[c % 3]!.client.patch(link, { counter: c })).status, 200);
    await waitFor('the part stream saw counter 3', () => docsOf(streamed(part.events)).some((d) => d.counter >= 3));
    await part.close();
    streams.splice(streams.indexOf(part), 1);

    await owner.close();
    hosts = hosts.filter((h) => h !== owner);
    for (let c = 6; c <= 10; c++) assert.is((await hosts[c % 2]!.client.patch(link, { counter: c })).status, 200);
    const resumed = await openStream(`${runner.host.uri}${taskLink}/subscriptions/stream`, part.lastEventId());
    streams.push(resumed);

    const done = (docs: Doc[]) => docs.some((d) => d.counter === 10);
    await waitFor('callback saw counter 10', () => done(docsOf(received)), 30_000);
    await waitFor('stream saw counter 10', () => done(docsOf(streamed(whole.events))));
    await waitFor('resumed stream saw counter 10', () => done(docsOf(streamed(resumed.events))));

    assertInOrder(docsOf(received), 10, 'callback');
    assertInOrder(docsOf(streamed(whole.events)), 10, 'stream');
    const joined = [...streamed(part.events), ...streamed(resumed.events)];
    assertInOrder(docsOf(joined), 10, 'stream resumed with Last-Event-ID');
    assert.equal(
      joined.map((n) => n.results.documentLinks),
      streamed(whole.events).map((n) => n.results.documentLinks),
    );
    assert.ok(methods.every((m) => m === 'PATCH'));
    assert.ok(docsOf(received).every((d) => d.documentSelfLink === link));
    assert.is(received[0]!.results.continuousResults.documentCountAdded, 1);

    // Deleting the task ends its streams and notifications.
    assert.is((await runner.client.delete(taskLink)).status, 200);
    await whole.ended;
    assert.is((await runner.client.get(`${taskLink}/subscriptions`)).status, 404);
  } finally {
    for (const s of streams) await s.close();
    await closeAll(hosts);
    await new Promise((r) => sink.close(r));
  }
});

test('CONTINUOUS_STOP_MATCH tells a document that stops matching; bad combinations are 400', async () => {
  const [h] = await startGroup(1, () => ({ id: 'cq-solo' }));
  const streams: SseStream[] = [];
  try {
    const created = await h!.client.post<Task>('/core/query-tasks', {
      querySpec: { options: ['CONTINUOUS_STOP_MATCH', 'EXPAND_CONTENT'], query: { term: { propertyName: 'name', matchValue: 'stop-me' } } },
    });
    const taskLink = created.body.documentSelfLink;
    await waitFor('started', async () => (await h!.client.get<Task>(taskLink)).body.results !== undefined);
    const s = await openStream(`${h!.host.uri}${taskLink}/subscriptions/stream`);
    streams.push(s);
    await h!.client.post('/core/examples', { documentSelfLink: 'sm', name: 'stop-me' });
    await h!.client.patch('/core/examples/sm', { name: 'renamed' });
    await h!.client.patch('/core/examples/sm', { name: 'still-renamed' });
    await waitFor('two notices', () => streamed(s.events).length >= 2);
    const docs = docsOf(streamed(s.events));
    assert.equal(
      docs.map((d) => [d.name, d.documentUpdateAction]),
      [
        ['stop-me', 'POST'],
        ['renamed', 'DELETE'],
      ],
    );
    const bad = [
      { taskInfo: { isDirect: true }, querySpec: { options: ['CONTINUOUS'], query: { term: { propertyName: 'name', matchValue: 'x' } } } },
      { querySpec: { options: ['CONTINUOUS', 'COUNT'], query: { term: { propertyName: 'name', matchValue: 'x' } } } },
    ];
    for (const b of bad) {
      const r = await h!.client.post('/core/query-tasks', b);
      assert.is(r.status, 400, r.text);
      assert.match(r.text, /CONTINUOUS/);
    }
  } finally {
    for (const s of streams) await s.close();
    await h!.close();
  }
});

test.run();
