/**
 * Segment names: 20-digit zero-padded first seq, so lexical order is seq order; anything else in
 * the folder is ignored.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemoryDirectory } from '../../wal/file.js';
import { listSegments, parseSegmentName, segmentName } from '../../wal/segment.js';

test('names are the first seq padded to 20 digits, and parse back', () => {
  assert.is(segmentName(1), '00000000000000000001.log');
  assert.is(segmentName(Number.MAX_SAFE_INTEGER), '00009007199254740991.log');
  for (const seq of [1, 9, 10, 12345, Number.MAX_SAFE_INTEGER]) assert.is(parseSegmentName(segmentName(seq)), seq);
  assert.throws(() => segmentName(0));
  assert.throws(() => segmentName(1.5));
});

test('lexical order of names is seq order', () => {
  const seqs = [1, 2, 9, 10, 11, 99, 100, 1_000_000, 123_456_789_012];
  const names = seqs.map(segmentName);
  assert.equal([...names].sort(), names);
});

test('other names are not segments', () => {
  for (const name of [
    '1.log',
    '0000000000000000001.log',
    '000000000000000000001.log',
    '00000000000000000001.log.tmp',
    'notes.txt',
    '00000000000000000000.log',
    '99999999999999999999.log',
  ]) {
    assert.is(parseSegmentName(name), undefined, name);
  }
});

test('listSegments returns segments in seq order and skips other files', async () => {
  const dir = new MemoryDirectory();
  for (const name of [segmentName(100), 'notes.txt', segmentName(7), segmentName(1), 'x.log']) dir.put(name, Buffer.alloc(0));
  assert.equal(await listSegments(dir), [
    { name: segmentName(1), firstSeq: 1 },
    { name: segmentName(7), firstSeq: 7 },
    { name: segmentName(100), firstSeq: 100 },
  ]);
});

test.run();
