/**
 * Format v1 and v2 framing: round trips for arbitrary records, and every way a frame can be cut or
 * damaged is reported as 'truncated' or 'corrupt', never as a different record.
 */

import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UPDATE_ACTIONS, type LogRecord } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';
import { FORMAT_VERSION, HEADER_BYTES, decodeFrame, encodeRecord, encodeRecordBody } from '../../wal/record.js';
import { newRecord, withSeq } from './helpers.js';

const packr = new Packr({ useRecords: false });

/** A frame around an arbitrary payload, with a correct checksum. */
function frameAround(payload: Buffer, version = FORMAT_VERSION): Buffer {
  const frame = Buffer.alloc(HEADER_BYTES + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame[8] = version;
  payload.copy(frame, HEADER_BYTES);
  frame.writeUInt32LE(crc32(frame.subarray(8)), 4);
  return frame;
}

const recordArb: fc.Arbitrary<LogRecord> = fc
  .record(
    {
      seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      link: fc.string(),
      action: fc.constantFrom(...UPDATE_ACTIONS),
      version: fc.nat(),
      epoch: fc.nat(),
      timeMicros: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      resetHistory: fc.boolean(),
      requestId: fc.stringMatching(/^[\x21-\x7e]{1,128}$/),
      // msgpackr renames a "__proto__" key (to "__proto_") rather than risk the prototype.
      state: fc
        .dictionary(fc.string(), fc.jsonValue(), { noNullPrototype: true })
        .filter((s) => !JSON.stringify(s).includes('"__proto__"')),
    },
    { requiredKeys: ['seq', 'link', 'action', 'version', 'epoch', 'timeMicros', 'state'], noNullPrototype: true },
  )
  .map((r) => r as unknown as LogRecord);

test('round trip: decode(encode(r)) equals r, and the frame is exactly consumed', () => {
  fc.assert(
    fc.property(recordArb, (r) => {
      const frame = encodeRecord(r);
      const d = decodeFrame(frame, 0);
      assert.is(d.kind, 'record');
      if (d.kind !== 'record') return;
      assert.equal(d.record, JSON.parse(JSON.stringify(r)));
      assert.is(d.next, frame.length);
    }),
    { numRuns: 300 },
  );
});

test('a frame built around a record body is byte for byte the frame of the record', () => {
  fc.assert(
    fc.property(recordArb, (r) => {
      const { seq, ...rest } = r;
      const body = encodeRecordBody(rest);
      assert.equal(encodeRecord(r, body), encodeRecord(r));
      // A body with a fixmap header (another encoder's choice) frames the same record.
      const fix = Buffer.concat([Buffer.from([0x80 | body.readUInt16BE(1)]), body.subarray(3)]);
      const d = decodeFrame(encodeRecord(r, fix), 0);
      assert.is(d.kind, 'record');
      if (d.kind === 'record') assert.equal(d.record, JSON.parse(JSON.stringify({ ...r, seq })));
    }),
    { numRuns: 200 },
  );
  assert.throws(() => encodeRecord(withSeq(1, newRecord(1)), packr.pack([1, 2])), /not a map/);
});

test('frames decode at any offset inside a larger buffer, one after another', () => {
  const frames = [1, 2, 3].map((i) => encodeRecord(withSeq(i, newRecord(i))));
  const buf = Buffer.concat([Buffer.from('junk'), ...frames]);
  let off = 4;
  for (let i = 1; i <= 3; i++) {
    const d = decodeFrame(buf, off);
    assert.is(d.kind, 'record');
    if (d.kind !== 'record') return;
    assert.is(d.record.seq, i);
    off = d.next;
  }
  assert.is(off, buf.length);
  assert.equal(decodeFrame(buf, off), { kind: 'truncated' });
});

test('header layout: little-endian length, crc over version byte and payload, version 1 without a request id, 2 with one', () => {
  const frame = encodeRecord(withSeq(7, newRecord(7)));
  assert.is(HEADER_BYTES, 9);
  assert.is(frame.readUInt32LE(0), frame.length - HEADER_BYTES);
  assert.is(frame[8], 1);
  assert.is(frame.readUInt32LE(4), crc32(frame.subarray(8)));
  const v2 = encodeRecord({ ...withSeq(7, newRecord(7)), requestId: 'r-1' });
  assert.is(v2[8], FORMAT_VERSION);
  assert.is(FORMAT_VERSION, 2);
  assert.is(v2.readUInt32LE(4), crc32(v2.subarray(8)));
  const d = decodeFrame(v2, 0);
  assert.ok(d.kind === 'record' && d.record.requestId === 'r-1');
});

test('every cut of a frame is truncated', () => {
  const frame = encodeRecord(withSeq(1, newRecord(1)));
  for (let n = 0; n < frame.length; n++) assert.equal(decodeFrame(frame.subarray(0, n), 0), { kind: 'truncated' }, `cut at ${n}`);
});

test('every flipped bit makes the frame truncated or corrupt, never another record', () => {
  const frame = encodeRecord(withSeq(3, newRecord(3)));
  for (let byte = 0; byte < frame.length; byte++) {
    for (let bit = 0; bit < 8; bit++) {
      const damaged = Buffer.from(frame);
      damaged[byte]! ^= 1 << bit;
      const d = decodeFrame(damaged, 0);
      assert.ok(d.kind !== 'record', `byte ${byte} bit ${bit} decoded as a record`);
    }
  }
});

test('corrupt: bad checksum, unknown version, absurd length, empty payload, undecodable, wrong shape', () => {
  const frame = encodeRecord(withSeq(1, newRecord(1)));
  const badCrc = Buffer.from(frame);
  badCrc.writeUInt32LE((badCrc.readUInt32LE(4) + 1) >>> 0, 4);
  const reason = (b: Buffer): string => {
    const d = decodeFrame(b, 0);
    return d.kind === 'corrupt' ? d.reason : d.kind;
  };
  assert.match(reason(badCrc), /checksum/);
  assert.match(reason(frameAround(frame.subarray(HEADER_BYTES), 3)), /unknown format version 3/);
  assert.match(reason(frameAround(frame.subarray(HEADER_BYTES), 0)), /unknown format version 0/);
  // v1 has no request id: a v1 frame that carries one is not a record a v1 writer made.
  assert.match(reason(frameAround(packr.pack({ ...withSeq(1, newRecord(1)), requestId: 'r' }), 1)), /requestId in a v1 frame/);
  assert.match(reason(frameAround(packr.pack({ ...withSeq(1, newRecord(1)), requestId: 5 }), 2)), /bad requestId/);
  const absurd = Buffer.alloc(HEADER_BYTES);
  absurd.writeUInt32LE(limits.recordBytesMax, 0);
  assert.match(reason(absurd), /over the record limit/);
  assert.match(reason(frameAround(Buffer.alloc(0))), /empty payload/);
  assert.match(reason(frameAround(Buffer.from([0x85]))), /undecodable/);
  assert.match(reason(frameAround(Buffer.from([0x92, 0x01, 0x02, 0x03]))), /undecodable/);
  assert.match(reason(frameAround(packr.pack([1, 2]))), /not a map/);
  const { link: _drop, ...noLink } = withSeq(1, newRecord(1));
  assert.match(reason(frameAround(packr.pack(noLink))), /bad link/);
  assert.match(reason(frameAround(packr.pack({ ...withSeq(1, newRecord(1)), seq: 0 }))), /bad seq/);
  assert.match(reason(frameAround(packr.pack({ ...withSeq(1, newRecord(1)), action: 'GET' }))), /bad action/);
  assert.match(reason(frameAround(packr.pack({ ...withSeq(1, newRecord(1)), state: [] }))), /bad state/);
});

test('a uint64 timeMicros from another writer decodes as a number', () => {
  const r = withSeq(1, newRecord(1));
  const payload = Buffer.from(packr.pack({ ...r, timeMicros: 0 }));
  // Rewrite timeMicros as msgpack uint64 (0xcf), as msgpack-lite or @msgpack/msgpack would.
  const key = Buffer.from([0xaa, ...Buffer.from('timeMicros')]);
  const at = payload.indexOf(key) + key.length;
  const uint64 = Buffer.alloc(9);
  uint64[0] = 0xcf;
  uint64.writeBigUInt64BE(BigInt(r.timeMicros), 1);
  const rewritten = Buffer.concat([payload.subarray(0, at), uint64, payload.subarray(at + 1)]);
  const d = decodeFrame(frameAround(rewritten), 0);
  assert.is(d.kind, 'record');
  if (d.kind === 'record') assert.is(d.record.timeMicros, r.timeMicros);
});

test('a record over recordBytesMax is refused with LIMIT_EXCEEDED', () => {
  const big = newRecord(1, limits.recordBytesMax);
  try {
    encodeRecord(withSeq(1, big));
    assert.unreachable('encoded an oversized record');
  } catch (e) {
    assert.instance(e, KryptonError);
    assert.is((e as KryptonError).code, 'LIMIT_EXCEEDED');
  }
  // Just under the limit is fine.
  const overhead = encodeRecord(withSeq(1, newRecord(1, 0))).length;
  const fits = encodeRecord(withSeq(1, newRecord(1, limits.recordBytesMax - overhead - 16)));
  assert.ok(fits.length <= limits.recordBytesMax);
});

test('resetHistory is kept when set and absent when not', () => {
  const plain = decodeFrame(encodeRecord(withSeq(1, newRecord(1))), 0);
  const reset = decodeFrame(encodeRecord({ ...withSeq(2, newRecord(2)), action: 'POST', resetHistory: true }), 0);
  assert.ok(plain.kind === 'record' && !('resetHistory' in plain.record));
  assert.ok(reset.kind === 'record' && reset.record.resetHistory === true);
});

test.run();
