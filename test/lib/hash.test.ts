import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fnv64, generateDocumentId, hex64, selectNodes } from '../../lib/hash.js';

// Vectors from reference §6.3 (verified there against Java).
test('FNV64 matches Xenon test vectors', () => {
  assert.is(fnv64('/core/examples/foo'), 8477909326081282349n);
  assert.is(fnv64('/core/examples'), 1730768725698071261n);
  assert.is(fnv64('host-1'), -4221509889627796163n);
  assert.is(fnv64('host-2'), -4222072839581440195n);
  assert.is(fnv64('host-3'), -4222635789535084227n);
});

test('owner selection matches Xenon owner vectors', () => {
  const nodes = ['host-1', 'host-2', 'host-3'].map((id) => ({ id, eligible: true }));
  assert.equal(selectNodes('/core/examples/foo', nodes), ['host-2']);
  assert.equal(selectNodes('/core/examples/bar', nodes), ['host-3']);
  assert.equal(selectNodes('/core/examples', nodes), ['host-2']);
});

test('ineligible nodes are skipped unless alone', () => {
  const nodes = [
    { id: 'host-1', eligible: true },
    { id: 'host-2', eligible: false },
    { id: 'host-3', eligible: true },
  ];
  assert.not.ok(selectNodes('/core/examples/foo', nodes).includes('host-2'));
  assert.equal(selectNodes('/x', [{ id: 'solo', eligible: false }]), ['solo']);
  assert.is(selectNodes('/core/examples/foo', nodes, 3).length, 2);
});

test('generated ids start with the unsigned hex of the host hash', () => {
  assert.is(hex64(fnv64('host-1')), 'c56a2f1f34efcd3d');
  assert.is(generateDocumentId('host-1', 0x5f0a1b2c3d4e5), 'c56a2f1f34efcd3d5f0a1b2c3d4e5');
});

test.run();
