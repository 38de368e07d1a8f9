/**
 * The durable promise table (server/synch/promises.ts) on the memory file backend, whose crash() keeps
 * only what was synced: a promise whose write resolved survives a crash, one still being written
 * does not (its reply never left); spent promises are dropped at open; a torn tail is cut with a
 * warning, damage followed by good lines is LOG_CORRUPT unless repairing; the file is rewritten with
 * only outstanding promises past its size limit; a failed sync stops further promises.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { limits } from '../../lib/limits.js';
import type { PromiseAsk } from '../../lib/synch/promise.js';
import { encodeLine, PromiseStore, type PromiseLogger } from '../../server/synch/promises.js';
import { MemoryDirectory } from '../../wal/file.js';

interface Captured extends PromiseLogger {
  lines: { level: string; obj: object; msg: string }[];
}

function logger(): Captured {
  const lines: Captured['lines'] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
}

function open(
  dir: MemoryDirectory,
  held = new Map<string, number>(),
  opts: { repair?: boolean; log?: Captured } = {},
): Promise<PromiseStore> {
  return PromiseStore.open({ dir, heldEpoch: (l) => held.get(l), logger: opts.log ?? logger(), repair: opts.repair ?? false });
}

/** What the server does for one granted request: hold each promise, then write them together. */
async function grant(store: PromiseStore, by: string, asks: PromiseAsk[]): Promise<void> {
  let done!: () => void;
  const durable = new Promise<void>((r) => (done = r));
  for (const [link, epoch] of asks) store.hold(link, { epoch, by }, durable);
  await store.write(by, asks);
  done();
}

const files = async (dir: MemoryDirectory) => (await dir.list()).filter((n) => n.startsWith('promises-'));

test('a promise whose write resolved survives a crash; one still being written does not', async () => {
  const dir = new MemoryDirectory();
  const s = await open(dir);
  await grant(s, 'z', [
    ['/core/examples/a', 2],
    ['/core/examples/b', 5],
  ]);
  s.hold('/core/examples/c', { epoch: 3, by: 'z' }, Promise.resolve());
  const writing = s.write('z', [['/core/examples/c', 3]]);
  const image = dir.crash(); // taken before the write of c was synced
  await writing;
  const after = await open(image);
  assert.equal(after.get('/core/examples/a'), { epoch: 2, by: 'z' });
  assert.equal(after.get('/core/examples/b'), { epoch: 5, by: 'z' });
  assert.is(after.get('/core/examples/c'), undefined);
  assert.is(after.size, 2);
  const later = await open(dir.crash());
  assert.equal(later.get('/core/examples/c'), { epoch: 3, by: 'z' });
  await Promise.all([s.close(), after.close(), later.close()]);
});

test('the highest promise per link wins; promises the log has overtaken are spent and dropped', async () => {
  const dir = new MemoryDirectory();
  const s = await open(dir);
  await grant(s, 'x', [
    ['/core/examples/a', 2],
    ['/core/examples/b', 2],
  ]);
  await grant(s, 'y', [['/core/examples/a', 4]]);
  await s.close();
  // The log replayed a takeover of b at epoch 2: that promise is spent.
  const held = new Map([['/core/examples/b', 2]]);
  const after = await open(dir, held);
  assert.equal(after.get('/core/examples/a'), { epoch: 4, by: 'y' });
  assert.is(after.get('/core/examples/b'), undefined);
  // A promise spent while running is dropped when next read.
  held.set('/core/examples/a', 5);
  assert.is(after.get('/core/examples/a'), undefined);
  assert.is(after.size, 0);
  await after.close();
  assert.is((await files(dir)).length, 1, 'reopening rewrote the table into one file');
});

test('a torn tail is cut with a warning; damage followed by good lines is LOG_CORRUPT unless repairing', async () => {
  const dir = new MemoryDirectory();
  const s = await open(dir);
  await grant(s, 'z', [['/core/examples/a', 2]]);
  await grant(s, 'z', [['/core/examples/b', 2]]);
  await grant(s, 'z', [['/core/examples/c', 2]]);
  await s.close();
  const [name] = await files(dir);
  const bytes = dir.contents(name!);
  const lineLen = encodeLine('z', [['/core/examples/a', 2]]).length;
  assert.is(bytes.length, 3 * lineLen);

  const torn = dir.crash();
  torn.tearTail(name!, bytes.length - 5);
  const log = logger();
  const t = await open(torn, new Map(), { log });
  assert.equal([t.get('/core/examples/a')?.epoch, t.get('/core/examples/b')?.epoch, t.get('/core/examples/c')], [2, 2, undefined]);
  assert.ok(
    log.lines.some((l) => l.level === 'warn' && /torn tail/.test(l.msg)),
    JSON.stringify(log.lines),
  );
  await t.close();

  const flipped = dir.crash();
  flipped.flipBit(name!, lineLen + 20, 1);
  try {
    await open(flipped);
    assert.unreachable('a damaged line with a good one after it must stop the start');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'LOG_CORRUPT');
    assert.match((e as Error).message, new RegExp(`at offset ${lineLen}`));
  }
  const repaired = await open(flipped, new Map(), { repair: true });
  assert.equal(
    [repaired.get('/core/examples/a')?.epoch, repaired.get('/core/examples/b'), repaired.get('/core/examples/c')],
    [2, undefined, undefined],
  );
  await repaired.close();
});

test('past promiseFileBytesMax the file is rewritten with only the outstanding promises', async () => {
  const dir = new MemoryDirectory();
  const held = new Map<string, number>();
  const s = await open(dir, held);
  const first = (await files(dir))[0]!;
  const page = (i: number): PromiseAsk[] => Array.from({ length: 500 }, (_, j) => [`/core/examples/p${i}-${j}`, 2]);
  let written = 0;
  let i = 0;
  // Each page's takeover lands (spending its promises) before the next page is promised.
  for (; s.stats.compactions === 0; i++) {
    if (i > 0) for (const [l] of page(i - 1)) held.set(l, 2);
    await grant(s, 'z', page(i));
    written += encodeLine('z', page(i)).length;
    assert.ok(written < 2 * limits.promiseFileBytesMax, 'no rewrite after twice the limit');
  }
  assert.ok(written > limits.promiseFileBytesMax);
  const now = await files(dir);
  assert.equal(now.length, 1);
  assert.is.not(now[0], first);
  // Only the last page is outstanding.
  assert.is(dir.contents(now[0]!).length, encodeLine('z', page(i - 1)).length);
  await grant(s, 'z', [['/core/examples/after', 7]]);
  const after = await open(dir.crash(), held);
  assert.is(after.size, 501);
  assert.equal(after.get(`/core/examples/p${i - 1}-499`), { epoch: 2, by: 'z' });
  assert.is(after.get(`/core/examples/p${i - 2}-499`), undefined);
  assert.equal(after.get('/core/examples/after'), { epoch: 7, by: 'z' });
  await Promise.all([s.close(), after.close()]);
});

test('a failed sync rejects the write and every later one: no promise is granted on a file that cannot be trusted', async () => {
  const dir = new MemoryDirectory();
  const log = logger();
  const s = await open(dir, new Map(), { log });
  dir.failNextSync(new Error('EIO: disk gone'));
  try {
    await s.write('z', [['/core/examples/a', 2]]);
    assert.unreachable('the write must fail');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'LOG_FAILED');
  }
  try {
    await s.write('z', [['/core/examples/b', 2]]);
    assert.unreachable('later writes must fail too');
  } catch (e) {
    assert.match((e as Error).message, /EIO: disk gone/);
  }
  assert.ok(log.lines.some((l) => l.level === 'error'));
  await s.close();
});

test('room: past promisesHeldMax a request is refused with LIMIT_EXCEEDED', async () => {
  const s = await open(new MemoryDirectory());
  s.checkRoom(limits.promisesHeldMax);
  try {
    s.checkRoom(limits.promisesHeldMax + 1);
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'LIMIT_EXCEEDED');
  }
  await s.close();
});

test('the lease promise sequence survives a restart, a crash and a rewrite that leaves no promise outstanding', async () => {
  const dir = new MemoryDirectory();
  const s = await open(dir);
  assert.is(s.sequence, 0);
  s.hold('/core/examples/a', { epoch: 2, by: 'z' }, Promise.resolve());
  await s.write('z', [['/core/examples/a', 2]], 7);
  s.hold('/core/examples/b', { epoch: 2, by: 'z' }, Promise.resolve());
  const writing = s.write('z', [['/core/examples/b', 2]], 9);
  const image = dir.crash(); // before the line of sequence 9 was synced
  await writing;
  const crashed = await open(image);
  assert.is(crashed.sequence, 7, 'a line lost in the crash was never answered: its number is free again');
  await Promise.all([crashed.close(), s.close()]);
  // Both promises spent: the rewrite at open keeps only the sequence.
  const held = new Map([
    ['/core/examples/a', 2],
    ['/core/examples/b', 2],
  ]);
  const after = await open(dir, held);
  assert.is(after.size, 0);
  assert.is(after.sequence, 9);
  await after.close();
  const again = await open(dir, held);
  assert.is(again.sequence, 9, 'kept through a second rewrite');
  await again.close();
});

test('a clean stop is marked at the end of the file: the next start knows it, a crash after that start does not pass for one', async () => {
  const dir = new MemoryDirectory();
  const s = await open(dir);
  assert.not.ok(s.cleanStop, 'a first start is not after a clean stop');
  s.hold('/core/examples/a', { epoch: 2, by: 'z' }, Promise.resolve());
  await s.write('z', [['/core/examples/a', 2]], 3);
  await s.markCleanStop();
  await s.close();
  const next = await open(dir);
  assert.ok(next.cleanStop);
  assert.is(next.sequence, 3);
  assert.is(next.size, 1, 'the promise is kept');
  const crashed = dir.crash(); // this start rewrote the file without the mark
  await next.close();
  assert.not.ok((await open(crashed)).cleanStop, 'a crash after a start is not a clean stop');
  // A promise written after the mark (a request answered while stopping) ends the file: not clean.
  const lateDir = new MemoryDirectory();
  const late = await open(lateDir);
  await late.markCleanStop();
  late.hold('/core/examples/b', { epoch: 1, by: 'y' }, Promise.resolve());
  await late.write('y', [['/core/examples/b', 1]], 1);
  await late.close();
  const afterLate = await open(lateDir);
  assert.not.ok(afterLate.cleanStop);
  await afterLate.close();
});

test.run();
