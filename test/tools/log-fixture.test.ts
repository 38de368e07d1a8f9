/**
 * Every `krypton log` command on the golden v1 log (test/fixtures/wal-v1/, copied into a host
 * folder layout), checked against expected.json: six records over two segments — POST, PUT,
 * PATCH, DELETE of /core/examples/one, a resetHistory POST re-creating it, and a POST of
 * /core/examples/two. Then the same commands on a copy with a torn tail and on a copy with one
 * flipped byte, and proof that none of them changed a byte of the folder.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LogRecord } from '../../lib/document.js';
import { cli, expectedRecords, fixtureSandbox, flipByte, folderDigest, frameBytes, jsonLines, NOW_MICROS, SEG1, SEG4 } from './support.js';

/** Frame sizes of the six golden records, as the bytes on disk have them. */
const FRAMES = [394, 398, 414, 416, 397, 484];
const OFFSETS = [0, 394, 792, 0, 416, 813];
const FILES = [SEG1, SEG1, SEG1, SEG4, SEG4, SEG4];
const ONE = '/core/examples/one';
const TWO = '/core/examples/two';

let expected: LogRecord[];

test.before(async () => {
  expected = await expectedRecords();
  assert.equal(expected.map(frameBytes), FRAMES, 'expected.json re-encodes to the frames on disk');
});

test('inspect prints one aligned line per record: seq, time, action, epoch, version, bytes, link', async () => {
  const sb = await fixtureSandbox();
  try {
    const run = await cli(['inspect', sb.path]);
    assert.is(run.code, 0);
    assert.is(run.stderr, '');
    assert.equal(run.lines, [
      'seq  time                         action  epoch  version    bytes  link',
      '  1  2023-11-14T22:13:20.001000Z  POST        0        0      394  /core/examples/one',
      '  2  2023-11-14T22:13:20.002000Z  PUT         0        1      398  /core/examples/one',
      '  3  2023-11-14T22:13:20.003000Z  PATCH       0        2      414  /core/examples/one',
      '  4  2023-11-14T22:13:20.004000Z  DELETE      0        3      416  /core/examples/one',
      '  5  2023-11-14T22:13:20.005000Z  POST        0        0      397  /core/examples/one  (history reset)',
      '  6  2023-11-14T22:13:20.006000Z  POST        0        0      484  /core/examples/two',
    ]);
    // DIR may be the host folder itself as well as the sandbox holding it.
    assert.equal((await cli(['inspect', sb.host])).lines, run.lines);
  } finally {
    await sb.remove();
  }
});

test('inspect --json carries seq, documentSelfLink, version, epoch, action and update time of every record', async () => {
  const sb = await fixtureSandbox();
  try {
    const run = await cli(['inspect', '--json', sb.path]);
    assert.is(run.code, 0);
    const rows = jsonLines(run);
    assert.equal(
      rows,
      expected.map((r, i) => ({
        seq: r.seq,
        documentSelfLink: r.link,
        documentKind: r.state.documentKind,
        documentVersion: r.version,
        documentEpoch: r.epoch,
        documentUpdateAction: r.action,
        documentUpdateTimeMicros: r.timeMicros,
        ...(r.resetHistory === true ? { resetHistory: true } : {}),
        file: FILES[i],
        offset: OFFSETS[i],
        bytes: FRAMES[i],
      })),
    );
  } finally {
    await sb.remove();
  }
});

test('inspect filters: --link (exact and prefix*), --action, --kind, --from-seq, --limit', async () => {
  const sb = await fixtureSandbox();
  const seqs = async (...flags: string[]): Promise<number[]> => {
    const run = await cli(['inspect', sb.path, '--json', ...flags]);
    assert.is(run.code, 0, run.stderr);
    return jsonLines<{ seq: number }>(run).map((r) => r.seq);
  };
  try {
    assert.equal(await seqs('--link', TWO), [6]);
    assert.equal(await seqs(`--link=${ONE}`), [1, 2, 3, 4, 5]);
    assert.equal(await seqs('--link', '/core/examples/*', '--action', 'post'), [1, 5, 6]);
    assert.equal(await seqs('--action=PUT,DELETE'), [2, 4]);
    assert.equal(await seqs('--kind', 'com:vmware:xenon:services:common:ExampleService:ExampleServiceState', '--limit', '2'), [1, 2]);
    assert.equal(await seqs('--kind', 'nope'), []);
    assert.equal(await seqs('--from-seq', '3', '--limit', '2'), [3, 4]);
    assert.equal(await seqs('--from-seq', '5'), [5, 6]);
    assert.equal(await seqs('--from-seq', '7'), []);
  } finally {
    await sb.remove();
  }
});

test('verify: a sound log exits 0 with one summary line', async () => {
  const sb = await fixtureSandbox();
  try {
    const run = await cli(['verify', sb.path]);
    assert.is(run.code, 0);
    assert.equal(run.lines, ['ok: 2 segments, 6 intact records (seq 1 to 6), 2,503 bytes']);
    const json = await cli(['verify', '--json', sb.host]);
    assert.is(json.code, 0);
    assert.equal(JSON.parse(json.stdout), {
      ok: true,
      segments: 2,
      bytes: 2503,
      records: 6,
      firstSeq: 1,
      lastSeq: 6,
      problems: [],
      snapshots: 0,
    });
  } finally {
    await sb.remove();
  }
});

test('replay counts live, deleted and expired documents and held versions per factory, at any point', async () => {
  const sb = await fixtureSandbox();
  const counts = async (...flags: string[]) => {
    const run = await cli(['replay', sb.path, '--json', ...flags]);
    assert.is(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as { asOf: { seq: number; timeMicros: number }; records: number; factories: unknown[] };
  };
  try {
    const human = await cli(['replay', sb.path]);
    assert.is(human.code, 0);
    assert.equal(human.lines, [
      'as of seq 6, the end of the log: 6 records applied',
      'factory         live  deleted  expired  versions',
      '/core/examples     2        0        0         2',
      'total              2        0        0         2',
    ]);
    assert.equal(await counts(), {
      asOf: { seq: 6, timeMicros: NOW_MICROS },
      records: 6,
      factories: [{ factory: '/core/examples', live: 2, deleted: 0, expired: 0, versions: 2 }],
      totals: { factory: 'total', live: 2, deleted: 0, expired: 0, versions: 2 },
    });
    // Before the reset: the tombstone and the three versions under it are all held.
    const at4 = await counts('--at-seq', '4');
    assert.equal(at4.asOf, { seq: 4, timeMicros: expected[3]!.timeMicros });
    assert.equal(at4.factories, [{ factory: '/core/examples', live: 0, deleted: 1, expired: 0, versions: 4 }]);
    assert.equal((await counts('--at-seq=3')).factories, [{ factory: '/core/examples', live: 1, deleted: 0, expired: 0, versions: 3 }]);
    const at0 = await counts('--at-seq', '0');
    assert.equal([at0.records, at0.factories], [0, []]);
    // A time between records: the prefix stamped at or before it.
    const t = await counts('--at-time', '2023-11-14T22:13:20.002500Z');
    assert.equal(
      [t.asOf.seq, t.records, t.factories],
      [2, 2, [{ factory: '/core/examples', live: 1, deleted: 0, expired: 0, versions: 2 }]],
    );
    const exact = await counts('--at-time', String(expected[4]!.timeMicros));
    assert.equal([exact.asOf.seq, exact.factories], [5, [{ factory: '/core/examples', live: 1, deleted: 0, expired: 0, versions: 1 }]]);
    const past = await cli(['replay', sb.path, '--at-seq', '99']);
    assert.is(past.code, 0);
    assert.is(past.lines[0], 'as of seq 6: 6 records applied');
    assert.match(past.stderr, /note: the log ends at seq 6, before seq 99/);
  } finally {
    await sb.remove();
  }
});

test('replay --link prints the document as it stood: live, deleted, or absent (exit 1)', async () => {
  const sb = await fixtureSandbox();
  try {
    const end = await cli(['replay', sb.path, '--link', ONE, '--json']);
    assert.is(end.code, 0);
    assert.equal(JSON.parse(end.stdout), {
      documentSelfLink: ONE,
      status: 'live',
      asOf: { seq: 6, timeMicros: NOW_MICROS },
      versions: 1,
      state: expected[4]!.state,
    });

    const deleted = await cli(['replay', sb.path, '--link', ONE, '--at-seq', '4', '--json']);
    assert.is(deleted.code, 0);
    const d = JSON.parse(deleted.stdout) as Record<string, unknown>;
    assert.equal([d.status, d.versions, d.state], ['deleted', 4, expected[3]!.state]);

    const human = await cli(['replay', sb.path, '--link', ONE, '--at-seq', '4']);
    assert.is(human.lines[0], `${ONE}: deleted (version 3, epoch 0, DELETE at 2023-11-14T22:13:20.004000Z); 4 versions held; as of seq 4`);
    assert.equal(JSON.parse(human.lines.slice(1).join('\n')), expected[3]!.state);

    const patched = await cli(['replay', sb.path, '--link', ONE, '--at-time', '2023-11-14T22:13:20.003Z', '--json']);
    assert.equal((JSON.parse(patched.stdout) as { state: unknown }).state, expected[2]!.state);

    const absent = await cli(['replay', sb.path, '--link', TWO, '--at-seq', '5']);
    assert.is(absent.code, 1);
    assert.is(absent.stdout, '');
    assert.is(absent.stderr, `krypton log replay: no document ${TWO} as of seq 5\n`);
  } finally {
    await sb.remove();
  }
});

test('export prints live documents, or every held version, as JSON lines ordered by link then version', async () => {
  const sb = await fixtureSandbox();
  try {
    const latest = await cli(['export', sb.path]);
    assert.is(latest.code, 0);
    assert.equal(jsonLines(latest), [expected[4]!.state, expected[5]!.state]);
    assert.is(latest.stderr, 'krypton log export: 2 live documents, as of seq 6\n');

    const all = await cli(['export', sb.path, '--all-versions', '--at-seq', '4']);
    assert.equal(
      jsonLines(all),
      expected.slice(0, 4).map((r) => r.state),
    );
    assert.is(all.stderr, 'krypton log export: 4 versions of 1 document, as of seq 4\n');
    // The tombstone is the latest there, so a plain export has nothing live.
    assert.equal(jsonLines(await cli(['export', sb.path, '--at-seq', '4'])), []);
    assert.equal(jsonLines(await cli(['export', sb.path, '--all-versions'])), [expected[4]!.state, expected[5]!.state]);
    // Deterministic: byte-identical on a second run.
    assert.is((await cli(['export', sb.path, '--all-versions'])).stdout, (await cli(['export', sb.path, '--all-versions'])).stdout);
  } finally {
    await sb.remove();
  }
});

test('stats: segments, bytes, records per action and kind, seq and time span, links and versions', async () => {
  const sb = await fixtureSandbox();
  try {
    const json = await cli(['stats', sb.path, '--json']);
    assert.is(json.code, 0);
    assert.equal(JSON.parse(json.stdout), {
      segments: {
        count: 2,
        bytes: 2503,
        files: [
          { name: SEG1, firstSeq: 1, bytes: 1206 },
          { name: SEG4, firstSeq: 4, bytes: 1297 },
        ],
      },
      records: 6,
      firstSeq: 1,
      lastSeq: 6,
      frameBytes: 2503,
      firstTimeMicros: 1700000000001000,
      lastTimeMicros: 1700000000006000,
      actions: { POST: 3, PUT: 1, PATCH: 1, DELETE: 1 },
      kinds: { 'com:vmware:xenon:services:common:ExampleService:ExampleServiceState': 6 },
      links: { total: 2, live: 2, deleted: 0, expired: 0 },
      historyResets: 1,
      versions: { held: 2, written: 6 },
    });
    const human = await cli(['stats', sb.path]);
    assert.is(human.code, 0);
    assert.equal(human.lines.slice(0, 5), [
      `segments   2, 2,503 bytes (${SEG1} to ${SEG4})`,
      'records    6, seq 1 to 6, 2,503 bytes in frames',
      'time span  2023-11-14T22:13:20.001000Z to 2023-11-14T22:13:20.006000Z (5.0 ms)',
      'links      2: 2 live, 0 deleted, 0 expired; 1 history reset',
      'versions   2 held by the index, of 6 written',
    ]);
    assert.ok(human.lines.includes('POST          3'));
    assert.ok(human.lines.includes('DELETE        1'));
  } finally {
    await sb.remove();
  }
});

test('torn tail: verify reports it (exit 1); the other commands stop there with a warning (exit 0)', async () => {
  const sb = await fixtureSandbox();
  const seg4 = path.join(sb.logDir, SEG4);
  try {
    // Cut the last record (seq 6, at 813) 100 bytes short, as a crash mid-write leaves it.
    await fs.truncate(seg4, 1297 - 100);
    const before = await folderDigest(sb.path);

    const verify = await cli(['verify', sb.path]);
    assert.is(verify.code, 1);
    assert.equal(verify.lines, [
      `${seg4} at offset 813: torn tail: the host's recovery would cut the log here (file ends 384 bytes into a frame)`,
      'FAILED: 1 problem; 2 segments, 5 intact records (seq 1 to 5), 2,403 bytes',
    ]);
    const vjson = JSON.parse((await cli(['verify', '--json', sb.path])).stdout) as { problems: unknown[] };
    assert.equal(vjson.problems, [
      {
        file: SEG4,
        offset: 813,
        kind: 'torn-tail',
        reason: "the host's recovery would cut the log here (file ends 384 bytes into a frame)",
        path: seg4,
      },
    ]);

    const warning = `warning: torn tail in ${seg4} at offset 813 (file ends 384 bytes into a frame); the log ends after seq 5, where the host's recovery would cut it\n`;
    const inspect = await cli(['inspect', '--json', sb.path]);
    assert.is(inspect.code, 0);
    assert.equal(
      jsonLines<{ seq: number }>(inspect).map((r) => r.seq),
      [1, 2, 3, 4, 5],
    );
    assert.is(inspect.stderr, `krypton log inspect: ${warning}`);

    const replay = await cli(['replay', '--json', sb.path]);
    assert.is(replay.code, 0);
    assert.equal((JSON.parse(replay.stdout) as { factories: unknown }).factories, [
      { factory: '/core/examples', live: 1, deleted: 0, expired: 0, versions: 1 },
    ]);
    assert.is(replay.stderr, `krypton log replay: ${warning}`);

    const exported = await cli(['export', sb.path]);
    assert.is(exported.code, 0);
    assert.equal(jsonLines(exported), [expected[4]!.state]);
    assert.ok(exported.stderr.endsWith(`krypton log export: ${warning}`));

    const stats = await cli(['stats', '--json', sb.path]);
    assert.is(stats.code, 0);
    const s = JSON.parse(stats.stdout) as { records: number; lastSeq: number; frameBytes: number };
    assert.equal([s.records, s.lastSeq, s.frameBytes], [5, 5, 2503 - 484]);
    assert.is(stats.stderr, `krypton log stats: ${warning}`);

    assert.is(await folderDigest(sb.path), before, 'the tools never change the folder (recovery would have cut the tail)');
  } finally {
    await sb.remove();
  }
});

test('garbage appended after the last record is a torn tail too', async () => {
  const sb = await fixtureSandbox();
  const seg4 = path.join(sb.logDir, SEG4);
  try {
    // A whole frame by its length (1-byte payload), but not by its checksum.
    await fs.appendFile(seg4, Buffer.from([1, 0, 0, 0, 1, 2, 3, 4, 1, 9]));
    const verify = await cli(['verify', sb.path]);
    assert.is(verify.code, 1);
    assert.is(
      verify.lines[0],
      `${seg4} at offset 1297: torn tail: the host's recovery would cut the log here (checksum mismatch, then garbage to the end of the file: 10 bytes)`,
    );
    const inspect = await cli(['inspect', sb.path, '--json']);
    assert.is(inspect.code, 0);
    assert.is(inspect.lines.length, 6);
  } finally {
    await sb.remove();
  }
});

test('a flipped byte mid-log: verify names file and offset and reads on; the others stop there (exit 1)', async () => {
  const sb = await fixtureSandbox();
  const seg1 = path.join(sb.logDir, SEG1);
  try {
    // Inside the payload of seq 2 (frame at 394): its checksum no longer matches.
    await flipByte(seg1, 394 + 100);
    const before = await folderDigest(sb.path);

    const verify = await cli(['verify', sb.path]);
    assert.is(verify.code, 1);
    assert.equal(verify.lines, [
      `${seg1} at offset 394: corrupt: checksum mismatch; 398 bytes unreadable, next intact frame at offset 792 (seq 3); seq 2 lost`,
      'FAILED: 1 problem; 2 segments, 5 intact records (seq 1 to 6), 2,503 bytes',
    ]);

    const stop = `log corrupt in ${seg1} at offset 394: checksum mismatch; stopped after seq 1 (krypton log verify lists every problem)\n`;
    const inspect = await cli(['inspect', sb.path]);
    assert.is(inspect.code, 1);
    assert.equal(inspect.lines.slice(1), ['  1  2023-11-14T22:13:20.001000Z  POST        0        0      394  /core/examples/one']);
    assert.is(inspect.stderr, `krypton log inspect: ${stop}`);

    const replay = await cli(['replay', sb.path, '--json']);
    assert.is(replay.code, 1);
    const r = JSON.parse(replay.stdout) as { asOf: { seq: number }; records: number };
    assert.equal([r.asOf.seq, r.records], [1, 1]);
    assert.is(replay.stderr, `krypton log replay: ${stop}`);

    const link = await cli(['replay', sb.path, '--link', ONE, '--json']);
    assert.is(link.code, 1);
    assert.equal((JSON.parse(link.stdout) as { state: unknown }).state, expected[0]!.state);

    const exported = await cli(['export', sb.path]);
    assert.is(exported.code, 1);
    assert.equal(jsonLines(exported), [expected[0]!.state]);

    const stats = await cli(['stats', sb.path, '--json']);
    assert.is(stats.code, 1);
    assert.is((JSON.parse(stats.stdout) as { records: number }).records, 1);
    assert.is(stats.stderr, `krypton log stats: ${stop}`);

    assert.is(await folderDigest(sb.path), before);
  } finally {
    await sb.remove();
  }
});

test('damage in both segments and a torn tail: verify lists all three and resynchronises after each', async () => {
  const sb = await fixtureSandbox();
  const seg1 = path.join(sb.logDir, SEG1);
  const seg4 = path.join(sb.logDir, SEG4);
  try {
    await flipByte(seg1, 394 + 8); // the version byte of seq 2's frame
    await flipByte(seg4, 416 + 4); // the stored crc of seq 5's frame
    await fs.appendFile(seg4, Buffer.from('torn'));
    const verify = await cli(['verify', '--json', sb.path]);
    assert.is(verify.code, 1);
    const report = JSON.parse(verify.stdout) as {
      records: number;
      problems: { file: string; offset: number; kind: string; reason: string }[];
    };
    assert.is(report.records, 4);
    assert.equal(
      report.problems.map((p) => [p.file, p.offset, p.kind, p.reason]),
      [
        [SEG1, 394, 'corrupt', 'unknown format version 91; 398 bytes unreadable, next intact frame at offset 792 (seq 3); seq 2 lost'],
        [SEG4, 416, 'corrupt', 'checksum mismatch; 397 bytes unreadable, next intact frame at offset 813 (seq 6); seq 5 lost'],
        [SEG4, 1297, 'torn-tail', "the host's recovery would cut the log here (file ends 4 bytes into a frame)"],
      ],
    );
  } finally {
    await sb.remove();
  }
});

test('the tools never write: no LOCK is taken and no file changes, whatever the command', async () => {
  const sb = await fixtureSandbox();
  try {
    const before = await folderDigest(sb.path);
    for (const argv of [['inspect'], ['verify'], ['replay'], ['replay', '--link', ONE], ['export', '--all-versions'], ['stats']]) {
      assert.is((await cli([...argv, sb.path])).code, 0, argv.join(' '));
    }
    assert.is(await folderDigest(sb.path), before);
    assert.equal(await fs.readdir(sb.host), ['log']);
  } finally {
    await sb.remove();
  }
});

test.run();
