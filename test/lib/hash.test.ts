import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fnv64, generateDocumentId, hex64, selectNodes } from '../../lib/hash.js';

// Vectors from Xenon's Java implementation.
test('FNV64 matches Xenon test vectors', () => {
  assert.is(fnv64('/core/examples/foo'), 8477909326081282349n);
  assert.is(fnv64('/core/examples'), 1730768725698071261n);
  assert.is(fnv64('host-1'), -4221509889627796163n);
  assert.is(fnv64('host-2'), -4222072839581440195n);
  assert.is(fnv64('host-3'), -4222635789535084227n);
});

test('FNV64 on 32-bit halves equals the plain 64-bit BigInt form, for any UTF-16 string', () => {
  const reference = (s: string): bigint => {
    let h = 4695981039346656037n;
    for (let i = 0; i < s.length; i++) {
      h = BigInt.asIntN(64, h ^ BigInt((s.charCodeAt(i) * 2) << 8));
      h = BigInt.asIntN(64, h * 1099511628211n);
    }
    return h;
  };
  // A fixed pseudo-random walk over lengths and code units, including the extremes.
  let seed = 12345;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const samples = ['', 'a', '\uffff'.repeat(40), '\u0000', '/core/examples/9f1c2e', 'é€😀'];
  for (let n = 0; n < 500; n++) {
    let s = '';
    const len = next() % 70;
    for (let i = 0; i < len; i++) s += String.fromCharCode(n % 3 === 0 ? next() % 0x10000 : 32 + (next() % 95));
    samples.push(s);
  }
  for (const s of samples) assert.is(fnv64(s), reference(s), JSON.stringify(s));
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
