import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { limits } from '../../lib/limits.js';
import { hashPassword, passwordWork, verifyDecoy, verifyPassword } from '../../server/auth/passwords.js';

test('a hash verifies its password only, with a fresh salt each time', async () => {
  const a = await hashPassword('correct horse');
  const b = await hashPassword('correct horse');
  assert.is.not(a, b);
  assert.ok(await verifyPassword('correct horse', a));
  assert.not.ok(await verifyPassword('correct hors', a));
  assert.not.ok(await verifyPassword('correct horse', 'not a hash'));
  assert.is(await verifyDecoy('anything'), false);
});

test('scrypt runs at most passwordHashesConcurrentMax at a time; the rest wait their turn', async () => {
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, passwordWork().running)), 1);
  try {
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => hashPassword(`p${i}`)));
    assert.is(new Set(results).size, 6);
  } finally {
    clearInterval(timer);
  }
  assert.ok(peak >= 1 && peak <= limits.passwordHashesConcurrentMax, `peak ${peak}`);
  assert.equal(passwordWork(), { running: 0, waiting: 0 });
});

test.run();
