/**
 * Owner routing's retry (server/routing/routing.ts): a hop that fails may still have reached the
 * old owner, so when this host becomes the owner the write runs here under the same request id the
 * hop carried. Before, the id was dropped and a write whose first hop had landed was applied twice
 * (torture seed 1001: one set add at versions 15 and 17 after the owner was killed).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KryptonError } from '../../lib/errors.js';
import type { Selectors } from '../../server/membership/selectors.js';
import type { PeerClient } from '../../server/net/peers.js';
import { OwnerRouting } from '../../server/routing/routing.js';

function routing(ids: (string | undefined)[]) {
  let owner = 'old';
  const selectors = {
    passable: true,
    owner: () => ({ id: owner, groupReference: `http://${owner}.invalid:1/core/node-groups/default` }),
    // The failed hop's probe marks the old owner down: this host owns the link from then on.
    membershipChange: async () => {
      owner = 'here';
    },
  } as unknown as Selectors;
  const peers = {
    request: async (_url: string, o: { headers: Record<string, string> }) => {
      ids.push(o.headers['idempotency-key']);
      throw new KryptonError('PEER_UNAVAILABLE', 'connection reset');
    },
  } as unknown as PeerClient;
  let t = 1_000_000;
  const clock = { nowMicros: () => (t += 10), observe: () => undefined };
  return new OwnerRouting({ selectors, peers, clock, hostId: 'here', operationTimeoutMicros: 10_000_000 });
}

const request = (requestId?: string) => ({
  method: 'PUT',
  url: '/core/examples/a',
  body: { name: 'once' },
  pragmas: new Set<string>(),
  arrivalMicros: 1_000_000,
  xenonHeaders: {},
  ...(requestId === undefined ? {} : { requestId }),
});

test('a write whose hop failed runs here, once this host owns it, with the id the hop carried', async () => {
  const sent: (string | undefined)[] = [];
  const d = await routing(sent).route(request(), '/core/node-selectors/default', '/core/examples/a');
  assert.is(sent.length, 1);
  assert.ok(sent[0], 'the hop carried a request id');
  assert.equal(d, { local: true, requestId: sent[0] });
});

test("a client's Idempotency-Key is the id of every hop and of the local run", async () => {
  const sent: (string | undefined)[] = [];
  const d = await routing(sent).route(request('client-key-1'), '/core/node-selectors/default', '/core/examples/a');
  assert.equal(sent, ['client-key-1']);
  assert.equal(d, { local: true, requestId: 'client-key-1' });
});

test.run();
