import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../../lib/document.js';
import { KryptonError } from '../../../lib/errors.js';
import {
  classifyGroupPatch,
  classifyGroupPost,
  defaultMembershipQuorum,
  normalizeGroupReference,
  parseJoinPeerRequest,
  parseNodeGroupCreateRequest,
  parseNodeGroupState,
  parseNodeState,
  parseUpdateQuorumRequest,
} from '../../../lib/group/types.js';

const REF = 'http://127.0.0.1:8000/core/node-groups/default';

function rejects(fn: () => unknown, message: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, KryptonError);
    assert.is((e as KryptonError).code, 'INVALID_BODY');
    assert.match((e as KryptonError).message, message);
    return;
  }
  assert.unreachable(`expected INVALID_BODY ${message}`);
}

test('default membership quorum: floor((peers other than self + 1) / 2) + 1, min 1', () => {
  assert.equal([0, 1, 2, 3, 4, 6].map(defaultMembershipQuorum), [1, 2, 2, 3, 3, 4]);
  assert.is(defaultMembershipQuorum(-1), 1);
});

test('JoinPeerRequest: accepted shapes', () => {
  assert.equal(parseJoinPeerRequest({ memberGroupReference: REF }), { kind: KINDS.joinPeerRequest, memberGroupReference: REF });
  const observer = parseJoinPeerRequest({
    kind: KINDS.joinPeerRequest,
    memberGroupReference: 'http://127.0.0.1:8000/core/node-groups/hello-node-group',
    membershipQuorum: 1,
    localNodeOptions: ['OBSERVER'],
  });
  assert.is(observer.membershipQuorum, 1);
  assert.equal(observer.localNodeOptions, ['OBSERVER']);
});

test('JoinPeerRequest: bad bodies', () => {
  rejects(() => parseJoinPeerRequest(null), /JSON object/);
  rejects(() => parseJoinPeerRequest([]), /JSON object/);
  rejects(() => parseJoinPeerRequest({}), /memberGroupReference is required/);
  rejects(() => parseJoinPeerRequest({ memberGroupReference: 'peer:8000' }), /absolute http/);
  rejects(() => parseJoinPeerRequest({ memberGroupReference: 'not a uri' }), /absolute http/);
  rejects(() => parseJoinPeerRequest({ memberGroupReference: 'ftp://h/x' }), /absolute http/);
  rejects(() => parseJoinPeerRequest({ kind: KINDS.nodeState, memberGroupReference: REF }), /kind must be/);
  rejects(() => parseJoinPeerRequest({ memberGroupReference: REF, membershipQuorum: 0 }), /membershipQuorum must be an integer >= 1/);
  rejects(() => parseJoinPeerRequest({ memberGroupReference: REF, membershipQuorum: 1.5 }), /membershipQuorum/);
  rejects(() => parseJoinPeerRequest({ memberGroupReference: REF, membershipQuorum: '2' }), /membershipQuorum/);
  rejects(() => parseJoinPeerRequest({ memberGroupReference: REF, locationQuorum: -1 }), /locationQuorum/);
  rejects(() => parseJoinPeerRequest({ memberGroupReference: REF, localNodeOptions: [] }), /non-empty/);
  rejects(() => parseJoinPeerRequest({ memberGroupReference: REF, localNodeOptions: ['LEADER'] }), /PEER or OBSERVER/);
  rejects(() => parseJoinPeerRequest({ memberGroupReference: REF, localNodeOptions: 'PEER' }), /PEER or OBSERVER/);
  rejects(() => parseJoinPeerRequest({ memberGroupReference: REF, localNodeOptions: ['PEER', 'OBSERVER'] }), /mutually exclusive/);
});

test('UpdateQuorumRequest: seed 000 body and bad bodies', () => {
  const req = parseUpdateQuorumRequest({ isGroupUpdate: true, membershipQuorum: 2, kind: KINDS.updateQuorumRequest });
  assert.equal(req, { kind: KINDS.updateQuorumRequest, isGroupUpdate: true, membershipQuorum: 2 });
  assert.is(parseUpdateQuorumRequest({ locationQuorum: 2 }).isGroupUpdate, false);
  assert.is(parseUpdateQuorumRequest({ membershipQuorum: -3 }).membershipQuorum, -3, 'clamped by the machine, as Xenon');
  rejects(() => parseUpdateQuorumRequest('x'), /JSON object/);
  rejects(() => parseUpdateQuorumRequest({ isGroupUpdate: true }), /membershipQuorum or locationQuorum is required/);
  rejects(() => parseUpdateQuorumRequest({ membershipQuorum: 2, isGroupUpdate: 'yes' }), /isGroupUpdate must be a boolean/);
  rejects(() => parseUpdateQuorumRequest({ membershipQuorum: 2.5 }), /membershipQuorum must be an integer/);
  rejects(() => parseUpdateQuorumRequest({ membershipQuorum: 2, kind: KINDS.joinPeerRequest }), /kind must be/);
});

test('NodeState: defaults, selfLink from the receiving group, bad bodies', () => {
  const n = parseNodeState({ id: 'a', groupReference: REF, documentSelfLink: '/elsewhere/a' }, '/core/node-groups/default');
  assert.equal(n, {
    id: 'a',
    groupReference: REF,
    status: 'UNKNOWN',
    options: ['PEER'],
    membershipQuorum: 1,
    locationQuorum: 1,
    documentVersion: 0,
    documentKind: KINDS.nodeState,
    documentSelfLink: '/core/node-groups/default/a',
    documentUpdateTimeMicros: 0,
    documentExpirationTimeMicros: 0,
  });
  assert.equal(parseNodeState({ id: 'a', groupReference: REF, customProperties: { 'xenon.NodeState.location': 'eu' } }).customProperties, {
    'xenon.NodeState.location': 'eu',
  });
  rejects(() => parseNodeState({ groupReference: REF }), /id is required/);
  rejects(() => parseNodeState({ id: '', groupReference: REF }), /id is required/);
  rejects(() => parseNodeState({ id: 'a' }), /groupReference is required/);
  rejects(() => parseNodeState({ id: 'a', groupReference: REF, status: 'DEAD' }), /status must be one of/);
  rejects(() => parseNodeState({ id: 'a', groupReference: REF, documentVersion: -1 }), /documentVersion/);
  rejects(() => parseNodeState({ id: 'a', groupReference: REF, options: ['PEER', 'OBSERVER'] }), /mutually exclusive/);
  rejects(() => parseNodeState({ id: 'a', groupReference: REF, customProperties: { x: 1 } }), /strings/);
});

test('NodeGroupState: nodes keyed by id, owner required, bounded size', () => {
  const g = parseNodeGroupState({
    documentOwner: 'a',
    nodes: { a: { id: 'a', groupReference: REF, status: 'AVAILABLE' } },
    membershipUpdateTimeMicros: 7,
  });
  assert.is(g.nodes.a!.status, 'AVAILABLE');
  assert.is(g.membershipUpdateTimeMicros, 7);
  assert.is(g.config.nodeRemovalDelayMicros, 300_000_000);
  rejects(() => parseNodeGroupState({ nodes: {} }), /documentOwner is required/);
  rejects(() => parseNodeGroupState({ documentOwner: 'a', nodes: { b: { id: 'a', groupReference: REF } } }), /does not match/);
  rejects(() => parseNodeGroupState({ documentOwner: 'a', nodes: [] }), /nodes must be a JSON object/);
  const many: Record<string, unknown> = {};
  for (let i = 0; i < 1001; i++) many[`n${i}`] = { id: `n${i}`, groupReference: REF };
  rejects(() => parseNodeGroupState({ documentOwner: 'a', nodes: many }), /at most 1000/);
});

test('POST and PATCH bodies are told apart', () => {
  assert.is(classifyGroupPost({ kind: KINDS.joinPeerRequest, memberGroupReference: REF }).type, 'join');
  assert.is(classifyGroupPost({ memberGroupReference: REF }).type, 'join');
  assert.is(classifyGroupPost({ id: 'a', groupReference: REF }).type, 'nodeState');
  rejects(() => classifyGroupPost({ foo: 1 }), /id is required/);
  assert.is(classifyGroupPatch({ kind: KINDS.updateQuorumRequest, membershipQuorum: 2 }).type, 'quorum');
  const cfg = classifyGroupPatch({ config: { nodeRemovalDelayMicros: 1000 }, nodes: {} });
  assert.equal(cfg, { type: 'config', config: { nodeRemovalDelayMicros: 1000 } });
  assert.is(classifyGroupPatch({ documentOwner: 'a', nodes: { a: { id: 'a', groupReference: REF } } }).type, 'gossip');
  rejects(() => classifyGroupPatch({ config: { nodeRemovalDelayMicros: 'soon' } }), /nodeRemovalDelayMicros/);
});

test('custom group creation body (seed 001)', () => {
  const body = {
    config: { nodeRemovalDelayMicros: 3600000000, stableGroupMaintenanceIntervalCount: 5 },
    nodes: {},
    membershipUpdateTimeMicros: 1456872059568025,
    documentSelfLink: 'hello-node-group',
  };
  assert.equal(parseNodeGroupCreateRequest(body, 'hostAtPort8000'), {
    groupLink: '/core/node-groups/hello-node-group',
    config: { nodeRemovalDelayMicros: 3600000000, stableGroupMaintenanceIntervalCount: 5 },
  });
  const withSelf = parseNodeGroupCreateRequest(
    { documentSelfLink: '/core/node-groups/mygroup', nodes: { me: { id: 'me', options: ['OBSERVER'] } } },
    'me',
  );
  assert.equal(withSelf, { groupLink: '/core/node-groups/mygroup', config: {}, localNodeOptions: ['OBSERVER'] });
  rejects(() => parseNodeGroupCreateRequest({}, 'me'), /documentSelfLink is required/);
  rejects(() => parseNodeGroupCreateRequest({ documentSelfLink: 'a/b' }, 'me'), /invalid group name/);
});

test('group references compare in one spelling', () => {
  assert.is(normalizeGroupReference('HTTP://LocalHost:80/core/node-groups/default/'), 'http://localhost/core/node-groups/default');
  assert.is(normalizeGroupReference('http://127.0.0.1:8000/core/node-groups/default'), REF);
});

test.run();
