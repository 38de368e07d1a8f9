import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startHost, type TestHost } from '../support/hosts.js';

interface ErrorBody {
  message: string;
  statusCode: number;
}

const t = suite<{ h: TestHost }>('utility paths and management requests');

t.before(async (ctx) => {
  ctx.h = await startHost();
});
t.after(async (ctx) => {
  await ctx.h.close();
});

t('an unknown path is a 404 naming its full URI (Host header and scheme), never null', async ({ h }) => {
  const r = await h.client.get<ErrorBody>('/metrics-nowhere?x=1');
  assert.is(r.status, 404);
  assert.is(r.body.message, `Service not found: ${h.host.uri}/metrics-nowhere?x=1`);
  const bare = await h.client.send<ErrorBody>('GET', '/core/nowhere', undefined, { host: '' });
  assert.is(bare.status, 404);
  assert.is(bare.body.message, 'Service not found: /core/nowhere');
});

t.run();
