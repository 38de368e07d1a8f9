/**
 * One conformance suite for both LogDirectory backends (disk and memory), then the memory
 * backend's own promises: what crash() keeps, and the damage helpers recovery tests rely on.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { suite, test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemoryDirectory, diskDirectory, type LogDirectory } from '../../wal/file.js';
import { tempDir } from './helpers.js';

interface Backend {
  name: string;
  make(): Promise<{ dir: LogDirectory; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'disk',
    async make() {
      const tmp = await tempDir();
      // A folder that does not exist yet: diskDirectory makes it on first use.
      return { dir: diskDirectory(path.join(tmp.path, 'log')), cleanup: tmp.remove };
    },
  },
  { name: 'memory', make: async () => ({ dir: new MemoryDirectory(), cleanup: async () => {} }) },
];

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return String((e as { code?: unknown }).code);
  }
  return 'resolved';
}

async function message(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  return 'resolved';
}

for (const backend of backends) {
  const s = suite<{ dir: LogDirectory; cleanup(): Promise<void> }>(`file conformance: ${backend.name}`);
  s.before.each(async (ctx) => {
    Object.assign(ctx, await backend.make());
  });
  s.after.each(async (ctx) => ctx.cleanup());

  s('create, append, size, read back', async ({ dir }) => {
    const f = await dir.create('a.log');
    assert.is(f.name, 'a.log');
    assert.is(await f.size(), 0);
    await f.append([Buffer.from('hello '), Buffer.from('world')]);
    await f.append([]);
    await f.datasync();
    assert.is(await f.size(), 11);
    assert.is((await f.read(0, 11)).toString(), 'hello world');
    assert.is((await f.read(6, 100)).toString(), 'world', 'short read at end of file');
    assert.is((await f.read(50, 10)).length, 0, 'read past end of file');
    const into = Buffer.alloc(32, 0x2e);
    const got = await f.read(0, 5, into);
    assert.is(got.toString(), 'hello');
    assert.is(got.buffer, into.buffer, 'read with `into` lands in the given buffer');
    await f.close();
  });

  s('list, open existing for read and append, remove', async ({ dir }) => {
    const f = await dir.create('00000000000000000001.log');
    await f.append([Buffer.from('abc')]);
    await f.close();
    await (await dir.create('other.txt')).close();
    await dir.syncDirectory();
    assert.equal((await dir.list()).sort(), ['00000000000000000001.log', 'other.txt']);
    const r = await dir.open('00000000000000000001.log', 'read');
    assert.is((await r.read(0, 3)).toString(), 'abc');
    await r.close();
    const a = await dir.open('00000000000000000001.log', 'append');
    await a.append([Buffer.from('def')]);
    assert.is((await a.read(0, 6)).toString(), 'abcdef', 'append mode can read too');
    await a.close();
    await dir.remove('other.txt');
    await dir.syncDirectory();
    assert.equal(await dir.list(), ['00000000000000000001.log']);
  });

  s('appendDurable appends after earlier appends and a truncate', async ({ dir }) => {
    const f = await dir.create('d.log');
    await f.appendDurable([Buffer.from('abc'), Buffer.from('def')]);
    await f.append([Buffer.from('gh')]);
    await f.appendDurable([Buffer.from('ij')]);
    assert.is((await f.read(0, 20)).toString(), 'abcdefghij');
    await f.truncate(3);
    await f.appendDurable([Buffer.from('XY')]);
    assert.is(await f.size(), 5);
    assert.is((await f.read(0, 20)).toString(), 'abcXY');
    await f.close();
    const r = await dir.open('d.log', 'read');
    assert.is.not(await code(r.appendDurable([Buffer.from('no')])), 'resolved', 'a read handle refuses it');
    await r.close();
    const a = await dir.open('d.log', 'append');
    await a.appendDurable([Buffer.from('Z')]);
    assert.is((await a.read(0, 20)).toString(), 'abcXYZ', 'a reopened file appends at its end');
    await a.close();
  });

  s('truncate cuts, and later appends go to the new end', async ({ dir }) => {
    const f = await dir.create('t.log');
    await f.append([Buffer.from('0123456789')]);
    await f.truncate(4);
    await f.datasync();
    assert.is(await f.size(), 4);
    await f.append([Buffer.from('xy')]);
    assert.is((await f.read(0, 10)).toString(), '0123xy');
    await f.close();
  });

  s('errors: create existing, open missing, write through a read handle, use after close', async ({ dir }) => {
    await (await dir.create('x.log')).close();
    assert.is(await code(dir.create('x.log')), 'EEXIST');
    assert.is(await code(dir.open('missing.log', 'read')), 'ENOENT');
    assert.is(await code(dir.open('missing.log', 'append')), 'ENOENT');
    assert.is(await code(dir.remove('missing.log')), 'ENOENT');
    const r = await dir.open('x.log', 'read');
    assert.is.not(await code(r.append([Buffer.from('no')])), 'resolved');
    assert.is.not(await code(r.truncate(0)), 'resolved');
    await r.close();
    const a = await dir.open('x.log', 'append');
    await a.close();
    assert.is.not(await code(a.size()), 'resolved');
    assert.is.not(await code(a.append([Buffer.from('no')])), 'resolved');
  });

  s('names that could leave the folder are refused', async ({ dir }) => {
    for (const bad of ['../x.log', 'a/b.log', '..', '.', '']) {
      assert.is(await code(dir.create(bad)), 'INVALID_ARGUMENT', bad);
    }
  });

  s.run();
}

test('disk: diskDirectory makes a missing folder on first use', async () => {
  const tmp = await tempDir();
  try {
    const where = path.join(tmp.path, 'deep', 'log');
    const dir = diskDirectory(where);
    assert.equal(await dir.list(), []);
    assert.ok((await fs.stat(where)).isDirectory());
    const f = await dir.create('a.log');
    await f.append([Buffer.from('abc')]);
    await f.close();
    const r = await dir.open('a.log', 'read');
    assert.is((await r.read(0, 3)).toString(), 'abc');
    await r.close();
  } finally {
    await tmp.remove();
  }
});

test('memory crash: a file exists after a crash only once its directory was synced', async () => {
  const dir = new MemoryDirectory();
  const f = await dir.create('a.log');
  await f.append([Buffer.from('durable')]);
  await f.datasync();
  assert.equal(await dir.crash().list(), [], 'created but directory not synced');
  await dir.syncDirectory();
  await f.append([Buffer.from('-lost')]);
  const after = dir.crash();
  assert.equal(await after.list(), ['a.log']);
  assert.is(after.contents('a.log').toString(), 'durable', 'unsynced append lost');
  await f.datasync();
  assert.is(dir.crash().contents('a.log').toString(), 'durable-lost');
  // The original directory is untouched by taking crash images.
  assert.is(dir.contents('a.log').toString(), 'durable-lost');
  await f.close();
});

test('memory crash: appendDurable is durable when it resolves, earlier plain appends with it', async () => {
  const dir = new MemoryDirectory();
  const f = await dir.create('a.log');
  await dir.syncDirectory();
  await f.append([Buffer.from('plain-')]);
  await f.appendDurable([Buffer.from('durable')]);
  assert.is(dir.crash().contents('a.log').toString(), 'plain-durable');
  dir.failNextSync(new Error('EIO: sync failed'));
  assert.match(await message(f.appendDurable([Buffer.from('-x')])), /EIO/);
  assert.is(dir.crash().contents('a.log').toString(), 'plain-durable', 'a failed sync keeps nothing new');
  dir.failNextAppend(new Error('ENOSPC: disk full'));
  assert.match(await message(f.appendDurable([Buffer.from('-y')])), /ENOSPC/);
  await f.close();
});

test('memory crash: an unsynced truncate is undone, a synced one kept; removal needs a directory sync', async () => {
  const dir = new MemoryDirectory();
  const f = await dir.create('a.log');
  await dir.syncDirectory();
  await f.append([Buffer.from('0123456789')]);
  await f.datasync();
  await f.truncate(3);
  await f.append([Buffer.from('abc')]);
  assert.is(dir.crash().contents('a.log').toString(), '0123456789');
  await f.datasync();
  assert.is(dir.crash().contents('a.log').toString(), '012abc');
  await f.close();
  await dir.remove('a.log');
  assert.equal(await dir.crash().list(), ['a.log'], 'removal not durable before syncDirectory');
  await dir.syncDirectory();
  assert.equal(await dir.crash().list(), []);
});

test('memory damage helpers: tearTail, flipBit, failNextSync, failNextAppend', async () => {
  const dir = new MemoryDirectory();
  const f = await dir.create('a.log');
  await dir.syncDirectory();
  await f.append([Buffer.from([0, 1, 2, 3, 4, 5])]);
  await f.datasync();
  dir.tearTail('a.log', 4);
  assert.equal([...dir.contents('a.log')], [0, 1, 2, 3]);
  assert.equal([...dir.crash().contents('a.log')], [0, 1, 2, 3], 'damage is durable');
  dir.flipBit('a.log', 1, 7);
  assert.equal([...dir.contents('a.log')], [0, 129, 2, 3]);
  assert.throws(() => dir.flipBit('a.log', 4, 0), /outside the file/);

  dir.failNextSync(new Error('EIO: sync failed'));
  await f.append([Buffer.from([9])]);
  assert.match(await message(f.datasync()), /EIO/);
  assert.is(dir.crash().contents('a.log').length, 4, 'a failed sync syncs nothing');
  await f.datasync();
  assert.is(dir.crash().contents('a.log').length, 5, 'only the next sync fails');

  dir.failNextAppend(new Error('ENOSPC: disk full'));
  assert.match(await message(f.append([Buffer.from([7])])), /ENOSPC/);
  assert.is(await f.size(), 5, 'a failed append writes nothing');
  await f.close();
});

test('memory put: adds a durable file', async () => {
  const dir = new MemoryDirectory();
  dir.put('a.log', Buffer.from('abc'));
  assert.is(dir.crash().contents('a.log').toString(), 'abc');
  const r = await dir.open('a.log', 'read');
  assert.is((await r.read(0, 3)).toString(), 'abc');
  await r.close();
});

test.run();
