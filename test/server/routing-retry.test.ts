/**
 * Owner routing's retry (server/routing/routing.ts): a hop that fails may still have reached the
 * old owner, so when this host becomes the owner the write runs here under the same request id the
 * hop carried. Before, the id was dropped and a write whose first hop had landed was applied twice
 * (torture seed 1001: one set add at versions 15 and 17 after the owner was killed).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KRYPTON_ERROR_CODES, KryptonError } from '../../lib/errors.js';
import type { Selectors } from '../../server/membership/selectors.js';
import type { PeerClient } from '../../server/net/peers.js';
import { OwnerRouting } from '../../server/routing/routing.js';

/**
 * Selectors whose owner of every key is `from` until the first membership change (the failed
 * hop's probe marks it down), then `to`; `versions` are the members' entry versions.
 */
function movingOwner(from: string, to: string, versions: Record<string, number>) {
  const state = { owner: from };
  const nodes = Object.fromEntries(Object.entries(versions).map(([id, documentVersion]) => [id, { documentVersion }]));
  const selectors = {
    passable: true,
    owner: () => ({ id: state.owner, groupReference: `http://${state.owner}.invalid:1/core/node-groups/default` }),
    groupState: { nodes },
    membershipChange: async () => {
      state.owner = to;
    },
  } as unknown as Selectors;
  return { selectors, state };
}

/** Routing on host `hostId` over stubs, its clock moving `stepMicros` at each read. */
function routingOver(selectors: Selectors, peers: PeerClient, hostId = 'here', stepMicros = 10): OwnerRouting {
  let t = 1_000_000;
  const clock = { nowMicros: () => (t += stepMicros), observe: () => undefined };
  return new OwnerRouting({ selectors, peers, clock, hostId, operationTimeoutMicros: 10_000_000 });
}

function routing(ids: (string | undefined)[]) {
  const peers = {
    request: async (_url: string, o: { headers: Record<string, string> }) => {
      ids.push(o.headers['idempotency-key']);
      throw new KryptonError('PEER_UNAVAILABLE', 'connection reset');
    },
  } as unknown as PeerClient;
  return routingOver(movingOwner('old', 'here', { old: 7, here: 3 }).selectors, peers);
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
  assert.equal(d, { local: true, requestId: sent[0], retry: true }, 'run here as a retry');
});

test("a client's Idempotency-Key is the id of every hop and of the local run", async () => {
  const sent: (string | undefined)[] = [];
  const d = await routing(sent).route(request('client-key-1'), '/core/node-selectors/default', '/core/examples/a');
  assert.equal(sent, ['client-key-1']);
  assert.equal(d, { local: true, requestId: 'client-key-1', retry: true });
});

test("a hop carries the owner's entry version; the owner's STALE_VIEW answer is a failed hop, retried, never relayed", async () => {
  const entries: (string | undefined)[] = [];
  const pragmas: string[] = [];
  const { selectors, state } = movingOwner('old', 'next', { old: 7, next: 2 });
  const stale = Buffer.from(JSON.stringify({ message: 'stale', statusCode: 503, errorCode: KRYPTON_ERROR_CODES.STALE_VIEW }));
  const peers = {
    request: async (url: string, o: { headers: Record<string, string> }) => {
      entries.push(o.headers['x-krypton-owner-entry']);
      pragmas.push(o.headers.pragma!);
      return url.includes('old.invalid')
        ? { status: 503, headers: {}, body: stale }
        : { status: 200, headers: {}, body: Buffer.from('{}') };
    },
  } as unknown as PeerClient;
  const r = routingOver(selectors, peers);
  const d = await r.route(request(), '/core/node-selectors/default', '/core/examples/a');
  assert.equal(entries, ['7', '2']);
  assert.equal(pragmas, ['xn-fwd', 'xn-fwd;kr-retry'], 'the second hop says it is a retry');
  assert.is(d.local, false);
  assert.is(d.local === false && d.reply.status, 200);
  // A read carries none: a late read changes nothing.
  entries.length = 0;
  state.owner = 'next';
  await r.route({ ...request(), method: 'GET', body: undefined }, '/core/node-selectors/default', '/core/examples/a');
  assert.equal(entries, [undefined]);
});

test('an owner that receives a forward waits for its own quorum, and past the wait refuses rather than answer without one', async () => {
  let available = false;
  let changes = 0;
  // Its own view names it the owner; `onChange` is what a membership change does to the view.
  const healed = (onChange: () => void) =>
    routingOver(
      {
        get available() {
          return available;
        },
        ownedHere: () => true,
        membershipChange: async () => onChange(),
      } as unknown as Selectors,
      {} as PeerClient,
      'healed',
      1000,
    );
  const e = await healed(() => changes++)
    .untilOwner('/core/node-selectors/default', '/core/examples/a')
    .then(
      () => undefined,
      (x: KryptonError) => x,
    );
  assert.is(e?.code, 'QUORUM_UNAVAILABLE', 'a host back from a partition without its peers answers no 404');
  assert.ok(changes > 0, 'it waited for membership changes first');
  // Once its view holds the quorum again, the forward runs.
  await healed(() => {
    available = true;
  }).untilOwner('/core/node-selectors/default', '/core/examples/a');
  assert.ok(available);
});

test.run();
