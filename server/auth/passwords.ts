/**
 * Password hashing for credentials: scrypt from node:crypto (run on libuv's thread pool, so a
 * login does not stall the event loop), a fresh random salt per hash, and a constant-time
 * comparison on verification. The stored form is lib/authz.ts's `scrypt$N$r$p$salt$key`, so the
 * cost can be raised later without breaking stored hashes. At most
 * limits.passwordHashesConcurrentMax run at once (the pool also serves the log's fsyncs); up to
 * limits.passwordHashesQueuedMax wait, and beyond that a login is refused with 503.
 */

import crypto from 'node:crypto';
import { formatPasswordHash, parsePasswordHash } from '../../lib/authz.js';
import { KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';

/** scrypt cost for new hashes: N = 2^14, r = 8, p = 1 (16 MiB, tens of milliseconds). */
const COST = { N: 1 << 14, r: 8, p: 1 };
const SALT_BYTES = 16;
const KEY_BYTES = 32;

let running = 0;
const waiting: (() => void)[] = [];

async function scrypt(password: string, salt: Buffer, keyBytes: number, cost: { N: number; r: number; p: number }): Promise<Buffer> {
  if (running >= limits.passwordHashesConcurrentMax) {
    if (waiting.length >= limits.passwordHashesQueuedMax)
      throw new KryptonError('LIMIT_EXCEEDED', `more than ${limits.passwordHashesQueuedMax} password checks are waiting; try again`);
    await new Promise<void>((r) => waiting.push(r));
  } else {
    running++;
  }
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      crypto.scrypt(password, salt, keyBytes, { ...cost, maxmem: 128 * cost.N * cost.r + limits.scryptMemorySlackBytes }, (err, key) =>
        err ? reject(err) : resolve(key),
      );
    });
  } finally {
    // The turn passes straight to the next waiter, so `running` counts it already.
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

/** Checks in flight and waiting (for tests and /core/management). */
export function passwordWork(): { running: number; waiting: number } {
  return { running, waiting: waiting.length };
}

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, KEY_BYTES, COST);
  return formatPasswordHash({ ...COST, salt, key });
}

/** Whether `password` matches `stored`; false for anything that is not a hash this host can check. */
export async function verifyPassword(password: string, stored: unknown): Promise<boolean> {
  const h = parsePasswordHash(stored, limits.scryptMemoryBytesMax);
  if (!h) return false;
  const key = await scrypt(password, h.salt, h.key.length, h);
  return crypto.timingSafeEqual(key, h.key);
}

let decoy: Promise<string> | undefined;

/**
 * Spends the time of one verification against a hash nobody's password matches, so a login for an
 * unknown user takes as long as one with a wrong password.
 */
export async function verifyDecoy(password: string): Promise<false> {
  decoy ??= hashPassword(crypto.randomBytes(16).toString('hex'));
  await verifyPassword(password, await decoy);
  return false;
}
