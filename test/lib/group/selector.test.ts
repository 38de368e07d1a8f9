import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../../lib/document.js';
import { KryptonError } from '../../../lib/errors.js';
import { nodeSelectorState, selectOwner, selectorStatus } from '../../../lib/group/selector.js';
import { defaultGroupConfig, type NodeGroupState, type NodeState } from '../../../lib/group/types.js';

const LINK = '/core/node-groups/default';

function node(id: string, extra: Partial<NodeState> = {}): NodeState {
  return {
    id,
    groupReference: `http://${id}:8000${LINK}`,
    status: 'AVAILABLE',
    options: ['PEER'],
    membershipQuorum: 2,
    locationQuorum: 1,
    documentVersion: 1,
    documentKind: KINDS.nodeState,
    documentSelfLink: `${LINK}/${id}`,
    documentUpdateTimeMicros: 0,
    documentExpirationTimeMicros: 0,
    ...extra,
  };
}

function group(owner: string, nodes: NodeState[], localChangeMicros = 0): NodeGroupState {
  return {
    config: defaultGroupConfig(),
    nodes: Object.fromEntries(nodes.map((n) => [n.id, n])),
    membershipUpdateTimeMicros: 12,
    localMembershipUpdateTimeMicros: localChangeMicros,
    documentVersion: 3,
    documentKind: KINDS.nodeGroupState,
    documentSelfLink: LINK,
    documentOwner: owner,
    documentUpdateTimeMicros: 99,
    documentExpirationTimeMicros: 0,
  };
}

const three = (): NodeState[] => [node('host-1'), node('host-2'), node('host-3')];

test("Xenon owner vectors (computed with Xenon's Java) through the selector", () => {
  const g = group('host-2', three());
  const foo = selectOwner(g, '/core/examples/foo');
  assert.equal(
    [foo.key, foo.ownerNodeId, foo.ownerNodeGroupReference, foo.isLocalHostOwner, foo.availableNodeCount, foo.membershipUpdateTimeMicros],
    ['/core/examples/foo', 'host-2', `http://host-2:8000${LINK}`, true, 3, 12],
  );
  assert.equal(
    foo.selectedNodes.map((n) => n.id),
    ['host-2'],
  );
  assert.is(selectOwner(g, '/core/examples/bar').ownerNodeId, 'host-3');
  assert.is(selectOwner(g, '/core/examples/bar').isLocalHostOwner, false);
  assert.is(selectOwner(g, '/core/examples').ownerNodeId, 'host-2');
});

test('replicationFactor keeps the closest members, owner first', () => {
  const r = selectOwner(group('host-1', three()), '/core/examples/foo', 2);
  assert.is(r.selectedNodes.length, 2);
  assert.is(r.selectedNodes[0]!.id, r.ownerNodeId);
  assert.is(selectOwner(group('host-1', three()), '/core/examples/foo', 10).selectedNodes.length, 3);
});

test('unavailable, replaced, unconfirmed and observer members never own', () => {
  const cases: Partial<NodeState>[] = [{ status: 'UNAVAILABLE' }, { status: 'REPLACED' }, { status: 'UNKNOWN' }, { options: ['OBSERVER'] }];
  for (const extra of cases) {
    const nodes = [node('host-1'), node('host-2', extra), node('host-3')];
    const r = selectOwner(group('host-1', nodes), '/core/examples/foo', 3);
    assert.is.not(r.ownerNodeId, 'host-2');
    assert.not.ok(
      r.selectedNodes.some((n) => n.id === 'host-2'),
      'and receive no replicas',
    );
    assert.is(r.availableNodeCount, 2);
  }
  const syncing = selectOwner(group('host-1', [node('host-1'), node('host-2', { status: 'SYNCHRONIZING' })]), '/core/examples/foo');
  assert.is(syncing.ownerNodeId, 'host-2', 'SYNCHRONIZING is eligible, as in Xenon');
});

test('a one-entry map owns everything; no eligible member is QUORUM_UNAVAILABLE', () => {
  const lone = selectOwner(group('solo', [node('solo', { status: 'UNAVAILABLE' })]), '/anything');
  assert.equal([lone.ownerNodeId, lone.isLocalHostOwner, lone.availableNodeCount], ['solo', true, 1]);
  try {
    selectOwner(group('a', [node('a', { options: ['OBSERVER'] }), node('b', { status: 'UNAVAILABLE' })]), '/x');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, KryptonError);
    assert.is((e as KryptonError).code, 'QUORUM_UNAVAILABLE');
    assert.is((e as KryptonError).message, 'Available nodes: 0, quorum: 2');
  }
});

test('selector status says whether requests are served: the quorum, settled or not; NodeSelectorState shape', () => {
  // Changed membership an instant ago: requests are served per link all the same (availability.ts).
  const g = group('host-1', three(), 10_000_000);
  assert.is(selectorStatus(g), 'AVAILABLE');
  const one = group('host-1', [node('host-1'), node('host-2'), node('host-3', { status: 'UNAVAILABLE' })]);
  assert.is(selectorStatus(one), 'AVAILABLE', 'two of three is the quorum');
  const down = group('host-1', [node('host-1'), node('host-2', { status: 'UNAVAILABLE' }), node('host-3', { status: 'UNAVAILABLE' })]);
  assert.is(selectorStatus(down), 'UNAVAILABLE', 'no quorum');
  const st = nodeSelectorState({ selectorLink: '/core/node-selectors/default-3x', replicationFactor: 3 }, g);
  assert.equal(st, {
    nodeGroupLink: LINK,
    membershipQuorum: 0,
    membershipUpdateTimeMicros: 12,
    status: 'AVAILABLE',
    documentSelfLink: '/core/node-selectors/default-3x',
    documentKind: KINDS.nodeSelectorState,
    documentOwner: 'host-1',
    documentUpdateTimeMicros: 99,
    replicationFactor: 3,
  });
});

test.run();
