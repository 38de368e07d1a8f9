/**
 * The single-host steps of the seed tutorials, with their JSON bodies verbatim (seed 001's
 * examples walk-through and seed 000's example and query bodies). Multi-host steps belong to the
 * node-group, replication and task issues.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { startHost, type TestHost } from '../support/hosts.js';

const t = suite<{ h: TestHost }>('seeds, single host');
t.before(async (ctx) => {
  ctx.h = await startHost({ id: 'hostAtPort8000' });
});
t.after(async (ctx) => {
  await ctx.h.close();
});

t('seed 001: empty factory GET has the tutorial shape', async ({ h }) => {
  // $ curl http://localhost:8000/core/examples
  const r = await h.client.get('/core/examples');
  assert.is(r.status, 200);
  const { queryTimeMicros, ...rest } = r.body;
  assert.type(queryTimeMicros, 'number');
  assert.equal(rest, {
    documentLinks: [],
    documentCount: 0,
    documentVersion: 0,
    documentUpdateTimeMicros: 0,
    documentExpirationTimeMicros: 0,
    documentOwner: 'hostAtPort8000',
  });
});

t('seed 001: POST {"documentSelfLink":"one","name":"example one"}, list it, GET it', async ({ h }) => {
  // $ curl -X POST -H "Content-type: application/json" -d '{"documentSelfLink":"one","name":"example one"}' http://localhost:8000/core/examples
  const post = await h.client.send('POST', '/core/examples', '{"documentSelfLink":"one","name":"example one"}', {
    'Content-type': 'application/json',
  });
  assert.is(post.status, 200);
  const list = await h.client.get('/core/examples');
  assert.equal(list.body.documentLinks, ['/core/examples/one']);
  assert.is(list.body.documentCount, 1);
  const one = await h.client.get('/core/examples/one');
  assert.is(one.status, 200);
  assert.equal(one.body.keyValues, {});
  assert.is(one.body.name, 'example one');
  assert.is(one.body.documentVersion, 0);
  assert.is(one.body.documentEpoch, 0);
  assert.is(one.body.documentKind, 'com:vmware:xenon:services:common:ExampleService:ExampleServiceState');
  assert.is(one.body.documentSelfLink, '/core/examples/one');
  assert.is(one.body.documentUpdateAction, 'POST');
  assert.is(one.body.documentExpirationTimeMicros, 0);
  assert.is(one.body.documentOwner, 'hostAtPort8000');
  assert.type(one.body.documentUpdateTimeMicros, 'number');
});

t('seed 000: example-1.body is created; curl without -H still parses JSON', async ({ h }) => {
  const body = '{\n  "name": "example-1",\n  "counter": 1\n}\n';
  const r = await h.client.send('POST', '/core/examples', body, { 'Content-Type': 'application/json' });
  assert.is(r.status, 200);
  assert.is(r.body.counter, 1);
  // curl -d without a content type sends application/x-www-form-urlencoded.
  const form = await h.client.send('POST', '/core/examples', '{"name":"example-2"}', {
    'content-type': 'application/x-www-form-urlencoded',
  });
  assert.is(form.status, 200);
});

t('seed 000: query.body verbatim answers a FINISHED direct task in the tutorial shape', async ({ h }) => {
  const queryBody = `{
    "taskInfo": {
        "isDirect": true
    },
    "querySpec": {
        "options": [
            "INCLUDE_ALL_VERSIONS"
        ],
        "query": {
            "term": {
                "matchValue": "com:vmware:xenon:services:common:ExampleTaskService:ExampleTaskServiceState",
                "propertyName": "documentKind"
            }
        }
    }
}`;
  const r = await h.client.send('POST', '/core/query-tasks', queryBody, { 'Content-Type': 'application/json' });
  assert.is(r.status, 200);
  const task = r.body as {
    taskInfo: Record<string, unknown>;
    querySpec: Record<string, unknown>;
    results: Record<string, unknown>;
    documentOwner: string;
  };
  assert.is(task.taskInfo.stage, 'FINISHED');
  assert.is(task.taskInfo.isDirect, true);
  assert.type(task.taskInfo.durationMicros, 'number');
  assert.equal(task.querySpec.query, {
    occurance: 'MUST_OCCUR',
    term: {
      propertyName: 'documentKind',
      matchValue: 'com:vmware:xenon:services:common:ExampleTaskService:ExampleTaskServiceState',
      matchType: 'TERM',
    },
  });
  assert.is(task.querySpec.resultLimit, 2147483647);
  assert.equal(task.querySpec.options, ['INCLUDE_ALL_VERSIONS']);
  assert.equal(task.results.documentLinks, []);
  assert.is(task.results.documentOwner, 'hostAtPort8000');
  assert.is(task.documentOwner, 'hostAtPort8000');
});

t('seed 000 shape on examples: INCLUDE_ALL_VERSIONS lists every version, newest first', async ({ h }) => {
  await h.client.patch('/core/examples/one', { counter: 2 });
  await h.client.patch('/core/examples/one', { counter: 3 });
  const r = await h.client.post<{ results: { documentLinks: string[] } }>('/core/query-tasks', {
    taskInfo: { isDirect: true },
    querySpec: { options: ['INCLUDE_ALL_VERSIONS'], query: { term: { matchValue: KINDS.example, propertyName: 'documentKind' } } },
  });
  const links = r.body.results.documentLinks.filter((l) => l.startsWith('/core/examples/one?'));
  assert.equal(links, [
    '/core/examples/one?documentVersion=2',
    '/core/examples/one?documentVersion=1',
    '/core/examples/one?documentVersion=0',
  ]);
  for (const l of links) assert.is((await h.client.get(l)).status, 200);
});

t.run();
