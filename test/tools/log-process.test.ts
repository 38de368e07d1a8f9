/**
 * `krypton log` as a user runs it: the built command (dist/tools/krypton.js, made by `npm run
 * build`, which `npm test` runs first) in its own process, with its real stdout, stderr and exit
 * code — the proof that the subcommand is wired into `krypton`.
 */

import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KRYPTON_BIN } from '../support/process.js';
import { fixtureSandbox, flipByte, SEG1 } from './support.js';

function krypton(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [KRYPTON_BIN, ...args], { env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

test('krypton log runs from dist: help, inspect, verify of a sound and a damaged log, bad usage', async () => {
  const help = await krypton(['help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /\n {2}log {7}read a host's log: inspect, verify, replay, export, stats/);
  const logHelp = await krypton(['log', '--help']);
  assert.is(logHelp.code, 0);
  assert.match(logHelp.stdout, /exit codes:\n {2}0 {2}done/);

  const sb = await fixtureSandbox();
  try {
    const inspect = await krypton(['log', 'inspect', '--json', sb.path]);
    assert.is(inspect.code, 0, inspect.stderr);
    assert.equal(
      inspect.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { seq: number; documentUpdateAction: string }).documentUpdateAction),
      ['POST', 'PUT', 'PATCH', 'DELETE', 'POST', 'POST'],
    );
    const verify = await krypton(['log', 'verify', sb.path]);
    assert.equal([verify.code, verify.stdout, verify.stderr], [0, 'ok: 2 segments, 6 intact records (seq 1 to 6), 2,503 bytes\n', '']);

    await flipByte(path.join(sb.logDir, SEG1), 394 + 100);
    const damaged = await krypton(['log', 'verify', sb.host]);
    assert.is(damaged.code, 1);
    assert.match(
      damaged.stdout,
      new RegExp(`^${path.join(sb.logDir, SEG1).replace(/[.]/g, '\\.')} at offset 394: corrupt: checksum mismatch`),
    );
    const stopped = await krypton(['log', 'replay', sb.path]);
    assert.is(stopped.code, 1);
    assert.match(stopped.stderr, /^krypton log replay: log corrupt in .* at offset 394: checksum mismatch; stopped after seq 1/);

    const usage = await krypton(['log', 'replay', sb.path, '--at-seq', 'soon']);
    assert.equal([usage.code, usage.stdout], [2, '']);
    assert.is(
      usage.stderr,
      "krypton log replay: --at-seq must be a whole number of at least 0, got 'soon' (krypton log --help)\n",
      'one line, no stack trace',
    );
    const noDir = await krypton(['log', 'stats', path.join(sb.path, 'missing')]);
    assert.equal([noDir.code, noDir.stderr], [2, `krypton log stats: ${path.join(sb.path, 'missing')} is not a folder\n`]);
  } finally {
    await sb.remove();
  }
});

test.run();
