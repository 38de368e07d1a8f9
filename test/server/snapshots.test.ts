/**
 * Snapshots and compaction on real hosts: a restart loads the newest snapshot and replays only
 * the log after it, with every document, version, deletion and Idempotency-Key answer kept; a
 * damaged snapshot falls back to an older one, or stops the host with the file named when nothing
 * covers the compacted log; a host that was down while its peers compacted catches up.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { closeAll, groupAvailable, startHost, startJoined, tempDir, type TestHost } from '../support/hosts.js';
import { metricValue, parsePrometheusText } from '../support/prom-text.js';
import { waitFor } from '../support/wait.js';

type Doc = { name?: string; counter?: number; documentVersion: number };
type Answer = Doc & { statusCode?: number; documentKind?: string; message?: string };
// Small segments, so a few hundred writes span many and compaction has whole ones to remove.
const SMALL = { snapshotEveryRecords: 0, logSegmentBytes: 8192 };

async function fill(h: TestHost, docs: number, rounds: number): Promise<void> {
  for (let i = 0; i < docs; i++) await h.client.post('/core/examples', { documentSelfLink: `d${i}`, name: `n${i}`, counter: 0 });
  for (let round = 1; round <= rounds; round++)
    for (let i = 0; i < docs; i++) await h.client.patch(`/core/examples/d${i}`, { counter: round });
}

async function everything(h: TestHost, docs: number, versions: number): Promise<unknown> {
  const list = (await h.client.get<{ documents: Record<string, Doc> }>('/core/examples?expand')).body.documents;
  const old: (Doc | number)[] = [];
  for (let i = 0; i < docs; i++)
    for (let v = 0; v < versions; v++) {
      const r = await h.client.get<Doc>(`/core/examples/d${i}?documentVersion=${v}`);
      old.push(r.status === 200 ? { name: r.body.name, counter: r.body.counter, documentVersion: r.body.documentVersion } : r.status);
    }
  return { list, old };
}

async function segments(h: TestHost): Promise<string[]> {
  return (await fs.readdir(path.join(h.host.dir, 'log'))).filter((n) => n.endsWith('.log')).sort();
}

test('a restart after a snapshot and compaction keeps every document, version, deletion and retried write', async () => {
  const dir = await tempDir();
  let h = await startHost(SMALL, dir.path);
  try {
    await fill(h, 20, 4);
    const key = { 'idempotency-key': 'before-snapshot-1' };
    const once = await h.client.send<Doc>('PUT', '/core/examples/d3', { name: 'keyed', counter: 99 }, key);
    assert.is(once.status, 200, once.text);
    const segmentsBefore = await segments(h);
    const snap = await h.host.checkpoints.snapshot();
    assert.ok(snap, 'a snapshot was written');
    const segmentsAfter = await segments(h);
    assert.ok(
      segmentsAfter.length < segmentsBefore.length,
      `compaction removed segments: ${segmentsBefore.length} -> ${segmentsAfter.length}`,
    );
    assert.is.not(segmentsAfter[0], '00000000000000000001.log');
    // The tail: writes after the snapshot, which only the log holds.
    for (let i = 0; i < 20; i += 3) await h.client.patch(`/core/examples/d${i}`, { name: `after${i}` });
    for (let i = 1; i < 20; i += 5) assert.is((await h.client.delete(`/core/examples/d${i}`)).status, 200);
    const before = await everything(h, 20, 7);

    h = await h.restart();
    const state = (await h.client.get<{ logStats: { firstSeq: number }; snapshotStats: { lastSnapshotSeq: number } }>('/core/management'))
      .body;
    assert.is(state.snapshotStats.lastSnapshotSeq, snap!.lastSeq, 'started from the snapshot');
    assert.ok(state.logStats.firstSeq > 1);
    assert.equal(await everything(h, 20, 7), before);
    const retried = await h.client.send<Doc>('PUT', '/core/examples/d3', { name: 'keyed', counter: 99 }, key);
    assert.is(retried.status, 200, retried.text);
    assert.is(retried.body.documentVersion, once.body.documentVersion, 'the retry is answered from the dedup window the snapshot kept');
    const next = await h.client.patch<Doc>('/core/examples/d0', { counter: 1000 });
    assert.is(next.status, 200, next.text);
  } finally {
    await h.close();
    await dir.remove();
  }
});

test('a damaged newest snapshot falls back to the older one and its log tail; with none usable the host refuses to start, naming the file', async () => {
  const dir = await tempDir();
  let h = await startHost({ ...SMALL, snapshotsKept: 2 }, dir.path);
  const hostDir = h.host.dir;
  try {
    await fill(h, 10, 3);
    await h.host.checkpoints.snapshot();
    for (let i = 0; i < 10; i++) await h.client.patch(`/core/examples/d${i}`, { name: `second${i}` });
    const newest = await h.host.checkpoints.snapshot();
    for (let i = 0; i < 10; i += 2) await h.client.patch(`/core/examples/d${i}`, { name: `third${i}` });
    const before = await everything(h, 10, 6);
    await h.close().catch(() => {});
    const snapDir = path.join(hostDir, 'snapshots');
    const names = (await fs.readdir(snapDir)).sort();
    assert.is(names.length, 2);
    const file = path.join(snapDir, newest!.name);
    const bytes = await fs.readFile(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x10;
    await fs.writeFile(file, bytes);

    h = await startHost({ ...SMALL, snapshotsKept: 2 }, dir.path);
    assert.equal(await everything(h, 10, 6), before);
    await h.client.close();
    await h.host.stop();

    const older = path.join(snapDir, names[0]!);
    const olderBytes = await fs.readFile(older);
    await fs.writeFile(older, olderBytes.subarray(0, olderBytes.length - 7));
    let err: unknown;
    try {
      const again = await startHost({ ...SMALL, snapshotsKept: 2 }, dir.path);
      await again.close();
    } catch (e) {
      err = e;
    }
    assert.match(String((err as Error)?.message), /no usable snapshot covers it/);
    assert.match(String((err as Error)?.message), names[0]!);
  } finally {
    await dir.remove();
  }
});

test("past --maxDiskBytes writes get 507 with Xenon's error body, reads go on, and writes resume by themselves once compaction frees space", async () => {
  // One document of ~450 bytes kept at 100 versions: two snapshots take ~90 KB, the log between
  // snapshots 100-200 KB. The quota is reached as the log grows; a snapshot taken then lets
  // compaction bring the total back under it.
  const h = await startHost({ snapshotEveryRecords: 200, logSegmentBytes: 8192, maxDiskBytes: 250_000 });
  try {
    await h.client.post('/core/examples', { documentSelfLink: 'q0', name: 'q', counter: 0 });
    const acked = new Map<string, number>();
    let refusals = 0;
    for (let n = 1; n <= 900; n++) {
      const link = '/core/examples/q0';
      const body = { counter: n, name: 'x'.repeat(200) };
      let r = await h.client.patch<Answer>(link, body);
      if (r.status === 507) {
        refusals++;
        assert.is(r.body.statusCode, 507);
        assert.is(r.body.documentKind, KINDS.serviceErrorResponse);
        assert.match(String(r.body.message), /disk quota/);
        assert.is((await h.client.get<Doc>(link)).status, 200, 'reads go on');
        // A user retrying: the host snapshots and compacts by itself within a few checks.
        r = await waitFor(`${link} written again`, async () => {
          const again = await h.client.patch<Answer>(link, body);
          assert.ok(again.status === 200 || again.status === 507, again.text);
          return again.status === 200 && again;
        });
      }
      assert.is(r.status, 200, r.text);
      acked.set(link, n);
    }
    assert.ok(refusals > 0, 'the quota was reached');
    for (const [link, n] of acked) assert.is((await h.client.get<Doc>(link)).body.counter, n);
    const stats = (await h.client.get<{ snapshotStats: { segmentsRemoved: number } }>('/core/management')).body.snapshotStats;
    assert.ok(stats.segmentsRemoved > 0);
    // What an operator's alert reads.
    const m = parsePrometheusText((await h.client.get('/metrics')).text);
    assert.is(metricValue(m, 'krypton_disk_quota_bytes'), 250_000);
    for (const name of [
      'krypton_snapshots_total',
      'krypton_snapshot_last_seq',
      'krypton_snapshot_bytes',
      'krypton_log_segments_removed_total',
    ])
      assert.ok(metricValue(m, name) > 0, name);
    const disk = metricValue(m, 'krypton_disk_bytes');
    assert.ok(disk > 0 && disk < 250_000, `disk ${disk} under the quota once writes are taken again`);
  } finally {
    await h.close();
  }
});

test('a host that was down while its peers compacted their logs catches up by synchronization', async () => {
  const dirs = await Promise.all([0, 1, 2].map(() => tempDir()));
  // Fixed ports: the restarted host comes back at the address its peers know.
  const base = 27900 + Math.floor(Math.random() * 500) * 3;
  const config = (i: number) => ({ ...SMALL, id: `snap-${i + 1}`, port: base + i, membershipQuorum: 2 });
  const hosts: TestHost[] = [];
  try {
    await startJoined(
      dirs.map((d) => d.path),
      config,
      hosts,
    );
    await groupAvailable(hosts);
    const [a, b] = hosts as [TestHost, TestHost, TestHost];
    for (let i = 0; i < 15; i++) assert.is((await a.client.post('/core/examples', { documentSelfLink: `c${i}`, name: 'v0' })).status, 200);
    await hosts[2]!.close();
    for (let round = 1; round <= 6; round++)
      for (let i = 0; i < 15; i++) assert.is((await a.client.patch(`/core/examples/c${i}`, { name: `v${round}` })).status, 200);
    for (const h of [a, b]) {
      await h.host.checkpoints.snapshot();
      assert.is.not((await segments(h))[0], '00000000000000000001.log', 'the peers compacted');
    }
    hosts[2] = await startHost(config(2), dirs[2]!.path);
    const c = hosts[2]!;
    await groupAvailable(hosts);
    // What a user sees on the restarted host (reads there are forwarded to owners) ...
    for (let i = 0; i < 15; i++) assert.is((await c.client.get<Doc>(`/core/examples/c${i}`)).body.name, 'v6');
    // ... and what it holds itself once synchronization has run: the latest version of every link, as its peers do.
    await waitFor(
      'the restarted host holds every latest version',
      () => {
        for (let i = 0; i < 15; i++) {
          const link = `/core/examples/c${i}`;
          const mine = c.host.index.latest(link);
          const theirs = a.host.index.latest(link);
          if (mine?.name !== 'v6' || mine.documentVersion !== theirs?.documentVersion) return false;
        }
        return true;
      },
      20_000,
    );
  } finally {
    await closeAll(hosts);
    for (const d of dirs) await d.remove();
  }
});

test.run();
