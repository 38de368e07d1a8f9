/**
 * The log-shipping codec (server/replication/replicator.ts): a batch is a header then record bodies, read back
 * with each record's own bytes (the replica's log frames are built around them); anything
 * malformed is INVALID_BODY, never a crash or a half-read batch.
 */
import { Packr } from 'msgpackr';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NewLogRecord } from '../../lib/document.js';
import { limits } from '../../lib/limits.js';
import { decodeBatch, decodeResults, encodeBatch, encodeResults, type ReplicaResult } from '../../server/replication/replicator.js';
import { encodeRecordBody } from '../../wal/record.js';

const packr = new Packr({ useRecords: false });

function rec(i: number, extra: Partial<NewLogRecord> = {}): NewLogRecord {
  const link = `/core/examples/r${i}`;
  return {
    link,
    action: 'PATCH',
    version: i,
    epoch: 2,
    timeMicros: 1_700_000_000_000_000 + i,
    ...extra,
    state: {
      name: `n${i}`,
      documentSelfLink: link,
      documentVersion: i,
      documentKind: 'k',
      documentUpdateTimeMicros: 1,
      documentUpdateAction: 'PATCH',
      documentExpirationTimeMicros: 0,
    },
  };
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return String((e as { code?: string }).code);
  }
  return 'no error';
}

test('a batch reads back with each record and its own bytes', () => {
  const records = [rec(1), rec(2, { resetHistory: true }), rec(3, { requestId: 'r-3' }), rec(4, { resetHistory: true, requestId: 'r-4' })];
  const b = decodeBatch(encodeBatch({ from: 'host-a', records }));
  assert.is(b.from, 'host-a');
  assert.equal(b.records, records);
  for (const [i, body] of b.bodies.entries()) assert.equal(body, encodeRecordBody(records[i]!));
  assert.equal(decodeBatch(encodeBatch({ from: 'x', records: [] })).records, []);
});

test('malformed batches are INVALID_BODY', () => {
  const ok = encodeRecordBody(rec(1));
  assert.is(
    code(() => decodeBatch(Buffer.from([0xc1]))),
    'INVALID_BODY',
    'not msgpack',
  );
  assert.is(
    code(() => decodeBatch(Buffer.alloc(0))),
    'INVALID_BODY',
    'empty',
  );
  assert.is(
    code(() => decodeBatch(packr.pack([1]))),
    'INVALID_BODY',
    'header not a map',
  );
  assert.is(
    code(() => decodeBatch(Buffer.concat([packr.pack({ from: 'x', count: 2 }), ok]))),
    'INVALID_BODY',
    'fewer records than announced',
  );
  assert.is(
    code(() => decodeBatch(Buffer.concat([packr.pack({ from: 'x', count: 0 }), ok]))),
    'INVALID_BODY',
    'more records than announced',
  );
  assert.is(
    code(() => decodeBatch(packr.pack({ from: 'x', count: limits.replicationBatchRecordsMax + 1 }))),
    'INVALID_BODY',
    'over the limit',
  );
  const withExtra = packr.pack({ ...rec(1), seq: 9 });
  assert.is(
    code(() => decodeBatch(Buffer.concat([packr.pack({ from: 'x', count: 1 }), withExtra]))),
    'INVALID_BODY',
    'a key the log does not have',
  );
  const r = rec(1);
  const reordered = packr.pack({
    action: r.action,
    link: r.link,
    version: r.version,
    epoch: r.epoch,
    timeMicros: r.timeMicros,
    state: r.state,
  });
  assert.is(
    code(() => decodeBatch(Buffer.concat([packr.pack({ from: 'x', count: 1 }), reordered]))),
    'INVALID_BODY',
    'keys out of the log order',
  );
  const wrongLink = encodeRecordBody({ ...rec(1), link: '/core/examples/other' });
  assert.is(
    code(() => decodeBatch(Buffer.concat([packr.pack({ from: 'x', count: 1 }), wrongLink]))),
    'INVALID_BODY',
    'state of another link',
  );
  const cut = encodeBatch({ from: 'x', records: [rec(1)] });
  assert.is(
    code(() => decodeBatch(cut.subarray(0, cut.length - 3))),
    'INVALID_BODY',
    'cut short',
  );
});

test('results read back; a wrong count throws', () => {
  const results: ReplicaResult[] = [{ ok: true }, { ok: false, code: 'STALE_EPOCH', message: 'Expected epoch: 5, in update: 4' }];
  assert.equal(decodeResults(encodeResults(results), 2), results);
  assert.throws(() => decodeResults(encodeResults(results), 3), /2 results for 3/);
});

test.run();
