import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { classifyGroupBody, classifyRequest, isForwardingPath, pragmasOf } from '../../lib/peer-requests.js';

const none = new Set<string>();

test('log shipping, synchronization and peer pragmas are peer requests', () => {
  assert.is(classifyRequest('POST', '/core/node-selectors/default/replication', none), 'peer');
  assert.is(classifyRequest('POST', '/core/node-selectors/default-3x/synch', none), 'peer');
  assert.is(classifyRequest('GET', '/core/node-selectors/default/synch', none), 'client'); // stats
  for (const p of ['xn-rpl', 'xn-synch-peer', 'xn-synch-owner']) {
    assert.is(classifyRequest('PATCH', '/core/examples/one', pragmasOf(`xn-check-version;${p}`)), 'peer', p);
  }
  assert.is(classifyRequest('PATCH', '/core/examples/one', pragmasOf('xn-fwd')), 'client');
  assert.is(classifyRequest('GET', '/core/examples/one', pragmasOf('xn-no-fwd')), 'client');
});

test('node-group POST and PATCH are decided by their body', () => {
  assert.is(classifyRequest('POST', '/core/node-groups/default', none), 'group-body');
  assert.is(classifyRequest('PATCH', '/core/node-groups/hello', none), 'group-body');
  assert.is(classifyRequest('GET', '/core/node-groups/default', none), 'client');
  assert.is(classifyRequest('POST', '/core/node-groups', none), 'client'); // a custom group on this host
  assert.is(
    classifyGroupBody('POST', { kind: KINDS.joinPeerRequest, memberGroupReference: 'http://h:8000/core/node-groups/default' }),
    'join',
  );
  assert.is(classifyGroupBody('POST', { memberGroupReference: 'http://h:8000/core/node-groups/default' }), 'join');
  assert.is(classifyGroupBody('POST', { id: 'h2', groupReference: 'http://h2/core/node-groups/default', status: 'AVAILABLE' }), 'peer');
  assert.is(classifyGroupBody('POST', undefined), 'peer');
  assert.is(classifyGroupBody('PATCH', { kind: KINDS.updateQuorumRequest, membershipQuorum: 2, isGroupUpdate: true }), 'client');
  assert.is(classifyGroupBody('PATCH', { config: { nodeRemovalDelayMicros: 1 } }), 'client');
  assert.is(classifyGroupBody('PATCH', { config: {}, nodes: { h1: {} } }), 'peer'); // gossip
  assert.is(classifyGroupBody('PATCH', { nodes: {} }), 'peer');
});

test('the forwarding helper is recognised', () => {
  assert.ok(isForwardingPath('/core/node-selectors/default/forwarding'));
  assert.not.ok(isForwardingPath('/core/node-selectors/default'));
});

test.run();
