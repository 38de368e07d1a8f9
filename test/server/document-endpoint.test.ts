/**
 * Document requests are served before koa (server/http/document-endpoint.ts): answers carry koa's
 * shapes (JSON with its content type and length, Xenon's error body), and what that endpoint
 * does not take (HEAD, watch paths, other routes) still reaches the koa app.
 */
import { request } from 'undici';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { startHost } from '../support/hosts.js';

test('document requests answer as koa did; other requests still reach koa', async () => {
  const h = await startHost({ id: 'solo' });
  try {
    const created = await h.client.post('/core/examples/', { documentSelfLink: 'e1', name: 'one' });
    assert.is(created.status, 200, 'a trailing slash names the factory');
    assert.is(created.headers['content-type'], 'application/json; charset=utf-8');
    assert.is(Number(created.headers['content-length']), Buffer.byteLength(created.text));
    assert.is(created.body.documentSelfLink, '/core/examples/e1');

    const bad = await h.client.send('POST', '/core/examples', '{"name":', { 'content-type': 'application/json' });
    assert.is(bad.status, 400);
    assert.is(bad.body.documentKind, KINDS.serviceErrorResponse);
    assert.match(String(bad.body.message), /malformed JSON body/);
    const missing = await h.client.get('/core/examples/nope');
    assert.is(missing.status, 404);
    assert.is(missing.body.statusCode, 404);
    assert.is((await h.client.get('/core/examples/e1?documentVersion=x')).status, 400);
    assert.is((await h.client.get('/core/examples/e1?documentVersion=0')).body.name, 'one');
    const huge = await h.client.send('PATCH', '/core/examples/e1', JSON.stringify({ name: 'x'.repeat(1024 * 1024 + 10) }), {
      'content-type': 'application/json',
    });
    assert.is(huge.status, 413);

    // Not taken before koa: HEAD (405, no body), watch routes, management.
    const head = await request(`${h.host.uri}/core/examples`, { method: 'HEAD' });
    assert.is(head.statusCode, 405);
    assert.is((await head.body.text()).length, 0);
    const subs = await h.client.get<{ subscriptions?: unknown }>('/core/examples/e1/subscriptions');
    assert.is(subs.status, 200);
    assert.is((await h.client.get('/core/management')).status, 200);
    assert.is((await h.client.send('OPTIONS', '/core/examples')).status, 405);
  } finally {
    await h.close();
  }
});

test.run();
