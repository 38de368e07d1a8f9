/**
 * The gate owner-selected requests pass while the node group is unavailable: parked requests run
 * as soon as it is available, fail with 408 and Xenon's error body at the operation timeout, and
 * past the queue limit new ones get 503. Also: membership and quorum survive a restart.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs/promises';
import path from 'node:path';
import { KINDS } from '../../lib/document.js';
import { startHost, tempDir } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

// A peer that never answers: with it in --peerNodes the default quorum is 2 and cannot be met.
const UNREACHABLE = 'http://127.0.0.1:9';

test('a parked request fails with 408 and the error body at the operation timeout', async () => {
  const h = await startHost({ peerNodes: [UNREACHABLE], operationTimeoutMicros: 800_000 });
  try {
    assert.is((await h.client.get('/core/node-groups/default/available')).status, 503);
    const started = Date.now();
    const r = await h.client.post('/core/examples', { documentSelfLink: 'late', name: 'late' });
    assert.is(r.status, 408);
    assert.is(r.body.statusCode, 408);
    assert.is(r.body.documentKind, KINDS.serviceErrorResponse);
    assert.ok(Date.now() - started >= 700, 'it waited for the timeout');
    // Nothing was written: with the group back (quorum relaxed to 1) the link is free.
    await h.client.patch('/core/node-groups/default', { kind: KINDS.updateQuorumRequest, membershipQuorum: 1, isGroupUpdate: false });
    await waitFor('group available', async () => (await h.client.get('/core/node-groups/default/available')).status === 200, 10_000);
    assert.is((await h.client.get('/core/examples/late')).status, 404);
  } finally {
    await h.close();
  }
});

test('parked requests run in order as soon as the group is available', async () => {
  const h = await startHost({ peerNodes: [UNREACHABLE] });
  try {
    const replies = Array.from({ length: 5 }, (_, i) => h.client.post('/core/examples', { documentSelfLink: `p${i}`, name: `p${i}` }));
    await waitFor('requests parked', async () =>
      (await h.client.get<{ parkedRequests: number }>('/core/management')).body.parkedRequests === 5 ? true : undefined,
    );
    await h.client.patch('/core/node-groups/default', { kind: KINDS.updateQuorumRequest, membershipQuorum: 1, isGroupUpdate: false });
    for (const r of await Promise.all(replies)) assert.is(r.status, 200);
  } finally {
    await h.close();
  }
});

test('past the pending-request limit new requests get 503', async () => {
  const { Selectors } = await import('../../server/membership/selectors.js');
  const listeners: ((a: boolean) => void)[] = [];
  const group = {
    hasQuorum: () => false,
    onServing: (cb: (a: boolean) => void) => listeners.push(cb),
    onChanged: () => undefined,
    group: { nodes: {}, documentOwner: 'x' },
  };
  const clock = { nowMicros: () => Date.now() * 1000, observe: () => {} };
  const sel = new Selectors(group as never, clock, 2);
  const a = sel.whenAvailable(clock.nowMicros() + 60_000_000);
  const b = sel.whenAvailable(clock.nowMicros() + 60_000_000);
  await sel.whenAvailable(clock.nowMicros() + 60_000_000).then(
    () => assert.unreachable('the third request must be refused'),
    (e: { code: string }) => assert.is(e.code, 'LIMIT_EXCEEDED'),
  );
  group.hasQuorum = () => true;
  for (const l of listeners) l(true);
  await Promise.all([a, b]);
  sel.stop();
});

test('membership and quorum are kept in the sandbox across a restart', async () => {
  const dir = await tempDir();
  let h = await startHost({ id: 'keeper' }, dir.path);
  try {
    const q = await h.client.patch('/core/node-groups/default', {
      kind: KINDS.updateQuorumRequest,
      membershipQuorum: 3,
      isGroupUpdate: false,
    });
    assert.is(q.status, 200);
    const file = path.join(dir.path, '0', 'node-groups', 'default.json');
    await waitFor('snapshot written', async () => JSON.parse(await fs.readFile(file, 'utf8')) as unknown);
    h = await h.restart();
    const g = await h.client.get<{ nodes: Record<string, { membershipQuorum: number }> }>('/core/node-groups/default');
    assert.is(g.body.nodes.keeper!.membershipQuorum, 3);
  } finally {
    await h.close();
    await dir.remove();
  }
});

test.run();
