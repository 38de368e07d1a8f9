/**
 * Benchmark of the log tools: how fast `krypton log verify`, `krypton log replay` (counts per
 * factory) and `krypton log replay --link` get through a log on disk, against a bare loop that
 * only msgpackr-unpacks the same frame payloads from one in-memory buffer. The ratios say what the tools' own work (reading,
 * checksums, seq checks; the history tally) costs on top of decoding. Both tools are called
 * in-process through the functions the CLI calls, with no progress bar.
 *
 * The log is written by the real WriteAheadLog (group commit, 64 MiB segments): `records` records
 * over records/10 example documents, written round by round — a POST of every document, then
 * PATCHes and PUTs, and in the last round a DELETE of every twentieth — so each document's
 * history is spread across the log, as updates to many documents interleave on a real host.
 *
 * Run: node --import tsx tools/bench/log-tools.ts [records]; the last line of stdout is JSON.
 */

import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KINDS, type LogRecord, type NewLogRecord, type UpdateAction } from '../../lib/document.js';
import { diskDirectory, WriteAheadLog } from '../../wal/index.js';
import { openHostLog } from '../log/open.js';
import { replayCounts, replayIndex } from '../log/replay.js';
import { verifyLog } from '../log/verify.js';
import { bareDecodeLoop } from './bare-decode.js';

const ROUNDS = 3;
const VERSIONS_PER_DOCUMENT = 10;
/** Appends handed to the log before waiting: enough for full group commits, well under its pending limit. */
const APPENDS_IN_FLIGHT = 20_000;

export interface LogToolsBenchResult {
  records: number;
  documents: number;
  bytes: number;
  segments: number;
  verifyRecordsPerSec: number;
  /** `replay` without --link: counts per factory from a HistoryTally. */
  replayRecordsPerSec: number;
  /** `replay --link L`: one link's records into a DocumentIndex, every record still read and decoded. */
  replayLinkRecordsPerSec: number;
  bareRecordsPerSec: number;
  verifyRatio: number;
  replayRatio: number;
  replayLinkRatio: number;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Record `i` of the run (0-based): round i / documents, document i % documents. About 540 bytes framed. */
function benchRecord(i: number, documents: number, rounds: number): NewLogRecord {
  const round = Math.floor(i / documents);
  const doc = i % documents;
  const link = `/core/examples/doc-${doc.toString(16).padStart(8, '0')}`;
  const action: UpdateAction = round === 0 ? 'POST' : round === rounds - 1 && doc % 20 === 0 ? 'DELETE' : round % 3 === 0 ? 'PUT' : 'PATCH';
  const timeMicros = 1_700_000_000_000_000 + i * 50;
  return {
    link,
    action,
    version: round,
    epoch: 0,
    timeMicros,
    state: {
      name: `example ${doc}`,
      counter: round,
      sortedCounter: doc * 3 + round,
      keyValues: { colour: 'blue', size: 'large', region: 'eu-west', owner: 'team-storage', round: String(round) },
      tags: ['alpha', 'beta', 'gamma'],
      documentVersion: round,
      documentEpoch: 0,
      documentKind: KINDS.example,
      documentSelfLink: link,
      documentUpdateTimeMicros: timeMicros,
      documentUpdateAction: action,
      documentExpirationTimeMicros: 0,
      documentOwner: 'host-0f3a9c2e-41d7-4e2b-9a51-7c3d2b1e0f44',
      documentAuthPrincipalLink: '/core/auth/system-user',
    },
  };
}

export async function writeHostLog(hostDir: string, records: number, documents: number): Promise<void> {
  const rounds = Math.ceil(records / documents);
  const log = await WriteAheadLog.open({ dir: diskDirectory(join(hostDir, 'log')), onRecord: () => {} });
  try {
    for (let from = 0; from < records; from += APPENDS_IN_FLIGHT) {
      const waiting: Promise<LogRecord>[] = [];
      for (let i = from; i < Math.min(records, from + APPENDS_IN_FLIGHT); i++) waiting.push(log.append(benchRecord(i, documents, rounds)));
      await Promise.all(waiting);
    }
  } finally {
    await log.close();
  }
}

export async function benchLogTools(records: number): Promise<LogToolsBenchResult> {
  const sandbox = await mkdtemp(join(tmpdir(), 'krypton-logtools-bench-'));
  try {
    const hostDir = join(sandbox, '8000');
    await mkdir(join(hostDir, 'log'), { recursive: true });
    const documents = Math.max(1, Math.floor(records / VERSIONS_PER_DOCUMENT));
    await writeHostLog(hostDir, records, documents);
    const log = await openHostLog(hostDir);
    const frames = Buffer.concat(await Promise.all(log.segments.map((s) => readFile(join(log.logPath, s.name)))));

    const bare = bareDecodeLoop(frames);
    const verify = async (): Promise<number> => {
      const report = await verifyLog(log);
      if (report.problems.length > 0) throw new Error(`verify found problems in the bench log: ${JSON.stringify(report.problems[0])}`);
      return report.records;
    };
    const replay = async (): Promise<number> => {
      const to = await replayCounts(log, { kind: 'end' });
      const [counts] = to.tally.countByFactory(Number.MAX_SAFE_INTEGER);
      const deleted = Math.ceil(documents / 20);
      if (
        counts === undefined ||
        counts.live + counts.deleted !== documents ||
        (records === documents * VERSIONS_PER_DOCUMENT && counts.deleted !== deleted)
      ) {
        throw new Error(`replay counted ${JSON.stringify(counts)} for ${documents} documents`);
      }
      return to.applied;
    };
    const someLink = benchRecord(documents - 1, documents, Math.ceil(records / documents)).link;
    const replayLink = async (): Promise<number> => {
      const to = await replayIndex(log, { kind: 'end' }, someLink);
      if (to.index.latest(someLink) === undefined) throw new Error(`replay --link found no ${someLink}`);
      return to.applied;
    };

    // Alternate the three and take each one's median, because this machine's speed drifts.
    const secs = { bare: [] as number[], verify: [] as number[], replay: [] as number[], replayLink: [] as number[] };
    const time = async (into: number[], f: () => number | Promise<number>): Promise<void> => {
      const t = process.hrtime.bigint();
      const n = await f();
      into.push(Number(process.hrtime.bigint() - t) / 1e9);
      if (n !== records) throw new Error(`read ${n} of ${records} records`);
    };
    for (let round = 0; round < ROUNDS; round++) {
      await time(secs.bare, bare);
      await time(secs.verify, verify);
      await time(secs.replay, replay);
      await time(secs.replayLink, replayLink);
    }
    const rate = (xs: number[]): number => Math.round(records / median(xs));
    const bareRecordsPerSec = rate(secs.bare);
    const verifyRecordsPerSec = rate(secs.verify);
    const replayRecordsPerSec = rate(secs.replay);
    const replayLinkRecordsPerSec = rate(secs.replayLink);
    const ratio = (n: number): number => Math.round((n / bareRecordsPerSec) * 100) / 100;
    return {
      records,
      documents,
      bytes: frames.length,
      segments: log.segments.length,
      verifyRecordsPerSec,
      replayRecordsPerSec,
      replayLinkRecordsPerSec,
      bareRecordsPerSec,
      verifyRatio: ratio(verifyRecordsPerSec),
      replayRatio: ratio(replayRecordsPerSec),
      replayLinkRatio: ratio(replayLinkRecordsPerSec),
    };
  } finally {
    await rm(sandbox, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const records = Number(process.argv[2] ?? 1_000_000);
  console.log(JSON.stringify(await benchLogTools(records)));
}
