/**
 * A stale epoch travels as a code: a replica that refuses a record for its epoch answers
 * STALE_EPOCH in its result (DocumentStore.applyReplicated), and the owner's replicator tells the
 * epoch fence on that code alone (server/replication/replicator.ts), whatever status the batch
 * came with; a refusal with another code, or none, is a plain failure.
 */
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NewLogRecord } from '../../lib/document.js';
import { KINDS } from '../../lib/document.js';
import { registerService } from '../../lib/service.js';
import { exampleService } from '../../lib/services/example.js';
import type { Selectors } from '../../server/membership/selectors.js';
import type { PeerClient, PeerReply } from '../../server/net/peers.js';
import { decodeResults, encodeResults, Replicator, type ReplicaResult } from '../../server/replication/replicator.js';

const record: NewLogRecord = {
  link: '/core/examples/a',
  action: 'PATCH',
  version: 3,
  epoch: 1,
  timeMicros: 1,
  state: {
    name: 'a',
    documentSelfLink: '/core/examples/a',
    documentKind: KINDS.example,
    documentVersion: 3,
    documentEpoch: 1,
    documentOwner: 'owner',
    documentUpdateTimeMicros: 1,
    documentUpdateAction: 'PATCH',
    documentExpirationTimeMicros: 0,
  },
};

const node = (id: string) => ({
  id,
  groupReference: `http://${id}.invalid:1/core/node-groups/default`,
  status: 'AVAILABLE',
  options: ['PEER'],
  membershipQuorum: 1,
});

/** An owner with one replica whose every batch is answered `reply`; returns the links the fence was told of. */
async function shipTo(reply: PeerReply): Promise<string[]> {
  const told: string[] = [];
  const selectors = {
    groupState: { nodes: { owner: node('owner'), replica: node('replica') } },
    spec: () => ({}),
  } as unknown as Selectors;
  const peers = { request: async () => reply } as unknown as PeerClient;
  const replicator = new Replicator({
    selectors,
    peers,
    hostId: 'owner',
    logger: pino({ level: 'silent' }),
    operationTimeoutMicros: 1_000_000,
    fencing: { staleEpoch: (link) => told.push(link) },
  });
  const done = replicator.start(registerService(exampleService as never), record, 'all', Buffer.from([0xc0]));
  await done?.().catch(() => undefined);
  return told;
}

const results = (r: ReplicaResult): PeerReply => ({ status: 200, headers: {}, body: encodeResults([r]) });

test('a refusal coded STALE_EPOCH tells the epoch fence', async () => {
  assert.equal(await shipTo(results({ ok: false, code: 'STALE_EPOCH', message: 'Expected epoch: 2, in update: 1' })), ['/core/examples/a']);
});

test('a refusal is told by its code, never by a status', async () => {
  // A replica's 409 for the whole batch (or an old replica's status-only result) is no stale epoch.
  const conflict = Buffer.from(JSON.stringify({ message: 'Expected epoch: 2', statusCode: 409 }));
  assert.equal(await shipTo({ status: 409, headers: {}, body: conflict }), []);
  const statusOnly = { status: 200, headers: {}, body: encodeResults([{ ok: false, status: 409, message: 'x' } as ReplicaResult]) };
  assert.equal(await shipTo(statusOnly), []);
  assert.equal(await shipTo(results({ ok: false, code: 'LOG_FAILED', message: 'disk' })), []);
  assert.equal(await shipTo(results({ ok: true })), []);
});

test('a result without a known code reads back as PEER_UNAVAILABLE', () => {
  const odd = encodeResults([{ ok: false, code: 'NO_SUCH' as 'STALE_EPOCH', message: 'm' }, { ok: false } as ReplicaResult]);
  assert.equal(decodeResults(odd, 2), [
    { ok: false, code: 'PEER_UNAVAILABLE', message: 'm' },
    { ok: false, code: 'PEER_UNAVAILABLE', message: 'malformed result' },
  ]);
  // A replica that is stopping is unavailable to this write; SHUTTING_DOWN is this host's own stop only.
  const stopping = encodeResults([{ ok: false, code: 'SHUTTING_DOWN', message: 'host is stopping' }]);
  assert.equal(decodeResults(stopping, 1), [{ ok: false, code: 'PEER_UNAVAILABLE', message: 'host is stopping' }]);
});

test.run();
