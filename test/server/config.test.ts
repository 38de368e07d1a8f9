import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { isKryptonError } from '../../lib/errors.js';
import { parseHostArgs } from '../../server/base/config.js';

const isUsageError = (e: unknown) => isKryptonError(e) && e.code === 'INVALID_USAGE';

test('Xenon flag names in both --flag=value and --flag value forms', () => {
  const c = parseHostArgs([
    '--port=8001',
    '--sandbox',
    '/tmp/x',
    '--id=hostAtPort8001',
    '--bindAddress',
    '0.0.0.0',
    '--peerNodes=http://127.0.0.1:8000,127.0.0.1:8001',
    '--membershipQuorum',
    '2',
  ]);
  assert.is(c.port, 8001);
  assert.is(c.sandbox, path.resolve('/tmp/x'));
  assert.is(c.id, 'hostAtPort8001');
  assert.is(c.bindAddress, '0.0.0.0');
  assert.equal(c.peerNodes, ['http://127.0.0.1:8000', 'http://127.0.0.1:8001']);
  assert.is(c.membershipQuorum, 2);
});

test('defaults: port 8000, ./sandbox, 127.0.0.1, 60 s operation timeout', () => {
  const c = parseHostArgs([]);
  assert.is(c.port, 8000);
  assert.is(c.sandbox, path.resolve('sandbox'));
  assert.is(c.bindAddress, '127.0.0.1');
  assert.is(c.operationTimeoutMicros, 60_000_000);
  assert.is(c.repairLog, false);
  assert.is(parseHostArgs(['--repairLog']).repairLog, true);
  assert.is(parseHostArgs(['--repairLog=false']).repairLog, false);
});

test('unknown flags and bad values say what is wrong', () => {
  const bad: [string[], RegExp][] = [
    [['--nope=1'], /unknown flag --nope/],
    [['--port=abc'], /bad value for --port/],
    [['--port=70000'], /bad value for --port/],
    [['--membershipQuorum=0'], /bad value for --membershipQuorum/],
    [['--peerNodes=ftp://x'], /not an http/],
    [['--port'], /needs a value/],
    [['stray'], /unexpected argument/],
    [['--id=has space'], /bad value for --id/],
  ];
  for (const [args, re] of bad) {
    assert.throws(
      () => parseHostArgs(args),
      (e: unknown) => isUsageError(e) && re.test((e as Error).message),
      args.join(' '),
    );
  }
});

test.run();
