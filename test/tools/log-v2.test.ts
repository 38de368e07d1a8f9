/**
 * The `krypton log` tools on the golden v2 log (test/fixtures/wal-v2/): v1 and v2 frames side
 * by side read and verify as one log, and inspect shows each record's request id.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, jsonLines, SEG1, tempDir } from './support.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'wal-v2');

async function sandbox() {
  const dir = await tempDir();
  const logDir = path.join(dir.path, '8000', 'log');
  await fs.mkdir(logDir, { recursive: true });
  await fs.copyFile(path.join(FIXTURE, SEG1), path.join(logDir, SEG1));
  return dir;
}

test('inspect shows the request id of each record that has one; verify finds nothing wrong', async () => {
  const sb = await sandbox();
  try {
    const run = await cli(['inspect', sb.path]);
    assert.is(run.code, 0, run.stderr);
    assert.equal(
      run.lines.slice(1).map((l) => /\(request (\S+)\)/.exec(l)?.[1] ?? null),
      ['6f1c2a1e-8f0b-4c57-9a36-3d2f1b7e9c40', null, 'client-key:retry-1', '0b7e4d2c-1a9f-4e3b-8c6d-5f2a9e1b7c03', null, 'k'.repeat(128)],
    );
    const rows = jsonLines<{ requestId?: string; documentVersion: number }>(await cli(['inspect', '--json', sb.path]));
    assert.equal(
      rows.map((r) => [r.documentVersion, r.requestId ?? null]),
      [
        [0, '6f1c2a1e-8f0b-4c57-9a36-3d2f1b7e9c40'],
        [1, null],
        [2, 'client-key:retry-1'],
        [3, '0b7e4d2c-1a9f-4e3b-8c6d-5f2a9e1b7c03'],
        [4, null],
        [0, 'k'.repeat(128)],
      ],
    );
    const verify = await cli(['verify', '--json', sb.path]);
    assert.is(verify.code, 0, verify.stdout);
    assert.is((JSON.parse(verify.stdout) as { ok: boolean }).ok, true);
  } finally {
    await sb.remove();
  }
});

test.run();
