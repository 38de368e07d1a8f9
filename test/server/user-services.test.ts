/**
 * User services loaded from a module (config.services, what `krypton host --services` sets) on
 * a 3-host group, used through the client: handlers run on each document's owner only; the
 * effects they return happen once per successful update (a retried PATCH, answered from the
 * dedup window, asks for nothing again); a singleton exists once the group is up; a stateless
 * service answers through any host; a maintenance effect runs. A host whose module defines a
 * service differently is refused by the group, and refuses it, with a message saying why.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KryptonClient } from '../../client/index.js';
import { KINDS } from '../../lib/document.js';
import { parseHostArgs } from '../../server/base/config.js';
import { closeAll, joinAll, startGroup, startHost, type TestHost } from '../support/hosts.js';
import type { Counter, Note } from '../support/user-services.js';
import { waitFor } from '../support/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MODULE = path.join(here, '../support/user-services.ts');
const MODULE_V2 = path.join(here, '../support/user-services-v2.ts');

async function ownerOf(h: TestHost, link: string): Promise<string> {
  const r = await h.client.send<{ ownerNodeId: string }>('POST', '/core/node-selectors/default', { key: link });
  return r.body.ownerNodeId;
}

test('handlers run on owners only; effects happen once per successful update; singleton and stateless services', async () => {
  const hosts = await startGroup(3, () => ({ services: [MODULE] }));
  const client = await KryptonClient.connect({ hosts: [hosts[0]!.host.uri] });
  try {
    const counter = client.document<Counter>('/app/counters/total');
    // The singleton's owner creates it once the group is available.
    await waitFor('the singleton counter', () => counter.find());

    const notes = client.factory<Note>('/app/notes');
    const ids = ['a', 'b', 'c', 'd', 'e'];
    for (const id of ids) await notes.create({ documentSelfLink: id, text: 'first' });
    for (const id of ids) {
      for (let i = 0; i < 3; i++) await notes.doc(id).patch({ text: `edit ${i}` });
    }
    // A client retry of one PATCH with the key of the first try: answered as the first, no new effect.
    const first = await client.request<Note>(
      'PATCH',
      '/app/notes/a',
      { text: 'retried' },
      { routeKey: '/app/notes/a', idempotencyKey: 'k-1' },
    );
    const again = await client.request<Note>(
      'PATCH',
      '/app/notes/a',
      { text: 'retried' },
      { routeKey: '/app/notes/a', idempotencyKey: 'k-1' },
    );
    assert.is(again.documentVersion, first.documentVersion, 'the retry is answered with the first outcome');
    const updates = ids.length * 3 + 1;

    // Every counted PATCH continues on the counter's answer with a PATCH of its own (countedAt).
    await waitFor(
      'every note continued on its count',
      async () => {
        for (const id of ids) {
          const n = await notes.get(id);
          if (n.countedAt === undefined || n.text === 'first') return false;
        }
        return (await counter.get()).count === updates;
      },
      20_000,
    );
    const c = await counter.get();
    assert.is(c.count, updates, 'one increment per successful update, none for the retry');
    assert.is(c.documentVersion, updates, 'the counter was patched once per update');
    const counterOwner = await ownerOf(hosts[0]!, '/app/counters/total');
    assert.ok(c.ranOn!.length === updates && c.ranOn!.every((h) => h === counterOwner), "the counter's handler ran on its owner only");

    for (const id of ids) {
      const n = await notes.get(id);
      const owner = await ownerOf(hosts[0]!, `/app/notes/${id}`);
      assert.ok(
        n.ranOn!.length > 0 && n.ranOn!.every((h) => h === owner),
        `${id}'s handlers ran on its owner only: ${n.ranOn} vs ${owner}`,
      );
    }
    // Each create made one audit document (a create effect, keyed, so applied once).
    const audits = await client.factory('/app/audit').list();
    assert.equal(audits.sort(), ids.map((id) => `/app/audit/${id}`).sort());

    // The stateless service answers through every host, computed there.
    for (const h of hosts) {
      const r = await h.client.get<{ count: number; answeredBy: string }>('/app/stats');
      assert.is(r.status, 200);
      assert.equal(r.body, { count: updates, answeredBy: h.host.id });
    }
    assert.is((await hosts[0]!.client.send('DELETE', '/app/stats')).status, 405);

    // A singleton has one document only.
    const other = await hosts[1]!.client.send('POST', '/app/counters', { documentSelfLink: 'second', count: 1 });
    assert.is(other.status, 400);
    assert.match(String((other.body as { message?: string }).message), /singleton/);

    // A maintenance effect: the owner runs handleMaintenance once, later.
    await notes.doc('b').patch({ remindInMicros: 100_000 });
    await waitFor('the reminder', async () => (await notes.get('b')).reminded === true);
  } finally {
    await client.close();
    await closeAll(hosts);
  }
});

test('a host whose services differ is refused, and refuses, with a message saying why', async () => {
  const group = await startGroup(2, () => ({ services: [MODULE] }));
  const odd = await startHost({ services: [MODULE_V2] });
  try {
    const link = '/core/node-groups/default';
    const join = { kind: KINDS.joinPeerRequest, memberGroupReference: `${group[0]!.host.uri}${link}` };
    await odd.client.send('POST', link, join);
    const log = async (h: TestHost) =>
      JSON.stringify((await h.client.get('/core/management/process-log?lineCount=200')).body).match(/services differ[^"]*/)?.[0];
    const why = await waitFor('the joining host to say why it refused', () => log(odd));
    assert.match(why, /\/app\/notes differently/);

    // The other way round: the group's host asked to join the odd one refuses too.
    await group[0]!.client.send('POST', link, { kind: KINDS.joinPeerRequest, memberGroupReference: `${odd.host.uri}${link}` });
    await waitFor('the group host to say why it refused', () => log(group[0]!));

    // Gossip or an insert from the odd host is answered 409 SERVICES_DIFFER.
    const oddState = (await odd.client.get<{ nodes: Record<string, unknown> }>(link)).body;
    const gossip = await group[0]!.client.send('PATCH', link, oddState);
    assert.is(gossip.status, 409);
    assert.match(String((gossip.body as { message?: string }).message), /services differ/);
    for (const h of [...group, odd]) {
      const g = await h.client.get<{ nodes: Record<string, unknown> }>(link);
      assert.is(Object.keys(g.body.nodes).includes(odd.host.id), h === odd, `${h.host.id}'s view`);
      assert.is(Object.keys(g.body.nodes).length, h === odd ? 1 : 2);
    }
  } finally {
    await odd.close();
    await closeAll(group);
  }
});

test('a whole group restarted with other modules forms again (stale copies of old entries do not count)', async () => {
  const group = await startGroup(3, () => ({ services: [MODULE] }));
  const sandboxes = group.map((h) => h.sandbox);
  const again: TestHost[] = [];
  try {
    for (const h of group) {
      await h.client.close();
      await h.host.stop();
    }
    // Each host's saved membership still holds the others' entries with the old fingerprints.
    for (const dir of sandboxes) again.push(await startHost({ services: [MODULE_V2] }, dir));
    await joinAll(again);
  } finally {
    await closeAll(again);
    for (const dir of sandboxes) await fs.rm(dir, { recursive: true, force: true });
  }
});

test('with authorization on, a stateless service is behind roles and asks as its caller', async () => {
  const h = await startHost({
    isAuthorizationEnabled: true,
    adminUser: 'admin@localhost',
    adminPassword: 'admin-pw-123',
    services: [MODULE],
  });
  const admin = new KryptonClient({ hosts: [h.host.uri] });
  const reader = new KryptonClient({ hosts: [h.host.uri] });
  try {
    await h.host.cluster.admin!.ready;
    assert.is((await h.client.get('/app/stats')).status, 403, 'the guest has no role for it');
    await admin.login('admin@localhost', 'admin-pw-123');
    await waitFor('the singleton counter', () => admin.document<Counter>('/app/counters/total').find());
    assert.equal((await admin.request<{ count: number }>('GET', '/app/stats')).count, 0);
    // A user who may GET the stats but not the counter they read: the inner request runs as them.
    await admin.request('POST', '/core/authz/users', { documentSelfLink: 'r', email: 'r@localhost' });
    await admin.request(
      'POST',
      '/core/auth/credentials',
      { userEmail: 'r@localhost', privateKey: 'reader-pw-123' },
      { idempotencyKey: false },
    );
    await admin.request('POST', '/core/authz/roles', {
      documentSelfLink: 'r',
      userLinks: ['/core/authz/users/r'],
      pathPrefixes: ['/app/stats'],
      verbs: ['GET'],
      policy: 'ALLOW',
    });
    await reader.login('r@localhost', 'reader-pw-123');
    const r = await reader.request<{ count: number; answeredBy: string }>('GET', '/app/stats');
    assert.is(r.count, -1, 'the counter was not readable by the caller');
  } finally {
    await admin.close();
    await reader.close();
    await h.close();
  }
});

test('--services takes a comma-separated list of modules, resolved from the working folder', () => {
  const c = parseHostArgs(['--services=a.js, ./lib/b.js']);
  assert.equal(c.services, [path.resolve('a.js'), path.resolve('lib/b.js')]);
  assert.throws(() => parseHostArgs(['--services=']), /expected one or more module files/);
});

test('a --services module that cannot serve stops the start with a message naming it', async () => {
  const bad = path.join(here, '../support/hosts.ts');
  const e = await startHost({ services: [bad] }).then(
    (h) => h.close().then(() => undefined),
    (x: unknown) => x as Error,
  );
  assert.ok(e, 'the start failed');
  assert.match(e!.message, /exports no service definitions/);
  const missing = await startHost({ services: [path.join(here, 'no-such-module.js')] }).then(
    (h) => h.close().then(() => undefined),
    (x: unknown) => x as Error,
  );
  assert.match(missing!.message, /cannot load --services module/);
});

test.run();
