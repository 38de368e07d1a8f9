/**
 * Storage benchmark (issue 19): a host process holding DOCS documents x VERSIONS versions
 * (1M records by default), written straight into its log as a host would have logged them.
 *   1. restart to serving (spawn of `krypton host` until /readyz answers 200) replaying the whole
 *      log, then the same from the snapshot the host wrote (and the log compacted behind it);
 *   2. disk bytes of the log before, and of log plus snapshot after, against the JSON bytes of the
 *      retained versions and of the latest states alone; RSS after each start;
 *   3. `krypton backup` of that host and `krypton restore` of the file, in versions per second,
 *      and the restored host's start;
 *   4. etcd in the same run: a follower of the 3-member cluster holding DOCS keys restarted,
 *      until it serves a serializable range.
 *   5. disk after DOCS x 2 PATCHes sent over HTTP to DOCS / 200 documents (most versions superseded:
 *      retention keeps 100 per example), at the host's first snapshot and compaction.
 * What this does not measure: 5M updates over HTTP (about 20 minutes of load here), and memory per
 * old version, which stays
 * what `index` reports: every retained version is still held in memory (versions on disk are not
 * built). Run: node --import tsx tools/bench/storage.ts [docs] [versions]
 */

import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { KINDS, type LogRecord } from '../../lib/document.js';
import { encodeRecord, segmentName } from '../../wal/index.js';
import { backupGroup, restoreBackup } from '../backup.js';
import { exampleBody, freePorts, removeDir, sleep, spreadLoad, startEtcd, tempDir, track } from './etcd.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'dist/tools/krypton.js');
const SEGMENT_BYTES = 64 * 1024 * 1024;
const log = (s: string) => process.stderr.write(`[storage] ${s}\n`);

function record(seq: number, doc: number, version: number): LogRecord {
  const link = `/core/examples/s${String(doc).padStart(7, '0')}`;
  const time = 1_700_000_000_000_000 + seq * 10;
  const action = version === 0 ? 'POST' : 'PUT';
  return {
    seq,
    link,
    action,
    version,
    epoch: 1,
    timeMicros: time,
    state: {
      name: `doc ${doc} v${version}`,
      counter: version,
      keyValues: { colour: 'blue', size: 'large', region: 'eu-west' },
      tags: ['alpha', 'beta'],
      documentVersion: version,
      documentEpoch: 1,
      documentKind: KINDS.example,
      documentSelfLink: link,
      documentUpdateTimeMicros: time,
      documentUpdateAction: action,
      documentExpirationTimeMicros: 0,
      documentOwner: 'bench-host',
    },
  };
}

/** Writes the history into `<hostDir>/log`; returns the JSON bytes of every version and of the latest ones. */
async function writeHistory(
  logDir: string,
  docs: number,
  versions: number,
): Promise<{ allJson: number; latestJson: number; records: number }> {
  await fs.mkdir(logDir, { recursive: true });
  let seq = 0;
  let segment: Buffer[] = [];
  let bytes = 0;
  let first = 1;
  let allJson = 0;
  let latestJson = 0;
  const flush = async () => {
    const fh = await fs.open(path.join(logDir, segmentName(first)), 'wx');
    await fh.writev(segment);
    await fh.datasync();
    await fh.close();
  };
  for (let v = 0; v < versions; v++)
    for (let d = 0; d < docs; d++) {
      const r = record(++seq, d, v);
      const json = Buffer.byteLength(JSON.stringify(r.state));
      allJson += json;
      if (v === versions - 1) latestJson += json;
      const frame = encodeRecord(r);
      if (bytes > 0 && bytes + frame.length > SEGMENT_BYTES) {
        await flush();
        segment = [];
        bytes = 0;
        first = seq;
      }
      segment.push(frame);
      bytes += frame.length;
    }
  if (segment.length > 0) await flush();
  return { allJson, latestJson, records: seq };
}

interface Started {
  ms: number;
  /** The host's own figures from its 'log replayed into the index' line: snapshot load and whole replay. */
  replay: { ms: number; snapshotMs: number };
  rssBytes: number;
  url: string;
  stop(): Promise<void>;
}

async function rssOf(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** Spawns `krypton host` and measures until /readyz answers 200. */
async function startHost(sandbox: string, port: number, extra: string[] = []): Promise<Started> {
  const t0 = performance.now();
  const args = [
    BIN,
    'host',
    `--port=${port}`,
    `--sandbox=${sandbox}`,
    '--isPeerSynchronizationEnabled=false',
    '--logFormat=json',
    ...extra,
  ];
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let err = '';
  let out = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  child.stdout!.on('data', (b: Buffer) => {
    if (out.length < 1e6) out += b.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`krypton host exited with ${child.exitCode}: ${err}`);
    const ok = await fetch(`${url}/readyz`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) break;
    await sleep(5);
  }
  const ms = performance.now() - t0;
  const line = out.split('\n').find((l) => l.includes('log replayed into the index'));
  const parsed = line ? (JSON.parse(line) as { ms?: number; snapshotMs?: number }) : {};
  return {
    ms,
    replay: { ms: parsed.ms ?? -1, snapshotMs: parsed.snapshotMs ?? -1 },
    rssBytes: await rssOf(child.pid!),
    url,
    stop: async () => {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

/** Bytes of every file in the host folder's log/ and snapshots/. */
async function diskBytes(hostDir: string): Promise<number> {
  let n = 0;
  for (const sub of ['log', 'snapshots']) {
    const d = path.join(hostDir, sub);
    for (const f of await fs.readdir(d).catch(() => [] as string[])) n += (await fs.stat(path.join(d, f))).size;
  }
  return n;
}

async function management(url: string): Promise<{
  logStats: { bytes: number; segments: number };
  snapshotStats: { snapshots: number; lastSnapshotBytes: number; lastSnapshotSeconds: number };
}> {
  return (await (await fetch(`${url}/core/management`)).json()) as never;
}

export interface StorageBenchResult {
  docs: number;
  versions: number;
  records: number;
  fullReplay: { ms: number; rssBytes: number; replay: Started['replay'] };
  fromSnapshot: { ms: number; rssBytes: number; replay: Started['replay'] };
  snapshot: { seconds: number; bytes: number };
  disk: { logBefore: number; after: number; retainedJson: number; latestJson: number };
  backup: { versions: number; seconds: number; versionsPerSec: number; bytes: number };
  restore: { seconds: number; versionsPerSec: number; startMs: number };
  etcd: { version: string; keys: number; loadSeconds: number; restartMs: number } | { skipped: string };
  updates: {
    docs: number;
    updates: number;
    ok: number;
    seconds: number;
    logBytesWritten: number;
    disk: number;
    latestJson: number;
    retainedJson: number;
  };
}

async function etcdRestart(keys: number): Promise<StorageBenchResult['etcd']> {
  const cluster = await startEtcd();
  if ('skipped' in cluster) return cluster;
  try {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const t0 = performance.now();
    await spreadLoad(cluster.clientUrls, 64, { amount: keys }, (i) => ({
      method: 'POST',
      path: cluster.members.gateway,
      body: JSON.stringify({ key: b64(`bench/${String(i).padStart(10, '0')}`), value: b64(exampleBody(i)) }),
    }));
    const loadSeconds = (performance.now() - t0) / 1000;
    const leader = await cluster.members.leader();
    const follower = leader === 1 ? 2 : 1;
    await cluster.members.stop(follower, 'SIGTERM');
    const t1 = performance.now();
    cluster.members.start(follower);
    const range = `${cluster.clientUrls[follower]}${cluster.members.gateway.replace('/kv/put', '/kv/range')}`;
    const body = JSON.stringify({ key: b64(`bench/${String(keys - 1).padStart(10, '0')}`), serializable: true });
    for (;;) {
      const ok = await fetch(range, { method: 'POST', body })
        .then(async (r) => r.status === 200 && (await r.text()).includes('"kvs"'))
        .catch(() => false);
      if (ok) break;
      if (performance.now() - t1 > 60_000) throw new Error('the restarted etcd member did not serve within 60 s');
      await sleep(5);
    }
    return { version: cluster.info.version, keys, loadSeconds, restartMs: performance.now() - t1 };
  } finally {
    await cluster.close();
  }
}

/**
 * Disk after updates sent over HTTP, the way users make history: `docs` documents PATCHed
 * `updates` times in all (64 connections), on one host with its default snapshot policy, until its
 * first snapshot and compaction. Retention keeps 100 versions per example, so most of the history
 * is superseded.
 */
async function diskAfterUpdates(docs: number, updates: number): Promise<StorageBenchResult['updates']> {
  const dir = await tempDir('krypton-bench-updates-');
  try {
    const [port] = await freePorts(1);
    // The default policy at the full scale (200,000 records), the same point at a smaller one.
    const host = await startHost(dir, port!, [`--snapshotEveryRecords=${updates}`]);
    try {
      for (let i = 0; i < docs; i++) {
        const r = await fetch(`${host.url}/core/examples`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ documentSelfLink: `u${i}`, name: `doc ${i}`, counter: 0 }),
        });
        if (r.status !== 200) throw new Error(`create answered ${r.status}`);
      }
      const t0 = performance.now();
      const load = await spreadLoad([host.url], 64, { amount: updates }, (i) => ({
        method: 'PATCH',
        path: `/core/examples/u${i % docs}`,
        body: JSON.stringify({ counter: i, keyValues: { colour: 'blue', size: 'large', region: 'eu-west' }, tags: ['alpha', 'beta'] }),
      }));
      const seconds = (performance.now() - t0) / 1000;
      let m = await management(host.url);
      while (m.snapshotStats.snapshots < 1) {
        await sleep(100);
        m = await management(host.url);
      }
      const hostDir = path.join(dir, String(port));
      const disk = await diskBytes(hostDir);
      let latestJson = 0;
      let retainedJson = 0;
      for (let i = 0; i < docs; i++) {
        const doc = await (await fetch(`${host.url}/core/examples/u${i}`)).text();
        latestJson += Buffer.byteLength(doc);
        retainedJson += Buffer.byteLength(doc) * Math.min(100, JSON.parse(doc).documentVersion + 1);
      }
      return { docs, updates, ok: load.ok, seconds, logBytesWritten: m.logStats.bytes, disk, latestJson, retainedJson };
    } finally {
      await host.stop();
    }
  } finally {
    await removeDir(dir);
  }
}

export async function benchStorage(docs: number, versions: number): Promise<StorageBenchResult> {
  const dir = await tempDir('krypton-bench-storage-');
  try {
    const [port] = await freePorts(1);
    const sandbox = path.join(dir, 'sandbox');
    log(`writing ${docs} documents x ${versions} versions into a log`);
    const history = await writeHistory(path.join(sandbox, String(port), 'log'), docs, versions);
    // Full replay; the snapshot the host then writes (a record since the last is enough to be due).
    const full = await startHost(sandbox, port!, ['--snapshotEveryRecords=1']);
    const hostDir = path.join(sandbox, String(port));
    const logBefore = await diskBytes(hostDir);
    let m = await management(full.url);
    while (m.snapshotStats.snapshots < 1) {
      await sleep(50);
      m = await management(full.url);
    }
    await full.stop();
    log(
      `full replay ${Math.round(full.ms)} ms; snapshot ${m.snapshotStats.lastSnapshotBytes} bytes in ${m.snapshotStats.lastSnapshotSeconds.toFixed(2)} s`,
    );
    const snap = await startHost(sandbox, port!);
    const after = await diskBytes(hostDir);
    log(`from the snapshot ${Math.round(snap.ms)} ms`);

    const out = path.join(dir, 'bench.backup');
    const b = await backupGroup({ host: snap.url, out });
    await snap.stop();
    const t0 = performance.now();
    const [port2] = await freePorts(1);
    const restoredSandbox = path.join(dir, 'restored');
    await restoreBackup(out, restoredSandbox, port2!);
    const restoreSeconds = (performance.now() - t0) / 1000;
    const restored = await startHost(restoredSandbox, port2!);
    await restored.stop();
    log(
      `backup ${b.versions} versions in ${b.seconds.toFixed(1)} s; restore ${restoreSeconds.toFixed(1)} s, start ${Math.round(restored.ms)} ms`,
    );

    const updates = await diskAfterUpdates(Math.max(50, Math.round(docs / 200)), docs * 2);
    log(`disk after ${updates.updates} updates of ${updates.docs} documents: ${updates.disk} bytes`);
    const etcd = await etcdRestart(docs);
    return {
      docs,
      versions,
      records: history.records,
      fullReplay: { ms: Math.round(full.ms), rssBytes: full.rssBytes, replay: full.replay },
      fromSnapshot: { ms: Math.round(snap.ms), rssBytes: snap.rssBytes, replay: snap.replay },
      snapshot: { seconds: m.snapshotStats.lastSnapshotSeconds, bytes: m.snapshotStats.lastSnapshotBytes },
      disk: {
        logBefore,
        after,
        retainedJson: history.allJson,
        latestJson: history.latestJson,
      },
      backup: { versions: b.versions, seconds: b.seconds, versionsPerSec: Math.round(b.versions / b.seconds), bytes: b.bytes },
      restore: { seconds: restoreSeconds, versionsPerSec: Math.round(b.versions / restoreSeconds), startMs: Math.round(restored.ms) },
      etcd,
      updates,
    };
  } finally {
    await removeDir(dir);
  }
}

export function storageRows(s: StorageBenchResult, fmt: (n: number, d?: number) => string): [string, string, string, string][] {
  const mib = (n: number) => `${fmt(n / 2 ** 20, 1)} MiB`;
  const e = 'skipped' in s.etcd ? undefined : s.etcd;
  const of = `${fmt(s.docs)} docs x ${s.versions} versions`;
  return [
    [
      `restart to serving from a snapshot, ${of}`,
      `${fmt(s.fromSnapshot.ms)} ms (load ${fmt(s.fromSnapshot.replay.snapshotMs)} ms, RSS ${mib(s.fromSnapshot.rssBytes)})`,
      `full replay ${fmt(s.fullReplay.ms)} ms (replay ${fmt(s.fullReplay.replay.ms)} ms, RSS ${mib(s.fullReplay.rssBytes)})`,
      `${fmt(s.fullReplay.ms / s.fromSnapshot.ms, 2)} (goal <= 1 s)`,
    ],
    [
      `same vs etcd follower restart, ${e ? fmt(e.keys) : ''} keys`,
      `${fmt(s.fromSnapshot.ms)} ms`,
      e ? `etcd ${e.version} ${fmt(e.restartMs)} ms` : `etcd ${(s.etcd as { skipped: string }).skipped}`,
      e ? `${fmt(e.restartMs / s.fromSnapshot.ms, 2)} (goal >= 1)` : '',
    ],
    [
      'disk after snapshot + compaction',
      `${mib(s.disk.after)} (log before: ${mib(s.disk.logBefore)})`,
      `retained versions' JSON ${mib(s.disk.retainedJson)}, latest only ${mib(s.disk.latestJson)}`,
      `${fmt(s.disk.after / s.disk.retainedJson, 2)}x retained`,
    ],
    [
      `disk after ${fmt(s.updates.updates)} PATCHes over HTTP to ${fmt(s.updates.docs)} docs, first snapshot`,
      `${mib(s.updates.disk)} (${fmt(s.updates.ok)} ok in ${fmt(s.updates.seconds, 1)} s)`,
      `retained versions' JSON ${mib(s.updates.retainedJson)}, latest only ${mib(s.updates.latestJson)}`,
      `${fmt(s.updates.disk / s.updates.retainedJson, 2)}x retained, ${fmt(s.updates.disk / s.updates.latestJson, 1)}x latest`,
    ],
    ['snapshot write', `${fmt(s.snapshot.seconds, 2)} s, ${mib(s.snapshot.bytes)}`, '', ''],
    [
      'krypton backup / restore',
      `${fmt(s.backup.versionsPerSec)} / ${fmt(s.restore.versionsPerSec)} versions/s`,
      `restored host serves in ${fmt(s.restore.startMs)} ms`,
      '',
    ],
  ];
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const docs = Number(process.argv[2] ?? 100_000);
  const versions = Number(process.argv[3] ?? 10);
  console.log(JSON.stringify(await benchStorage(docs, versions)));
  process.exit(0);
}
