/**
 * docs/errors.md cannot drift from the code: every KryptonError code has an HTTP status in
 * server/net/http-errors.ts and a row in the doc giving that same status, and the doc names no
 * code that does not exist.
 */

import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ERROR_CODES, isErrorCode } from '../../lib/errors.js';
import { statusOf } from '../../server/net/http-errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
/** `| `CODE` | 404 | ...` rows of the doc's tables. */
const rows = new Map([...doc.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)].map((m) => [m[1]!, Number(m[2])]));

test('every code has an HTTP status', () => {
  for (const code of ERROR_CODES) {
    const status = statusOf(code);
    assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code}: ${status}`);
  }
});

test('every code has a row in docs/errors.md with its status', () => {
  for (const code of ERROR_CODES) {
    assert.ok(rows.has(code), `docs/errors.md has no row for ${code}`);
    assert.is(rows.get(code), statusOf(code), `docs/errors.md gives ${code} another status`);
  }
});

test('docs/errors.md names only codes that exist, each once', () => {
  for (const code of rows.keys()) assert.ok(isErrorCode(code), `docs/errors.md documents ${code}, which lib/errors.ts lacks`);
  const named = [...doc.matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1]);
  assert.is(named.length, rows.size, 'a code has two rows');
});

test.run();
