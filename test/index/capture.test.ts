/**
 * Restart from a snapshot plus the log after it must give the index (and dedup window) a full
 * replay gives: checked over random histories with retention trims, re-deliveries, older versions
 * slotted in by history synchronization, deletions, history resets and request ids, a snapshot
 * taken at a random point and written and read through the real snapshot format.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DedupWindow } from '../../lib/dedup.js';
import { KINDS, type LogRecord, type UpdateAction } from '../../lib/document.js';
import { DocumentIndex } from '../../index/views.js';
import { MemoryDirectory } from '../../wal/file.js';
import { readSnapshot, writeSnapshot } from '../../wal/snapshot.js';
import { restoreEntry, snapshotEntries } from '../../server/host/checkpoints.js';
import { mulberry32 } from '../support/sim-network.js';

const T0 = 1_800_000_000_000_000;

function randomHistory(seed: number, n: number): LogRecord[] {
  const r = mulberry32(seed);
  const links = Array.from({ length: 6 }, (_, i) => (i < 2 ? `/core/short/l${i}` : `/core/examples/l${i}`));
  const top = new Map<string, number>();
  const out: LogRecord[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const link = links[Math.floor(r() * links.length)]!;
    const latest = top.get(link);
    const roll = r();
    let version: number;
    let action: UpdateAction = 'PUT';
    let resetHistory: boolean | undefined;
    if (latest === undefined) {
      version = 0;
      action = 'POST';
    } else if (roll < 0.1 && latest > 2) {
      version = Math.floor(r() * latest); // an older version, re-delivered or slotted in
    } else if (roll < 0.15) {
      version = latest; // a re-delivery of the latest with the state that won
    } else if (roll < 0.2) {
      version = 0;
      action = 'POST';
      resetHistory = true;
    } else {
      version = latest + 1;
      action = roll < 0.25 ? 'DELETE' : roll < 0.6 ? 'PATCH' : 'PUT';
    }
    if (resetHistory || version > (latest ?? -1)) top.set(link, version);
    const timeMicros = T0 + seq * 10;
    const rec: LogRecord = {
      seq,
      link,
      action,
      version,
      epoch: Math.floor(seq / 50),
      timeMicros,
      state: {
        name: `s${seq}`,
        documentSelfLink: link,
        documentKind: KINDS.example,
        documentVersion: version,
        documentEpoch: Math.floor(seq / 50),
        documentUpdateTimeMicros: timeMicros,
        documentUpdateAction: action,
        documentExpirationTimeMicros: 0,
      },
    };
    if (resetHistory) rec.resetHistory = true;
    if (r() < 0.4) rec.requestId = `req-${seed}-${seq}`;
    out.push(rec);
  }
  return out;
}

const fresh = () => new DocumentIndex({ retentionFor: (link) => (link.startsWith('/core/short/') ? 3 : 20) });

function replay(index: DocumentIndex, dedup: DedupWindow, records: readonly LogRecord[]): void {
  for (const r of records) {
    index.apply(r);
    dedup.note(r);
  }
}

/** What a snapshot would hold: the index's copy with its trimmed marks sorted, and the dedup ids. */
function contents(index: DocumentIndex, dedup: DedupWindow) {
  const c = index.capture();
  return {
    newest: c.newestTimeMicros,
    trimmed: [...c.trimmed].sort((a, b) => a[0].localeCompare(b[0])),
    versions: [...c.versions()],
    dedup: dedup.entries(),
  };
}

async function restartFromSnapshot(
  index: DocumentIndex,
  dedup: DedupWindow,
  lastSeq: number,
): Promise<{ index: DocumentIndex; dedup: DedupWindow }> {
  const dir = new MemoryDirectory();
  const c = index.capture();
  const entries = snapshotEntries(c, dedup.entries());
  const { name } = await writeSnapshot(dir, { lastSeq, clockMicros: 0, newestTimeMicros: c.newestTimeMicros }, entries, 2048);
  const back = { index: fresh(), dedup: new DedupWindow() };
  const header = await readSnapshot(dir, name, (e) => restoreEntry(back.index, back.dedup, e));
  back.index.restoreNewestTime(header.newestTimeMicros);
  return back;
}

test('snapshot plus the log after it gives the same index and dedup window as a full replay (200 random histories)', async () => {
  for (let seed = 1; seed <= 200; seed++) {
    const history = randomHistory(seed, 150 + (seed % 7) * 20);
    const cut = 1 + ((seed * 7919) % (history.length - 1));
    const full = { index: fresh(), dedup: new DedupWindow() };
    replay(full.index, full.dedup, history);

    const before = { index: fresh(), dedup: new DedupWindow() };
    replay(before.index, before.dedup, history.slice(0, cut));
    const restarted = await restartFromSnapshot(before.index, before.dedup, cut);
    assert.equal(contents(restarted.index, restarted.dedup), contents(before.index, before.dedup), `seed ${seed}: the snapshot itself`);
    replay(restarted.index, restarted.dedup, history.slice(cut));

    const want = contents(full.index, full.dedup);
    const got = contents(restarted.index, restarted.dedup);
    assert.equal(got, want, `seed ${seed}, snapshot after record ${cut}`);
    for (const link of new Set(history.map((r) => r.link))) {
      assert.is(restarted.index.digest(link), full.index.digest(link), `seed ${seed} ${link} digest`);
      assert.equal(restarted.index.marks(link), full.index.marks(link), `seed ${seed} ${link} marks`);
    }
  }
});

test.run();
