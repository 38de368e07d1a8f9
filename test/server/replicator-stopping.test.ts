/**
 * A write in flight when its host stops: once the peer client is closed (Host.stop), every batch
 * fails for good, so the owner's quorum wait must end at once with a failure. Counted as a
 * replica that did not answer, it was sent again every retry delay until the operation deadline,
 * and the retry timer kept a stopped process alive (e2e stop-under-load in CI: no exit 10 s after
 * SIGTERM, "peer client closed" logged every 200 ms).
 */
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NewLogRecord } from '../../lib/document.js';
import { KINDS } from '../../lib/document.js';
import { isKryptonError } from '../../lib/errors.js';
import { registerService } from '../../lib/service.js';
import { exampleService } from '../../lib/services/example.js';
import type { Selectors } from '../../server/membership/selectors.js';
import { PeerClient } from '../../server/net/peers.js';
import { Replicator } from '../../server/replication/replicator.js';

const record: NewLogRecord = {
  link: '/core/examples/a',
  action: 'PUT',
  version: 2,
  epoch: 1,
  timeMicros: 1,
  state: {
    name: 'a',
    documentSelfLink: '/core/examples/a',
    documentKind: KINDS.example,
    documentVersion: 2,
    documentEpoch: 1,
    documentOwner: 'owner',
    documentUpdateTimeMicros: 1,
    documentUpdateAction: 'PUT',
    documentExpirationTimeMicros: 0,
  },
};

const node = (id: string) => ({
  id,
  groupReference: `http://127.0.0.1:1/${id}/core/node-groups/default`,
  status: 'AVAILABLE',
  options: ['PEER'],
  membershipQuorum: 2,
});

test('a quorum write fails at once when the peer client is closed, not at its deadline', async () => {
  const selectors = {
    groupState: { nodes: { owner: node('owner'), r1: node('r1'), r2: node('r2') } },
    spec: () => ({}),
  } as unknown as Selectors;
  const peers = new PeerClient({});
  await peers.close();
  const replicator = new Replicator({
    selectors,
    peers,
    hostId: 'owner',
    logger: pino({ level: 'silent' }),
    // A minute: a write retried until then would outlive the test's own deadline below.
    operationTimeoutMicros: 60_000_000,
    fencing: { staleEpoch: () => undefined },
  });
  const done = replicator.start(registerService(exampleService as never), record, undefined, Buffer.from([0xc0]));
  assert.ok(done, 'a replicated write');
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    done().then(
      () => 'succeeded',
      (e: unknown) => (isKryptonError(e) ? e.code : 'other error'),
    ),
    new Promise<string>((r) => {
      timer = setTimeout(() => r('still waiting'), 5_000);
    }),
  ]);
  clearTimeout(timer);
  assert.is(outcome, 'SHUTTING_DOWN');
});

test.run();
