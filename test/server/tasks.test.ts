/**
 * Task services on one host: ExampleTaskService's create rules and answers, its four versions,
 * the examples it deletes, its PATCH validation, direct tasks held open until FINISHED, and
 * restarts: a finished task is never re-driven, an unfinished one resumes from its last step.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { startHost, tempDir, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

interface Task {
  taskInfo: { stage: string; isDirect: boolean };
  subStage?: string;
  taskLifetime?: number;
  exampleQueryTask?: { results?: { documentLinks: string[] } };
  failureMessage?: string;
  documentSelfLink: string;
  documentVersion: number;
  documentExpirationTimeMicros: number;
  documentUpdateTimeMicros: number;
  step?: number;
  steps?: number;
  ranOn?: string[];
}

const t = suite<{ dir: { path: string; remove(): Promise<void> }; h: TestHost }>('tasks on one host');

t.before(async (ctx) => {
  ctx.dir = await tempDir();
  ctx.h = await startHost({ id: 'solo' }, ctx.dir.path);
});
t.after(async (ctx) => {
  await ctx.h.close();
  await ctx.dir.remove();
});

t('an example task queries and deletes every example in versions 0 to 3', async ({ h }) => {
  for (let i = 0; i < 3; i++) assert.is((await h.client.post('/core/examples', { name: `example-${i}`, counter: i })).status, 200);
  const before = Date.now() * 1000;
  const post = await h.client.post<Task>('/core/example-tasks', { taskLifetime: 300 });
  assert.is(post.status, 202);
  assert.equal(post.body.taskInfo, { stage: 'STARTED', isDirect: false });
  assert.is(post.body.subStage, 'QUERY_EXAMPLES');
  assert.is(post.body.taskLifetime, 300);
  assert.is(post.body.documentVersion, 0);
  assert.ok(Math.abs(post.body.documentExpirationTimeMicros - (before + 300_000_000)) < 5_000_000, 'expires taskLifetime seconds from now');
  const link = post.body.documentSelfLink;
  const done = await waitFor('FINISHED', async () => {
    const g = await h.client.get<Task>(link);
    return g.body.taskInfo?.stage === 'FINISHED' ? g.body : undefined;
  });
  assert.is(done.documentVersion, 3);
  assert.is(done.exampleQueryTask?.results?.documentLinks.length, 3);
  const list = await h.client.get<{ documentLinks: string[] }>('/core/examples');
  assert.equal(list.body.documentLinks, []);
  const versions = await h.client.post<{ results: { documentLinks: string[] } }>('/core/query-tasks', {
    taskInfo: { isDirect: true },
    querySpec: { options: ['INCLUDE_ALL_VERSIONS'], query: { term: { matchValue: KINDS.exampleTask, propertyName: 'documentKind' } } },
  });
  assert.equal(
    versions.body.results.documentLinks,
    [3, 2, 1, 0].map((v) => `${link}?documentVersion=${v}`),
  );
  const stages = [];
  for (let v = 0; v <= 3; v++) {
    const old = await h.client.get<Task>(`${link}?documentVersion=${v}`);
    stages.push(`${old.body.taskInfo.stage}/${old.body.subStage}`);
  }
  assert.equal(stages, ['STARTED/QUERY_EXAMPLES', 'STARTED/QUERY_EXAMPLES', 'STARTED/DELETE_EXAMPLES', 'FINISHED/DELETE_EXAMPLES']);
});

t('create and PATCH validation answer 400 with Xenon messages', async ({ h }) => {
  const bad = async (method: 'POST' | 'PATCH', path: string, body: unknown, message: string) => {
    const r = await h.client.send(method, path, body);
    assert.is(r.status, 400, `${method} ${JSON.stringify(body)}`);
    assert.is(r.body.message, message);
  };
  await bad('POST', '/core/example-tasks', { subStage: 'QUERY_EXAMPLES' }, 'Do not specify subStage: internal use only');
  await bad('POST', '/core/example-tasks', { exampleQueryTask: {} }, 'Do not specify exampleQueryTask: internal use only');
  await bad('POST', '/core/example-tasks', { taskLifetime: 0 }, 'taskLifetime must be positive');
  await bad('POST', '/core/example-tasks', undefined, 'POST body is required');
  const done = await h.client.post<Task>('/core/example-tasks', { taskInfo: { isDirect: true } });
  const link = done.body.documentSelfLink;
  await bad('PATCH', link, { subStage: 'QUERY_EXAMPLES' }, 'Missing taskInfo');
  await bad('PATCH', link, { taskInfo: {} }, 'Missing stage');
  await bad('PATCH', link, { taskInfo: { stage: 'CREATED' } }, 'Did not expect to receive CREATED stage');
  await bad('PATCH', link, { taskInfo: { stage: 'STARTED' }, subStage: 'DELETE_EXAMPLES' }, 'Task stage cannot move backwards');
  assert.is((await h.client.get<Task>(link)).body.documentVersion, done.body.documentVersion, 'refused PATCHes wrote nothing');
});

t('a direct task answers once it is FINISHED; without lifetime it expires in 4 h', async ({ h }) => {
  await h.client.post('/core/examples', { name: 'doomed' });
  const r = await h.client.post<Task>('/core/example-tasks', { taskInfo: { isDirect: true } });
  assert.is(r.status, 200);
  assert.is(r.body.taskInfo.stage, 'FINISHED');
  assert.is(r.body.taskInfo.isDirect, true);
  assert.is(r.body.documentVersion, 3);
  const hours = (r.body.documentExpirationTimeMicros - r.body.documentUpdateTimeMicros) / 3_600_000_000;
  assert.ok(hours > 3.99 && hours <= 4, `expiration ${hours} h after the update`);
  // The quirk: a client expiration without taskLifetime becomes now + 60 s.
  const q = await h.client.post<Task>('/core/example-tasks', { documentExpirationTimeMicros: 1, taskInfo: { isDirect: true } });
  const secs = (q.body.documentExpirationTimeMicros - Date.now() * 1000) / 1e6;
  assert.ok(secs > 50 && secs <= 60, `expires in ${secs} s`);
});

t('a slow task stopped mid-run resumes after a restart; a finished one is not re-driven', async (ctx) => {
  const post = await ctx.h.client.post<Task>('/core/slow-tasks', { steps: 3, stepMillis: 200 });
  assert.is(post.status, 202);
  const link = post.body.documentSelfLink;
  await waitFor('step 1 durable', async () => ((await ctx.h.client.get<Task>(link)).body.step ?? 0) >= 1);
  const finishedExample = (
    await ctx.h.client.post<{ results: { documentLinks: string[] } }>('/core/query-tasks', {
      taskInfo: { isDirect: true },
      querySpec: { query: { term: { matchValue: KINDS.exampleTask, propertyName: 'documentKind' } } },
    })
  ).body.results.documentLinks[0]!;
  const finishedVersion = (await ctx.h.client.get<Task>(finishedExample)).body.documentVersion;
  ctx.h = await ctx.h.restart();
  const done = await waitFor('FINISHED after restart', async () => {
    const g = await ctx.h.client.get<Task>(link);
    return g.body.taskInfo?.stage === 'FINISHED' ? g.body : undefined;
  });
  assert.is(done.step, 3);
  assert.ok(done.ranOn!.length === 3 && done.ranOn!.every((id) => id === 'solo'), String(done.ranOn));
  const again = await ctx.h.client.get<Task>(finishedExample);
  assert.is(again.body.taskInfo.stage, 'FINISHED');
  assert.is(again.body.documentVersion, finishedVersion, 'a finished task was not driven again');
});

t.run();
