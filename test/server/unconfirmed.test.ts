/**
 * The file of "outcome unknown" marks (server/documents/unconfirmed.ts) on an in-memory directory
 * that loses what was not synced when it crashes: a mark that was added is there after a crash,
 * marks older than the dedup window and damaged lines are dropped at open, and a full file is
 * rewritten with the marks still inside the window.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { limits } from '../../lib/limits.js';
import { UnconfirmedStore } from '../../server/documents/unconfirmed.js';
import { MemoryDirectory } from '../../wal/file.js';

const warnings: object[] = [];
const logger = { warn: (o: object) => warnings.push(o) };
const NOW = 1_000_000_000_000;

test('a mark added survives a crash; marks past the window do not come back', async () => {
  const dir = new MemoryDirectory();
  const s = await UnconfirmedStore.open(dir, logger, NOW);
  await s.add({ link: '/core/examples/a', requestId: 'r1', timeMicros: NOW - limits.dedupWindowMicros - 1 }, NOW);
  await s.add({ link: '/core/examples/a', requestId: 'r2', timeMicros: NOW }, NOW);
  const after = dir.crash();
  const again = await UnconfirmedStore.open(after, logger, NOW + 1);
  assert.equal(
    again.loaded().map((m) => m.requestId),
    ['r2'],
  );
  assert.equal((await after.list()).length, 1, 'one file after the rewrite at open');
  await again.close();
});

test('a damaged line is dropped with a warning and the others kept', async () => {
  const dir = new MemoryDirectory();
  const s = await UnconfirmedStore.open(dir, logger, NOW);
  for (const id of ['a', 'b', 'c']) await s.add({ link: '/core/examples/x', requestId: id, timeMicros: NOW }, NOW);
  await s.close();
  const [name] = await dir.list();
  const f = await dir.open(name!, 'read');
  const bytes = await f.read(0, await f.size());
  await f.close();
  // Flip a byte inside the second line's JSON.
  const second = bytes.indexOf(0x0a) + 12;
  bytes[second] = bytes[second]! ^ 0x01;
  await dir.remove(name!);
  const g = await dir.create(name!);
  await g.append([bytes]);
  await g.datasync();
  await g.close();
  warnings.length = 0;
  const again = await UnconfirmedStore.open(dir, logger, NOW);
  assert.equal(
    again.loaded().map((m) => m.requestId),
    ['a', 'c'],
  );
  assert.is(warnings.length, 1);
  await again.close();
});

test('past its size limit the file is rewritten with the marks inside the window', async () => {
  const dir = new MemoryDirectory();
  const s = await UnconfirmedStore.open(dir, logger, NOW);
  const old = NOW - limits.dedupWindowMicros - 1;
  const id = 'x'.repeat(120);
  const count = Math.ceil((2 * limits.unconfirmedFileBytesMax) / 150);
  for (let n = 0; n < count; n++) await s.add({ link: '/core/examples/big', requestId: `${id}${n}`, timeMicros: old }, NOW);
  await s.add({ link: '/core/examples/big', requestId: 'kept', timeMicros: NOW }, NOW);
  await s.close();
  const names = await dir.list();
  assert.is(names.length, 1, 'older files removed after each rewrite');
  const f = await dir.open(names[0]!, 'read');
  assert.ok((await f.size()) <= limits.unconfirmedFileBytesMax + 512, 'the file stays within its limit and a line');
  await f.close();
  const again = await UnconfirmedStore.open(dir, logger, NOW);
  assert.equal(
    again.loaded().map((m) => m.requestId),
    ['kept'],
  );
  await again.close();
});

test.run();
