/**
 * Replay benchmark for the write-ahead log: how fast WriteAheadLog.open replays a log on disk,
 * against a bare loop that only msgpackr-unpacks the same payloads from one in-memory buffer.
 * The ratio says how much the log's own work (reading, checksums, checks) costs on top of the
 * decode. Run: node --import tsx tools/bench/wal-replay.ts [records]
 */

import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KINDS, type LogRecord } from '../../lib/document.js';
import { WriteAheadLog, diskDirectory, encodeRecord, segmentName } from '../../wal/index.js';
import { bareDecodeLoop } from './bare-decode.js';

const SEGMENT_BYTES = 64 * 1024 * 1024;
const ROUNDS = 3;

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** An ExampleService-shaped record whose payload is about 500 bytes. */
export function exampleRecord(seq: number): LogRecord {
  const link = `/core/examples/${seq.toString(16).padStart(16, '0')}`;
  const time = 1_700_000_000_000_000 + seq * 1000;
  return {
    seq,
    link,
    action: 'PUT',
    version: seq % 50,
    epoch: 0,
    timeMicros: time,
    state: {
      name: `example ${seq}`,
      counter: seq,
      sortedCounter: seq * 3,
      keyValues: { colour: 'blue', size: 'large', region: 'eu-west', owner: 'team-storage' },
      tags: ['alpha', 'beta', 'gamma'],
      documentVersion: seq % 50,
      documentEpoch: 0,
      documentKind: KINDS.example,
      documentSelfLink: link,
      documentUpdateTimeMicros: time,
      documentUpdateAction: 'PUT',
      documentExpirationTimeMicros: 0,
      documentOwner: 'host-0f3a9c2e-41d7-4e2b-9a51-7c3d2b1e0f44',
      documentAuthPrincipalLink: '/core/auth/system-user',
    },
  };
}

/** Writes `records` records as segments of SEGMENT_BYTES; returns every frame in one buffer too. */
export async function writeLog(dir: string, records: number): Promise<Buffer> {
  const all: Buffer[] = [];
  let segment: Buffer[] = [];
  let segmentBytes = 0;
  let segmentFirst = 1;
  const flush = async (): Promise<void> => {
    const fh = await open(join(dir, segmentName(segmentFirst)), 'wx');
    await fh.writev(segment);
    // Synced, so the kernel's writeback does not compete with the replay being measured.
    await fh.datasync();
    await fh.close();
  };
  for (let seq = 1; seq <= records; seq++) {
    const frame = encodeRecord(exampleRecord(seq));
    if (segmentBytes > 0 && segmentBytes + frame.length > SEGMENT_BYTES) {
      await flush();
      segment = [];
      segmentBytes = 0;
      segmentFirst = seq;
    }
    segment.push(frame);
    segmentBytes += frame.length;
    all.push(frame);
  }
  if (segment.length > 0) await flush();
  return Buffer.concat(all);
}

export async function benchWalReplay(
  records: number,
): Promise<{ records: number; walRecordsPerSec: number; bareRecordsPerSec: number; ratio: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'krypton-wal-bench-'));
  try {
    const frames = await writeLog(dir, records);

    const bare = bareDecodeLoop(frames);
    const wal = async (): Promise<number> => {
      let count = 0;
      const log = await WriteAheadLog.open({ dir: diskDirectory(dir), onRecord: () => void count++ });
      await log.close();
      return count;
    };

    // Alternate the two and take each one's median, because this machine's speed drifts.
    const walSecs: number[] = [];
    const bareSecs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      let t = process.hrtime.bigint();
      const bareCount = bare();
      bareSecs.push(Number(process.hrtime.bigint() - t) / 1e9);
      t = process.hrtime.bigint();
      const walCount = await wal();
      walSecs.push(Number(process.hrtime.bigint() - t) / 1e9);
      if (walCount !== records || bareCount !== records) throw new Error(`replayed ${walCount} and ${bareCount} of ${records}`);
    }
    const walSec = median(walSecs);
    const bareSec = median(bareSecs);
    const walRecordsPerSec = Math.round(records / walSec);
    const bareRecordsPerSec = Math.round(records / bareSec);
    return { records, walRecordsPerSec, bareRecordsPerSec, ratio: Math.round((walRecordsPerSec / bareRecordsPerSec) * 100) / 100 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const records = Number(process.argv[2] ?? 1_000_000);
  console.log(JSON.stringify(await benchWalReplay(records)));
}
