import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startHost, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

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

interface Stat {
  name: string;
  latestValue: number;
  kind: string;
}
interface Stats {
  entries: Record<string, Stat>;
  documentSelfLink: string;
  documentKind: string;
}

t('ids that are utility suffixes are refused on create, each with a 400', async ({ h }) => {
  for (const id of ['available', 'stats', 'config', 'template', 'subscriptions', 'ui', 'synchronization', 'replication']) {
    const r = await h.client.post<ErrorBody>('/core/examples', { documentSelfLink: id, name: id });
    assert.is(r.status, 400, id);
    assert.is(r.body.message, `${id} is an invalid id: /core/examples/${id} is a utility path`);
    const full = await h.client.post<ErrorBody>('/core/examples', { documentSelfLink: `/core/examples/${id}`, name: id });
    assert.is(full.status, 400, id);
  }
  // An id that only contains one is fine.
  assert.is((await h.client.post('/core/examples', { documentSelfLink: 'stats-2', name: 'x' })).status, 200);
});

t('<factory>/available is 200 while the group is available; a child has it too, a missing child is 404', async ({ h }) => {
  assert.is((await h.client.get('/core/examples/available')).status, 200);
  assert.is((await h.client.get('/core/examples-3x/available')).status, 200);
  assert.is((await h.client.post('/core/examples', { documentSelfLink: 'av', name: 'av' })).status, 200);
  assert.is((await h.client.get('/core/examples/av/available')).status, 200);
  assert.is((await h.client.get('/core/examples/missing/available')).status, 404);
  const set = await h.client.patch<ErrorBody>('/core/examples/available', { name: 'isAvailable', latestValue: 0 });
  assert.is(set.status, 405);
  assert.match(set.body.message, /availability follows the node group/);
});

t("<link>/stats counts the requests this host ran for the link, in Xenon's ServiceStats shape", async ({ h }) => {
  assert.is((await h.client.post('/core/examples', { documentSelfLink: 'st', name: 'st' })).status, 200);
  for (let i = 0; i < 3; i++) assert.is((await h.client.get('/core/examples/st')).status, 200);
  assert.is((await h.client.patch('/core/examples/st', { counter: 5 })).status, 200);
  assert.is((await h.client.put('/core/examples/st', { counter: 1 })).status, 400);
  const child = await h.client.get<Stats>('/core/examples/st/stats');
  assert.is(child.status, 200, child.text);
  assert.is(child.body.documentKind, 'com:vmware:xenon:common:ServiceStats');
  assert.is(child.body.documentSelfLink, '/core/examples/st/stats');
  // 3 GETs, a PATCH and a failed PUT.
  assert.is(child.body.entries.requestCount?.latestValue, 5);
  assert.is(child.body.entries.failureCount?.latestValue, 1);
  assert.is(child.body.entries.requestCount?.kind, 'com:vmware:xenon:common:ServiceStats:ServiceStat');
  const before = (await h.client.get<Stats>('/core/examples/stats')).body.entries;
  assert.is((await h.client.post('/core/examples', { documentSelfLink: 'st2', name: 'st2' })).status, 200);
  assert.is((await h.client.get('/core/examples')).status, 200);
  const factory = await h.client.get<Stats>('/core/examples/stats');
  assert.is(factory.body.entries.createCount!.latestValue, before.createCount!.latestValue + 1);
  assert.is(factory.body.entries.requestCount!.latestValue, before.requestCount!.latestValue + 2);
  assert.is(factory.body.entries.isAvailable!.latestValue, 1);
  assert.equal(Object.keys(factory.body.entries), [...Object.keys(factory.body.entries)].sort());
  assert.is((await h.client.get('/core/examples/nothing-here/stats')).status, 404);
  const odata = await h.client.get<ErrorBody>('/core/examples/st/stats?$filter=name%20eq%20x');
  assert.is(odata.status, 400);
  assert.match(odata.body.message, /OData on \/stats is not supported/);
  assert.is((await h.client.put('/core/examples/st/stats', { kind: 'x' })).status, 405);
});

t('<link>/config and <factory>/template describe the service as Xenon does', async ({ h }) => {
  assert.is((await h.client.post('/core/examples', { documentSelfLink: 'cf', name: 'cf' })).status, 200);
  const fc = await h.client.get<Record<string, unknown>>('/core/examples/config');
  assert.is(fc.status, 200);
  assert.equal(fc.body.childOptions, ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION', 'INSTRUMENTATION']);
  assert.is(fc.body.peerNodeSelectorPath, '/core/node-selectors/default');
  assert.is(fc.body.versionRetentionLimit, 100);
  const cc = await h.client.get<Record<string, unknown>>('/core/examples/cf/config');
  assert.is(cc.body.documentKind, 'com:vmware:xenon:common:ServiceConfiguration');
  assert.is(cc.body.version, 0);
  assert.is((await h.client.patch('/core/examples/cf/config', {})).status, 405);

  const tpl = await h.client.get<{
    documentLinks: string[];
    documents: Record<string, { documentDescription: { propertyDescriptions: Record<string, { typeName: string }> } }>;
  }>('/core/examples/template');
  assert.is(tpl.status, 200);
  assert.equal(tpl.body.documentLinks, ['/core/examples/child-template']);
  const props = tpl.body.documents['/core/examples/child-template']!.documentDescription.propertyDescriptions;
  assert.is(props.name!.typeName, 'STRING');
  assert.is(props.counter!.typeName, 'LONG');
  assert.is(props.tags!.typeName, 'COLLECTION');
  assert.is(props.keyValues!.typeName, 'MAP');
  assert.is(props.documentVersion!.typeName, 'LONG');
});

t("GET /core/document-index reads this host's index: latest, a version, a tombstone with includeDeleted", async ({ h }) => {
  assert.is((await h.client.post('/core/examples', { documentSelfLink: 'ix', name: 'v0' })).status, 200);
  assert.is((await h.client.patch('/core/examples/ix', { name: 'v1' })).status, 200);
  const latest = await h.client.get<{ name: string; documentVersion: number }>('/core/document-index?documentSelfLink=/core/examples/ix');
  assert.is(latest.status, 200, latest.text);
  assert.is(latest.body.name, 'v1');
  const v0 = await h.client.get<{ name: string }>('/core/document-index?documentSelfLink=/core/examples/ix&documentVersion=0');
  assert.is(v0.body.name, 'v0');
  assert.is((await h.client.get('/core/document-index?documentSelfLink=/core/examples/ix&documentVersion=7')).status, 404);
  assert.is((await h.client.delete('/core/examples/ix')).status, 200);
  assert.is((await h.client.get('/core/document-index?documentSelfLink=/core/examples/ix')).status, 404);
  const tomb = await h.client.get<{ documentUpdateAction: string }>(
    '/core/document-index?documentSelfLink=/core/examples/ix&includeDeleted=true&capability=PERSISTENCE',
  );
  assert.is(tomb.status, 200);
  assert.is(tomb.body.documentUpdateAction, 'DELETE');
  for (const [qs, m] of [
    ['', /documentSelfLink is required/],
    ['documentSelfLink=/core/examples/*', /wildcard is not supported/],
    ['documentSelfLink=/core/examples/ix&documentVersion=x', /documentVersion must be/],
    ['documentSelfLink=/core/examples/ix&limit=3', /does not take limit/],
  ] as const) {
    const r = await h.client.get<ErrorBody>(`/core/document-index?${qs}`);
    assert.is(r.status, 400, qs);
    assert.match(r.body.message, m);
  }
});

const MGMT = 'com:vmware:xenon:services:common:ServiceHostManagementService';

t('PATCH /core/management: SynchronizeWithPeersRequest runs a pass; backup requests Krypton cannot honour say why', async ({ h }) => {
  const passes = async () => (await h.client.get<{ passes: number; running: boolean }>('/core/node-selectors/default/synch')).body;
  // A lone host runs no pass of its own (its membership never changes): any new one is the one asked for.
  const before = await waitFor('the first pass to end', async () => {
    const p = await passes();
    return !p.running && p;
  });
  const ok = await h.client.patch('/core/management', {
    kind: `${MGMT}:SynchronizeWithPeersRequest`,
    nodeSelectorPath: '/core/node-selectors/default',
  });
  assert.is(ok.status, 200, ok.text);
  await waitFor('the requested pass', async () => (await passes()).passes > before.passes);
  // The same through /core/management/synch, naming a factory.
  const after = await waitFor('that pass to end', async () => {
    const p = await passes();
    return !p.running && p;
  });
  const synch = await h.client.patch('/core/management/synch', {
    kind: 'com:vmware:xenon:services:common:SynchronizationRequest',
    documentSelfLink: '/core/examples',
  });
  assert.is(synch.status, 200, synch.text);
  await waitFor('the pass asked for by factory', async () => (await passes()).passes > after.passes);
  const wrongKind = await h.client.patch<ErrorBody>('/core/management/synch', { kind: 'x', documentSelfLink: '/core/examples' });
  assert.is(wrongKind.status, 400);
  assert.is(wrongKind.body.message, "Invalid 'kind' in the request body");
  const noFactory = await h.client.patch('/core/management/synch', {
    kind: 'com:vmware:xenon:services:common:SynchronizationRequest',
    documentSelfLink: '/core/nothing',
  });
  assert.is(noFactory.status, 404);
  const unknownSel = await h.client.patch('/core/management', {
    kind: `${MGMT}:SynchronizeWithPeersRequest`,
    nodeSelectorPath: '/core/node-selectors/nope',
  });
  assert.is(unknownSel.status, 404);
  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['BackupRequest', {}, /^destination must be a file: URI on this host/],
    ['BackupRequest', { destination: 'http://elsewhere/backup' }, /http destinations are not supported/],
    ['BackupRequest', { destination: 'file:///tmp/b.snap', backupType: 'ZIP' }, /^backupType "ZIP" is not supported/],
    [
      'RestoreRequest',
      { destination: 'file:///tmp/b.snap' },
      /^RestoreRequest is not supported: `krypton restore FILE --host URL` restores a backup into a running group/,
    ],
    ['AutoBackupConfiguration', {}, /^AutoBackupConfiguration is not supported/],
  ];
  for (const [k, fields, message] of refused) {
    const r = await h.client.patch<ErrorBody>('/core/management', { kind: `${MGMT}:${k}`, ...fields });
    assert.is(r.status, 400, r.text);
    assert.match(r.body.message, message);
  }
  const tracing = await h.client.patch<ErrorBody>('/core/management', { kind: `${MGMT}:ConfigureOperationTracingRequest` });
  assert.match(tracing.body.message, /no operation tracing/);
  assert.is((await h.client.patch<ErrorBody>('/core/management', { kind: 'x' })).body.message, 'unknown request');
  assert.is((await h.client.patch<ErrorBody>('/core/management', {})).body.message, 'kind is required');
});

t.run();
