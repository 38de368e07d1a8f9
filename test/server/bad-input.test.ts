import net from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { limits } from '../../lib/limits.js';
import { nestedDeeperThan } from '../../server/net/body.js';
import { startHost, type TestHost } from '../support/hosts.js';

const t = suite<{ h: TestHost; seqBefore: number }>('bad input');

async function lastSeq(h: TestHost): Promise<number> {
  const m = await h.client.get<{ logStats: { lastSeq: number } }>('/core/management');
  return m.body.logStats.lastSeq;
}

function isErrorBody(body: unknown, status: number): void {
  const b = body as Record<string, unknown>;
  assert.is(b.statusCode, status);
  assert.is(b.documentKind, KINDS.serviceErrorResponse);
  assert.type(b.message, 'string');
  assert.type(b.errorCode, 'number');
}

t.before(async (ctx) => {
  ctx.h = await startHost();
  await ctx.h.client.post('/core/examples', { documentSelfLink: 'base', name: 'base' });
  ctx.seqBefore = await lastSeq(ctx.h);
});
t.after(async (ctx) => {
  await ctx.h.close();
});

t('malformed JSON is 400', async ({ h }) => {
  for (const [method, path] of [
    ['POST', '/core/examples'],
    ['PATCH', '/core/examples/base'],
    ['PUT', '/core/examples/base'],
    ['POST', '/core/query-tasks'],
  ] as const) {
    const r = await h.client.send(method, path, '{"name": "x",');
    assert.is(r.status, 400, `${method} ${path}`);
    isErrorBody(r.body, 400);
    assert.match(String(r.body.message), /malformed JSON/);
  }
});

t('wrong types are 400 naming the field', async ({ h }) => {
  const cases: [string, string, unknown][] = [
    ['POST', '/core/examples', { name: 5 }],
    ['POST', '/core/examples', { name: 'x', counter: 'many' }],
    ['POST', '/core/examples', { name: 'x', keyValues: { a: 1 } }],
    ['POST', '/core/examples', { name: 'x', tags: 'not-a-list' }],
    ['PATCH', '/core/examples/base', { counter: 1.5 }],
    ['PATCH', '/core/examples/base', [1, 2]],
    ['PUT', '/core/examples/base', 'just a string'],
    ['POST', '/core/examples', { name: 'x', documentSelfLink: 7 }],
  ];
  for (const [method, path, body] of cases) {
    const r = await h.client.send(method, path, JSON.stringify(body));
    assert.is(r.status, 400, `${method} ${path} ${JSON.stringify(body)}`);
    isErrorBody(r.body, 400);
  }
});

t('invalid ids are 400', async ({ h }) => {
  for (const id of ['a/b', 'sp ace', 'ü', '%2F']) {
    const r = await h.client.post('/core/examples', { documentSelfLink: id, name: 'x' });
    assert.is(r.status, 400, id);
    assert.is(r.body.message, `${id} is an invalid id`);
  }
});

t('unknown kinds and unknown query options are 400', async ({ h }) => {
  const m = await h.client.patch('/core/management', { kind: 'com:example:Nope' });
  assert.is(m.status, 400);
  isErrorBody(m.body, 400);
  const q = await h.client.post('/core/query-tasks', {
    taskInfo: { isDirect: true },
    querySpec: { options: ['NOPE'], query: { term: { propertyName: 'name', matchValue: 'x' } } },
  });
  assert.is(q.status, 400);
  isErrorBody(q.body, 400);
  const noSpec = await h.client.post('/core/query-tasks', { taskInfo: { isDirect: true } });
  assert.is(noSpec.status, 400);
  assert.is(noSpec.body.message, 'querySpec is required');
});

t('oversized bodies are 413', async ({ h }) => {
  const big = JSON.stringify({ name: 'x', keyValues: { k: 'v'.repeat(2 * 1024 * 1024) } });
  const r = await h.client.send('POST', '/core/examples', big);
  assert.is(r.status, 413);
  isErrorBody(r.body, 413);
});

t('unknown paths are 404, unsupported verbs 405, with the error body', async ({ h }) => {
  const nf = await h.client.get('/core/nothing-here');
  assert.is(nf.status, 404);
  isErrorBody(nf.body, 404);
  assert.is(nf.body.errorCode, -2147483648);
  assert.is((await h.client.get('/core/examples/base/deeper')).status, 404);
  for (const [method, path] of [
    ['PATCH', '/core/examples'],
    ['PUT', '/core/examples'],
    ['DELETE', '/core/examples'],
    ['POST', '/core/examples/base'],
    ['PUT', '/core/management'],
    ['PATCH', '/core/query-tasks'],
  ] as const) {
    const r = await h.client.send(method, path, '{}');
    assert.is(r.status, 405, `${method} ${path}`);
    isErrorBody(r.body, 405);
    assert.is(r.body.message, `Action not supported: ${method}`);
  }
});

t('bad owner lease renewals are 400 and grant nothing', async ({ h }) => {
  const url = '/core/node-selectors/default/lease';
  for (const [what, body] of [
    ['no body', undefined],
    ['an array', [1]],
    ['no from', { view: [], cursor: 0 }],
    ['an empty from', { from: '', view: [], cursor: 0 }],
    ['a view that is not an array', { from: 'h9', view: 'h9', cursor: 0 }],
    ['a view of numbers', { from: 'h9', view: [1], cursor: 0 }],
    [
      'a view past leaseViewNodesMax',
      { from: 'h9', view: Array.from({ length: limits.leaseViewNodesMax + 1 }, (_, i) => `n${i}`), cursor: 0 },
    ],
    ['a negative cursor', { from: 'h9', view: [], cursor: -1 }],
    ['a fractional cursor', { from: 'h9', view: [], cursor: 0.5 }],
    ['release not true', { from: 'h9', release: 'yes' }],
  ] as const) {
    const r = body === undefined ? await h.client.send('POST', url) : await h.client.post(url, body);
    assert.is(r.status, 400, `${what}: ${r.text}`);
    isErrorBody(r.body, 400);
  }
  assert.is((await h.client.send('POST', url, '{"from": "h9",')).status, 400, 'malformed JSON');
  // A good one is answered with this host's view and its promise report.
  const ok = await h.client.post<{ view: string[]; seq: number; floor: number; promised: unknown }>(url, {
    from: 'h9',
    view: ['h9'],
    cursor: 0,
  });
  assert.is(ok.status, 200, ok.text);
  assert.equal(ok.body.view, [h.host.id]);
  assert.equal(ok.body.promised, []);
  assert.is((await h.client.post(url, { from: 'h9', release: true })).status, 200);
});

t('bad synchronization promise requests are 400 and promise nothing', async ({ h }) => {
  const url = '/core/node-selectors/default/synch';
  const ok = { kind: 'promise', from: 'h9', factoryLink: '/core/examples', asks: [['/core/examples/base', 5]] };
  const tooMany = Array.from({ length: limits.synchPromiseLinksMax + 1 }, (_, i) => [`/core/examples/x${i}`, 5]);
  const cases: [string, unknown][] = [
    ['no from', { ...ok, from: undefined }],
    ['empty from', { ...ok, from: '' }],
    ['from not a string', { ...ok, from: 7 }],
    ['unknown factory', { ...ok, factoryLink: '/core/nothing' }],
    ['a factory that is not replicated', { ...ok, factoryLink: '/core/query-tasks' }],
    ['asks missing', { ...ok, asks: undefined }],
    ['asks empty', { ...ok, asks: [] }],
    ['asks not an array', { ...ok, asks: { '/core/examples/base': 5 } }],
    ['asks past synchPromiseLinksMax', { ...ok, asks: tooMany }],
    ['an ask that is not a pair', { ...ok, asks: [['/core/examples/base']] }],
    ['a link outside the factory', { ...ok, asks: [['/core/other/base', 5]] }],
    ['the factory itself', { ...ok, asks: [['/core/examples/', 5]] }],
    ['a grandchild', { ...ok, asks: [['/core/examples/base/deeper', 5]] }],
    ['epoch 0', { ...ok, asks: [['/core/examples/base', 0]] }],
    ['a negative epoch', { ...ok, asks: [['/core/examples/base', -1]] }],
    ['a fractional epoch', { ...ok, asks: [['/core/examples/base', 1.5]] }],
    ['an epoch as a string', { ...ok, asks: [['/core/examples/base', '5']] }],
    [
      'a link asked twice',
      {
        ...ok,
        asks: [
          ['/core/examples/base', 5],
          ['/core/examples/base', 6],
        ],
      },
    ],
    ['an unknown kind', { ...ok, kind: 'promises' }],
    ['an array body', [ok]],
  ];
  for (const [why, body] of cases) {
    const r = await h.client.post(url, body);
    assert.is(r.status, 400, why);
    isErrorBody(r.body, 400);
  }
  assert.is((await h.client.post(url, undefined)).status, 400, 'no body');
  assert.is((await h.client.send('POST', url, '{"kind": "promise",')).status, 400, 'malformed JSON');
  assert.is((await h.client.post('/core/node-selectors/nope/synch', ok)).status, 404, 'unknown selector');
  const stats = await h.client.get<{ promisesGranted: number; promisesHeld: number }>(url);
  assert.equal([stats.body.promisesGranted, stats.body.promisesHeld], [0, 0]);
});

t('bodies nested past bodyDepthMax are 400; brackets inside strings do not count', async ({ h }) => {
  const deep = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;
  for (const [method, path, body] of [
    ['PATCH', '/core/examples/base', `{"name": "x", "extra": ${deep(limits.bodyDepthMax)}}`],
    ['POST', '/core/examples', `{"name": "x", "extra": ${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`],
    ['POST', '/core/query-tasks', `{"querySpec": ${deep(5000)}}`],
  ] as const) {
    const r = await h.client.send(method, path, body);
    assert.is(r.status, 400, `${method} ${path}`);
    isErrorBody(r.body, 400);
    assert.is(r.body.message, `JSON body nested more than ${limits.bodyDepthMax} levels deep`);
  }
  assert.ok(nestedDeeperThan(deep(11), 10));
  assert.not.ok(nestedDeeperThan(deep(10), 10));
  assert.not.ok(nestedDeeperThan(`["${'['.repeat(50)}\\"${'{'.repeat(50)}"]`, 10));
  assert.ok(nestedDeeperThan(`["\\\\", ${deep(11)}]`, 11));
});

t('strings with a lone surrogate are 400; whole pairs are fine', async ({ h }) => {
  for (const body of ['{"name": "\\ud800"}', '{"name": "x", "keyValues": {"\\udfff": "v"}}', '{"name": "x", "tags": ["a\\ude00b"]}']) {
    const r = await h.client.send('POST', '/core/examples', body);
    assert.is(r.status, 400, body);
    isErrorBody(r.body, 400);
    assert.is(r.body.message, 'malformed JSON body: a string holds a lone UTF-16 surrogate');
  }
  const pair = await h.client.send('PATCH', '/core/examples/base', '{"keyValues": {"smile": "\\ud83d\\ude00"}}');
  assert.is(pair.status, 200, pair.text);
  assert.is((pair.body.keyValues as Record<string, string>).smile, '\u{1f600}');
  const undo = await h.client.patch('/core/examples/base', { keyValues: { smile: null } });
  assert.is(undo.status, 200);
});

t('garbage pipelined after a request goes to the log, not to stderr', async ({ h }) => {
  const printed: unknown[] = [];
  const print = console.error;
  console.error = (...args: unknown[]) => printed.push(args);
  try {
    const port = Number(new URL(h.host.uri).port);
    const answer = await new Promise<string>((resolve, reject) => {
      let got = '';
      const s = net.connect(port, '127.0.0.1', () => s.end('GET /core/management HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE GARBAGE\r\n\r\n'));
      s.on('data', (b) => {
        got += b.toString('latin1');
      });
      s.on('error', reject);
      s.on('close', () => resolve(got));
    });
    assert.match(answer, /^HTTP\/1\.1 /);
  } finally {
    console.error = print;
  }
  assert.equal(printed, []);
});

t('nothing bad was appended to the log and the host still serves', async ({ h, seqBefore }) => {
  // The two PATCHes of the lone-surrogate test are the only writes.
  assert.is(await lastSeq(h), seqBefore + 2);
  const ok = await h.client.post('/core/examples', { documentSelfLink: 'after', name: 'still fine' });
  assert.is(ok.status, 200);
  assert.is(await lastSeq(h), seqBefore + 3);
  assert.is((await h.client.get('/core/examples/base')).body.name, 'base');
});

t.run();
