/**
 * `krypton host` logs the way an operator reads them: readable, coloured lines when its stdout
 * is a terminal (run here under a pseudo-terminal with util-linux's `script`), JSON lines when it
 * is a pipe, and JSON on a terminal too with --logFormat=json. Each host is stopped the way an
 * operator would, with DELETE /core/management, and must exit 0. Ephemeral ports: no e2e lock.
 */

import { spawn, spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../support/hosts.js';
import { Client } from '../support/http.js';
import { KRYPTON_BIN } from '../support/process.js';
import { waitFor } from '../support/wait.js';

/** An ANSI colour code (ESC [ n m). */
const COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`);
const hasScript = spawnSync('script', ['--version']).status === 0;

/** Runs a host with `args`, under a pseudo-terminal when `tty`; returns what it printed until it stopped. */
async function runUntilStopped(tty: boolean, args: string[]): Promise<{ out: string; code: number | null }> {
  const sandbox = await tempDir();
  const argv = [KRYPTON_BIN, 'host', '--port=0', `--sandbox=${sandbox.path}`, ...args];
  const quoted = [process.execPath, ...argv].map((a) => `'${a}'`).join(' ');
  // `script -q -e -c CMD /dev/null`: CMD's stdout is a new pseudo-terminal; script copies it to ours.
  const child = tty
    ? spawn('script', ['-q', '-e', '-c', quoted, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const port = await waitFor('the host to listen', () => /listening on [^:]+:(\d+)/.exec(out)?.[1], 20_000);
    const client = new Client(`http://127.0.0.1:${port}`);
    assert.is((await client.send('DELETE', '/core/management')).status, 202);
    await client.close();
    const code = await Promise.race([exited, waitFor('the host to exit', () => child.exitCode !== null && child.exitCode, 15_000)]);
    return { out, code: typeof code === 'number' ? code : null };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
    await sandbox.remove();
  }
}

const jsonLines = (out: string) =>
  out
    .split(/\r?\n/)
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { level: number; msg: string });

test('on a terminal the host prints readable coloured lines, not JSON', async () => {
  if (!hasScript) {
    console.log('  skipped: util-linux `script` is not installed, so no pseudo-terminal can be made');
    return;
  }
  const { out, code } = await runUntilStopped(true, []);
  assert.is(code, 0, out);
  const lines = out.split(/\r?\n/).filter((l) => l.trim());
  assert.ok(lines.length >= 3, out);
  assert.ok(!lines.some((l) => l.trimStart().startsWith('{')), `a JSON line on a terminal:\n${out}`);
  assert.match(out, COLOUR, 'colour codes on a terminal');
  // Without the colour codes: time, level, message and fields on one line.
  const plain = out.replace(new RegExp(COLOUR.source, 'g'), '');
  assert.match(plain, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: .*listening on 127\.0\.0\.1:\d+/m);
  assert.match(plain, /INFO: .*stopped/);
});

test('through a pipe, and with --logFormat=json on a terminal, every line is JSON', async () => {
  const piped = await runUntilStopped(false, []);
  assert.is(piped.code, 0, piped.out);
  const lines = jsonLines(piped.out);
  assert.ok(lines.some((l) => /listening on/.test(l.msg)));
  assert.ok(lines.every((l) => typeof l.level === 'number'));
  if (!hasScript) return;
  const forced = await runUntilStopped(true, ['--logFormat=json']);
  assert.is(forced.code, 0, forced.out);
  assert.ok(jsonLines(forced.out).some((l) => l.msg === 'stopped'));
});

test.run();
