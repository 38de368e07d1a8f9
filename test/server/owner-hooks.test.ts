/**
 * Owner-only work across three hosts: a service's start handler runs on the owner after a create
 * and again on the new owner after the owner stops; its maintenance handler runs only on the
 * owner, and the new owner carries on from the last replicated state.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Type from 'typebox';
import { KINDS, type JsonObject } from '../../lib/document.js';
import { defineService } from '../../lib/service.js';
import { startHost, tempDir, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

interface Ticker extends JsonObject {
  name?: string;
  starts?: number;
  ticks?: number;
  startedBy?: string;
  tickedBy?: string;
}

const tickers = defineService<Ticker>({
  factoryLink: '/test/tickers',
  kind: 'test:Ticker',
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION', 'PERIODIC_MAINTENANCE'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 1000,
  bodySchema: Type.Object({
    name: Type.Optional(Type.String()),
    starts: Type.Optional(Type.Integer()),
    ticks: Type.Optional(Type.Integer()),
    startedBy: Type.Optional(Type.String()),
    tickedBy: Type.Optional(Type.String()),
  }),
  create: (b) => ({ name: b.name ?? 'ticker', starts: 0, ticks: 0 }),
  put: (_c, b) => b,
  patch: (c, b) => ({ ...c, ...b }),
  handleStart: (s, ctx) => ({ starts: (s.starts ?? 0) + 1, startedBy: ctx.hostId }),
  handleMaintenance: (s, ctx) => ({ ticks: (s.ticks ?? 0) + 1, tickedBy: ctx.hostId }),
});

test('start and maintenance run on the owner only, and move with ownership', async () => {
  const dirs = await Promise.all([0, 1, 2].map(() => tempDir()));
  const hosts: TestHost[] = [];
  try {
    for (let i = 0; i < 3; i++) hosts.push(await startHost({ id: `h${i}` }, dirs[i]!.path, { services: [tickers] }));
    for (const h of hosts.slice(1))
      await h.client.post('/core/node-groups/default', {
        kind: KINDS.joinPeerRequest,
        memberGroupReference: `${hosts[0]!.host.uri}/core/node-groups/default`,
      });
    await waitFor(
      'group',
      async () => {
        for (const h of hosts) if ((await h.client.get('/core/node-groups/default/available')).status !== 200) return false;
        return true;
      },
      20_000,
    );
    const created = await hosts[0]!.client.post<Ticker & { documentOwner: string }>('/test/tickers', { documentSelfLink: 't1' });
    assert.is(created.status, 200);
    const owner = created.body.documentOwner;
    const get = (h: TestHost) => h.client.get<Ticker & { documentOwner: string; documentVersion: number }>('/test/tickers/t1');
    const first = await waitFor(
      'started and ticking',
      async () => {
        const g = await get(hosts[0]!);
        return g.body.starts === 1 && (g.body.ticks ?? 0) >= 2 ? g.body : undefined;
      },
      10_000,
    );
    assert.is(first.startedBy, owner);
    // Every version was written by the owner: handlers never ran anywhere else.
    for (let v = 1; v <= first.documentVersion; v++) {
      const old = await hosts[0]!.client.send<Ticker & { documentOwner: string }>(
        'GET',
        `/test/tickers/t1?documentVersion=${v}`,
        undefined,
        { pragma: 'xn-no-fwd' },
      );
      assert.is(old.body.documentOwner, owner, `v${v}`);
      if (old.body.tickedBy) assert.is(old.body.tickedBy, owner);
    }

    const ownerIndex = hosts.findIndex((h) => h.host.id === owner);
    const ticksBefore = first.ticks!;
    await hosts[ownerIndex]!.close();
    const rest = hosts.filter((_, i) => i !== ownerIndex);
    const after = await waitFor(
      'a new owner carries on',
      async () => {
        const g = await get(rest[0]!);
        return g.status === 200 && g.body.documentOwner !== owner && g.body.starts === 2 && (g.body.ticks ?? 0) > ticksBefore + 1
          ? g.body
          : undefined;
      },
      30_000,
    );
    assert.is(after.tickedBy, after.documentOwner);
    assert.is(after.startedBy, after.documentOwner);
    hosts.splice(ownerIndex, 1);
  } finally {
    for (const h of hosts) await h.close();
    for (const d of dirs) await d.remove();
  }
});

test.run();
