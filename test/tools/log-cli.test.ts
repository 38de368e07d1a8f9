/**
 * The command line of `krypton log`: help, exit codes for bad usage and unusable folders (2), one
 * line per mistake and no stack traces, how DIR is resolved, and --at-time parsing.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseTime } from '../../tools/log/args.js';
import { readOnlyDirectory } from '../../tools/log/open.js';
import { cli, fixtureSandbox, SEG1, tempDir } from './support.js';

test('--help lists every command, its flags and the exit codes, on stdout with exit 0', async () => {
  for (const argv of [['--help'], ['help'], ['verify', '--help'], ['-h']]) {
    const run = await cli(argv);
    assert.is(run.code, 0, argv.join(' '));
    for (const word of [
      'inspect',
      'verify',
      'replay',
      'export',
      'stats',
      '--at-seq',
      '--at-time',
      '--all-versions',
      '--from-seq',
      '--limit',
      '--kind',
      '--action',
      '--json',
      'exit codes:',
    ]) {
      assert.ok(run.stdout.includes(word), `help mentions ${word}`);
    }
    assert.match(run.stdout, /\n {2}0 {2}done/);
    assert.match(run.stdout, /\n {2}1 {2}problems/);
    assert.match(run.stdout, /\n {2}2 {2}bad usage/);
  }
  const none = await cli([]);
  assert.is(none.code, 2);
  assert.match(none.stderr, /^usage: krypton log <command> DIR/);
});

test('bad usage: one line on stderr naming the mistake, exit 2', async () => {
  const sb = await fixtureSandbox();
  try {
    const cases: [string[], string][] = [
      [
        ['frobnicate', sb.path],
        "krypton log: unknown command 'frobnicate'; the commands are inspect, verify, replay, export, stats (krypton log --help)",
      ],
      [['inspect'], 'krypton log inspect: DIR is missing (a host folder <sandbox>/<port>, or a sandbox holding one) (krypton log --help)'],
      [['inspect', sb.path, sb.host], `krypton log inspect: one DIR expected, got 2: ${sb.path} ${sb.host} (krypton log --help)`],
      [['inspect', sb.path, '--bogus'], 'krypton log inspect: unknown flag --bogus (krypton log --help)'],
      [['verify', sb.path, '--link', 'x'], 'krypton log verify: unknown flag --link (krypton log --help)'],
      [
        ['inspect', sb.path, '--limit', '0'],
        "krypton log inspect: --limit must be a whole number of at least 1, got '0' (krypton log --help)",
      ],
      [
        ['inspect', sb.path, '--from-seq=-3'],
        "krypton log inspect: --from-seq must be a whole number of at least 1, got '-3' (krypton log --help)",
      ],
      [['inspect', sb.path, '--limit'], 'krypton log inspect: --limit needs a value (krypton log --help)'],
      [['inspect', sb.path, '--json=yes'], 'krypton log inspect: --json takes no value (krypton log --help)'],
      [['inspect', sb.path, '--json', '--json'], 'krypton log inspect: --json given twice (krypton log --help)'],
      [
        ['inspect', sb.path, '--action', 'GET'],
        "krypton log inspect: --action must be one of POST, PUT, PATCH, DELETE (or several, comma-separated), got 'GET' (krypton log --help)",
      ],
      [
        ['replay', sb.path, '--at-seq', '2', '--at-time', '5'],
        'krypton log replay: give --at-seq or --at-time, not both (krypton log --help)',
      ],
      [
        ['replay', sb.path, '--at-time', 'yesterday'],
        "krypton log replay: --at-time must be an ISO-8601 date (2024-05-01T12:00:00Z) or microseconds since the epoch, got 'yesterday' (krypton log --help)",
      ],
      [
        ['export', sb.path, '--at-seq', 'x'],
        "krypton log export: --at-seq must be a whole number of at least 0, got 'x' (krypton log --help)",
      ],
    ];
    for (const [argv, message] of cases) {
      const run = await cli(argv);
      assert.is(run.code, 2, argv.join(' '));
      assert.is(run.stdout, '', argv.join(' '));
      assert.is(run.stderr, message + '\n');
    }
  } finally {
    await sb.remove();
  }
});

test('DIR: a host folder, or a sandbox with exactly one; anything else is exit 2 with the reason', async () => {
  const dir = await tempDir();
  try {
    const missing = path.join(dir.path, 'nope');
    let run = await cli(['stats', missing]);
    assert.equal([run.code, run.stderr], [2, `krypton log stats: ${missing} is not a folder\n`]);

    run = await cli(['stats', dir.path]);
    assert.equal(
      [run.code, run.stderr],
      [2, `krypton log stats: ${dir.path} is neither a host folder (no log/ in it) nor a sandbox holding one\n`],
    );

    await fs.writeFile(path.join(dir.path, 'file'), 'x');
    run = await cli(['stats', path.join(dir.path, 'file')]);
    assert.is(run.code, 2);

    // Two host folders: the user must pick one.
    await fs.mkdir(path.join(dir.path, '8000', 'log'), { recursive: true });
    await fs.mkdir(path.join(dir.path, '8001', 'log'), { recursive: true });
    run = await cli(['stats', dir.path]);
    assert.equal(
      [run.code, run.stderr],
      [2, `krypton log stats: ${dir.path} is a sandbox with 2 host folders (8000, 8001); name one, e.g. ${path.join(dir.path, '8000')}\n`],
    );

    // An empty log is a log: nothing in it, nothing wrong with it.
    run = await cli(['verify', path.join(dir.path, '8001')]);
    assert.equal([run.code, run.lines], [0, ['ok: 0 segments, 0 intact records, 0 bytes']]);
    run = await cli(['replay', path.join(dir.path, '8001')]);
    assert.equal([run.code, run.lines], [0, ['as of the end of the log, which holds no records: 0 records applied']]);
  } finally {
    await dir.remove();
  }
});

test('other files in the log folder are ignored, as the host ignores them', async () => {
  const sb = await fixtureSandbox();
  try {
    await fs.writeFile(path.join(sb.logDir, 'notes.txt'), 'operator notes');
    await fs.writeFile(path.join(sb.logDir, '123.log'), 'not a segment name');
    const run = await cli(['verify', sb.path]);
    assert.equal([run.code, run.lines], [0, ['ok: 2 segments, 6 intact records (seq 1 to 6), 2,503 bytes']]);
  } finally {
    await sb.remove();
  }
});

test('the read-only directory refuses every write', async () => {
  const sb = await fixtureSandbox();
  try {
    const dir = readOnlyDirectory(sb.logDir);
    const refused = async (p: Promise<unknown>): Promise<string> => {
      try {
        await p;
      } catch (e) {
        return (e as Error).message;
      }
      return 'not refused';
    };
    assert.match(await refused(dir.create('x.log')), /never write/);
    assert.match(await refused(dir.remove(SEG1)), /never write/);
    assert.match(await refused(dir.open(SEG1, 'append')), /never write/);
    assert.match(await refused(dir.syncDirectory()), /never write/);
    const file = await dir.open(SEG1, 'read');
    try {
      assert.match(await refused(file.append([Buffer.from('x')])), /never write/);
      assert.match(await refused(file.truncate(0)), /never write/);
      assert.is(await file.size(), 1206);
    } finally {
      await file.close();
    }
  } finally {
    await sb.remove();
  }
});

test('--at-time: integer microseconds, or ISO-8601 kept to the microsecond; no zone means UTC', () => {
  assert.is(parseTime('1700000000004000'), 1700000000004000);
  assert.is(parseTime('2023-11-14T22:13:20.004Z'), 1700000000004000);
  assert.is(parseTime('2023-11-14T22:13:20.004500Z'), 1700000000004500);
  assert.is(parseTime('2023-11-14T22:13:20.0045Z'), 1700000000004500);
  assert.is(parseTime('2023-11-14T22:13:20'), 1700000000000000);
  assert.is(parseTime('2023-11-14 22:13:20Z'), 1700000000000000);
  assert.is(parseTime('2023-11-14T23:13:20+01:00'), 1700000000000000);
  assert.is(parseTime('2023-11-14T23:13:20+0100'), 1700000000000000);
  assert.is(parseTime('2023-11-14'), Date.UTC(2023, 10, 14) * 1000);
  assert.is(parseTime('soon'), undefined);
  assert.is(parseTime('2023-11-14T25:99:00Z'), undefined);
});

test.run();
