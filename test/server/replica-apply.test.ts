/**
 * A replica applying a shipped batch (DocumentStore.applyReplicated): records of links with
 * nothing queued go into one append, later records of the same link wait behind it in order,
 * copies already held are acknowledged, older epochs refused; what was appended is in the log
 * (a restart replays it to the same state), and a stop does not take the shipped links over.
 */
import { request } from 'undici';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NewLogRecord } from '../../lib/document.js';
import { KINDS } from '../../lib/document.js';
import { decodeResults, encodeBatch, REPLICATION_CONTENT_TYPE, type ReplicaResult } from '../../server/replication/replicator.js';
import { startHost, tempDir, type TestHost } from '../support/hosts.js';

function rec(id: string, version: number, epoch: number, name: string): NewLogRecord {
  const link = `/core/examples/${id}`;
  const t = 1_700_000_000_000_000 + version;
  return {
    link,
    action: version === 0 ? 'POST' : 'PATCH',
    version,
    epoch,
    timeMicros: t,
    state: {
      name,
      documentSelfLink: link,
      documentKind: KINDS.example,
      documentVersion: version,
      documentEpoch: epoch,
      documentOwner: 'elsewhere',
      documentUpdateTimeMicros: t,
      documentUpdateAction: version === 0 ? 'POST' : 'PATCH',
      documentExpirationTimeMicros: 0,
    },
  };
}

async function ship(h: TestHost, records: NewLogRecord[]): Promise<ReplicaResult[]> {
  const r = await request(`${h.host.uri}/core/node-selectors/default/replication`, {
    method: 'POST',
    body: encodeBatch({ from: 'elsewhere', records }),
    headers: { 'content-type': REPLICATION_CONTENT_TYPE },
  });
  assert.is(r.statusCode, 200);
  return decodeResults(Buffer.from(await r.body.arrayBuffer()), records.length);
}

const ok = { ok: true };

test('one batch: appended together, same-link records in order, held copies acknowledged, older epochs refused', async () => {
  const dir = await tempDir();
  let h = await startHost({ id: 'replica' }, dir.path);
  try {
    assert.equal(await ship(h, [rec('a', 0, 0, 'a0'), rec('a', 1, 0, 'a1'), rec('b', 0, 0, 'b0'), rec('a', 2, 0, 'a2')]), [ok, ok, ok, ok]);
    const syncsAfterFirst = (await h.client.get<{ logStats: { syncs: number; appends: number } }>('/core/management')).body.logStats;
    assert.is(syncsAfterFirst.appends, 4);
    for (const v of [0, 1, 2]) assert.is((await h.client.get(`/core/examples/a?documentVersion=${v}`)).body.name, `a${v}`);
    assert.is((await h.client.get('/core/examples/a')).body.name, 'a2');

    const answers = await ship(h, [
      rec('a', 1, 0, 'a1'), // a copy held: acknowledged again
      rec('c', 0, 3, 'c0'),
      rec('c', 1, 2, 'stale'), // behind c's first record, whose epoch 3 it is older than
      rec('b', 1, 0, 'b1'),
    ]);
    assert.equal(answers, [ok, ok, { ok: false, code: 'STALE_EPOCH', message: 'Expected epoch: 3, in update: 2' }, ok]);
    assert.is((await h.client.get('/core/examples/c')).body.name, 'c0');
    assert.is((await h.client.get('/core/examples/b')).body.name, 'b1');
    assert.is(
      (await h.client.get<{ logStats: { appends: number } }>('/core/management')).body.logStats.appends,
      6,
      'nothing appended for the copy or the refusal',
    );

    h = await h.restart();
    assert.is((await h.client.get('/core/examples/a')).body.name, 'a2', 'replayed from the log');
    assert.is((await h.client.get('/core/examples/a?documentVersion=1')).body.name, 'a1');
    assert.is((await h.client.get('/core/examples/c')).body.documentEpoch, 3);
    assert.is((await h.client.get('/core/examples/b')).body.documentVersion, 1);
  } finally {
    await h.close();
    await dir.remove();
  }
});

test('stopped with DELETE /core/management, the host takes no shipped link over on its way out', async () => {
  const dir = await tempDir();
  let h = await startHost({ id: 'replica' }, dir.path);
  try {
    assert.equal(await ship(h, [rec('c', 0, 3, 'c0')]), [ok]);
    assert.is((await h.client.delete('/core/management')).status, 202);
    await h.host.stopped;
    h = await startHost({ id: 'replica' }, dir.path);
    const c = await h.client.get<{ documentEpoch: number; documentVersion: number }>('/core/examples/c');
    assert.equal([c.body.documentEpoch, c.body.documentVersion], [3, 0], 'no takeover logged while it stopped');
  } finally {
    await h.close();
    await dir.remove();
  }
});

test.run();
