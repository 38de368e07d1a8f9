/**
 * docs/errors.md cannot drift from the code: every KryptonError code has an HTTP status in
 * server/net/http-errors.ts and a row in the doc giving that same status, and the doc names no
 * code that does not exist. And KryptonError stays the one error: no other error class, and no
 * bare `new Error(` outside the deliberate places docs/errors.md lists.
 */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ERROR_CODES, isErrorCode } from '../../lib/errors.js';
import { statusOf } from '../../server/net/http-errors.js';
import { stripComments, trackedFiles } from '../../tools/check/layout.js';

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

/** Krypton's own code; tools/bench, tools/check, tools/recipes and tools/torture are its clients. */
const OWN_CODE = /^(lib|wal|index|server|tools)\/.*\.ts$/;
const CLIENTS = /^tools\/(bench|check|recipes|torture)\//;
/** Where a plain Error is made on purpose: the invariant helpers and wal's errno-shaped fakes. */
const PLAIN_ERRORS_MADE_IN = new Set(['lib/errors.ts', 'wal/file.ts']);

test('no error class but KryptonError, no bare Error outside invariants', () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const found: string[] = [];
  for (const f of trackedFiles(root)) {
    if (!OWN_CODE.test(f.path) || CLIENTS.test(f.path)) continue;
    const code = stripComments(f.text);
    const classes = [...code.matchAll(/class (\w+) extends (\w*Error)\b/g)].filter((m) => m[1] !== 'KryptonError');
    for (const m of classes) found.push(`${f.path}: class ${m[1]} extends ${m[2]}`);
    if (!PLAIN_ERRORS_MADE_IN.has(f.path) && /\bnew Error\(/.test(code)) {
      found.push(`${f.path}: new Error( (use a KryptonError code, or invariant/invariantError for a bug)`);
    }
  }
  assert.equal(found, []);
});

test.run();
